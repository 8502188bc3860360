//! `NodeAgent`: the media node's front door. It takes RPCs from the node channel, answers the
//! requests that need no room (`create`, `exists`, `list`), and hands everything else to the
//! room's [`RoomActor`], loading the room from the store on first use.
//!
//! Messages: the RPC subscription (a stream of bus payloads), `Loaded` (a room's record
//! arrived), `Closed` (a room actor stopped after `destroy`).

use crate::outbox::{Outbox, Write};
use crate::room::messages::{Async, Flush, Gone, Sync};
use crate::room::state::{RoomState, Who};
use crate::room::RoomActor;
use crate::workers::{Occupied, WorkerId, Workers};
use actix::prelude::*;
use bytes::Bytes;
use shared::bus::Subscription;
use shared::ids::{HandleId, NodeId, RoomId, SessionId};
use shared::janus::errors::{VideoRoomCode, VideoRoomError};
use shared::janus::videoroom::{
    self as vr, AsyncName, AsyncRequest, RoomConfig, SyncRequest, VideoRoomEvent as Event, VideoRoomRequest,
};
use shared::store::{NodeStatus, RoomRecord, StoreError, ROOM_LEASE_MS};
use shared::wire::{decode_rpc, CaptureAnswer, NodeCommand, RpcResult};
use shared::Backends;
use std::collections::HashMap;

/// How long a capture's stop waits for its file to be written, inside the gateways' RPC deadline.
const CAPTURE_CLOSE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// Room-scoped work waiting for its room to load.
enum Pending {
    Sync {
        reply_to: String,
        corr_id: u64,
        req: SyncRequest,
    },
    /// An asynchronous request is acknowledged (`Accepted`) once the room is known to be here.
    Async {
        reply_to: String,
        corr_id: u64,
        msg: Async,
    },
    Gone(Gone),
}

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

/// A running room: its actor, which of the room's actors it is (`Closed` names it), and the
/// worker it runs on.
struct Placed {
    addr: Addr<RoomActor>,
    serial: u64,
    worker: WorkerId,
}

/// What loading a room found: its record, and whether this node owns it.
enum Load {
    Owned(RoomRecord),
    Missing,
    OwnedElsewhere,
}

#[derive(Message)]
#[rtype(result = "()")]
struct Loaded(RoomId, Load);

