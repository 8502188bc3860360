//! Everything a media node writes to the shared world (session events, handle bindings, room
//! records, RPC replies) goes through one ordered queue, drained by one task. Actors stay
//! synchronous, and a client can never see a `joined` event before its handle is bound, or a
//! reply before the store reflects it. (An RPC acknowledgement an agent gives, which follows no
//! write, is published at once; one a room gives goes with the events after it.)
//!
//! The task takes whatever has queued up while it was writing and delivers each run of
//! consecutive events in one step (two round trips to Redis for the run, however many events:
//! a join's events to every other participant of the room go out together), the
//! acknowledgements queued in the run published first in the same step, and issues the
//! writes between two replies together, so that under load a write waits for a few batches,
//! not for every write queued before it.

use bytes::Bytes;
use serde_json::Value;
use shared::ids::{HandleId, RoomId, SessionId};
use shared::janus::reply::{Event, PluginData};
use shared::janus::videoroom::RoomConfig;
use shared::janus::VIDEOROOM_PLUGIN;
use shared::store::Binding;
use shared::wire::{RpcReply, RpcResult, WIRE_VERSION};
use shared::Backends;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use tokio::sync::mpsc;

/// One write.
pub enum Write {
    /// Append a finished Janus event to a session's mailbox and wake its consumer.
    Event(SessionId, Bytes),
    Bind(SessionId, HandleId, Option<Binding>),
    Participants(RoomId, u64),
    UpdateRoom(RoomConfig),
    DeleteRoom(RoomId),
    /// Publish an RPC reply on a gateway's channel.
    Reply(String, Arc<RpcReply>),
    /// Publish an acknowledgement (`Accepted`) on a gateway's channel, ahead of the events
    /// after it and in the same step.
    Ack(String, Arc<RpcReply>),
    /// Run a read-then-act step in order with the writes before it (room loading, `list`, ...).
    Run(Pin<Box<dyn Future<Output = ()> + Send>>),
}

impl std::fmt::Debug for Write {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Write::Event(s, _) => write!(f, "Event({s})"),
            Write::Bind(s, h, b) => write!(f, "Bind({s}, {h}, {b:?})"),
            Write::Participants(r, n) => write!(f, "Participants({r}, {n})"),
            Write::UpdateRoom(c) => write!(f, "UpdateRoom({})", c.room),
            Write::DeleteRoom(r) => write!(f, "DeleteRoom({r})"),
            Write::Reply(c, _) => write!(f, "Reply({c})"),
            Write::Ack(c, _) => write!(f, "Ack({c})"),
            Write::Run(_) => write!(f, "Run"),
        }
    }
}

/// The sending side; cheap to clone into actors.
#[derive(Clone)]
pub struct Outbox {
    tx: mpsc::UnboundedSender<Write>,
    bus: std::sync::Arc<dyn shared::bus::Bus>,
}

impl Outbox {
    pub fn start(backends: Backends) -> Self {
        let bus = backends.bus.clone();
        let (tx, mut rx) = mpsc::unbounded_channel::<Write>();
        actix::spawn(async move {
            let mut batch = Vec::new();
            while let Some(first) = rx.recv().await {
                batch.push(first);
                while batch.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(w) => batch.push(w),
                        Err(_) => break,
                    }
                }
                apply_batch(&backends, &mut batch).await;
            }
        });
        Self { tx, bus }
    }

    pub fn send(&self, w: Write) {
        if self.tx.send(w).is_err() {
            tracing::warn!("outbox closed; write dropped");
        }
    }

    /// A VideoRoom event for one handle (`transaction` set when it answers that handle's request).
    pub fn plugin_event(&self, session: SessionId, handle: HandleId, transaction: Option<String>, data: Value) {
        self.plugin_event_with_jsep(session, handle, transaction, data, None)
    }

    /// A VideoRoom event that carries a JSEP (an answer to a publisher, an offer to a subscriber).
    pub fn plugin_event_with_jsep(
        &self,
        session: SessionId,
        handle: HandleId,
        transaction: Option<String>,
        data: Value,
        jsep: Option<shared::janus::request::Jsep>,
    ) {
        let ev = Event::Event {
            session_id: session,
            transaction,
            sender: handle,
            plugindata: PluginData { plugin: VIDEOROOM_PLUGIN.into(), data },
            jsep,
        };
        self.send(Write::Event(session, ev.to_bytes().into()));
    }

    /// An RPC reply, ordered after every write the request caused. An acknowledgement
    /// (`Accepted`, `WrongNode`) goes out at once instead: the request has caused nothing yet,
    /// and the gateway waiting for it (to `ack` the client) need not wait for the queue.
    /// Nothing goes out when the command asked for no reply (`reply_to` empty).
    pub fn reply(&self, reply_to: String, corr_id: u64, result: RpcResult) {
        if reply_to.is_empty() {
            return;
        }
        let at_once = matches!(result, RpcResult::Accepted | RpcResult::WrongNode);
        let reply = rpc_reply(corr_id, result);
        if !at_once {
            return self.send(Write::Reply(reply_to, reply));
        }
        let bus = self.bus.clone();
        shared::task::run_or_spawn(async move {
            if let Err(e) = bus.send(&reply_to, reply).await {
                tracing::warn!(error = %e, "RPC acknowledgement not published");
            }
        });
    }

    /// Acknowledges a request (`Accepted`) as its room takes it: delivered with the events it
    /// causes, ahead of them.
    pub fn acknowledge(&self, reply_to: String, corr_id: u64) {
        if !reply_to.is_empty() {
            self.send(Write::Ack(reply_to, rpc_reply(corr_id, RpcResult::Accepted)));
        }
    }
}

