//! `RoomActor`: one per active room, the only owner of that room's state. It is a thin shell
//! over [`state::RoomState`]: it feeds messages in and sends what comes out through the
//! node's [`Outbox`](crate::outbox::Outbox).
//!
//! Messages ([`messages`]): `Sync` (create/edit/destroy/... answers), `Async` (join, leave, ...:
//! results as events), `Gone` (hangup, detach, session end).

mod capture;
mod forwarding;
pub mod messages;
mod recording;
mod remote;
pub mod state;

use crate::agent::{Closed, NodeAgent, Occupancy};
use crate::media::extensions::ExtensionSettings;
use crate::media::peer::{MediaSettings, PeerEvent, StreamAt};
use crate::media::publisher::{PublishOptions, PublisherPeer};
use crate::media::sdp;
use crate::media::simulcast::LayerTarget;
use crate::media::subscriber::{DataSource, Negotiable, Source, SubscriberPeer};
use crate::media::{MediaError, MediaStep};
use crate::outbox::{Outbox, Write};
use crate::workers::Occupied;
use actix::prelude::*;
use messages::{
    Answered, Async, CaptureOrder, Flush, Gone, Offered, PeerNotice, Query, QueryAnswer, Renegotiated, Started, Sync,
    SyncAnswer, Trickle,
};
use shared::ids::{NodeId, ParticipantId};
use shared::janus::reply::Event;
use shared::janus::request::Candidate;
use shared::janus::request::Jsep;
use shared::janus::videoroom::{self as vr, SyncRequest};
use shared::media::MediaKind;
use shared::store::{Store, ROOM_LEASE_MS, ROOM_LEASE_RENEW_MS};
use state::{MediaAction, Membership, Outcome, RoomState, Simulcast, SubStream, Who};
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

    /// The publishers' feeds for these subscription streams, and the data sources of a data
    /// m-line among them; `None` if an audio or video stream's publisher is not publishing.
    /// What feeds `who`'s subscription `streams`.
    fn sources_for(&self, who: Who, streams: &[SubStream]) -> Option<(Vec<Source>, Vec<DataSource>)> {
        let data = streams
            .iter()
            .filter(|st| st.kind == MediaKind::Data)
            .flat_map(|st| self.data_sources(&st.sources))
            .collect();
        let media = streams
            .iter()
            .filter(|st| st.kind.is_rtp())
            .map(|st| {
                let publisher = self.peers.get(&st.feed_who)?;
                let fmtp = self
                    .state
                    .publication(st.feed_who)
                    .and_then(|p| p.streams.iter().find(|s| s.mid == st.feed_mid))
                    .and_then(|s| s.fmtp.clone());
                Some(Source {
                    mindex: st.mindex,
                    kind: st.kind,
                    codec: st.codec.clone(),
                    fmtp,
                    origin: publisher.origin(st.feed_mid.as_str())?,
                    target: st.simulcast.as_ref().map(layer_target).unwrap_or_default(),
                    delay: st.delay.bytes(),
                    msid: self.state.msid(who, st),
                })
            })
            .collect::<Option<Vec<_>>>()?;
        Some((media, data))
    }

    /// These publishers' data feeds (those still publishing).
    fn data_sources(&self, sources: &[(ParticipantId, Who)]) -> Vec<DataSource> {
        sources.iter().filter_map(|(id, who)| Some((id.clone(), self.peers.get(who)?.data_origin()))).collect()
    }

    /// Starts the PeerConnection work a transition asked for.
    fn run_media(&mut self, actions: Vec<MediaAction>, ctx: &mut Context<Self>) {
        for a in actions {
            match a {
                MediaAction::Publish { who, transaction, offer, rid_order, talk, codecs } => {
                    let settings = self.media.clone();
                    let me = ctx.address();
                    let config = self.state.config();
                    let options = PublishOptions {
                        rid_order,
                        fir_freq: (config.fir_freq > 0).then(|| Duration::from_secs(config.fir_freq)),
                        bitrate: u32::try_from(config.bitrate).unwrap_or(u32::MAX),
                        extensions: extension_settings(config),
                        video_svc: config.video_svc,
                        talk,
                        audio_codecs: config.audiocodec.clone(),
                        video_codecs: config.videocodec.clone(),
                        preferred_audio: codecs.0,
                        preferred_video: codecs.1,
                    };
                    let capture = self.capture_follow(who);
                    actix::spawn(async move {
                        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
                        let result = PublisherPeer::answer(&settings, offer, options, tx, &capture).await;
                        me.do_send(Answered { who, transaction, result });
                        // A task of its own: this one's state (the whole negotiation's, ~20 KiB)
                        // ends here instead of living as long as the peer.
                        actix::spawn(pump_events(me, who, rx));
                    });
                }
                MediaAction::Subscribe { who, transaction, streams } => {
                    let Some((sources, data)) = self.sources_for(who, &streams) else {
                        let e = Err(MediaError::Gone("a feed is not publishing"));
                        ctx.notify(Offered { who, transaction, result: e });
                        continue;
                    };
                    let settings = self.media.clone();
                    let config = self.state.config();
                    let codecs = config.audiocodec.iter().chain(&config.videocodec).cloned().collect();
                    let negotiable = Negotiable { extensions: extension_settings(config), codecs };
                    let me = ctx.address();
                    let capture = self.capture_follow(who);
                    actix::spawn(async move {
                        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
                        let result = SubscriberPeer::offer(&settings, sources, data, negotiable, tx, &capture).await;
                        me.do_send(Offered { who, transaction, result });
                        actix::spawn(pump_events(me, who, rx));
                    });
                }
                MediaAction::Start { who, transaction, answer } => {
                    let Some(peer) = self.subscribers.get(&who).cloned() else {
                        let result = Err(MediaError::Gone("no subscription to start"));
                        ctx.notify(Started { who, transaction, result });
                        continue;
                    };
                    let me = ctx.address();
                    actix::spawn(async move {
                        let result = peer.start(answer).await;
                        me.do_send(Started { who, transaction, result });
                    });
                }
                MediaAction::Renegotiate { who, transaction, inactive, added, restart } => {
                    let Some(peer) = self.subscribers.get(&who).cloned() else { continue };
                    let Some((sources, data)) = self.sources_for(who, &added) else {
                        let result = Err(MediaError::Gone("a feed is not publishing"));
                        ctx.notify(Renegotiated { who, transaction, result });
                        continue;
                    };
                    let me = ctx.address();
                    actix::spawn(async move {
                        let result = peer.renegotiate(&inactive, sources, data, restart).await;
                        me.do_send(Renegotiated { who, transaction, result });
                    });
                }
                MediaAction::Switch { who, sources } => {
                    let Some(sub) = self.subscribers.get(&who) else { continue };
                    for s in sources {
                        let Some(origin) = self.peers.get(&s.feed_who).and_then(|p| p.origin(s.feed_mid.as_str()))
                        else {
                            continue;
                        };
                        // The layers first: the new source starts on the layer they call for.
                        sub.set_target(s.mindex, s.simulcast.as_ref().map(layer_target).unwrap_or_default());
                        sub.switch(s.mindex, origin);
                    }
                }
                MediaAction::Bitrate { who, bitrate } => {
                    if let Some(publisher) = self.peers.get(&who) {
                        publisher.set_bitrate(u32::try_from(bitrate).unwrap_or(u32::MAX));
                    }
                }
                MediaAction::Keyframe { who } => {
                    if let Some(publisher) = self.peers.get(&who) {
                        publisher.request_keyframe();
                    }
                }
                MediaAction::Sending { who, mid, send } => {
                    if let Some(publisher) = self.peers.get(&who) {
                        publisher.set_sending(mid.as_str(), send);
                    }
                }
                MediaAction::Mute { who, mid, muted } => {
                    if let Some(publisher) = self.peers.get(&who) {
                        publisher.set_muted(mid.as_str(), muted);
                    }
                }
                MediaAction::Send { who, streams } => {
                    if let Some(sub) = self.subscribers.get(&who) {
                        for (mindex, send) in streams {
                            sub.set_send(mindex, send);
                        }
                    }
                }
                MediaAction::AddData { who, sources } => {
                    let Some(sub) = self.subscribers.get(&who).cloned() else { continue };
                    let data = self.data_sources(&sources);
                    actix::spawn(async move {
                        if let Err(e) = sub.add_data(data).await {
                            tracing::warn!(error = %e, "cannot relay more data channels");
                        }
                    });
                }
                MediaAction::RemoveData { who, feeds } => {
                    if let Some(sub) = self.subscribers.get(&who) {
                        sub.remove_data(&feeds);
                    }
                }
                MediaAction::Layers { who, streams } => {
                    if let Some(sub) = self.subscribers.get(&who) {
                        for (mindex, sc) in streams {
                            sub.set_target(mindex, layer_target(&sc));
                        }
                    }
                }
                MediaAction::Delays { who, streams } => {
                    if let Some(sub) = self.subscribers.get(&who) {
                        for (mindex, delay) in streams {
                            sub.set_delay(mindex, delay);
                        }
                    }
                }
                MediaAction::PublisherDelay { who, mid, delay } => {
                    if let Some(publisher) = self.peers.get(&who) {
                        publisher.set_delay(mid.as_str(), delay);
                    }
                }
                MediaAction::Pause { who, paused } => {
                    if let Some(peer) = self.subscribers.get(&who) {
                        peer.set_paused(paused);
                    }
                }
                MediaAction::StopForwarders { who } => {
                    self.stop_forwarders(who);
                    self.remotes.remove(&who);
                }
                MediaAction::Record { who, recording } => {
                    self.start_recording(who, recording);
                    // Janus asks for a keyframe when a recording starts.
                    if let Some(p) = self.peers.get(&who) {
                        p.request_keyframe();
                    }
                }
                MediaAction::StopRecording { who } => self.stop_recording(who),
                MediaAction::Close { who } => {
                    self.early_candidates.remove(&who);
                    if let Some(peer) = self.subscribers.remove(&who) {
                        actix::spawn(async move { peer.close().await });
                    }
                    if let Some(peer) = self.peers.remove(&who) {
                        // Closing it ourselves: Janus tells the handle "Close PC".
                        let ev =
                            Event::Hangup { session_id: who.session, sender: who.handle, reason: "Close PC".into() };
                        self.outbox.core_event(who.session, ev);
                        actix::spawn(async move { peer.close().await });
                    }
                }
            }
        }
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

/// A simulcast subscription's targets as its forwarder takes them.
fn layer_target(sc: &Simulcast) -> LayerTarget {
    let default = LayerTarget::default();
    LayerTarget {
        substream: sc.substream_target,
        temporal: sc.temporal_target,
        fallback: sc.fallback.map_or(default.fallback, Duration::from_micros),
    }
}

/// The header extensions a room negotiates on both legs.
fn extension_settings(config: &vr::RoomConfig) -> ExtensionSettings {
    ExtensionSettings {
        audio_level: config.audiolevel_ext,
        video_orientation: config.videoorient_ext,
        playout_delay: config.playoutdelay_ext,
        transport_cc: config.transport_wide_cc_ext,
    }
}

/// A peer's events go to its room for as long as the peer lives.
async fn pump_events(me: Addr<RoomActor>, who: Who, mut events: tokio::sync::mpsc::UnboundedReceiver<PeerEvent>) {
    while let Some(event) = events.recv().await {
        me.do_send(PeerNotice { who, event });
    }
}

impl Handler<Answered> for RoomActor {
    type Result = ();

    fn handle(&mut self, m: Answered, ctx: &mut Context<Self>) {
        let _g = self.span.clone().entered();
        let out = match m.result {
            Ok((peer, answer_sdp)) => {
                let mut streams = sdp::streams(&answer_sdp);
                let svc = self.state.config().video_svc;
                for s in streams.iter_mut().filter(|s| s.kind == MediaKind::Video) {
                    s.svc = svc && s.codec.as_deref() == Some("vp9");
                }
                if let Some(early) = self.early_candidates.remove(&m.who) {
                    let peer_candidates = early;
                    let pc = peer.clone_handle();
                    actix::spawn(async move { pc.add_candidates(peer_candidates).await });
                }
                self.peers.insert(m.who, peer);
                let answer = Jsep::answer(answer_sdp);
                let out = self.state.published(m.who, &m.transaction, streams, answer);
                // After the publication is recorded: remotizing reads its streams.
                self.resume_remotes(m.who);
                out
            }
            Err(e) => {
                tracing::warn!(session = %m.who.session, handle = %m.who.handle, error = %e, "publish failed");
                self.state.publish_failed(m.who, &m.transaction, e.in_step(MediaStep::Publish))
            }
        };
        self.publish(out, false, ctx);
    }
}

impl Handler<PeerNotice> for RoomActor {
    type Result = ();

    fn handle(&mut self, m: PeerNotice, ctx: &mut Context<Self>) {
        let _g = self.span.clone().entered();
        let (session, handle) = (m.who.session, m.who.handle);
        match m.event {
            PeerEvent::Connected => {
                self.outbox.core_event(session, Event::Webrtcup { session_id: session, sender: handle });
            }
            PeerEvent::Receiving { mid, kind, receiving, substream } => {
                let ev = Event::Media { session_id: session, sender: handle, mid, kind, receiving, substream };
                self.outbox.core_event(session, ev);
            }
            PeerEvent::Talking { mid, talking, average } => {
                let out = self.state.talking(m.who, &mid, talking, average);
                self.publish(out, false, ctx);
            }
            PeerEvent::SlowLink { at, kind, lost } => {
                let uplink = matches!(at, StreamAt::Subscribed(_));
                let Some((mid, out)) = self.state.slow_link(m.who, &at) else { return };
                // The plugin hears of it first and tells its handle, then the core (Janus's order).
                self.publish(out, false, ctx);
                let ev = Event::Slowlink { session_id: session, sender: handle, mid, media: kind, uplink, lost };
                self.outbox.core_event(session, ev);
            }
            PeerEvent::Layer { mindex, substream, temporal }
            | PeerEvent::SvcLayer { mindex, spatial: substream, temporal } => {
                let out = self.state.layer_changed(m.who, mindex, substream, temporal);
                self.publish(out, false, ctx);
            }
            PeerEvent::Down(reason) => {
                // Gone on the peer's side (a PeerConnection we closed is no longer in `peers`
                // and was reported then): tell the client once, and the room.
                if self.peers.remove(&m.who).is_none() {
                    return;
                }
                self.outbox.core_event(session, Event::Hangup { session_id: session, sender: handle, reason });
                let out = self.state.unpublished(m.who, None);
                self.publish(out, false, ctx);
            }
        }
    }
}

impl Handler<Offered> for RoomActor {
    type Result = ();

    fn handle(&mut self, m: Offered, ctx: &mut Context<Self>) {
        let _g = self.span.clone().entered();
        let out = match m.result {
            Ok((peer, offer_sdp)) => {
                let peer = Arc::new(peer);
                if let Some(early) = self.early_candidates.remove(&m.who) {
                    let p = peer.clone();
                    actix::spawn(async move { p.add_candidates(early).await });
                }
                self.subscribers.insert(m.who, peer);
                let offer = Jsep::offer(offer_sdp);
                self.state.subscribed(m.who, &m.transaction, offer)
            }
            Err(e) => {
                tracing::warn!(session = %m.who.session, handle = %m.who.handle, error = %e, "subscribe failed");
                self.state.subscribe_failed(m.who, &m.transaction, e.in_step(MediaStep::Subscribe))
            }
        };
        self.publish(out, false, ctx);
    }
}

impl Handler<Started> for RoomActor {
    type Result = ();

    fn handle(&mut self, m: Started, ctx: &mut Context<Self>) {
        let _g = self.span.clone().entered();
        let out = match m.result {
            // Its streams ask their publishers for a keyframe once they can flow (media::peer).
            Ok(()) => self.state.started(m.who, &m.transaction),
            Err(e) => Outcome::default().with_error(m.who, &m.transaction, &e.in_step(MediaStep::Start)),
        };
        self.publish(out, false, ctx);
    }
}

impl Handler<Renegotiated> for RoomActor {
    type Result = ();

    fn handle(&mut self, m: Renegotiated, ctx: &mut Context<Self>) {
        let _g = self.span.clone().entered();
        let offer = |sdp| Jsep::offer(sdp);
        let out = match (m.result, m.transaction) {
            (Ok(sdp), txn) => self.state.renegotiated(m.who, txn.as_deref(), offer(sdp)),
            (Err(e), Some(txn)) => {
                tracing::warn!(session = %m.who.session, handle = %m.who.handle, error = %e, "renegotiation failed");
                self.state.renegotiation_failed(m.who);
                Outcome::default().with_error(m.who, &txn, &e.in_step(MediaStep::Renegotiate))
            }
            // Nobody asked (a publisher went): its streams stay inactive here; nothing to answer.
            (Err(e), None) => {
                tracing::warn!(session = %m.who.session, handle = %m.who.handle, error = %e, "renegotiation failed");
                self.state.renegotiation_failed(m.who);
                return;
            }
        };
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

impl Handler<Trickle> for RoomActor {
    type Result = ();

    fn handle(&mut self, m: Trickle, _: &mut Context<Self>) {
        if let Some(p) = self.subscribers.get(&m.who).cloned() {
            actix::spawn(async move { p.add_candidates(m.candidates).await });
        } else if let Some(p) = self.peers.get(&m.who).map(PublisherPeer::clone_handle) {
            actix::spawn(async move { p.add_candidates(m.candidates).await });
        } else {
            // The PeerConnection is being set up: keep them for it (bounded like Janus's queue).
            let q = self.early_candidates.entry(m.who).or_default();
            if q.len() < 100 {
                q.extend(m.candidates);
            }
        }
    }
}