/// A room actor stopped (destroyed, or stood down after losing its lease). The serial tells
/// it apart from a newer actor for the same room.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Closed(pub RoomId, pub u64);

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

    fn on_command(&mut self, reply_to: String, corr_id: u64, cmd: NodeCommand, ctx: &mut Context<Self>) {
        if self.drained.is_none() {
            // The drain is over: whatever comes now could not be answered before the exit.
            self.outbox.reply(reply_to, corr_id, RpcResult::Failed("media node shutting down".into()));
            return;
        }
        match cmd {
            NodeCommand::Plugin { session, handle, transaction, request, jsep, bound_room, capture } => {
                let who = Who { session, handle };
                let _span = tracing::debug_span!("plugin", session = %session, handle = %handle).entered();
                match request {
                    VideoRoomRequest::Sync(req) => match req.room() {
                        Some(room) => self.to_room(room, Pending::Sync { reply_to, corr_id, req }, ctx),
                        None => self.roomless(reply_to, corr_id, req),
                    },
                    VideoRoomRequest::Async { name, parsed } => {
                        let room = bound_room.or_else(|| match &parsed {
                            Ok(AsyncRequest::Join(j)) => Some(j.room.clone()),
                            _ => None,
                        });
                        match room {
                            Some(room) => {
                                let msg = Async { who, transaction, name, parsed, jsep, capture };
                                self.to_room(room, Pending::Async { reply_to, corr_id, msg }, ctx)
                            }
                            None => {
                                self.outbox.reply(reply_to, corr_id, RpcResult::Accepted);
                                let e = match (name, parsed) {
                                    (AsyncName::Join | AsyncName::JoinAndConfigure, Err(e)) => e,
                                    (n @ AsyncName::JoinAndConfigure, _) => crate::room::state::media_unavailable(n),
                                    _ => VideoRoomError::new(
                                        VideoRoomCode::JoinFirst,
                                        "Invalid request on unconfigured participant",
                                    ),
                                };
                                self.error_event(who, transaction, &e);
                            }
                        }
                    }
                }
            }
            NodeCommand::Trickle { session, handle, room, candidates } => {
                self.outbox.reply(reply_to, corr_id, RpcResult::Accepted);
                if let Some(r) = self.rooms.get(&room) {
                    r.addr.do_send(crate::room::messages::Trickle { who: Who { session, handle }, candidates });
                }
            }
            NodeCommand::HandleInfo { session, handle, room } => {
                let Some(addr) = self.rooms.get(&room).map(|r| r.addr.clone()) else {
                    self.outbox.reply(reply_to, corr_id, RpcResult::Sync(serde_json::Value::Null));
                    return;
                };
                let outbox = self.outbox.clone();
                let floor = self.media.tuning.min_nack_queue();
                actix::spawn(async move {
                    let answer = match addr.send(crate::room::messages::Query(Who { session, handle })).await {
                        Ok(Some(answer)) => {
                            let mut info = serde_json::json!({"plugin_specific": answer.info.to_json()});
                            if let Some(pc) = answer.pc {
                                let (webrtc, sdps) = crate::media::stats::summary(&pc, floor).await;
                                info["webrtc"] = webrtc;
                                info["sdps"] = sdps;
                            }
                            if let Some((format, file)) = answer.capture {
                                info["capture"] = serde_json::json!({"format": format.name(), "file": file});
                            }
                            info
                        }
                        _ => serde_json::Value::Null,
                    };
                    outbox.reply(reply_to, corr_id, RpcResult::Sync(answer));
                });
            }
            NodeCommand::Capture { session, handle, room, start } => {
                let Some(addr) = self.rooms.get(&room).map(|r| r.addr.clone()) else {
                    self.outbox.reply(reply_to, corr_id, RpcResult::Sync(CaptureAnswer::NoHandle.to_value()));
                    return;
                };
                let outbox = self.outbox.clone();
                actix::spawn(async move {
                    let order = crate::room::messages::CaptureOrder { who: Who { session, handle }, start };
                    let answer = match addr.send(order).await {
                        Ok((answer, None)) => answer,
                        // A stop answers once the file has what was captured (a stuck disk:
                        // it answers anyway, the writer finishing on its own).
                        Ok((answer, Some(written))) => {
                            let _ = tokio::time::timeout(CAPTURE_CLOSE_TIMEOUT, written).await;
                            answer
                        }
                        Err(_) => CaptureAnswer::NoHandle,
                    };
                    outbox.reply(reply_to, corr_id, RpcResult::Sync(answer.to_value()));
                });
            }
            NodeCommand::PrepareCapture(spec) => {
                // Off the agent's thread: a slow filesystem holds up this answer alone.
                let (outbox, protected) = (self.outbox.clone(), self.media.protected_folders.clone());
                actix::spawn(async move {
                    let made =
                        tokio::task::spawn_blocking(move || crate::media::capture::prepare(&spec, &protected)).await;
                    let answer = match made {
                        Ok(Ok(())) => CaptureAnswer::Started,
                        Ok(Err(why)) => CaptureAnswer::CannotStart(why),
                        Err(e) => CaptureAnswer::CannotStart(e.to_string()),
                    };
                    outbox.reply(reply_to, corr_id, RpcResult::Sync(answer.to_value()));
                });
            }
            NodeCommand::Drain { deadline_secs } => {
                self.outbox.reply(reply_to, corr_id, RpcResult::Accepted);
                ctx.notify(Drain { deadline_secs });
            }
            NodeCommand::Loops => {
                let loops: Vec<serde_json::Value> = self
                    .workers
                    .served()
                    .into_iter()
                    .map(|(w, handles)| serde_json::json!({"id": w.0, "handles": handles}))
                    .collect();
                self.outbox.reply(reply_to, corr_id, RpcResult::Sync(loops.into()));
            }
            NodeCommand::Tune(knob) => {
                tracing::info!(node = %self.node, ?knob, "media knob turned");
                self.media.tuning.turn(knob);
                self.tunes += 1;
                self.outbox.reply(reply_to, corr_id, RpcResult::Accepted);
            }
            NodeCommand::HandleGone { session, handle, room, reason } => {
                self.outbox.reply(reply_to, corr_id, RpcResult::Accepted);
                let m = Gone { who: Who { session, handle }, reason };
                if self.rooms.contains_key(&room) || self.loading.contains_key(&room) {
                    self.to_room(room, Pending::Gone(m), ctx);
                }
            }
        }
    }

    /// `create`, `exists`, `list` and requests that failed validation: answered from the store.
    fn roomless(&mut self, reply_to: String, corr_id: u64, req: SyncRequest) {
        let b = self.backends.clone();
        let outbox = self.outbox.clone();
        let max_rooms = self.max_rooms;
        let job = async move {
            let data = match req {
                SyncRequest::Create { room, config, string_ids } => {
                    create_room(&b, room, &config, string_ids, max_rooms).await
                }
                SyncRequest::Exists { room } => match b.store.room(room.clone()).await {
                    Ok(r) => Event::Exists { room, exists: r.is_some() },
                    Err(e) => store_failure(e),
                },
                SyncRequest::List { private } => match b.store.list_rooms().await {
                    Ok(rooms) => Event::List(
                        rooms
                            .into_iter()
                            .filter(|r| private || !r.config.is_private)
                            .map(|r| (r.config, r.participants))
                            .collect(),
                    ),
                    Err(e) => store_failure(e),
                },
                SyncRequest::Invalid(e) => Event::Error(e),
                other => Event::Error(VideoRoomError::new(
                    VideoRoomCode::UnknownError,
                    format!("request {other:?} needs a room"),
                )),
            };
            outbox.reply(reply_to, corr_id, RpcResult::Sync(data.to_json()));
        };
        self.outbox.send(Write::Run(Box::pin(job)));
    }

    fn to_room(&mut self, room: RoomId, p: Pending, ctx: &mut Context<Self>) {
        if let Some(addr) = self.rooms.get(&room).map(|r| r.addr.clone()) {
            if addr.connected() {
                return self.dispatch(room, addr, p, ctx);
            }
            self.forget(&room);
        }
        let queue = self.loading.entry(room.clone()).or_default();
        queue.push(p);
        if queue.len() > 1 {
            return; // Already loading.
        }
        let store = self.backends.store.clone();
        let me = ctx.address();
        let node = self.node.clone();
        // Ownership is checked on load: a node only serves rooms placed on it.
        let job = async move {
            // Both in one round trip (pipelined on the store's connection).
            let both =
                futures_util::join!(store.room(room.clone()), store.place_room(room.clone(), &node, ROOM_LEASE_MS));
            let load = match both {
                (Ok(None), _) => Load::Missing,
                (Ok(Some(rec)), Ok(owner)) if owner == node => Load::Owned(rec),
                (Ok(Some(_)), Ok(_)) => Load::OwnedElsewhere,
                (Err(e), _) | (_, Err(e)) => {
                    tracing::warn!(room = %room, error = %e, "room load failed");
                    Load::Missing
                }
            };
            me.do_send(Loaded(room, load));
        };
        self.outbox.send(Write::Run(Box::pin(job)));
    }

    fn dispatch(&mut self, room: RoomId, addr: Addr<RoomActor>, p: Pending, ctx: &mut Context<Self>) {
        match p {
            Pending::Sync { reply_to, corr_id, req } => {
                let outbox = self.outbox.clone();
                let fut = addr.send(Sync(req));
                ctx.spawn(fut.into_actor(self).map(move |res, act, ctx| {
                    let data = match res {
                        Ok(a) => {
                            if a.room_closed {
                                if let Some(serial) = act.rooms.get(&room).map(|r| r.serial) {
                                    ctx.notify(Closed(room, serial));
                                }
                            }
                            a.data.to_json()
                        }
                        Err(_) => vr::error(&VideoRoomError::no_such_room(room)),
                    };
                    outbox.reply(reply_to, corr_id, RpcResult::Sync(data));
                }));
            }
            Pending::Async { reply_to, corr_id, msg } => {
                self.outbox.reply(reply_to, corr_id, RpcResult::Accepted);
                addr.do_send(msg)
            }
            Pending::Gone(m) => addr.do_send(m),
        }
    }

    /// The room belongs to another node: the gateway looks the owner up again.
    fn redirect(&self, p: Pending) {
        match p {
            Pending::Sync { reply_to, corr_id, .. } | Pending::Async { reply_to, corr_id, .. } => {
                self.outbox.reply(reply_to, corr_id, RpcResult::WrongNode)
            }
            Pending::Gone(_) => {}
        }
    }

    fn fail(&self, room: RoomId, p: Pending) {
        let e = VideoRoomError::no_such_room(room);
        match p {
            Pending::Sync { reply_to, corr_id, .. } => {
                self.outbox.reply(reply_to, corr_id, RpcResult::Sync(vr::error(&e)))
            }
            Pending::Async { reply_to, corr_id, msg: m } => {
                self.outbox.reply(reply_to, corr_id, RpcResult::Accepted);
                // The handle was routed to a room that does not exist: it is in no room.
                self.outbox.send(Write::Bind(m.who.session, m.who.handle, None));
                let e = if m.name.is_join() {
                    e
                } else {
                    VideoRoomError::new(VideoRoomCode::JoinFirst, "Invalid request on unconfigured participant")
                };
                self.error_event(m.who, m.transaction, &e)
            }
            Pending::Gone(_) => {}
        }
    }
}

