//! Subscriptions: which publisher streams feed which of a subscriber's m-lines, how one
//! starts (`join` as a subscriber) and is offered again, and what a publisher going away does to
//! it, with the events Janus sends for each. The requests that change a running subscription
//! are in `updates.rs`.

use super::Membership;
use super::{err, MediaAction, Outcome, RoomState, Slot, Who};
use crate::media::sdp::StreamInfo;
use shared::ids::{ParticipantId, RoomId};
use shared::janus::errors::{VideoRoomCode, VideoRoomError};
use shared::janus::request::Jsep;
use shared::janus::videoroom::DelayChoice;
use shared::janus::videoroom::{
    LayerChoice, Layers, LegacyFeed, StreamSource, SubscriberStream, VideoRoomEvent as Event,
};
use shared::media::{MediaKind, Mid, PlayoutDelay};

/// A subscriber m-line's new source.
#[derive(Clone, Debug, PartialEq)]
pub struct SwitchSource {
    pub mindex: usize,
    pub feed_who: Who,
    pub feed_mid: Mid,
    /// The new source is simulcast or VP9 SVC: the layers wanted.
    pub simulcast: Option<Simulcast>,
}

/// The most m-lines one subscription may have: every stream of a full room of publishers with
/// a few tracks each, while a request may name the same stream thousands of times (each one an
/// m-line, a track and a forwarding task on the node).
pub(super) const MAX_SUBSCRIPTION_MLINES: usize = 512;

/// The error for a subscription that would have `n` m-lines, past [`MAX_SUBSCRIPTION_MLINES`].
pub(super) fn too_many_streams(n: usize) -> VideoRoomError {
    err(VideoRoomCode::InvalidElement, format!("Too many streams ({n}, at most {MAX_SUBSCRIPTION_MLINES})"))
}

/// The `msid` (stream id, track id) of a subscription m-line, as Janus names it: with
/// `use_msid`, its publisher's id and its mid; else `janus` and `janus<mid>`. Janus 1.1.2
/// names the publisher an m-line was made or taken over for: a `switch` leaves it.
fn msid_of(use_msid: bool, s: &SubStream) -> (String, String) {
    match use_msid {
        true => (s.feed.to_string(), s.mid.to_string()),
        false => ("janus".to_owned(), format!("janus{}", s.mid)),
    }
}

/// One stream of a subscription: which publisher stream it carries, at which m-line.
#[derive(Clone, Debug, PartialEq)]
pub struct SubStream {
    pub mindex: usize,
    pub mid: Mid,
    pub kind: MediaKind,
    pub codec: String,
    pub feed: ParticipantId,
    pub feed_who: Who,
    pub feed_mid: Mid,
    /// The subscriber's name for it (`crossrefid`), listed with it.
    pub crossrefid: Option<String>,
    /// False once its publisher stopped: the m-line stays, inactive (Janus keeps m-lines).
    pub active: bool,
    /// The subscriber answered an offer with this stream in it (listed `ready` while active).
    pub ready: bool,
    /// False while the subscriber asked not to receive it (`configure` with `send: false`).
    pub send: bool,
    /// Its publisher stream is simulcast or VP9 SVC: the layers wanted and relayed.
    pub simulcast: Option<Simulcast>,
    /// The playout delay this subscriber asked for on a video stream (`min_delay`/`max_delay`).
    pub delay: PlayoutDelay,
    /// The data m-line: every publisher whose data channel messages it carries (one data
    /// m-line serves them all, as in Janus); empty for audio and video.
    pub sources: Vec<(ParticipantId, Who)>,
}

/// A layered subscription stream's layers: the targets and what is relayed (-1 until the first
/// packet), as reported by its forwarder. Simulcast: substream and temporal layer (Janus's
/// defaults 2 and 2); VP9 SVC (`svc`): spatial and temporal layer in the same fields (Janus's
/// defaults 1 and 2), chosen with `spatial_layer` and `temporal_layer`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Simulcast {
    pub svc: bool,
    pub substream_target: u8,
    pub temporal_target: u8,
    /// µs without packets before falling back to a lower substream (`None`: 250000).
    pub fallback: Option<u64>,
    pub substream: i8,
    pub temporal: i8,
}

