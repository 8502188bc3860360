//! Calls from this gateway to media nodes over the bus, with a deadline on every call.
//!
//! A caller ([`Rpc`], shared by the transport workers) numbers its call and hands it to the
//! [`RpcClient`] actor, which registers it, publishes it and puts its answer in the caller's
//! own channel; the caller waits there, with its deadline. The actor owns the table of calls
//! waiting and the subscription their answers arrive on. Registered and published in one
//! handler, a call is always in the table before its answer can arrive.
//!
//! A call whose command goes out from a store's step instead ([`Rpc::expect`]) is registered
//! first (`Expect`, sent before the step runs): actix hands an actor every message in its
//! mailbox before it polls its streams, so the answer, which comes after the command, finds it.
//!
//! Messages to the actor: `Call`, `Expect`, `Failed` (a call's publish failed), `Forget` (its
//! caller gave up), and the stream of replies on this gateway's channel.

use crate::core_thread::Unstarted;
use actix::prelude::*;
use shared::bus::{Bus, Payload, Subscription};
use shared::ids::NodeId;
use shared::wire::{decode_reply, NodeCommand, RpcEnvelope, RpcResult, WIRE_VERSION};
use shared::{keys, Backends};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

/// A call's answer, or why there is none.
type Answer = Result<RpcResult, String>;

/// The calling side. Waiting for an answer takes no actor turn: the caller awaits its own
/// channel. (A call was an actor request whose handler's future actix spawned as a task,
/// answered through two channels: a spawn and two wake-ups more per call.)
pub struct Rpc {
    client: Addr<RpcClient>,
    /// What `tell` publishes on.
    bus: Arc<dyn Bus>,
    next: AtomicU64,
    /// This gateway's reply channel (the client's).
    reply_to: String,
}

/// A call registered whose command the caller sends itself ([`Rpc::expect`]).
pub struct Expected {
    corr_id: u64,
    rx: oneshot::Receiver<Answer>,
}

impl Rpc {
    pub fn new(client: Addr<RpcClient>, bus: Arc<dyn Bus>, gateway_id: &str) -> Self {
        Self { client, bus, next: AtomicU64::new(0), reply_to: keys::gateway_rpc(gateway_id) }
    }

    /// Sends `cmd` to `node` and waits at most `timeout` for the answer.
    pub async fn call(&self, node: NodeId, cmd: NodeCommand, timeout: Duration) -> Answer {
        let corr_id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let (answer, rx) = oneshot::channel();
        self.client.do_send(Call { corr_id, node: node.clone(), cmd, timeout, answer });
        self.answer(Expected { corr_id, rx }, &node, timeout).await
    }

    /// A call numbered and waiting for its answer, whose command the caller publishes itself:
    /// `envelope(cmd)` is it.
    pub fn expect(&self) -> Expected {
        let corr_id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let (answer, rx) = oneshot::channel();
        self.client.do_send(Expect { corr_id, answer });
        Expected { corr_id, rx }
    }

    /// The envelope of `call` for `cmd`, answered on this gateway's channel.
    pub fn envelope(&self, call: &Expected, cmd: NodeCommand) -> RpcEnvelope {
        RpcEnvelope { v: WIRE_VERSION, corr_id: call.corr_id, reply_to: self.reply_to.clone(), cmd }
    }

    /// A call expected and not sent after all.
    pub fn forget(&self, call: Expected) {
        self.client.do_send(Forget(call.corr_id));
    }

    /// `call`'s answer from `node`, waited for at most `timeout`.
    pub async fn answer(&self, call: Expected, node: &NodeId, timeout: Duration) -> Answer {
        let Expected { corr_id, rx } = call;
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => Err("the RPC client is gone".to_owned()),
            Err(_) => {
                // Answered or failed, the call has left the table already; given up on, not yet.
                self.client.do_send(Forget(corr_id));
                Err(format!("no reply from node {node} within {timeout:?}"))
            }
        }
    }

    /// Sends `cmd` to `node` asking for no reply (the node publishes none: one message less
    /// each way); `Err` only when it could not be published within `timeout`. Published by the
    /// caller, who awaits it: the node sees it before anything the caller sends next.
    pub async fn tell(&self, node: &NodeId, cmd: NodeCommand, timeout: Duration) -> Result<(), String> {
        match tokio::time::timeout(timeout, self.bus.send(&keys::node_rpc(node), told(cmd))).await {
            Ok(r) => r.map_err(|e| e.to_string()),
            Err(_) => Err("bus publish timed out".to_owned()),
        }
    }
}

