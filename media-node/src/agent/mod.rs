//! `NodeAgent`: the media node's front door. It takes RPCs from the node channel, answers the
//! requests that need no room (`create`, `exists`, `list`), and hands everything else to the
//! room's [`RoomActor`], loading the room from the store on first use.
//!
//! Messages: the RPC subscription (a stream of bus payloads), `Loaded` (a room's record
//! arrived), `Closed` (a room actor stopped after `destroy`). Here: the agent's registration,
//! heartbeat, load and drain; `commands.rs` the RPCs; `rooms.rs` the rooms it holds.

use crate::outbox::{Outbox, Write};
use crate::room::messages::Flush;
use crate::room::state::Who;
use crate::workers::{Occupied, Workers};
use actix::prelude::*;
use shared::bus::{Payload, Subscription};
use shared::ids::{HandleId, NodeId, RoomId, SessionId};
use shared::janus::errors::VideoRoomError;
use shared::janus::videoroom as vr;
use shared::store::NodeStatus;
use shared::wire::decode_rpc;
use shared::Backends;
use std::collections::HashMap;

mod commands;
mod rooms;

pub use rooms::Closed;
use rooms::{Pending, Placed};

pub struct NodeAgent {
    node: NodeId,
    backends: Backends,
    outbox: Outbox,
    rooms: HashMap<RoomId, Placed>,
    /// The threads the rooms run on.
    workers: Workers,
    serial: u64,
    /// Participants per loaded room (reported by the room actors): the node's load.
    occupancy: HashMap<RoomId, Occupied>,
    /// Where PeerConnections listen.
    media: crate::media::peer::MediaSettings,
    /// Set while draining: when the drain must end at the latest.
    draining: Option<std::time::Instant>,
    drained: Option<tokio::sync::oneshot::Sender<()>>,
    loading: HashMap<RoomId, Vec<Pending>>,
    max_rooms: usize,
    /// Whether the last registration in the cluster registry succeeded (readiness).
    registered: bool,
    /// Heartbeats so far.
    beats: u64,
    /// `Tune` commands taken: a heartbeat's read of the stored knobs that one overtook is stale.
    tunes: u64,
}

impl NodeAgent {
    pub fn start(
        node: NodeId,
        backends: Backends,
        outbox: Outbox,
        rpc: Subscription,
        drained: tokio::sync::oneshot::Sender<()>,
        media: crate::media::peer::MediaSettings,
        workers: Workers,
    ) -> Addr<Self> {
        let max_rooms = usize::MAX;
        NodeAgent::create(|ctx| {
            ctx.add_stream(rpc);
            NodeAgent {
                node,
                backends,
                outbox,
                rooms: HashMap::new(),
                workers,
                serial: 0,
                occupancy: HashMap::new(),
                draining: None,
                drained: Some(drained),
                media,
                loading: HashMap::new(),
                max_rooms,
                // `start` registered the node before the agent exists.
                registered: true,
                beats: 0,
                tunes: 0,
            }
        })
    }

    /// A room's actor is gone: neither it nor its participants count any more.
    fn forget(&mut self, room: &RoomId) {
        let held = self.occupancy.remove(room).unwrap_or_default();
        if let Some(r) = self.rooms.remove(room) {
            self.workers.release(r.worker, held);
        }
        self.count_load();
    }

    fn participants(&self) -> u64 {
        self.occupancy.values().map(|o| o.participants).sum()
    }

    /// Rooms or participants changed: the metrics follow.
    fn count_load(&self) {
        crate::metrics::METRICS.set_rooms(self.rooms.len(), self.participants());
    }

    /// Ends a drain once the rooms are empty or the deadline has passed. From then on the node
    /// takes no command (they fail, as from a node going away); every room actor is asked to
    /// finish what its mailbox holds, and the end is queued behind their writes in the outbox,
    /// so every request taken is answered, events included, before the process exits. The
    /// handles still in a room (the deadline cut the drain short) are hung up at once, so that
    /// they re-join elsewhere, and the node leaves the registry: a drain is never a lost node.
    fn check_drain(&mut self, ctx: &mut Context<Self>) {
        let Some(deadline) = self.draining else { return };
        let left = self.participants();
        if left > 0 && std::time::Instant::now() < deadline {
            return;
        }
        let Some(tx) = self.drained.take() else { return };
        tracing::info!(node = %self.node, participants = left, "drain complete");
        let flushed = futures_util::future::join_all(self.rooms.values().map(|r| r.addr.send(Flush)));
        ctx.spawn(flushed.into_actor(self).map(move |rooms, act, _| {
            let handles: Vec<(SessionId, HandleId)> =
                rooms.into_iter().flatten().flatten().map(|w| (w.session, w.handle)).collect();
            let (backends, node) = (act.backends.clone(), act.node.clone());
            act.outbox.send(Write::Run(Box::pin(async move {
                shared::lost_node::hang_up_handles(&backends, &node, handles).await;
                if let Err(e) = backends.store.deregister_node(&node).await {
                    tracing::warn!(node = %node, error = %e, "cannot leave the registry");
                }
                let _ = tx.send(());
            })));
        }));
    }

    /// Sets the deployment's room limit (config `max_rooms`).
    pub fn with_max_rooms(addr: &Addr<Self>, max_rooms: usize) {
        addr.do_send(SetMaxRooms(max_rooms));
    }

