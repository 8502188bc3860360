//! `RoomActor`: one per active room, the only owner of that room's state. It is a thin shell
//! over [`state::RoomState`]: it feeds messages in and sends what comes out through the
//! node's [`Outbox`](crate::outbox::Outbox).
//!
//! Messages ([`messages`]): `Sync` (create/edit/destroy/... answers), `Async` (join, leave, ...:
//! results as events), `Gone` (hangup, detach, session end).

mod capture;
mod forwarding;
pub mod messages;
mod peers;
mod recording;
mod remote;
pub mod state;

use crate::agent::{Closed, NodeAgent, Occupancy};
use crate::media::peer::MediaSettings;
use crate::media::publisher::PublisherPeer;
use crate::media::subscriber::SubscriberPeer;
use crate::outbox::{Outbox, Write};
use crate::workers::Occupied;
use actix::prelude::*;
use messages::{Async, CaptureOrder, Flush, Gone, Query, QueryAnswer, Sync, SyncAnswer};
use shared::ids::NodeId;
use shared::janus::reply::Event;
use shared::janus::request::Candidate;
use shared::janus::videoroom::{self as vr, SyncRequest};
use shared::store::{Store, ROOM_LEASE_MS, ROOM_LEASE_RENEW_MS};
use state::{Membership, Outcome, RoomState, Who};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct RoomActor {
    state: RoomState,
    node: NodeId,
    outbox: Outbox,
    store: Arc<dyn Store>,
    /// Told how many participants the room has (the node's load, and drains) and when this
    /// actor stops, so it forgets it.
    agent: Addr<NodeAgent>,
    /// Tells this actor apart from a later one for the same room (in `Closed`).
    serial: u64,
    /// When the placement lease was last confirmed.
    lease_confirmed: Instant,
    /// Where this node's PeerConnections listen.
    media: MediaSettings,
    /// Publishers' PeerConnections.
    peers: HashMap<Who, PublisherPeer>,
    /// Subscribers' PeerConnections.
    subscribers: HashMap<Who, Arc<SubscriberPeer>>,
    /// Each publisher's running RTP forwarders, by stream id (dropping one stops it).
    forwarders: HashMap<Who, Vec<(u32, crate::media::forwarder::Running)>>,
    /// Each remotized publisher's streams on their way to other servers, by remote id.
    remotes: HashMap<Who, Vec<(String, Vec<crate::media::forwarder::Running>)>>,
    /// Each recorded publisher's recorders (dropping them closes the files).
    recordings: HashMap<Who, Vec<crate::media::forwarder::Running>>,
    /// Candidates trickled before their PeerConnection existed (Janus queues early trickles).
    early_candidates: HashMap<Who, Vec<Candidate>>,
    /// The remote candidates each handle's PeerConnection took, within its limit.
    remote_candidates: HashMap<Who, crate::media::candidates::RemoteCandidates>,
    /// Each handle's packet capture switch, and its capture while one runs.
    captures: HashMap<Who, capture::HandleCapture>,
    /// The participant count last written to the store and told to the agent.
    announced: Occupied,
    span: tracing::Span,
}

/// The outcome of one lease renewal.
#[derive(Message)]
#[rtype(result = "()")]
struct Renewed(Result<bool, String>);

impl RoomActor {
    pub fn new(
        state: RoomState,
        node: NodeId,
        outbox: Outbox,
        store: Arc<dyn Store>,
        agent: Addr<NodeAgent>,
        serial: u64,
        media: MediaSettings,
    ) -> Self {
        let span =
            tracing::info_span!("room", room = %state.config().room, node = %node, worker = tracing::field::Empty);
        Self {
            announced: state.occupied(),
            state,
            node,
            outbox,
            store,
            agent,
            serial,
            lease_confirmed: Instant::now(),
            media,
            peers: HashMap::new(),
            subscribers: HashMap::new(),
            forwarders: HashMap::new(),
            remotes: HashMap::new(),
            recordings: HashMap::new(),
            early_candidates: HashMap::new(),
            remote_candidates: HashMap::new(),
            captures: HashMap::new(),
            span,
        }
    }

    /// Names the media worker the room runs on in its span (placement comes after building).
    pub fn placed_on(self, worker: crate::workers::WorkerId) -> Self {
        self.span.record("worker", worker.0);
        self
    }

    /// Leaves the room to its new owner: every member's handle is hung up and unbound so its
    /// client can join again (the room now lives elsewhere), then the actor stops.
    fn stand_down(&mut self, why: &str, ctx: &mut Context<Self>) {
        let _g = self.span.clone().entered();
        tracing::warn!(reason = why, "standing down: this node no longer owns the room");
        for who in self.state.members() {
            // Only handles still bound here are told: a gateway may already have done it.
            let (store, node, outbox) = (self.store.clone(), self.node.clone(), self.outbox.clone());
            let reason = why.to_owned();
            let job = async move {
                if let Ok(true) = store.unbind_handle_from(who.session, who.handle, &node).await {
                    let ev = Event::Hangup { session_id: who.session, sender: who.handle, reason };
                    outbox.send(Write::Event(who.session, ev.to_bytes().into()));
                }
            };
            self.outbox.send(Write::Run(Box::pin(job)));
        }
        ctx.stop();
    }