/// `cmd` as [`Rpc::tell`] publishes it: a call that asks for no reply.
pub fn told(cmd: NodeCommand) -> Arc<RpcEnvelope> {
    Arc::new(RpcEnvelope::told(cmd))
}

/// The calls waiting for answers, and the subscription the answers arrive on.
pub struct RpcClient {
    backends: Backends,
    reply_to: String,
    pending: HashMap<u64, oneshot::Sender<Answer>>,
}

/// Publish `cmd` to `node` as call `corr_id`; its answer goes to `answer`.
#[derive(Message)]
#[rtype(result = "()")]
struct Call {
    corr_id: u64,
    node: NodeId,
    cmd: NodeCommand,
    timeout: Duration,
    answer: oneshot::Sender<Answer>,
}

/// A call whose command its caller publishes: its answer goes to `answer`.
#[derive(Message)]
#[rtype(result = "()")]
struct Expect {
    corr_id: u64,
    answer: oneshot::Sender<Answer>,
}

/// Call `.0` could not be published, for the reason `.1`.
#[derive(Message)]
#[rtype(result = "()")]
struct Failed(u64, String);

/// The caller of `corr_id` gave up on it.
#[derive(Message)]
#[rtype(result = "()")]
struct Forget(u64);

impl RpcClient {
    /// Subscribes to this gateway's reply channel and starts the client behind an address
    /// handed out earlier, on the current thread.
    pub async fn run(unstarted: Unstarted<Self>, backends: Backends, gateway_id: &str) -> Result<(), String> {
        let reply_to = keys::gateway_rpc(gateway_id);
        let sub: Subscription = backends.bus.subscribe(&reply_to).await.map_err(|e| e.to_string())?;
        let mut ctx = unstarted.into_context();
        ctx.add_stream(sub);
        ctx.run(RpcClient { backends, reply_to, pending: HashMap::new() });
        Ok(())
    }
}

impl Actor for RpcClient {
    type Context = Context<Self>;
}

impl Handler<Call> for RpcClient {
    type Result = ();
    fn handle(&mut self, call: Call, ctx: &mut Context<Self>) {
        let Call { corr_id, node, cmd, timeout, answer } = call;
        self.pending.insert(corr_id, answer);
        let env = RpcEnvelope { v: WIRE_VERSION, corr_id, reply_to: self.reply_to.clone(), cmd };
        let bus = self.backends.bus.clone();
        let me = ctx.address();
        // In place: the in-process bus takes it at once; Redis's publish goes on in a task.
        shared::task::run_or_spawn(async move {
            let failed = match tokio::time::timeout(timeout, bus.send(&keys::node_rpc(&node), Arc::new(env))).await {
                Ok(Ok(())) => return,
                Ok(Err(e)) => e.to_string(),
                Err(_) => "bus publish timed out".to_owned(),
            };
            me.do_send(Failed(corr_id, failed));
        });
    }
}

impl Handler<Expect> for RpcClient {
    type Result = ();
    fn handle(&mut self, Expect { corr_id, answer }: Expect, _: &mut Context<Self>) {
        self.pending.insert(corr_id, answer);
    }
}

impl Handler<Failed> for RpcClient {
    type Result = ();
    fn handle(&mut self, Failed(id, why): Failed, _: &mut Context<Self>) {
        if let Some(tx) = self.pending.remove(&id) {
            let _ = tx.send(Err(why));
        }
    }
}

impl Handler<Forget> for RpcClient {
    type Result = ();
    fn handle(&mut self, Forget(id): Forget, _: &mut Context<Self>) {
        self.pending.remove(&id);
    }
}

/// How many calls wait for an answer (tests).
#[cfg(test)]
#[derive(Message)]
#[rtype(result = "usize")]
struct Waiting;

#[cfg(test)]
impl Handler<Waiting> for RpcClient {
    type Result = usize;
    fn handle(&mut self, _: Waiting, _: &mut Context<Self>) -> usize {
        self.pending.len()
    }
}