impl Simulcast {
    /// The layers of a subscription to `source` (none if it is neither simulcast nor SVC).
    pub(super) fn of(source: &StreamInfo, choice: &LayerChoice) -> Option<Self> {
        if !source.svc && source.rids.is_empty() {
            return None;
        }
        let substream_target = if source.svc { 1 } else { 2 };
        let mut s =
            Self { svc: source.svc, substream_target, temporal_target: 2, fallback: None, substream: -1, temporal: -1 };
        s.apply(choice);
        Some(s)
    }

    /// Applies a choice; whether a target changed.
    pub(super) fn apply(&mut self, choice: &LayerChoice) -> bool {
        let before = *self;
        if self.svc {
            self.substream_target = choice.spatial_layer.unwrap_or(self.substream_target);
            self.temporal_target = choice.temporal_layer.unwrap_or(self.temporal_target);
        } else {
            self.substream_target = choice.substream.unwrap_or(self.substream_target);
            self.temporal_target = choice.temporal.unwrap_or(self.temporal_target);
            self.fallback = choice.fallback.or(self.fallback);
        }
        before != *self
    }

    /// The layers as a stream entry shows them.
    fn layers(&self) -> Layers {
        if self.svc {
            return Layers::Svc {
                spatial: self.substream,
                spatial_target: self.substream_target,
                temporal: self.temporal,
                temporal_target: self.temporal_target,
            };
        }
        Layers::Simulcast {
            substream: self.substream,
            substream_target: self.substream_target,
            temporal: self.temporal,
            temporal_target: self.temporal_target,
            fallback: self.fallback,
        }
    }
}

/// A new subscription stream's playout delay: what was asked for, on video only (as Janus).
pub(super) fn delay_of(kind: MediaKind, choice: &DelayChoice) -> PlayoutDelay {
    let mut d = PlayoutDelay::default();
    if kind == MediaKind::Video {
        d.apply(choice.min, choice.max);
    }
    d
}

impl SubStream {
    /// A data m-line carrying these publishers' messages.
    pub(super) fn data(mindex: usize, sources: Vec<(ParticipantId, Who)>) -> Self {
        let (feed, feed_who) = &sources[0];
        Self {
            mindex,
            mid: Mid::from(mindex.to_string()),
            kind: MediaKind::Data,
            codec: String::new(),
            feed: feed.clone(),
            feed_who: *feed_who,
            feed_mid: Mid::new(""),
            crossrefid: None,
            active: true,
            ready: false,
            send: true,
            simulcast: None,
            delay: PlayoutDelay::default(),
            sources,
        }
    }
}

#[derive(Clone, Debug)]
pub(super) struct Subscription {
    pub(super) streams: Vec<SubStream>,
    /// Joined with the deprecated `feed`: answered with `id`, `display`, `warning`.
    pub(super) legacy: Option<ParticipantId>,
    /// An offer went out and its answer has not come back: a new one must wait (Janus's
    /// `answered` flag).
    pub(super) awaiting_answer: bool,
    /// Changes made meanwhile, offered together once the answer comes (Janus's
    /// `pending_offer`): m-lines to make inactive and streams to add.
    pub(super) deferred: Option<(Vec<usize>, Vec<SubStream>)>,
    /// An ICE restart asked for meanwhile (Janus's `pending_restart`).
    pub(super) restart_pending: bool,
    /// The offer being made restarts ICE.
    restarting: bool,
    /// `use_msid`: its m-lines' `msid` name their publishers.
    use_msid: bool,
    /// `autoupdate`: a stopped publisher's m-lines are offered inactive at once; without it
    /// they wait in `skipped` for the next offer (Janus's `skipped_autoupdate`).
    autoupdate: bool,
    pub(super) skipped: Vec<usize>,
}