    /// Sends a transition's events and membership changes, in that transition's order:
    /// unbindings first, so a client that reacts to an error finds its handle free again.
    /// A handle that left stays bound so its later requests reach this room's answers ("Not in
    /// a room"); only a destroyed room unbinds (`unbind_left`).
    fn publish(&mut self, mut out: Outcome, unbind_left: bool, ctx: &mut Context<Self>) {
        let media = std::mem::take(&mut out.media);
        self.run_media(media, ctx);
        let room = &self.state.config().room.clone();
        // A remote publisher has no handle to bind or to tell anything.
        for m in out.membership.into_iter().filter(|m| !m.who().is_remote()) {
            match m {
                // The gateway bound the handle here before it sent the join.
                Membership::Joined(_) => {}
                Membership::Left(w) if unbind_left => self.outbox.send(Write::Bind(w.session, w.handle, None)),
                Membership::Rejected(w) => self.outbox.send(Write::Bind(w.session, w.handle, None)),
                Membership::Left(_) => {}
            }
        }
        for n in out.notices.into_iter().filter(|n| !n.to.is_remote()) {
            self.outbox.plugin_event_with_jsep(n.to.session, n.to.handle, n.transaction, n.data.to_json(), n.jsep);
        }
        let now = self.state.occupied();
        if now != self.announced {
            if now.participants != self.announced.participants {
                self.outbox.send(Write::Participants(room.clone(), now.participants));
            }
            self.announced = now;
            self.agent.do_send(Occupancy(room.clone(), now));
        }
    }
}

impl Actor for RoomActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let _g = self.span.clone().entered();
        tracing::debug!("room active");
        // Renew the placement lease; a node that cannot prove it still owns the room for a
        // whole lease stops serving it (self-fencing), so two nodes never serve one room long.
        ctx.run_interval(Duration::from_millis(ROOM_LEASE_RENEW_MS), |act, ctx| {
            let store = act.store.clone();
            let room = act.state.config().room.clone();
            let node = act.node.clone();
            let me = ctx.address();
            actix::spawn(async move {
                let r = store.renew_room(room.clone(), &node, ROOM_LEASE_MS).await.map_err(|e| e.to_string());
                me.do_send(Renewed(r));
            });
        });
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        for (_, peer) in self.peers.drain() {
            actix::spawn(async move { peer.close().await });
        }
        for (_, peer) in self.subscribers.drain() {
            actix::spawn(async move { peer.close().await });
        }
        self.agent.do_send(Closed(self.state.config().room.clone(), self.serial));
    }
}

impl Handler<Flush> for RoomActor {
    type Result = MessageResult<Flush>;

    fn handle(&mut self, _: Flush, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.state.handles())
    }
}

impl Handler<Renewed> for RoomActor {
    type Result = ();

    fn handle(&mut self, Renewed(r): Renewed, ctx: &mut Context<Self>) {
        crate::metrics::METRICS.lease(r.as_ref().ok().copied());
        match r {
            Ok(true) => self.lease_confirmed = Instant::now(),
            Ok(false) => self.stand_down("Room moved to another media node", ctx),
            Err(e) => {
                if self.lease_confirmed.elapsed() >= Duration::from_millis(ROOM_LEASE_MS) {
                    self.stand_down("Media node lost its connection to the cluster", ctx);
                } else {
                    let _g = self.span.clone().entered();
                    tracing::warn!(error = %e, "lease renewal failed; retrying");
                }
            }
        }
    }
}

impl Handler<Sync> for RoomActor {
    type Result = MessageResult<Sync>;

