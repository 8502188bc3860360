//! The VideoRoom state machine of one room, without I/O: membership, ids, access checks and the
//! events each transition produces. `RoomActor` is a thin shell around it.

use crate::media::sdp::StreamInfo;
use serde_json::Value;
use shared::ids::{HandleId, ParticipantId, SessionId};
use shared::janus::errors::{VideoRoomCode, VideoRoomError};
use shared::janus::request::{Jsep, JsepType};
use shared::janus::videoroom::{
    self as vr, AllowedAction, AsyncName, AsyncRequest, Departure, EditRoom, Join, ParticipantView, Ptype,
    PublisherJoin, RoomConfig, Switch, SwitchStream, Update,
};
use shared::wire::GoneReason;
use std::collections::{BTreeMap, HashMap, HashSet};

/// A handle, as the room knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Who {
    pub session: SessionId,
    pub handle: HandleId,
}

/// A plugin event for one handle; `transaction` is set when it answers that handle's request.
#[derive(Clone, Debug, PartialEq)]
pub struct Notice {
    pub to: Who,
    pub transaction: Option<String>,
    pub data: Value,
    /// A JSEP (the publisher's answer) the shell attaches to this event.
    pub jsep: Option<Jsep>,
}

/// Work on PeerConnections that a transition asks the shell to do.
#[derive(Clone, Debug, PartialEq)]
pub enum MediaAction {
    /// Answer this publisher's offer; report back with [`RoomState::published`].
    Publish { who: Who, transaction: String, offer: String },
    /// Build a subscriber PeerConnection fed by these streams and offer it; report back with
    /// [`RoomState::subscribed`].
    Subscribe { who: Who, transaction: String, streams: Vec<SubStream> },
    /// Apply the subscriber's answer; report back with [`RoomState::started`].
    Start { who: Who, transaction: String, answer: String },
    /// Stop (`true`) or resume forwarding to this subscriber.
    Pause { who: Who, paused: bool },
    /// Close this handle's PeerConnection.
    Close { who: Who },
    /// Offer this subscriber again, its streams at `inactive` (m-line indexes) made inactive
    /// (their publisher went, or it unsubscribed) and `added` appended as new m-lines; report
    /// back with [`RoomState::renegotiated`]. `transaction`: the request that asked, if any.
    Renegotiate { who: Who, transaction: Option<String>, inactive: Vec<usize>, added: Vec<SubStream> },
    /// Feed these m-lines of this subscriber from other publishers' streams (no renegotiation).
    Switch { who: Who, sources: Vec<SwitchSource> },
}

/// A subscriber m-line's new source.
#[derive(Clone, Debug, PartialEq)]
pub struct SwitchSource {
    pub mindex: usize,
    pub feed_who: Who,
    pub kind: String,
}

/// One stream of a subscription: which publisher stream it carries, at which m-line.
#[derive(Clone, Debug, PartialEq)]
pub struct SubStream {
    pub mindex: usize,
    pub mid: String,
    pub kind: String,
    pub codec: String,
    pub feed: ParticipantId,
    pub feed_who: Who,
    pub feed_mid: String,
    pub feed_display: Option<String>,
    /// False once its publisher stopped: the m-line stays, inactive (Janus keeps m-lines).
    pub active: bool,
}

impl SubStream {
    /// Janus's entry for this stream in `attached` and `updated`.
    fn entry(&self) -> Value {
        let mut e = serde_json::Map::new();
        e.insert("type".into(), self.kind.clone().into());
        e.insert("active".into(), self.active.into());
        e.insert("mindex".into(), self.mindex.into());
        e.insert("mid".into(), self.mid.clone().into());
        e.insert("ready".into(), false.into());
        e.insert("send".into(), true.into());
        if !self.active {
            return Value::Object(e);
        }
        e.insert("feed_id".into(), self.feed.0.into());
        if let Some(d) = &self.feed_display {
            e.insert("feed_display".into(), d.clone().into());
        }
        e.insert("feed_mid".into(), self.feed_mid.clone().into());
        e.insert("codec".into(), self.codec.clone().into());
        Value::Object(e)
    }
}

#[derive(Clone, Debug)]
struct Subscription {
    streams: Vec<SubStream>,
    /// Joined with the deprecated `feed`: answered with `id`, `display`, `warning`.
    legacy: Option<ParticipantId>,
}

/// A change the shell must mirror outside (handle binding in the store).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Membership {
    Joined(Who),
    Left(Who),
    /// A join that failed: the handle was routed here but is not a member.
    Rejected(Who),
}

/// What a transition produced.
#[derive(Debug, Default, PartialEq)]
pub struct Outcome {
    pub notices: Vec<Notice>,
    pub membership: Vec<Membership>,
    pub media: Vec<MediaAction>,
}

impl Outcome {
    /// This outcome plus an error event answering `txn`.
    pub fn with_error(self, who: Who, txn: &str, e: &VideoRoomError) -> Self {
        self.notice(who, Some(txn), vr::error(e))
    }

    fn notice(mut self, to: Who, transaction: Option<&str>, data: Value) -> Self {
        self.notices.push(Notice { to, transaction: transaction.map(str::to_owned), data, jsep: None });
        self
    }
}

/// What a publisher sends, as announced to the room.
#[derive(Clone, Debug, PartialEq)]
pub struct Published {
    pub streams: Vec<StreamInfo>,
}

impl Published {
    fn codec_of(&self, kind: &str) -> Option<&str> {
        self.streams.iter().find(|s| s.kind == kind).and_then(|s| s.codec.as_deref())
    }

    /// `streams` as Janus lists them in `configured`, `publishers` and `joined`.
    fn streams_json(&self) -> Value {
        Value::Array(
            self.streams
                .iter()
                .map(|s| {
                    let mut m = serde_json::Map::new();
                    m.insert("type".into(), s.kind.clone().into());
                    m.insert("mindex".into(), s.mindex.into());
                    m.insert("mid".into(), s.mid.clone().into());
                    if let Some(c) = &s.codec {
                        m.insert("codec".into(), c.clone().into());
                    }
                    Value::Object(m)
                })
                .collect(),
        )
    }

    /// The mid of this publisher's stream of `kind` (for `media` events).
    pub fn mid_of(&self, kind: &str) -> Option<&str> {
        self.streams.iter().find(|s| s.kind == kind).map(|s| s.mid.as_str())
    }
}

#[derive(Clone, Debug)]
struct Participant {
    who: Who,
    private_id: ParticipantId,
    display: Option<String>,
    metadata: Option<Value>,
    /// What it publishes, once its PeerConnection is up.
    published: Option<Published>,
    /// An offer is being answered (a second `publish` meanwhile is refused).
    publishing: bool,
}

impl Participant {
    /// Janus's publisher entry (`publishers` event, `joined`).
    fn publisher_entry(&self, id: ParticipantId) -> Option<Value> {
        let p = self.published.as_ref()?;
        let mut m = serde_json::Map::new();
        m.insert("id".into(), id.0.into());
        if let Some(d) = &self.display {
            m.insert("display".into(), d.clone().into());
        }
        if let Some(md) = &self.metadata {
            m.insert("metadata".into(), md.clone());
        }
        if let Some(c) = p.codec_of("audio") {
            m.insert("audio_codec".into(), c.into());
        }
        if let Some(c) = p.codec_of("video") {
            m.insert("video_codec".into(), c.into());
        }
        m.insert("streams".into(), p.streams_json());
        Some(Value::Object(m))
    }
}

