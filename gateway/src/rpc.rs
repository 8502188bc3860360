//! `RpcClient`: request/reply to media nodes over the bus, with a deadline on every call.
//!
//! Messages: `Call` (send a command, await its reply), `Tell` (send a command that wants no
//! reply), `Forget` (a call timed out), and the stream of replies on this gateway's channel.

use crate::core_thread::Unstarted;
use actix::prelude::*;
use bytes::Bytes;
use shared::bus::Subscription;
use shared::ids::NodeId;
use shared::wire::{decode_reply, encode, NodeCommand, RpcEnvelope, RpcResult, WIRE_VERSION};
use shared::{keys, Backends};
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::oneshot;

pub struct RpcClient {
    backends: Backends,
    reply_to: String,
    pending: HashMap<u64, oneshot::Sender<RpcResult>>,
    next: u64,
}

/// Sends `cmd` to `node` and waits at most `timeout` for the answer.
#[derive(Message)]
#[rtype(result = "Result<RpcResult, String>")]
pub struct Call {
    pub node: NodeId,
    pub cmd: NodeCommand,
    pub timeout: Duration,
}

/// Sends `cmd` to `node` asking for no reply (the node publishes none: one message less each
/// way); `Err` only when it could not be published within `timeout`.
#[derive(Message)]
#[rtype(result = "Result<(), String>")]
pub struct Tell {
    pub node: NodeId,
    pub cmd: NodeCommand,
    pub timeout: Duration,
}

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
        ctx.run(RpcClient { backends, reply_to, pending: HashMap::new(), next: 0 });
        Ok(())
    }
}

impl Actor for RpcClient {
    type Context = Context<Self>;
}

impl Handler<Call> for RpcClient {
    type Result = ResponseFuture<Result<RpcResult, String>>;

    fn handle(&mut self, call: Call, ctx: &mut Context<Self>) -> Self::Result {
        self.next += 1;
        let corr_id = self.next;
        let (tx, rx) = oneshot::channel();
        self.pending.insert(corr_id, tx);
        let env = RpcEnvelope { v: WIRE_VERSION, corr_id, reply_to: self.reply_to.clone(), cmd: call.cmd };
        let bus = self.backends.bus.clone();
        let me = ctx.address();
        Box::pin(async move {
            let channel = keys::node_rpc(&call.node);
            let sent = tokio::time::timeout(call.timeout, bus.publish(&channel, encode(&env))).await;
            let outcome = match sent {
                Ok(Ok(())) => match tokio::time::timeout(call.timeout, rx).await {
                    Ok(Ok(r)) => Ok(r),
                    Ok(Err(_)) => Err("reply channel closed".to_owned()),
                    Err(_) => Err(format!("no reply from node {} within {:?}", call.node, call.timeout)),
                },
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err("bus publish timed out".to_owned()),
            };
            if outcome.is_err() {
                me.do_send(Forget(corr_id));
            }
            outcome
        })
    }
}

impl Handler<Tell> for RpcClient {
    type Result = ResponseFuture<Result<(), String>>;

    fn handle(&mut self, tell: Tell, _: &mut Context<Self>) -> Self::Result {
        let env = RpcEnvelope { v: WIRE_VERSION, corr_id: 0, reply_to: String::new(), cmd: tell.cmd };
        let bus = self.backends.bus.clone();
        Box::pin(async move {
            let channel = keys::node_rpc(&tell.node);
            match tokio::time::timeout(tell.timeout, bus.publish(&channel, encode(&env))).await {
                Ok(r) => r.map_err(|e| e.to_string()),
                Err(_) => Err("bus publish timed out".to_owned()),
            }
        })
    }
}

impl Handler<Forget> for RpcClient {
    type Result = ();
    fn handle(&mut self, Forget(id): Forget, _: &mut Context<Self>) {
        self.pending.remove(&id);
    }
}

impl StreamHandler<Bytes> for RpcClient {
    fn handle(&mut self, payload: Bytes, _: &mut Context<Self>) {
        match decode_reply(&payload) {
            Ok(r) => {
                if let Some(tx) = self.pending.remove(&r.corr_id) {
                    let _ = tx.send(r.result);
                }
            }
            Err(e) => tracing::warn!(error = %e, "undecodable RPC reply dropped"),
        }
    }
}