    fn error_event(&self, who: Who, txn: String, e: &VideoRoomError) {
        self.outbox.plugin_event(who.session, who.handle, Some(txn), vr::error(e));
    }
}

/// How often a node renews its registration, and how long one lasts: one missed beat is
/// tolerated, and a node that stops is gone from the registry 3–5 s later (gateways notice
/// within a further second: within 6 s in all).
pub const HEARTBEAT: std::time::Duration = std::time::Duration::from_secs(2);
pub const NODE_TTL_MS: u64 = 5_000;
/// Heartbeats between two reads of the stored media knobs: a node that missed a `Tune` has it
/// within a minute (the gateway that turned a knob told every live node at once).
const KNOBS_EVERY: u64 = 30;

impl NodeAgent {
    /// This node's registry entry: its load is what placement balances on.
    fn status(&self) -> NodeStatus {
        let load = self.rooms.len() as u64 + self.participants();
        NodeStatus { node: self.node.clone(), load, draining: self.draining.is_some() }
    }
}

impl Actor for NodeAgent {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(HEARTBEAT, |act, ctx| {
            act.check_drain(ctx);
            if act.drained.is_none() {
                return; // Drained: stop beating, the registry forgets this node.
            }
            let store = act.backends.store.clone();
            let status = act.status();
            // Every [`KNOBS_EVERY`] beats, the knobs as stored, for a node that missed a `Tune` (a
            // knob turned while it was unreachable); unless one comes while they are read,
            // which is newer.
            act.beats += 1;
            let reread = act.beats % KNOBS_EVERY == 0;
            let tunes = act.tunes;
            let beat = async move {
                let beat = store.register_node(status, NODE_TTL_MS).await;
                let knobs = if beat.is_ok() && reread { store.knobs().await.ok() } else { None };
                (beat, knobs)
            };
            ctx.spawn(beat.into_actor(act).map(move |(beat, knobs), act, _| {
                crate::metrics::METRICS.heartbeat(beat.is_ok());
                act.registered = beat.is_ok();
                if let Err(e) = beat {
                    tracing::warn!(error = %e, "node heartbeat failed");
                }
                if let Some(knobs) = knobs.filter(|_| act.tunes == tunes) {
                    act.media.tuning.reset_to(&knobs);
                }
            }));
        });
    }
}

impl StreamHandler<Payload> for NodeAgent {
    fn handle(&mut self, payload: Payload, ctx: &mut Context<Self>) {
        match payload.decode(decode_rpc) {
            Ok(env) => self.on_command(env.reply_to, env.corr_id, env.cmd, ctx),
            Err(e) => tracing::warn!(node = %self.node, error = %e, "undecodable RPC dropped"),
        }
    }

    fn finished(&mut self, _: &mut Context<Self>) {
        tracing::error!(node = %self.node, "RPC subscription ended");
    }
}

/// Start draining (from SIGTERM or a `NodeCommand::Drain`).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Drain {
    pub deadline_secs: u64,
}

impl Handler<Drain> for NodeAgent {
    type Result = ();

    fn handle(&mut self, d: Drain, ctx: &mut Context<Self>) {
        if self.draining.is_none() {
            tracing::info!(node = %self.node, deadline_secs = d.deadline_secs, rooms = self.rooms.len(), "draining");
            self.draining = Some(std::time::Instant::now() + std::time::Duration::from_secs(d.deadline_secs));
            crate::metrics::METRICS.set_draining(true);
            // Tell the gateways now rather than at the next beat.
            let (store, status) = (self.backends.store.clone(), self.status());
            actix::spawn(async move {
                let _ = store.register_node(status, NODE_TTL_MS).await;
            });
        }
        self.check_drain(ctx);
    }
}

/// What a room holds changed.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Occupancy(pub RoomId, pub Occupied);

impl Handler<Occupancy> for NodeAgent {
    type Result = ();

    fn handle(&mut self, Occupancy(room, now): Occupancy, ctx: &mut Context<Self>) {
        let before = if now == Occupied::default() {
            self.occupancy.remove(&room)
        } else {
            self.occupancy.insert(room.clone(), now)
        };
        if let Some(r) = self.rooms.get(&room) {
            self.workers.occupied(r.worker, before.unwrap_or_default(), now);
        }
        self.count_load();
        self.check_drain(ctx);
    }
}

#[derive(Message)]
#[rtype(result = "()")]
struct SetMaxRooms(usize);

impl Handler<SetMaxRooms> for NodeAgent {
    type Result = ();

    fn handle(&mut self, SetMaxRooms(n): SetMaxRooms, _: &mut Context<Self>) {
        self.max_rooms = n;
    }
}

/// What the node's readiness probe reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Readiness {
    Ready,
    /// The last registration in the cluster registry failed: gateways may not see this node.
    Unregistered,
    Draining,
}

#[derive(Message)]
#[rtype(result = "Readiness")]
pub struct Ready;

impl Handler<Ready> for NodeAgent {
    type Result = MessageResult<Ready>;

    fn handle(&mut self, _: Ready, _: &mut Context<Self>) -> Self::Result {
        MessageResult(match (self.draining.is_some(), self.registered) {
            (true, _) => Readiness::Draining,
            (false, false) => Readiness::Unregistered,
            (false, true) => Readiness::Ready,
        })
    }
}