impl Subscription {
    /// Offers these changes now, or (an offer being unanswered) after its answer; a request
    /// that asked (`txn`) is then told `updating`, as Janus: "clients should never expect an
    /// offer any time they request one".
    pub(super) fn renegotiate(
        &mut self,
        who: Who,
        room: RoomId,
        txn: Option<&str>,
        (mut inactive, added): (Vec<usize>, Vec<SubStream>),
        restart: bool,
        out: &mut Outcome,
    ) {
        inactive.append(&mut self.skipped);
        if !self.awaiting_answer {
            self.awaiting_answer = true;
            let restart = restart || std::mem::take(&mut self.restart_pending);
            self.restarting = restart;
            let transaction = txn.map(str::to_owned);
            out.media.push(MediaAction::Renegotiate { who, transaction, inactive, added, restart });
            return;
        }
        self.restart_pending |= restart;
        let (pending_inactive, pending_added) = self.deferred.get_or_insert_with(Default::default);
        // Taken again since: it only changes source (the PeerConnection adds before it
        // deactivates, so the reverse order needs nothing).
        pending_inactive.retain(|m| !added.iter().any(|a| a.mindex == *m));
        pending_inactive.extend(inactive);
        pending_added.retain(|a| !added.iter().any(|x| x.mindex == a.mindex));
        pending_added.extend(added);
        if let Some(txn) = txn {
            let data = Event::Updating { room };
            out.notices.push(super::Notice { to: who, transaction: Some(txn.to_owned()), data, jsep: None });
        }
    }
}

impl RoomState {
    pub(super) fn join_subscriber(
        &mut self,
        who: Who,
        txn: &str,
        sub: shared::janus::videoroom::SubscriberJoin,
    ) -> Result<Outcome, VideoRoomError> {
        let mut streams = Vec::new();
        let mut data = Vec::new();
        for want in &sub.streams {
            let no_feed = || err(VideoRoomCode::NoSuchFeed, format!("No such feed ({})", want.feed));
            let p = self.participants.get(&want.feed).ok_or_else(no_feed)?;
            let published = p.published.as_ref().ok_or_else(no_feed)?;
            let mut matched = false;
            for s in published.streams.iter() {
                if want.mid.as_ref().is_some_and(|m| *m != s.mid) {
                    continue;
                }
                matched = true;
                if sub.kinds_left_out.contains(&s.kind) {
                    continue;
                }
                if s.kind == MediaKind::Data {
                    if !data.iter().any(|(id, _)| *id == want.feed) {
                        data.push((want.feed.clone(), p.who));
                    }
                    continue;
                }
                let mindex = streams.len();
                streams.push(SubStream {
                    mindex,
                    mid: Mid::from(mindex.to_string()),
                    kind: s.kind,
                    codec: s.codec.clone().unwrap_or_default(),
                    feed: want.feed.clone(),
                    feed_who: p.who,
                    feed_mid: s.mid.clone(),
                    crossrefid: want.crossrefid.clone(),
                    active: true,
                    ready: false,
                    send: true,
                    simulcast: Simulcast::of(s, &want.layers),
                    delay: delay_of(s.kind, &want.delay),
                    sources: Vec::new(),
                });
            }
            if !matched {
                return Err(err(
                    VideoRoomCode::NoSuchFeed,
                    format!("No such mid '{}' in feed ({})", want.mid.clone().unwrap_or_default(), want.feed),
                ));
            }
        }
        // One data m-line for every publisher's data, after the media (where the PeerConnection
        // puts it).
        if !data.is_empty() {
            streams.push(SubStream::data(streams.len(), data));
        }
        if streams.len() > MAX_SUBSCRIPTION_MLINES {
            return Err(too_many_streams(streams.len()));
        }
        self.slots.insert(who, Slot::Subscriber);
        let legacy = sub.legacy.then(|| sub.streams[0].feed.clone());
        if streams.is_empty() {
            return Err(err(VideoRoomCode::InvalidSdp, "Can't offer an SDP with no stream"));
        }
        let (use_msid, autoupdate) = (sub.use_msid, sub.autoupdate);
        let sub = Subscription {
            streams: streams.clone(),
            legacy,
            awaiting_answer: true,
            deferred: None,
            restart_pending: false,
            restarting: false,
            use_msid,
            autoupdate,
            skipped: Vec::new(),
        };
        self.subscriptions.insert(who, sub);
        let mut out = Outcome::default();
        out.membership.push(Membership::Joined(who));
        out.media.push(MediaAction::Subscribe { who, transaction: txn.to_owned(), streams });
        Ok(out)
    }