impl StreamHandler<Payload> for RpcClient {
    fn handle(&mut self, payload: Payload, _: &mut Context<Self>) {
        match payload.decode(decode_reply) {
            Ok(r) => {
                if let Some(tx) = self.pending.remove(&r.corr_id) {
                    let _ = tx.send(Ok(r.result));
                }
            }
            Err(e) => tracing::warn!(error = %e, "undecodable RPC reply dropped"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;
    use shared::wire::{decode_rpc, RpcReply};

    async fn started(backends: &Backends) -> (Rpc, Addr<RpcClient>) {
        let (client, unstarted) = Unstarted::new();
        RpcClient::run(unstarted, backends.clone(), "gw-1").await.unwrap();
        (Rpc::new(client.clone(), backends.bus.clone(), "gw-1"), client)
    }

    /// A node that answers every call `Sync(corr_id)`, on its own task.
    async fn answering_node(backends: &Backends, node: &NodeId) {
        let mut calls = backends.bus.subscribe(&keys::node_rpc(node)).await.unwrap();
        let bus = backends.bus.clone();
        actix::spawn(async move {
            while let Some(b) = calls.next().await {
                let env = b.decode(decode_rpc).unwrap();
                let result = RpcResult::Sync(env.corr_id.into());
                let reply = RpcReply { v: WIRE_VERSION, corr_id: env.corr_id, result };
                bus.send(&env.reply_to, Arc::new(reply)).await.unwrap();
            }
        });
    }

    #[actix_web::test]
    async fn each_call_gets_its_own_answer_and_leaves_nothing_waiting() {
        let backends = Backends::memory();
        let (rpc, client) = started(&backends).await;
        let node = NodeId("node-1".into());
        answering_node(&backends, &node).await;
        let t = Duration::from_secs(2);
        let calls = (0..20).map(|_| rpc.call(node.clone(), NodeCommand::Loops, t));
        let answers: Vec<_> = futures_util::future::join_all(calls).await;
        let mut ids: Vec<u64> = answers
            .into_iter()
            .map(|a| match a {
                Ok(RpcResult::Sync(v)) => v.as_u64().unwrap(),
                other => panic!("{other:?}"),
            })
            .collect();
        ids.sort_unstable();
        assert_eq!(ids, (1..=20).collect::<Vec<_>>(), "each call answered once, with its own answer");
        assert_eq!(client.send(Waiting).await.unwrap(), 0);
    }

    /// A bus that takes subscriptions and refuses every publish.
    struct Refusing(shared::bus::MemoryBus);

    #[async_trait::async_trait]
    impl Bus for Refusing {
        async fn publish(&self, _: &str, _: bytes::Bytes) -> Result<(), shared::bus::BusError> {
            Err(shared::bus::BusError::Unavailable("refused".into()))
        }
        async fn subscribe(&self, channel: &str) -> Result<Subscription, shared::bus::BusError> {
            self.0.subscribe(channel).await
        }
    }

    /// A call the bus refuses ends at once with the bus's reason, not at its deadline, and
    /// leaves nothing waiting.
    #[actix_web::test]
    async fn a_call_that_cannot_be_published_fails_at_once() {
        let backends = Backends { bus: Arc::new(Refusing(shared::bus::MemoryBus::new())), ..Backends::memory() };
        let (rpc, client) = started(&backends).await;
        let asked = std::time::Instant::now();
        let r = rpc.call(NodeId("node-1".into()), NodeCommand::Loops, Duration::from_secs(5)).await;
        assert_eq!(r, Err("bus unavailable: refused".to_owned()));
        assert!(asked.elapsed() < Duration::from_secs(1), "failed after {:?}", asked.elapsed());
        assert_eq!(client.send(Waiting).await.unwrap(), 0);
    }

    /// A call nobody answers ends at its deadline, and is forgotten: the table of calls waiting
    /// does not grow with the calls given up on.
    #[actix_web::test]
    async fn a_call_given_up_on_is_forgotten() {
        let backends = Backends::memory();
        let (rpc, client) = started(&backends).await;
        let node = NodeId("nobody".into());
        for _ in 0..3 {
            let r = rpc.call(node.clone(), NodeCommand::Loops, Duration::from_millis(30)).await;
            assert_eq!(r, Err("no reply from node nobody within 30ms".to_owned()));
        }
        assert_eq!(client.send(Waiting).await.unwrap(), 0);
    }
}