async fn create_room(
    b: &Backends,
    room: Option<RoomId>,
    config: &serde_json::Map<String, serde_json::Value>,
    string_ids: bool,
    max_rooms: usize,
) -> Event {
    if config.get("permanent").and_then(serde_json::Value::as_bool) == Some(true) {
        return Event::Error(VideoRoomError::new(
            VideoRoomCode::UnknownError,
            "No configuration file, can't create permanent room",
        ));
    }
    // A made-up id is retried on the (unlikely) collision, like Janus's loop.
    for _ in 0..8 {
        // A string id under `string_ids`, as the request's parser decided.
        let id = room.clone().unwrap_or_else(|| RoomId::random_of(string_ids));
        let cfg = match RoomConfig::from_create(config, id.clone()) {
            Ok(c) => c,
            Err(e) => return Event::Error(e),
        };
        match b.store.create_room(cfg, max_rooms).await {
            Ok(()) => {
                tracing::info!(room = %id, "room created");
                return Event::Created { room: id, permanent: false };
            }
            Err(StoreError::Conflict) if room.is_none() => continue,
            Err(StoreError::Conflict) => {
                return Event::Error(VideoRoomError::new(
                    VideoRoomCode::RoomExists,
                    format!("Room {id} already exists"),
                ))
            }
            Err(StoreError::Limit) => {
                return Event::Error(VideoRoomError::new(
                    VideoRoomCode::UnknownError,
                    format!("Too many rooms (limit {max_rooms})"),
                ))
            }
            Err(e) => return store_failure(e),
        }
    }
    Event::Error(VideoRoomError::new(VideoRoomCode::UnknownError, "Could not allocate a room id"))
}