    /// Stream `s` as `attached`, `updated`, `switched` and `handle_info` list it: its
    /// publisher's display name and metadata and its publisher stream's description and codec
    /// profile as they are now (Janus reads them live).
    pub(super) fn listing(&self, s: &SubStream) -> SubscriberStream {
        let source = if s.kind == MediaKind::Data {
            StreamSource::Data { sources: s.sources.iter().map(|(id, _)| id.clone()).collect() }
        } else if !s.active {
            StreamSource::None
        } else {
            let p = self.participants.get(&s.feed);
            let ps =
                p.and_then(|p| p.published.as_ref()).and_then(|pb| pb.streams.iter().find(|x| x.mid == s.feed_mid));
            StreamSource::Feed {
                id: s.feed.clone(),
                display: p.and_then(|p| p.display.clone()),
                metadata: p.and_then(|p| p.metadata.clone()),
                mid: s.feed_mid.clone(),
                description: ps.and_then(|ps| ps.description.clone()),
                codec: s.codec.clone(),
                profile: ps.and_then(super::publishing::profile_of),
                layers: s.simulcast.as_ref().map(Simulcast::layers),
                delay: s.delay.bytes().map(|_| s.delay),
            }
        };
        SubscriberStream {
            kind: s.kind,
            active: s.active,
            mindex: s.mindex,
            mid: s.mid.clone(),
            crossrefid: s.crossrefid.clone(),
            ready: s.ready && s.active,
            send: s.send,
            source,
        }
    }

    /// `who`'s subscription streams as they are listed.
    pub(super) fn listings(&self, who: Who) -> Vec<SubscriberStream> {
        self.subscriptions
            .get(&who)
            .map(|sub| sub.streams.iter().map(|s| self.listing(s)).collect())
            .unwrap_or_default()
    }

    /// The `msid` (stream id, track id) of `who`'s subscription m-line `s` ([`msid_of`]).
    pub fn msid(&self, who: Who, s: &SubStream) -> (String, String) {
        msid_of(self.subscriptions.get(&who).is_some_and(|sub| sub.use_msid), s)
    }

    /// The subscriber's offer is ready: `attached` with it, as Janus sends.
    pub fn subscribed(&mut self, who: Who, txn: &str, offer: Jsep) -> Outcome {
        let Some(sub) = self.subscriptions.get(&who) else { return Outcome::default() };
        let legacy = sub.legacy.as_ref().map(|feed| {
            let p = self.participants.get(feed);
            LegacyFeed {
                id: feed.clone(),
                display: p.and_then(|p| p.display.clone()),
                metadata: p.and_then(|p| p.metadata.clone()),
            }
        });
        let streams = self.listings(who);
        let attached = Event::Attached { room: self.config.room.clone(), legacy, streams };
        let mut out = Outcome::default().notice(who, Some(txn), attached);
        if let Some(n) = out.notices.last_mut() {
            n.jsep = Some(offer);
        }
        out
    }

    /// The streams of publisher `feed_who` stopped: each subscriber receiving any of them gets
    /// them marked inactive and a new offer (then `updated`), or with `autoupdate` off, that
    /// offer at its next change (as Janus).
    pub(super) fn deactivate_feed(&mut self, feed_who: Who, out: &mut Outcome) {
        let room = self.config.room.clone();
        for (&who, sub) in self.subscriptions.iter_mut() {
            let mut inactive = Vec::new();
            for s in sub.streams.iter_mut().filter(|s| s.active && s.feed_who == feed_who && s.kind != MediaKind::Data)
            {
                s.active = false;
                inactive.push(s.mindex);
            }
            // Its data feed closes with it; the data m-line stays for the others.
            for s in sub.streams.iter_mut().filter(|s| s.kind == MediaKind::Data) {
                s.sources.retain(|(_, w)| *w != feed_who);
            }
            if inactive.is_empty() {
                continue;
            }
            if sub.autoupdate {
                sub.renegotiate(who, room.clone(), None, (inactive, Vec::new()), false, out);
            } else {
                sub.skipped.extend(inactive);
            }
        }
    }