fn rpc_reply(corr_id: u64, result: RpcResult) -> Arc<RpcReply> {
    Arc::new(RpcReply { v: WIRE_VERSION, corr_id, result })
}

/// Writes taken together at most (a bound on one batch's size and on its Redis script).
const MAX_BATCH: usize = 256;

/// Applies `batch` in order, each run of consecutive events as one delivery. Store writes and
/// deliveries between two replies (or read-then-act steps) go out together: issued in order on
/// the store's one multiplexed connection, Redis applies them in that order, and waiting for
/// them together costs one round trip instead of one each. A reply or a step waits for every
/// write before it.
async fn apply_batch(b: &Backends, batch: &mut Vec<Write>) {
    let mut run = Run::default();
    let mut issued: Vec<Pin<Box<dyn Future<Output = ()> + Send + '_>>> = Vec::new();
    for w in batch.drain(..) {
        match w {
            Write::Event(sid, ev) => run.events.push((sid, ev)),
            Write::Ack(channel, ack) => run.acks.push((channel, ack as Arc<dyn shared::bus::Message>)),
            Write::Reply(..) | Write::Run(_) => {
                deliver(b, &mut run, &mut issued);
                futures_util::future::join_all(issued.drain(..)).await;
                applied(apply(b, w).await);
            }
            other => {
                deliver(b, &mut run, &mut issued);
                issued.push(Box::pin(async move { applied(apply(b, other).await) }));
            }
        }
    }
    deliver(b, &mut run, &mut issued);
    futures_util::future::join_all(issued).await;
}

/// Acknowledgements and events gathered for one delivery.
#[derive(Default)]
struct Run {
    acks: Vec<(String, Arc<dyn shared::bus::Message>)>,
    events: Vec<(SessionId, Bytes)>,
}

fn applied(r: Result<(), String>) {
    if let Err(e) = r {
        tracing::warn!(error = %e, "media node write failed");
    }
}

/// Issues the acknowledgements and events gathered so far as one delivery.
fn deliver<'a>(b: &'a Backends, run: &mut Run, issued: &mut Vec<Pin<Box<dyn Future<Output = ()> + Send + 'a>>>) {
    if run.acks.is_empty() && run.events.is_empty() {
        return;
    }
    let Run { acks, events } = std::mem::take(run);
    issued.push(Box::pin(async move {
        if let Err(e) = b.deliver_after(&acks, &events).await {
            tracing::warn!(error = %e, acks = acks.len(), events = events.len(), "events not delivered");
        }
    }));
}

async fn apply(b: &Backends, w: Write) -> Result<(), String> {
    let s = &b.store;
    match w {
        Write::Event(sid, ev) => b.deliver(sid, ev).await.map_err(|e| e.to_string()),
        Write::Bind(sid, hid, binding) => s.bind_handle(sid, hid, binding).await.map_err(|e| e.to_string()),
        Write::Participants(room, n) => s.set_room_participants(room, n).await.map_err(|e| e.to_string()),
        Write::UpdateRoom(cfg) => s.update_room(cfg).await.map_err(|e| e.to_string()),
        Write::DeleteRoom(room) => s.delete_room(room).await.map(|_| ()).map_err(|e| e.to_string()),
        Write::Reply(channel, reply) | Write::Ack(channel, reply) => {
            b.bus.send(&channel, reply).await.map_err(|e| e.to_string())
        }
        Write::Run(job) => {
            job.await;
            Ok(())
        }
    }
}

impl Outbox {
    /// A core event (`webrtcup`, `media`, `hangup`) for a session.
    pub fn core_event(&self, session: SessionId, ev: Event) {
        self.send(Write::Event(session, ev.to_bytes().into()));
    }
}