fn store_failure(e: StoreError) -> Event {
    Event::Error(VideoRoomError::new(VideoRoomCode::UnknownError, format!("State store unavailable: {e}")))
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

impl StreamHandler<Bytes> for NodeAgent {
    fn handle(&mut self, payload: Bytes, ctx: &mut Context<Self>) {
        match decode_rpc(&payload) {
            Ok(env) => self.on_command(env.reply_to, env.corr_id, env.cmd, ctx),
            Err(e) => tracing::warn!(node = %self.node, error = %e, "undecodable RPC dropped"),
        }
    }

    fn finished(&mut self, _: &mut Context<Self>) {
        tracing::error!(node = %self.node, "RPC subscription ended");
    }
}

impl Handler<Loaded> for NodeAgent {
    type Result = ();

    fn handle(&mut self, Loaded(room, load): Loaded, ctx: &mut Context<Self>) {
        let pending = self.loading.remove(&room).unwrap_or_default();
        match load {
            Load::Owned(rec) => {
                self.serial += 1;
                let actor = RoomActor::new(
                    RoomState::new(rec.config),
                    self.node.clone(),
                    self.outbox.clone(),
                    self.backends.store.clone(),
                    ctx.address(),
                    self.serial,
                    self.media.clone(),
                );
                let (worker, arbiter) = self.workers.place();
                tracing::debug!(room = %room, node = %self.node, worker = %worker, "room placed");
                let actor = actor.placed_on(worker);
                let addr = RoomActor::start_in_arbiter(arbiter, move |_| actor);
                self.rooms.insert(room.clone(), Placed { addr: addr.clone(), serial: self.serial, worker });
                self.count_load();
                for p in pending {
                    self.dispatch(room.clone(), addr.clone(), p, ctx);
                }
            }
            Load::Missing => {
                for p in pending {
                    self.fail(room.clone(), p);
                }
            }
            Load::OwnedElsewhere => {
                tracing::info!(room = %room, node = %self.node, "room is owned by another node; redirecting");
                for p in pending {
                    self.redirect(p);
                }
            }
        }
    }
}

impl Handler<Closed> for NodeAgent {
    type Result = ();

    fn handle(&mut self, Closed(room, serial): Closed, ctx: &mut Context<Self>) {
        if self.rooms.get(&room).is_some_and(|r| r.serial == serial) {
            self.forget(&room);
            self.check_drain(ctx);
        }
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