    /// A subscriber's new offer is ready: `updated` with its streams and the offer (answering
    /// `txn`, when a request asked for it).
    pub fn renegotiated(&mut self, who: Who, txn: Option<&str>, mut offer: Jsep) -> Outcome {
        let room = self.config.room.clone();
        let Some(sub) = self.subscriptions.get_mut(&who) else { return Outcome::default() };
        let restart = std::mem::take(&mut sub.restarting);
        let ev = if restart && txn.is_some() {
            // The `configure` that asked for the restart is answered with the offer (Janus).
            Event::Configured { room, publication: None }
        } else {
            Event::Updated { room, streams: Some(self.listings(who)) }
        };
        if restart {
            offer.restart = Some(true);
        }
        let mut out = Outcome::default().notice(who, txn, ev);
        if let Some(n) = out.notices.last_mut() {
            n.jsep = Some(offer);
        }
        out
    }

    /// A simulcast stream's forwarder now relays another substream or temporal layer: the
    /// subscriber is told (`{"videoroom":"event","room","mid","substream"|"temporal"}`, as Janus;
    /// `spatial_layer`/`temporal_layer` for VP9 SVC).
    pub fn layer_changed(&mut self, who: Who, mindex: usize, substream: Option<u8>, temporal: Option<u8>) -> Outcome {
        let room = self.config.room.clone();
        let Some(s) = self.subscriptions.get_mut(&who).and_then(|sub| sub.streams.get_mut(mindex)) else {
            return Outcome::default();
        };
        let Some(sc) = s.simulcast.as_mut() else { return Outcome::default() };
        let (spatial, temporal) = (substream.map(|l| l as i8), temporal.map(|l| l as i8));
        sc.substream = spatial.unwrap_or(sc.substream);
        sc.temporal = temporal.unwrap_or(sc.temporal);
        let ev = Event::Layer { room, mid: s.mid.clone(), svc: sc.svc, spatial, temporal };
        Outcome::default().notice(who, None, ev)
    }

    /// The mid of a subscriber's m-line.
    pub(super) fn subscription_mid(&self, who: Who, mindex: usize) -> Option<Mid> {
        self.subscriptions.get(&who)?.streams.get(mindex).map(|s| s.mid.clone())
    }

    /// Subscribing failed: the request gets the error and the handle is in no room.
    pub fn subscribe_failed(&mut self, who: Who, txn: &str, e: VideoRoomError) -> Outcome {
        self.subscriptions.remove(&who);
        self.slots.remove(&who);
        let mut out = Outcome::default().notice(who, Some(txn), Event::Error(e));
        out.membership.push(Membership::Rejected(who));
        out
    }

    /// The subscriber's answer is applied: `started`.
    pub fn started(&mut self, who: Who, txn: &str) -> Outcome {
        let room = self.config.room.clone();
        let mut out = Outcome::default().notice(who, Some(txn), Event::Started { room: room.clone() });
        // Changes that waited for this answer are offered now (`updated` without a transaction).
        if let Some(sub) = self.subscriptions.get_mut(&who) {
            sub.awaiting_answer = false;
            // Streams added while that offer was out were not in it: they wait for the next.
            let pending: Vec<usize> =
                sub.deferred.iter().flat_map(|(_, added)| added.iter().map(|s| s.mindex)).collect();
            sub.streams.iter_mut().filter(|s| s.active && !pending.contains(&s.mindex)).for_each(|s| s.ready = true);
            if let Some(changes) = sub.deferred.take() {
                sub.renegotiate(who, room, None, changes, false, &mut out);
            }
        }
        out
    }

    /// A renegotiation failed: no offer is outstanding.
    pub fn renegotiation_failed(&mut self, who: Who) {
        if let Some(sub) = self.subscriptions.get_mut(&who) {
            sub.awaiting_answer = false;
        }
    }
}