    fn handle(&mut self, Sync(req): Sync, ctx: &mut Context<Self>) -> Self::Result {
        let _g = self.span.clone().entered();
        let answer = |r: Result<vr::VideoRoomEvent, shared::janus::errors::VideoRoomError>| SyncAnswer {
            data: r.unwrap_or_else(vr::VideoRoomEvent::Error),
            room_closed: false,
        };
        let result = match req {
            SyncRequest::Edit(e) => {
                let r = self.state.edit(&e);
                if r.is_ok() {
                    self.outbox.send(Write::UpdateRoom(self.state.config().clone()));
                }
                answer(r)
            }
            SyncRequest::ListParticipants { .. } => answer(Ok(self.state.list_participants())),
            SyncRequest::RtpForward(f) => answer(self.rtp_forward(&f)),
            SyncRequest::StopRtpForward { publisher_id, stream_id, secret, .. } => {
                match self.state.stop_forward(secret.as_deref(), publisher_id, stream_id) {
                    Ok((data, who)) => {
                        self.stop_forwarder(who, stream_id);
                        answer(Ok(data))
                    }
                    Err(e) => answer(Err(e)),
                }
            }
            SyncRequest::ListForwarders { secret, .. } => answer(self.state.list_forwarders(secret.as_deref())),
            SyncRequest::AddRemotePublisher(r) => match self.add_remote_publisher(&r) {
                Ok((data, out)) => {
                    self.publish(out, false, ctx);
                    answer(Ok(data))
                }
                Err(e) => answer(Err(e)),
            },
            SyncRequest::UpdateRemotePublisher(r) => match self.update_remote_publisher(&r) {
                Ok((data, out)) => {
                    self.publish(out, false, ctx);
                    answer(Ok(data))
                }
                Err(e) => answer(Err(e)),
            },
            SyncRequest::RemoveRemotePublisher { id, secret, .. } => {
                match self.state.remove_remote_publisher(secret.as_deref(), id) {
                    Ok((data, out)) => {
                        self.publish(out, false, ctx);
                        answer(Ok(data))
                    }
                    Err(e) => answer(Err(e)),
                }
            }
            SyncRequest::PublishRemotely(p) => answer(self.publish_remotely(&p)),
            SyncRequest::UnpublishRemotely(r) => answer(self.unpublish_remotely(&r)),
            SyncRequest::ListRemotes(r) => answer(self.state.list_remotes(&r)),
            SyncRequest::EnableRecording { secret, record, .. } => {
                match self.state.enable_recording(secret.as_deref(), record) {
                    Ok((data, out)) => {
                        self.outbox.send(Write::UpdateRoom(self.state.config().clone()));
                        self.publish(out, false, ctx);
                        answer(Ok(data))
                    }
                    Err(e) => answer(Err(e)),
                }
            }
            SyncRequest::Allowed { secret, action, allowed, .. } => {
                let r = self.state.allowed(secret.as_deref(), action, allowed.as_deref());
                if r.is_ok() {
                    self.outbox.send(Write::UpdateRoom(self.state.config().clone()));
                }
                answer(r)
            }
            SyncRequest::Moderate { secret, id, mid, mute, .. } => {
                match self.state.moderate(secret.as_deref(), id, &mid, mute) {
                    Ok((data, out)) => {
                        self.publish(out, false, ctx);
                        answer(Ok(data))
                    }
                    Err(e) => answer(Err(e)),
                }
            }
            SyncRequest::Kick { secret, id, .. } => match self.state.kick(secret.as_deref(), id) {
                Ok((data, out)) => {
                    self.publish(out, false, ctx);
                    answer(Ok(data))
                }
                Err(e) => answer(Err(e)),
            },
            SyncRequest::Destroy { secret, permanent, .. } => match self.state.destroy(secret.as_deref(), permanent) {
                Ok((data, out)) => {
                    self.publish(out, true, ctx);
                    self.outbox.send(Write::DeleteRoom(self.state.config().room.clone()));
                    tracing::info!("room destroyed");
                    actix::ActorContext::stop(ctx);
                    SyncAnswer { data, room_closed: true }
                }
                Err(e) => answer(Err(e)),
            },
            // The agent answers room-less requests itself; reaching here is a routing bug.
            other => answer(Err(shared::janus::errors::VideoRoomError::new(
                shared::janus::errors::VideoRoomCode::UnknownError,
                format!("request {other:?} misrouted to a room"),
            ))),
        };
        MessageResult(result)
    }
}

impl Handler<Async> for RoomActor {
    type Result = ();

    fn handle(&mut self, m: Async, ctx: &mut Context<Self>) {
        let _g = self.span.clone().entered();
        if let Some((reply_to, corr_id)) = m.ack {
            self.outbox.acknowledge(reply_to, corr_id);
        }
        let out = self.state.on_async(m.who, &m.transaction, m.name, m.parsed, m.jsep.as_ref());
        // Before the transition's media: a PeerConnection it builds is captured from its start.
        if let Some(spec) = m.capture {
            self.capture_joined(m.who, *spec);
        }
        self.publish(out, false, ctx);
    }
}

impl Handler<Gone> for RoomActor {
    type Result = ();

    fn handle(&mut self, m: Gone, ctx: &mut Context<Self>) {
        let _g = self.span.clone().entered();
        if m.reason == shared::wire::GoneReason::Detached {
            self.forget_capture(m.who);
        }
        let out = self.state.on_gone(m.who, m.reason);
        self.publish(out, false, ctx);
    }
}

impl Handler<Query> for RoomActor {
    type Result = Option<QueryAnswer>;

    fn handle(&mut self, Query(who): Query, _: &mut Context<Self>) -> Self::Result {
        let mut info = self.state.query(who)?;
        let pc = match self.subscribers.get(&who) {
            Some(s) => {
                if let vr::HandleInfo::Subscriber { paused, .. } = &mut info {
                    *paused = Some(s.paused());
                }
                Some(s.pc().clone())
            }
            None => self.peers.get(&who).and_then(|p| p.pc().cloned()),
        };
        Some(QueryAnswer { info, pc, capture: self.capture_info(who) })
    }
}

impl Handler<CaptureOrder> for RoomActor {
    type Result = MessageResult<CaptureOrder>;

    fn handle(&mut self, m: CaptureOrder, _: &mut Context<Self>) -> Self::Result {
        let _g = self.span.clone().entered();
        MessageResult(self.capture(m.who, m.start))
    }
}