/// What a handle is in this room.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Slot {
    Publisher(ParticipantId),
    Subscriber,
    /// Left or was kicked: Janus requires a new handle to join again.
    Gone,
}

pub struct RoomState {
    config: RoomConfig,
    participants: BTreeMap<ParticipantId, Participant>,
    slots: HashMap<Who, Slot>,
    subscriptions: HashMap<Who, Subscription>,
    private_ids: HashSet<ParticipantId>,
    /// Id source, injectable so tests are deterministic.
    next_id: Box<dyn FnMut() -> u64 + Send>,
}

fn err(code: VideoRoomCode, reason: impl Into<String>) -> VideoRoomError {
    VideoRoomError::new(code, reason)
}

/// Janus's `JANUS_CHECK_SECRET`: no secret configured means no check.
fn check_secret(expected: Option<&str>, given: Option<&str>, member: &str) -> Result<(), VideoRoomError> {
    match (expected, given) {
        (None, _) => Ok(()),
        (Some(_), None) => Err(err(VideoRoomCode::MissingElement, format!("Missing mandatory element ({member})"))),
        (Some(e), Some(g)) if constant_time_eq(e.as_bytes(), g.as_bytes()) => Ok(()),
        (Some(_), Some(_)) => Err(err(VideoRoomCode::Unauthorized, format!("Unauthorized (wrong {member})"))),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Media requests arrive with the media issue; until then they fail loudly, never silently.
pub fn media_unavailable(name: AsyncName) -> VideoRoomError {
    err(
        VideoRoomCode::UnknownError,
        format!(
            "Request '{}' needs media, which this Portunus build does not provide yet",
            format!("{name:?}").to_ascii_lowercase()
        ),
    )
}

impl RoomState {
    pub fn new(config: RoomConfig) -> Self {
        Self::with_ids(config, Box::new(shared::ids::random_id))
    }

    pub fn with_ids(config: RoomConfig, next_id: Box<dyn FnMut() -> u64 + Send>) -> Self {
        Self {
            config,
            participants: BTreeMap::new(),
            slots: HashMap::new(),
            subscriptions: HashMap::new(),
            private_ids: HashSet::new(),
            next_id,
        }
    }

    pub fn config(&self) -> &RoomConfig {
        &self.config
    }

    /// Participants as Janus counts them for `list` (publisher-type participants).
    pub fn participant_count(&self) -> u64 {
        self.participants.len() as u64
    }

    /// Handles that have joined and not left.
    pub fn members(&self) -> Vec<Who> {
        self.participants.values().map(|p| p.who).collect()
    }

    /// An asynchronous request from `who`; errors become an error event for that request.
    pub fn on_async(
        &mut self,
        who: Who,
        txn: &str,
        name: AsyncName,
        parsed: Result<AsyncRequest, VideoRoomError>,
        jsep: Option<&Jsep>,
    ) -> Outcome {
        match self.handle_async(who, txn, name, parsed, jsep) {
            Ok(o) => o,
            Err(e) => {
                let mut out = Outcome::default().notice(who, Some(txn), vr::error(&e));
                if !self.slots.contains_key(&who) {
                    out.membership.push(Membership::Rejected(who));
                }
                out
            }
        }
    }

    fn handle_async(
        &mut self,
        who: Who,
        txn: &str,
        name: AsyncName,
        parsed: Result<AsyncRequest, VideoRoomError>,
        jsep: Option<&Jsep>,
    ) -> Result<Outcome, VideoRoomError> {
        match self.slots.get(&who).copied() {
            None => {
                if !name.is_join() {
                    return Err(err(VideoRoomCode::JoinFirst, "Invalid request on unconfigured participant"));
                }
                match parsed? {
                    AsyncRequest::Join(j) => self.join(who, txn, j),
                    AsyncRequest::Media(n) => Err(media_unavailable(n)),
                    _ => Err(err(VideoRoomCode::JoinFirst, "Invalid request on unconfigured participant")),
                }
            }
            Some(Slot::Gone) => Err(if name.is_join() {
                err(VideoRoomCode::AlreadyJoined, "Not in a room (create a new handle)")
            } else {
                err(VideoRoomCode::NoSuchRoom, "No such room")
            }),
            Some(Slot::Subscriber) => match name {
                AsyncName::Join | AsyncName::JoinAndConfigure => {
                    Err(err(VideoRoomCode::AlreadyJoined, "Already in as a subscriber on this handle"))
                }
                AsyncName::Start => match jsep {
                    Some(j) if j.kind == JsepType::Answer => {
                        let mut out = Outcome::default();
                        out.media.push(MediaAction::Start { who, transaction: txn.to_owned(), answer: j.sdp.clone() });
                        Ok(out)
                    }
                    Some(_) => Err(err(VideoRoomCode::InvalidSdpType, "Unsupported SDP type 'offer'")),
                    // `start` without a JSEP resumes after `pause`.
                    None => {
                        let mut out = self.started(who, txn);
                        out.media.push(MediaAction::Pause { who, paused: false });
                        Ok(out)
                    }
                },
                AsyncName::Pause => {
                    let mut out = Outcome::default().notice(
                        who,
                        Some(txn),
                        serde_json::json!({"videoroom": "event", "room": self.config.room.0, "paused": "ok"}),
                    );
                    out.media.push(MediaAction::Pause { who, paused: true });
                    Ok(out)
                }
                AsyncName::Leave => {
                    self.subscriptions.remove(&who);
                    self.slots.insert(who, Slot::Gone);
                    let mut out = Outcome::default().notice(
                        who,
                        Some(txn),
                        serde_json::json!({"videoroom": "event", "room": self.config.room.0, "left": "ok"}),
                    );
                    out.media.push(MediaAction::Close { who });
                    out.membership.push(Membership::Left(who));
                    Ok(out)
                }
                AsyncName::Switch => match parsed? {
                    AsyncRequest::Switch(sw) => self.switch(who, txn, sw),
                    _ => Err(media_unavailable(name)),
                },
                AsyncName::Subscribe | AsyncName::Unsubscribe | AsyncName::Update => match parsed? {
                    AsyncRequest::Update(u) => self.update_subscription(who, txn, u),
                    _ => Err(media_unavailable(name)),
                },
                other => Err(media_unavailable(other)),
            },
            Some(Slot::Publisher(pid)) => match name {
                AsyncName::Join | AsyncName::JoinAndConfigure => {
                    Err(err(VideoRoomCode::AlreadyJoined, "Already in as a publisher on this handle"))
                }
                AsyncName::Leave => Ok(self.depart(pid, Departure::Leaving, Some(txn))),
                AsyncName::Unpublish => {
                    let published = self.participants.get(&pid).is_some_and(|p| p.published.is_some());
                    if !published {
                        return Err(err(VideoRoomCode::NotPublished, "Can't unpublish, not published"));
                    }
                    let mut out = self.unpublished(who, Some(txn));
                    out.media.push(MediaAction::Close { who });
                    Ok(out)
                }
                AsyncName::Configure | AsyncName::Publish => self.configure(who, pid, txn, name, jsep),
                _ => Err(err(
                    VideoRoomCode::InvalidRequest,
                    format!("Unknown request '{}'", format!("{name:?}").to_ascii_lowercase()),
                )),
            },
        }
    }

    /// `publish`, or `configure` on a publisher: with an offer, starts publishing.
    fn configure(
        &mut self,
        who: Who,
        pid: ParticipantId,
        txn: &str,
        name: AsyncName,
        jsep: Option<&Jsep>,
    ) -> Result<Outcome, VideoRoomError> {
        let Some(p) = self.participants.get(&pid) else { return Err(err(VideoRoomCode::NoSuchRoom, "No such room")) };
        let busy = p.published.is_some() || p.publishing;
        match jsep {
            None if name == AsyncName::Publish => {
                Err(err(VideoRoomCode::InvalidSdp, "Can't publish without a JSEP offer"))
            }
            // A configure without an offer changes nothing media-wise here.
            None => Ok(Outcome::default().notice(
                who,
                Some(txn),
                serde_json::json!({"videoroom": "event", "room": self.config.room.0, "configured": "ok"}),
            )),
            Some(j) if j.kind != JsepType::Offer => {
                Err(err(VideoRoomCode::InvalidSdpType, format!("Unsupported SDP type '{}'", "answer")))
            }
            Some(_) if busy => Err(err(VideoRoomCode::AlreadyPublished, "Can't publish, already published")),
            Some(j) => {
                let publishing = self.participants.values().filter(|p| p.published.is_some() || p.publishing).count();
                if publishing as u64 >= self.config.max_publishers {
                    return Err(err(
                        VideoRoomCode::PublishersFull,
                        format!("Maximum number of publishers ({}) reached", self.config.max_publishers),
                    ));
                }
                if let Some(p) = self.participants.get_mut(&pid) {
                    p.publishing = true;
                }
                let mut out = Outcome::default();
                out.media.push(MediaAction::Publish { who, transaction: txn.to_owned(), offer: j.sdp.clone() });
                Ok(out)
            }
        }
    }

    /// The publisher's PeerConnection answered: `configured` to it (the shell attaches the
    /// answer), `publishers` to everyone else.
    pub fn published(&mut self, who: Who, txn: &str, streams: Vec<StreamInfo>, answer: Jsep) -> Outcome {
        let Some(Slot::Publisher(pid)) = self.slots.get(&who).copied() else { return Outcome::default() };
        let Some(p) = self.participants.get_mut(&pid) else { return Outcome::default() };
        p.publishing = false;
        let published = Published { streams };
        let mut configured = serde_json::json!({"videoroom": "event", "room": self.config.room.0, "configured": "ok"});
        if let Some(c) = published.codec_of("audio") {
            configured["audio_codec"] = c.into();
        }
        if let Some(c) = published.codec_of("video") {
            configured["video_codec"] = c.into();
        }
        configured["streams"] = published.streams_json();
        p.published = Some(published);
        let entry = p.publisher_entry(pid);
        let mut out = Outcome::default().notice(who, Some(txn), configured);
        if let Some(n) = out.notices.last_mut() {
            n.jsep = Some(answer);
        }
        if let Some(entry) = entry {
            let ev = serde_json::json!({"videoroom": "event", "room": self.config.room.0, "publishers": [entry]});
            for other in self.participants.values().filter(|o| o.who != who) {
                out = out.notice(other.who, None, ev.clone());
            }
        }
        out
    }

    /// Publishing could not start (the offer was refused): the request gets the error.
    pub fn publish_failed(&mut self, who: Who, txn: &str, e: VideoRoomError) -> Outcome {
        if let Some(Slot::Publisher(pid)) = self.slots.get(&who).copied() {
            if let Some(p) = self.participants.get_mut(&pid) {
                p.publishing = false;
            }
        }
        Outcome::default().notice(who, Some(txn), vr::error(&e))
    }

    /// The publisher stopped (unpublish, or its PeerConnection went away): `unpublished` to it
    /// when it asked (`txn`), its id to everyone else.
    pub fn unpublished(&mut self, who: Who, txn: Option<&str>) -> Outcome {
        let mut out = Outcome::default();
        let Some(Slot::Publisher(pid)) = self.slots.get(&who).copied() else { return out };
        let room = self.config.room;
        let Some(p) = self.participants.get_mut(&pid) else { return out };
        if p.published.take().is_none() {
            return out;
        }
        if txn.is_some() {
            out = out.notice(who, txn, vr::unpublished_ok(room));
        }
        self.deactivate_feed(who, &mut out);
        let ev = vr::departed(room, Departure::Unpublished, pid, None, None);
        for other in self.participants.values().filter(|o| o.who != who) {
            out = out.notice(other.who, None, ev.clone());
        }
        out
    }

    fn join_subscriber(
        &mut self,
        who: Who,
        txn: &str,
        sub: shared::janus::videoroom::SubscriberJoin,
    ) -> Result<Outcome, VideoRoomError> {
        let mut streams = Vec::new();
        for want in &sub.streams {
            let no_feed = || err(VideoRoomCode::NoSuchFeed, format!("No such feed ({})", want.feed));
            let p = self.participants.get(&want.feed).ok_or_else(no_feed)?;
            let published = p.published.as_ref().ok_or_else(no_feed)?;
            let mut matched = false;
            for s in published.streams.iter().filter(|s| s.kind != "data") {
                if want.mid.as_ref().is_some_and(|m| *m != s.mid) {
                    continue;
                }
                matched = true;
                let mindex = streams.len();
                streams.push(SubStream {
                    mindex,
                    mid: mindex.to_string(),
                    kind: s.kind.clone(),
                    codec: s.codec.clone().unwrap_or_default(),
                    feed: want.feed,
                    feed_who: p.who,
                    feed_mid: s.mid.clone(),
                    feed_display: p.display.clone(),
                    active: true,
                });
            }
            if !matched {
                return Err(err(
                    VideoRoomCode::NoSuchFeed,
                    format!("No such mid '{}' in feed ({})", want.mid.clone().unwrap_or_default(), want.feed),
                ));
            }
        }
        self.slots.insert(who, Slot::Subscriber);
        let legacy = sub.legacy.then(|| sub.streams[0].feed);
        self.subscriptions.insert(who, Subscription { streams: streams.clone(), legacy });
        let mut out = Outcome::default();
        out.membership.push(Membership::Joined(who));
        out.media.push(MediaAction::Subscribe { who, transaction: txn.to_owned(), streams });
        Ok(out)
    }

    /// The subscriber's offer is ready: `attached` with it, as Janus sends.
    pub fn subscribed(&mut self, who: Who, txn: &str, offer: Jsep) -> Outcome {
        let Some(sub) = self.subscriptions.get(&who) else { return Outcome::default() };
        let mut m = serde_json::Map::new();
        m.insert("videoroom".into(), "attached".into());
        m.insert("room".into(), self.config.room.0.into());
        if let Some(feed) = sub.legacy {
            m.insert("id".into(), feed.0.into());
            m.insert("warning".into(), "deprecated_api".into());
            if let Some(d) = sub.streams.first().and_then(|s| s.feed_display.clone()) {
                m.insert("display".into(), d.into());
            }
        }
        let streams: Vec<Value> = sub.streams.iter().map(SubStream::entry).collect();
        m.insert("streams".into(), Value::Array(streams));
        let mut out = Outcome::default().notice(who, Some(txn), Value::Object(m));
        if let Some(n) = out.notices.last_mut() {
            n.jsep = Some(offer);
        }
        out
    }

    /// The streams of publisher `feed_who` stopped: each subscriber receiving any of them gets
    /// them marked inactive and a new offer (then `updated`, as Janus with `autoupdate`).
    fn deactivate_feed(&mut self, feed_who: Who, out: &mut Outcome) {
        for (&who, sub) in self.subscriptions.iter_mut() {
            let mut inactive = Vec::new();
            for s in sub.streams.iter_mut().filter(|s| s.active && s.feed_who == feed_who) {
                s.active = false;
                inactive.push(s.mindex);
            }
            if !inactive.is_empty() {
                out.media.push(MediaAction::Renegotiate { who, transaction: None, inactive, added: Vec::new() });
            }
        }
    }

    /// `switch`: new sources for some of the subscriber's m-lines, same kind and codec, no
    /// renegotiation. Every entry is checked before any is applied (Janus's order); entries
    /// naming an unknown `sub_mid`, another kind or codec, or an inactive m-line (which would need
    /// a renegotiation) are skipped and not counted in `changes`.
    fn switch(&mut self, who: Who, txn: &str, sw: Switch) -> Result<Outcome, VideoRoomError> {
        let no_feed = |feed: ParticipantId| err(VideoRoomCode::NoSuchFeed, format!("No such feed ({feed})"));
        let published = |feed: ParticipantId| -> Result<(&Participant, &Published), VideoRoomError> {
            let p = self.participants.get(&feed).ok_or_else(|| no_feed(feed))?;
            Ok((p, p.published.as_ref().ok_or_else(|| no_feed(feed))?))
        };
        let wanted = match sw.legacy_feed {
            None => sw.streams,
            Some(feed) => {
                // The deprecated form: each of the publisher's streams onto the first unused
                // subscription stream of the same kind and codec.
                let (_, pubd) = published(feed)?;
                let mut used = Vec::new();
                let mut list = Vec::new();
                for ps in pubd.streams.iter().filter(|s| s.kind != "data") {
                    let codec = ps.codec.clone().unwrap_or_default();
                    let target = self.subscriptions.get(&who).and_then(|sub| {
                        sub.streams.iter().find(|s| s.kind == ps.kind && s.codec == codec && !used.contains(&s.mindex))
                    });
                    if let Some(t) = target {
                        used.push(t.mindex);
                        list.push(SwitchStream { feed, mid: ps.mid.clone(), sub_mid: t.mid.clone() });
                    }
                }
                if list.is_empty() {
                    return Err(err(VideoRoomCode::InvalidElement, "Empty switch list"));
                }
                list
            }
        };
        for w in &wanted {
            let (_, pubd) = published(w.feed)?;
            if !pubd.streams.iter().any(|s| s.mid == w.mid) {
                return Err(err(VideoRoomCode::NoSuchFeed, format!("No such mid '{}' in feed ({})", w.mid, w.feed)));
            }
        }
        let mut sources = Vec::new();
        let sub = self.subscriptions.get_mut(&who).ok_or_else(|| err(VideoRoomCode::JoinFirst, "Not a subscriber"))?;
        for w in &wanted {
            let Some(s) = sub.streams.iter_mut().find(|s| s.mid == w.sub_mid && s.active) else { continue };
            let Some(p) = self.participants.get(&w.feed) else { continue };
            let Some(ps) = p.published.as_ref().and_then(|pb| pb.streams.iter().find(|x| x.mid == w.mid)) else {
                continue;
            };
            if ps.kind != s.kind || ps.codec.as_deref().unwrap_or_default() != s.codec {
                continue;
            }
            s.feed = w.feed;
            s.feed_who = p.who;
            s.feed_mid = ps.mid.clone();
            s.feed_display = p.display.clone();
            sources.push(SwitchSource { mindex: s.mindex, feed_who: p.who, kind: s.kind.clone() });
        }
        let streams: Vec<Value> = sub.streams.iter().map(SubStream::entry).collect();
        let ev = serde_json::json!({"videoroom": "event", "switched": "ok", "room": self.config.room.0,
            "changes": sources.len(), "streams": streams});
        let mut out = Outcome::default().notice(who, Some(txn), ev);
        if !sources.is_empty() {
            out.media.push(MediaAction::Switch { who, sources });
        }
        Ok(out)
    }

    /// `subscribe`, `unsubscribe`, `update`: streams made inactive and streams added (always as
    /// new m-lines: Janus would reuse an inactive m-line of the same kind), then one new offer.
    /// Subscriptions are checked before anything changes; with no change, `updated` without an
    /// offer.
    fn update_subscription(&mut self, who: Who, txn: &str, upd: Update) -> Result<Outcome, VideoRoomError> {
        let mut wanted = Vec::new();
        for w in &upd.subscribe {
            let no_feed = || err(VideoRoomCode::NoSuchFeed, format!("No such feed ({})", w.feed));
            let p = self.participants.get(&w.feed).ok_or_else(no_feed)?;
            let published = p.published.as_ref().ok_or_else(no_feed)?;
            if let Some(mid) = &w.mid {
                if !published.streams.iter().any(|s| &s.mid == mid) {
                    return Err(err(VideoRoomCode::NoSuchFeed, format!("No such mid '{mid}' in feed ({})", w.feed)));
                }
            }
            for s in published.streams.iter().filter(|s| s.kind != "data") {
                if w.mid.as_ref().is_none_or(|m| *m == s.mid) {
                    wanted.push((w.feed, p.who, p.display.clone(), s.clone()));
                }
            }
        }
        let sub = self.subscriptions.get_mut(&who).ok_or_else(|| err(VideoRoomCode::JoinFirst, "Not a subscriber"))?;
        let mut inactive = Vec::new();
        for u in &upd.unsubscribe {
            for s in sub.streams.iter_mut().filter(|s| s.active) {
                let hit = match (&u.sub_mid, u.feed) {
                    (Some(sub_mid), _) => *sub_mid == s.mid,
                    (None, Some(feed)) => feed == s.feed && u.mid.as_ref().is_none_or(|m| *m == s.feed_mid),
                    (None, None) => false,
                };
                if hit {
                    s.active = false;
                    inactive.push(s.mindex);
                }
            }
        }
        let mut added = Vec::new();
        for (feed, feed_who, display, s) in wanted {
            let mindex = sub.streams.len();
            let stream = SubStream {
                mindex,
                mid: mindex.to_string(),
                kind: s.kind.clone(),
                codec: s.codec.clone().unwrap_or_default(),
                feed,
                feed_who,
                feed_mid: s.mid.clone(),
                feed_display: display,
                active: true,
            };
            sub.streams.push(stream.clone());
            added.push(stream);
        }
        if inactive.is_empty() && added.is_empty() {
            return Ok(Outcome::default().notice(
                who,
                Some(txn),
                serde_json::json!({"videoroom": "updated", "room": self.config.room.0}),
            ));
        }
        let mut out = Outcome::default();
        out.media.push(MediaAction::Renegotiate { who, transaction: Some(txn.to_owned()), inactive, added });
        Ok(out)
    }

    /// A subscriber's new offer is ready: `updated` with its streams and the offer (answering
    /// `txn`, when a request asked for it).
    pub fn renegotiated(&mut self, who: Who, txn: Option<&str>, offer: Jsep) -> Outcome {
        let Some(sub) = self.subscriptions.get(&who) else { return Outcome::default() };
        let streams: Vec<Value> = sub.streams.iter().map(SubStream::entry).collect();
        let ev = serde_json::json!({"videoroom": "updated", "room": self.config.room.0, "streams": streams});
        let mut out = Outcome::default().notice(who, txn, ev);
        if let Some(n) = out.notices.last_mut() {
            n.jsep = Some(offer);
        }
        out
    }

    /// Subscribing failed: the request gets the error and the handle is in no room.
    pub fn subscribe_failed(&mut self, who: Who, txn: &str, e: VideoRoomError) -> Outcome {
        self.subscriptions.remove(&who);
        self.slots.remove(&who);
        let mut out = Outcome::default().notice(who, Some(txn), vr::error(&e));
        out.membership.push(Membership::Rejected(who));
        out
    }

    /// The subscriber's answer is applied: `started`.
    pub fn started(&mut self, who: Who, txn: &str) -> Outcome {
        Outcome::default().notice(
            who,
            Some(txn),
            serde_json::json!({"videoroom": "event", "room": self.config.room.0, "started": "ok"}),
        )
    }

    /// What `who` publishes, if anything.
    pub fn publication(&self, who: Who) -> Option<&Published> {
        match self.slots.get(&who) {
            Some(Slot::Publisher(pid)) => self.participants.get(pid).and_then(|p| p.published.as_ref()),
            _ => None,
        }
    }

    fn join(&mut self, who: Who, txn: &str, j: Join) -> Result<Outcome, VideoRoomError> {
        check_secret(self.config.pin.as_deref(), j.pin.as_deref(), "pin")?;
        let publisher = match j.ptype? {
            Ptype::Publisher(p) => p?,
            Ptype::Subscriber(sub) => return self.join_subscriber(who, txn, sub?),
        };
        if self.config.check_allowed && !j.token.as_ref().is_some_and(|t| self.config.allowed.contains(t)) {
            return Err(err(VideoRoomCode::Unauthorized, "Unauthorized (not in the allowed list)"));
        }
        let PublisherJoin { id, display, metadata } = publisher;
        if let Some(id) = id {
            if self.participants.contains_key(&id) {
                return Err(err(VideoRoomCode::IdExists, format!("User ID {id} already exists")));
            }
        }
        let id = id.unwrap_or_else(|| self.fresh(|s, i| s.participants.contains_key(&i)));
        let private_id = self.fresh(|s, i| s.private_ids.contains(&i));
        let mut out = Outcome::default();
        let publishers: Vec<Value> = self.participants.iter().filter_map(|(id, p)| p.publisher_entry(*id)).collect();
        let attendees = self.config.notify_joining.then(|| {
            self.participants
                .iter()
                .filter(|(_, p)| p.published.is_none())
                .map(|(id, p)| vr::attendee(*id, p.display.as_deref(), p.metadata.as_ref()))
                .collect::<Vec<_>>()
        });
        let joined = vr::joined(vr::Joined {
            room: self.config.room,
            description: &self.config.description,
            id,
            private_id,
            publishers,
            attendees,
        });
        out = out.notice(who, Some(txn), joined);
        if self.config.notify_joining {
            let ev = vr::joining(self.config.room, vr::attendee(id, display.as_deref(), metadata.as_ref()));
            for p in self.participants.values() {
                out = out.notice(p.who, None, ev.clone());
            }
        }
        self.private_ids.insert(private_id);
        self.participants
            .insert(id, Participant { who, private_id, display, metadata, published: None, publishing: false });
        self.slots.insert(who, Slot::Publisher(id));
        out.membership.push(Membership::Joined(who));
        Ok(out)
    }

    fn fresh(&mut self, taken: impl Fn(&Self, ParticipantId) -> bool) -> ParticipantId {
        loop {
            let id = ParticipantId((self.next_id)());
            if id.0 != 0 && !taken(self, id) {
                return id;
            }
        }
    }

    /// Removes a participant and tells everyone; `txn` answers the participant's own `leave`.
    fn depart(&mut self, pid: ParticipantId, how: Departure, txn: Option<&str>) -> Outcome {
        let mut out = Outcome::default();
        let Some(p) = self.participants.remove(&pid) else { return out };
        if p.published.is_some() || p.publishing {
            out.media.push(MediaAction::Close { who: p.who });
        }
        if p.published.is_some() {
            self.deactivate_feed(p.who, &mut out);
        }
        self.private_ids.remove(&p.private_id);
        self.slots.insert(p.who, Slot::Gone);
        let room = self.config.room;
        match how {
            Departure::Kicked => out = out.notice(p.who, None, vr::leaving_ok(room, true)),
            _ if txn.is_some() => out = out.notice(p.who, txn, vr::leaving_ok(room, false)),
            _ => {}
        }
        let ev = vr::departed(room, how, pid, p.display.as_deref(), p.metadata.as_ref());
        for other in self.participants.values() {
            out = out.notice(other.who, None, ev.clone());
        }
        out.membership.push(Membership::Left(p.who));
        out
    }

    /// The handle's PeerConnection or the handle itself is gone.
    pub fn on_gone(&mut self, who: Who, reason: GoneReason) -> Outcome {
        match (self.slots.get(&who).copied(), reason) {
            (Some(Slot::Publisher(pid)), GoneReason::Detached) => {
                let out = self.depart(pid, Departure::Leaving, None);
                self.slots.remove(&who);
                out
            }
            (Some(Slot::Subscriber), _) => {
                self.subscriptions.remove(&who);
                self.slots.insert(who, Slot::Gone);
                let mut out = Outcome::default();
                out.media.push(MediaAction::Close { who });
                out
            }
            (_, GoneReason::Detached) => {
                self.slots.remove(&who);
                Outcome::default()
            }
            // hangup closes the PeerConnection; a publisher stops publishing.
            (_, GoneReason::Hangup) => {
                let mut out = self.unpublished(who, None);
                out.media.push(MediaAction::Close { who });
                out
            }
        }
    }

    pub fn edit(&mut self, e: &EditRoom) -> Result<Value, VideoRoomError> {
        if e.permanent {
            return Err(err(VideoRoomCode::UnknownError, "No configuration file, can't edit room permanently"));
        }
        check_secret(self.config.secret.as_deref(), e.secret.as_deref(), "secret")?;
        self.config.apply_edit(e);
        Ok(vr::edited(self.config.room, false))
    }

    /// Destroys the room: every participant hears `destroyed`.
    pub fn destroy(&mut self, secret: Option<&str>, permanent: bool) -> Result<(Value, Outcome), VideoRoomError> {
        if permanent {
            return Err(err(VideoRoomCode::UnknownError, "No configuration file, can't destroy room permanently"));
        }
        check_secret(self.config.secret.as_deref(), secret, "secret")?;
        let room = self.config.room;
        let mut out = Outcome::default();
        for p in std::mem::take(&mut self.participants).into_values() {
            if p.published.is_some() || p.publishing {
                out.media.push(MediaAction::Close { who: p.who });
            }
            out = out.notice(p.who, None, vr::destroyed(room, None));
            out.membership.push(Membership::Left(p.who));
        }
        self.slots.clear();
        Ok((vr::destroyed(room, Some(false)), out))
    }

    pub fn list_participants(&self) -> Value {
        let list: Vec<ParticipantView<'_>> = self
            .participants
            .iter()
            .map(|(id, p)| ParticipantView {
                id: *id,
                display: p.display.as_deref(),
                metadata: p.metadata.as_ref(),
                publisher: p.published.is_some(),
            })
            .collect();
        vr::participants(self.config.room, &list)
    }

    pub fn allowed(
        &mut self,
        secret: Option<&str>,
        action: AllowedAction,
        tokens: Option<&[String]>,
    ) -> Result<Value, VideoRoomError> {
        check_secret(self.config.secret.as_deref(), secret, "secret")?;
        match action {
            AllowedAction::Enable => self.config.check_allowed = true,
            AllowedAction::Disable => self.config.check_allowed = false,
            AllowedAction::Add => {
                for t in tokens.unwrap_or_default() {
                    if !self.config.allowed.contains(t) {
                        self.config.allowed.push(t.clone());
                    }
                }
            }
            AllowedAction::Remove => {
                let remove = tokens.unwrap_or_default();
                self.config.allowed.retain(|t| !remove.contains(t));
            }
        }
        let list = (action != AllowedAction::Disable).then(|| self.config.allowed.clone());
        Ok(vr::allowed(self.config.room, list))
    }

    pub fn kick(&mut self, secret: Option<&str>, id: ParticipantId) -> Result<(Value, Outcome), VideoRoomError> {
        check_secret(self.config.secret.as_deref(), secret, "secret")?;
        if !self.participants.contains_key(&id) {
            return Err(err(VideoRoomCode::NoSuchFeed, format!("No such user {id} in room {}", self.config.room)));
        }
        let out = self.depart(id, Departure::Kicked, None);
        Ok((vr::success(), out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use shared::ids::RoomId;

    fn room(opts: Value) -> RoomState {
        let m = opts.as_object().cloned().unwrap_or_default();
        let cfg = RoomConfig::from_create(&m, RoomId(5)).unwrap();
        let mut n = 100;
        RoomState::with_ids(
            cfg,
            Box::new(move || {
                n += 1;
                n
            }),
        )
    }

    fn who(h: u64) -> Who {
        Who { session: SessionId(h * 10), handle: HandleId(h) }
    }

    fn join(display: &str) -> Result<AsyncRequest, VideoRoomError> {
        Ok(AsyncRequest::Join(Join {
            room: RoomId(5),
            pin: None,
            token: None,
            ptype: Ok(Ptype::Publisher(Ok(PublisherJoin { id: None, display: Some(display.into()), metadata: None }))),
        }))
    }

    #[test]
    fn join_then_leave_notifies_the_others() {
        let mut r = room(json!({}));
        let a = r.on_async(who(1), "t1", AsyncName::Join, join("alice"), None);
        assert_eq!(a.notices.len(), 1);
        assert_eq!(a.notices[0].data["videoroom"], "joined");
        assert_eq!(a.notices[0].data["id"], 101);
        assert_eq!(a.membership, vec![Membership::Joined(who(1))]);
        r.on_async(who(2), "t2", AsyncName::Join, join("bob"), None);
        assert_eq!(r.participant_count(), 2);
        let l = r.on_async(who(1), "t3", AsyncName::Leave, Ok(AsyncRequest::Leave), None);
        assert_eq!(
            l.notices[0],
            Notice {
                to: who(1),
                transaction: Some("t3".into()),
                data: json!({"videoroom":"event","room":5,"leaving":"ok"}),
                jsep: None,
            }
        );
        assert_eq!(l.notices[1].data, json!({"videoroom":"event","room":5,"display":"alice","leaving":101}));
        assert_eq!(l.notices[1].to, who(2));
        // Joining again on the same handle is refused like Janus.
        let again = r.on_async(who(1), "t4", AsyncName::Join, join("alice"), None);
        assert_eq!(again.notices[0].data["error_code"], 425);
    }

    #[test]
    fn requests_before_join_and_double_join_fail() {
        let mut r = room(json!({}));
        let o = r.on_async(who(1), "t", AsyncName::Leave, Ok(AsyncRequest::Leave), None);
        assert_eq!(o.notices[0].data["error_code"], 424);
        r.on_async(who(1), "t", AsyncName::Join, join("a"), None);
        let o = r.on_async(who(1), "t", AsyncName::Join, join("a"), None);
        assert_eq!(o.notices[0].data["error"], "Already in as a publisher on this handle");
    }

    #[test]
    fn pin_allowed_list_and_id_conflicts_are_enforced() {
        let mut r = room(json!({"pin": "1234", "allowed": ["tok"]}));
        let mut j = |pin: Option<&str>, token: Option<&str>, id: Option<u64>| {
            let req = Ok(AsyncRequest::Join(Join {
                room: RoomId(5),
                pin: pin.map(Into::into),
                token: token.map(Into::into),
                ptype: Ok(Ptype::Publisher(Ok(PublisherJoin {
                    id: id.map(ParticipantId),
                    display: None,
                    metadata: None,
                }))),
            }));
            let h = rand_handle();
            r.on_async(who(h), "t", AsyncName::Join, req, None).notices[0].data.clone()
        };
        assert_eq!(j(None, Some("tok"), None)["error"], "Missing mandatory element (pin)");
        assert_eq!(j(Some("x"), Some("tok"), None)["error"], "Unauthorized (wrong pin)");
        assert_eq!(j(Some("1234"), None, None)["error"], "Unauthorized (not in the allowed list)");
        assert_eq!(j(Some("1234"), Some("tok"), Some(7))["id"], 7);
        assert_eq!(j(Some("1234"), Some("tok"), Some(7))["error_code"], 436);
    }

    fn rand_handle() -> u64 {
        shared::ids::random_id() % 1_000_000 + 10
    }

    #[test]
    fn notify_joining_sends_joining_and_attendees() {
        let mut r = room(json!({"notify_joining": true}));
        r.on_async(who(1), "t", AsyncName::Join, join("alice"), None);
        let o = r.on_async(who(2), "t", AsyncName::Join, join("bob"), None);
        assert_eq!(o.notices[0].data["attendees"], json!([{"id": 101, "display": "alice"}]));
        assert_eq!(o.notices[1].to, who(1));
        assert_eq!(o.notices[1].data, json!({"videoroom":"event","room":5,"joining":{"id":103,"display":"bob"}}));
    }

    #[test]
    fn destroy_and_kick_check_the_secret() {
        let mut r = room(json!({"secret": "s"}));
        r.on_async(who(1), "t", AsyncName::Join, join("alice"), None);
        r.on_async(who(2), "t", AsyncName::Join, join("bob"), None);
        assert_eq!(r.kick(None, ParticipantId(101)).unwrap_err().code, VideoRoomCode::MissingElement);
        assert_eq!(r.kick(Some("x"), ParticipantId(101)).unwrap_err().code, VideoRoomCode::Unauthorized);
        assert_eq!(r.kick(Some("s"), ParticipantId(9)).unwrap_err().reason, "No such user 9 in room 5");
        let (reply, out) = r.kick(Some("s"), ParticipantId(101)).unwrap();
        assert_eq!(reply, json!({"videoroom":"success"}));
        assert_eq!(out.notices[0].data, json!({"videoroom":"event","room":5,"leaving":"ok","reason":"kicked"}));
        assert_eq!(out.notices[1].data, json!({"videoroom":"event","room":5,"display":"alice","kicked":101}));
        let (reply, out) = r.destroy(Some("s"), false).unwrap();
        assert_eq!(reply, json!({"videoroom":"destroyed","room":5,"permanent":false}));
        assert_eq!(
            out.notices,
            vec![Notice { to: who(2), transaction: None, data: json!({"videoroom":"destroyed","room":5}), jsep: None }]
        );
    }

    fn offer() -> Jsep {
        Jsep { kind: JsepType::Offer, sdp: "v=0\r\n".into(), trickle: None }
    }

    fn streams() -> Vec<StreamInfo> {
        vec![
            StreamInfo { kind: "audio".into(), mindex: 0, mid: "0".into(), codec: Some("opus".into()) },
            StreamInfo { kind: "video".into(), mindex: 1, mid: "1".into(), codec: Some("vp8".into()) },
        ]
    }

    #[test]
    fn publishing_announces_the_publisher_and_unpublishing_withdraws_it() {
        let mut r = room(json!({"publishers": 1}));
        r.on_async(who(1), "t", AsyncName::Join, join("alice"), None);
        r.on_async(who(2), "t", AsyncName::Join, join("bob"), None);
        let o =
            r.on_async(who(1), "p", AsyncName::Publish, Ok(AsyncRequest::Media(AsyncName::Publish)), Some(&offer()));
        assert!(matches!(&o.media[..], [MediaAction::Publish { who: w, .. }] if *w == who(1)));
        assert!(o.notices.is_empty(), "configured waits for the answer");
        // A second publisher exceeds the room's limit of one.
        let o2 =
            r.on_async(who(2), "q", AsyncName::Publish, Ok(AsyncRequest::Media(AsyncName::Publish)), Some(&offer()));
        assert_eq!(o2.notices[0].data["error_code"], 432);
        let answer = Jsep { kind: JsepType::Answer, sdp: "v=0\r\n".into(), trickle: None };
        let o = r.published(who(1), "p", streams(), answer.clone());
        assert_eq!(o.notices[0].data["configured"], "ok");
        assert_eq!(o.notices[0].data["video_codec"], "vp8");
        assert_eq!(o.notices[0].jsep, Some(answer));
        assert_eq!(o.notices[1].to, who(2));
        assert_eq!(o.notices[1].data["publishers"][0]["id"], 101);
        assert_eq!(o.notices[1].data["publishers"][0]["streams"][1]["mid"], "1");
        // A late joiner sees the publisher in `joined`.
        let j = r.on_async(who(3), "t", AsyncName::Join, join("carol"), None);
        assert_eq!(j.notices[0].data["publishers"][0]["display"], "alice");
        let u = r.on_async(who(1), "u", AsyncName::Unpublish, Ok(AsyncRequest::Unpublish), None);
        assert_eq!(u.notices[0].data["unpublished"], "ok");
        assert_eq!(u.notices[1].data["unpublished"], 101);
        assert_eq!(u.media, vec![MediaAction::Close { who: who(1) }]);
        let again = r.on_async(who(1), "u", AsyncName::Unpublish, Ok(AsyncRequest::Unpublish), None);
        assert_eq!(again.notices[0].data["error_code"], 435);
    }

    fn subscribe_to(feed: u64) -> Result<AsyncRequest, VideoRoomError> {
        Ok(AsyncRequest::Join(Join {
            room: RoomId(5),
            pin: None,
            token: None,
            ptype: Ok(Ptype::Subscriber(Ok(shared::janus::videoroom::SubscriberJoin {
                streams: vec![shared::janus::videoroom::SubscribeStream { feed: ParticipantId(feed), mid: None }],
                legacy: false,
            }))),
        }))
    }

    /// A room where alice (handle 1, id 101) publishes audio and video.
    fn alice_publishing() -> RoomState {
        let mut r = room(json!({}));
        r.on_async(who(1), "t", AsyncName::Join, join("alice"), None);
        r.on_async(who(1), "p", AsyncName::Publish, Ok(AsyncRequest::Media(AsyncName::Publish)), Some(&offer()));
        let answer = Jsep { kind: JsepType::Answer, sdp: "v=0\r\n".into(), trickle: None };
        r.published(who(1), "p", streams(), answer);
        r
    }

    /// Bob (handle 3) joins and publishes audio and video; returns his id.
    fn bob_publishing(r: &mut RoomState) -> u64 {
        let joined = r.on_async(who(3), "t", AsyncName::Join, join("bob"), None);
        let bob = joined.notices[0].data["id"].as_u64().unwrap();
        r.on_async(who(3), "p", AsyncName::Publish, Ok(AsyncRequest::Media(AsyncName::Publish)), Some(&offer()));
        let answer = Jsep { kind: JsepType::Answer, sdp: "v=0\r\n".into(), trickle: None };
        r.published(who(3), "p", streams(), answer);
        bob
    }

    #[test]
    fn a_subscriber_adds_and_removes_streams_with_one_new_offer_each_time() {
        use shared::janus::videoroom::{SubscribeStream, UnsubscribeStream};
        let mut r = alice_publishing();
        let bob = bob_publishing(&mut r);
        r.on_async(who(2), "s", AsyncName::Join, subscribe_to(101), None);
        let update = |subscribe: Vec<SubscribeStream>, unsubscribe: Vec<UnsubscribeStream>| {
            Ok(AsyncRequest::Update(Update { subscribe, unsubscribe }))
        };
        // Subscribing to bob appends his two streams as new m-lines.
        let o = r.on_async(
            who(2),
            "u",
            AsyncName::Subscribe,
            update(vec![SubscribeStream { feed: ParticipantId(bob), mid: None }], vec![]),
            None,
        );
        let [MediaAction::Renegotiate { who: w, transaction, inactive, added }] = &o.media[..] else {
            panic!("{:?}", o.media)
        };
        assert_eq!((*w, transaction.as_deref(), inactive.len()), (who(2), Some("u"), 0));
        assert_eq!(added.iter().map(|s| (s.mindex, s.feed.0)).collect::<Vec<_>>(), vec![(2, bob), (3, bob)]);
        let offer_jsep = Jsep { kind: JsepType::Offer, sdp: "v=0\r\n".into(), trickle: None };
        let up = r.renegotiated(who(2), Some("u"), offer_jsep);
        assert_eq!(up.notices[0].transaction.as_deref(), Some("u"));
        assert_eq!(up.notices[0].data["streams"].as_array().unwrap().len(), 4);
        assert_eq!(up.notices[0].data["streams"][3]["feed_id"], bob);
        // Unsubscribing alice's feed makes her m-lines inactive.
        let unsub_alice = UnsubscribeStream { feed: Some(ParticipantId(101)), mid: None, sub_mid: None };
        let o = r.on_async(who(2), "v", AsyncName::Unsubscribe, update(vec![], vec![unsub_alice]), None);
        assert!(
            matches!(&o.media[..], [MediaAction::Renegotiate { inactive, added, .. }] if *inactive == vec![0, 1] && added.is_empty()),
            "{:?}",
            o.media
        );
        // Nothing to change: `updated` without an offer.
        let none = UnsubscribeStream { feed: None, mid: None, sub_mid: Some("9".into()) };
        let o = r.on_async(who(2), "w", AsyncName::Unsubscribe, update(vec![], vec![none]), None);
        assert_eq!(o.notices[0].data, json!({"videoroom": "updated", "room": 5}));
        assert!(o.media.is_empty());
        // Unknown feeds are refused before anything changes.
        let o = r.on_async(
            who(2),
            "x",
            AsyncName::Update,
            update(vec![SubscribeStream { feed: ParticipantId(999), mid: None }], vec![]),
            None,
        );
        assert_eq!(o.notices[0].data["error"], "No such feed (999)");
    }

    #[test]
    fn when_a_publisher_goes_its_subscribers_get_inactive_streams_and_a_new_offer() {
        let mut r = alice_publishing();
        r.on_async(who(2), "s", AsyncName::Join, subscribe_to(101), None);
        let offer_jsep = Jsep { kind: JsepType::Offer, sdp: "v=0\r\n".into(), trickle: None };
        let attached = r.subscribed(who(2), "s", offer_jsep.clone());
        assert_eq!(attached.notices[0].data["streams"][0]["active"], true);
        // Unpublishing (as leaving, or a hangup) asks for the subscriber's renegotiation...
        let u = r.on_async(who(1), "u", AsyncName::Unpublish, Ok(AsyncRequest::Unpublish), None);
        let renegotiate =
            MediaAction::Renegotiate { who: who(2), transaction: None, inactive: vec![0, 1], added: vec![] };
        assert!(u.media.contains(&renegotiate), "{:?}", u.media);
        assert!(u.notices.iter().all(|n| n.to != who(2)), "nothing for the subscriber before its offer");
        // ...and once the offer is ready, `updated` carries it with the streams inactive.
        let up = r.renegotiated(who(2), None, offer_jsep.clone());
        assert_eq!(up.notices[0].to, who(2));
        assert_eq!(up.notices[0].transaction, None);
        assert_eq!(up.notices[0].jsep, Some(offer_jsep));
        assert_eq!(
            up.notices[0].data,
            json!({"videoroom": "updated", "room": 5, "streams": [
                {"type": "audio", "active": false, "mindex": 0, "mid": "0", "ready": false, "send": true},
                {"type": "video", "active": false, "mindex": 1, "mid": "1", "ready": false, "send": true}]})
        );
        // Nothing more to renegotiate when the gone publisher leaves too.
        let l = r.on_async(who(1), "l", AsyncName::Leave, Ok(AsyncRequest::Media(AsyncName::Leave)), None);
        assert!(!l.media.iter().any(|m| matches!(m, MediaAction::Renegotiate { .. })), "{:?}", l.media);
    }

    #[test]
    fn a_subscriber_switches_sources_without_renegotiating() {
        let mut r = alice_publishing();
        let bob = bob_publishing(&mut r);
        r.on_async(who(2), "s", AsyncName::Join, subscribe_to(101), None);
        let switch = |streams: Vec<(u64, &str, &str)>| {
            Ok(AsyncRequest::Switch(shared::janus::videoroom::Switch {
                streams: streams
                    .into_iter()
                    .map(|(feed, mid, sub_mid)| SwitchStream {
                        feed: ParticipantId(feed),
                        mid: mid.into(),
                        sub_mid: sub_mid.into(),
                    })
                    .collect(),
                legacy_feed: None,
            }))
        };
        // Errors are checked for every entry before anything changes.
        let e = r.on_async(who(2), "x", AsyncName::Switch, switch(vec![(bob, "1", "1"), (999, "0", "0")]), None);
        assert_eq!(e.notices[0].data["error"], "No such feed (999)");
        let e = r.on_async(who(2), "x", AsyncName::Switch, switch(vec![(bob, "7", "1")]), None);
        assert_eq!(e.notices[0].data["error"], format!("No such mid '7' in feed ({bob})"));
        assert!(e.media.is_empty());
        // Bob's video onto m-line 1; audio onto video's m-line is another kind and not counted.
        let o = r.on_async(who(2), "y", AsyncName::Switch, switch(vec![(bob, "1", "1"), (bob, "0", "1")]), None);
        let d = &o.notices[0].data;
        assert_eq!((d["switched"].as_str(), d["changes"].as_u64()), (Some("ok"), Some(1)), "{d}");
        assert_eq!(d["streams"][0]["feed_id"], 101, "audio stays alice's");
        assert_eq!(d["streams"][1]["feed_id"], bob);
        assert_eq!(d["streams"][1]["feed_display"], "bob");
        assert_eq!(
            o.media,
            vec![MediaAction::Switch {
                who: who(2),
                sources: vec![SwitchSource { mindex: 1, feed_who: who(3), kind: "video".into() }]
            }]
        );
        // The deprecated form: all of a publisher's streams.
        let legacy = Ok(AsyncRequest::Switch(shared::janus::videoroom::Switch {
            streams: vec![],
            legacy_feed: Some(ParticipantId(101)),
        }));
        let o = r.on_async(who(2), "z", AsyncName::Switch, legacy, None);
        assert_eq!(o.notices[0].data["changes"], 2);
        // Bob leaving now renegotiates nothing: no m-line is his any more.
        let l = r.on_async(who(3), "l", AsyncName::Leave, Ok(AsyncRequest::Leave), None);
        assert!(!l.media.iter().any(|m| matches!(m, MediaAction::Renegotiate { .. })), "{:?}", l.media);
    }

    #[test]
    fn a_subscriber_pauses_and_resumes() {
        let mut r = alice_publishing();
        let o = r.on_async(who(2), "s", AsyncName::Join, subscribe_to(101), None);
        assert!(matches!(&o.media[..], [MediaAction::Subscribe { streams, .. }] if streams.len() == 2));
        let p = r.on_async(who(2), "x", AsyncName::Pause, Ok(AsyncRequest::Media(AsyncName::Pause)), None);
        assert_eq!(p.notices[0].data["paused"], "ok");
        assert_eq!(p.media, vec![MediaAction::Pause { who: who(2), paused: true }]);
        let s = r.on_async(who(2), "y", AsyncName::Start, Ok(AsyncRequest::Media(AsyncName::Start)), None);
        assert_eq!(s.notices[0].data["started"], "ok");
        assert_eq!(s.media, vec![MediaAction::Pause { who: who(2), paused: false }]);
        let bad = r.on_async(who(3), "z", AsyncName::Join, subscribe_to(999), None);
        assert_eq!(bad.notices[0].data["error"], "No such feed (999)");
    }

    #[test]
    fn detach_makes_the_participant_leave() {
        let mut r = room(json!({}));
        r.on_async(who(1), "t", AsyncName::Join, join("alice"), None);
        r.on_async(who(2), "t", AsyncName::Join, join("bob"), None);
        let o = r.on_gone(who(2), GoneReason::Detached);
        assert_eq!(o.notices.len(), 1);
        assert_eq!(o.notices[0].to, who(1));
        assert_eq!(o.notices[0].data["leaving"], 103);
        assert_eq!(r.participant_count(), 1);
        assert!(r.on_gone(who(1), GoneReason::Hangup).notices.is_empty());
    }

    #[test]
    fn allowed_actions_edit_the_list() {
        let mut r = room(json!({}));
        let add = vec!["a".to_string(), "b".to_string()];
        assert_eq!(r.allowed(None, AllowedAction::Add, Some(&add)).unwrap()["allowed"], json!(["a", "b"]));
        assert!(r.allowed(None, AllowedAction::Disable, None).unwrap().get("allowed").is_none());
        let rm = vec!["a".to_string()];
        assert_eq!(r.allowed(None, AllowedAction::Remove, Some(&rm)).unwrap()["allowed"], json!(["b"]));
    }
}
