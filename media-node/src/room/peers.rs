//! The room shell's part of its PeerConnections: starts the publishing and subscribing
//! PeerConnections a transition asks for (`media::publisher`, `media::subscriber`) and feeds
//! what they report (answers, offers, connection notices, trickled candidates) back into the
//! room state.

use super::messages::{Answered, Offered, PeerNotice, Renegotiated, Started, Trickle};
use super::state::{MediaAction, Outcome, Simulcast, SubStream, Who};
use super::RoomActor;
use crate::media::candidates::RemoteCandidates;
use crate::media::extensions::ExtensionSettings;
use crate::media::peer::{PeerEvent, StreamAt};
use crate::media::publisher::{PublishOptions, PublisherPeer};
use crate::media::sdp;
use crate::media::simulcast::LayerTarget;
use crate::media::subscriber::{DataSource, Negotiable, Source, SubscriberPeer};
use crate::media::{MediaError, MediaStep};
use actix::prelude::*;
use shared::ids::ParticipantId;
use shared::janus::reply::Event;
use shared::janus::request::{Candidate, Jsep};
use shared::janus::videoroom as vr;
use shared::media::MediaKind;
use std::sync::Arc;
use std::time::Duration;

impl RoomActor {
    /// Of trickled `candidates`, those the handle's PeerConnection may still take
    /// (`media::candidates`).
    fn admitted(&mut self, who: Who, candidates: Vec<Candidate>) -> Vec<Candidate> {
        let remote = self.remote_candidates.entry(who).or_default();
        candidates
            .into_iter()
            .filter(|c| match c {
                Candidate::Ice { candidate, .. } => remote.admit(candidate),
                Candidate::Completed => true,
            })
            .collect()
    }

    /// The publishers' feeds for these subscription streams, and the data sources of a data
    /// m-line among them; `None` if an audio or video stream's publisher is not publishing.
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
    pub(super) fn run_media(&mut self, actions: Vec<MediaAction>, ctx: &mut Context<Self>) {
        for a in actions {
            match a {
                MediaAction::Publish { who, transaction, offer, rid_order, talk, codecs } => {
                    // A new PeerConnection: its candidates counted afresh.
                    let mut remote = RemoteCandidates::default();
                    let offer = remote.admit_sdp(offer);
                    self.remote_candidates.insert(who, remote);
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
                    let answer = self.remote_candidates.entry(who).or_default().admit_sdp(answer);
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
                    self.remote_candidates.remove(&who);
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
                    let peer_candidates = self.admitted(m.who, early);
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
                    let early = self.admitted(m.who, early);
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

impl Handler<Trickle> for RoomActor {
    type Result = ();

    fn handle(&mut self, m: Trickle, _: &mut Context<Self>) {
        if let Some(p) = self.subscribers.get(&m.who).cloned() {
            let candidates = self.admitted(m.who, m.candidates);
            actix::spawn(async move { p.add_candidates(candidates).await });
        } else if let Some(p) = self.peers.get(&m.who).map(PublisherPeer::clone_handle) {
            let candidates = self.admitted(m.who, m.candidates);
            actix::spawn(async move { p.add_candidates(candidates).await });
        } else {
            // The PeerConnection is being set up: keep them for it (bounded like Janus's queue).
            let q = self.early_candidates.entry(m.who).or_default();
            if q.len() < 100 {
                q.extend(m.candidates);
            }
        }
    }
}
