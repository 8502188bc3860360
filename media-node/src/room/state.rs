//! The VideoRoom state machine of one room, without I/O: membership, ids, access checks and the
//! events each transition produces. `RoomActor` is a thin shell around it.

use crate::media::talk::TalkSettings;
use shared::ids::{HandleId, ParticipantId, SessionId};
use shared::janus::errors::{VideoRoomCode, VideoRoomError};
use shared::janus::request::{Jsep, JsepType};
use shared::janus::videoroom::{
    AsyncName, AsyncRequest, Attendee, Departure, Join, Ptype, PublisherEntry, PublisherJoin, RoomConfig,
    VideoRoomEvent as Event,
};
use shared::media::Mid;
use shared::wire::GoneReason;
use std::collections::{BTreeMap, HashMap, HashSet};

mod administration;
mod forwarders;
mod publishing;
mod query;
mod recording;
mod remote;
mod subscription;
mod updates;

pub use forwarders::{ForwardPlan, Forwarder};
pub use publishing::Published;
use publishing::StreamList;
pub use recording::Recording;
pub use remote::Remotization;
use subscription::Subscription;
pub use subscription::{Simulcast, SubStream, SwitchSource};

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
    pub data: Event,
    /// A JSEP (the publisher's answer) the shell attaches to this event.
    pub jsep: Option<Jsep>,
}

/// Work on PeerConnections that a transition asks the shell to do.
#[derive(Clone, Debug, PartialEq)]
pub enum MediaAction {
    /// Answer this publisher's offer; report back with [`RoomState::published`]. `talk`: detect
    /// talking with these settings (the room's `audiolevel_event`).
    /// `codecs`: the publisher's own `audiocodec` and `videocodec`, if it asked.
    Publish {
        who: Who,
        transaction: String,
        offer: String,
        rid_order: Option<String>,
        talk: Option<TalkSettings>,
        codecs: (Option<String>, Option<String>),
    },
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
    /// `restart`: with new ICE credentials (an ICE restart the subscriber asked for).
    Renegotiate { who: Who, transaction: Option<String>, inactive: Vec<usize>, added: Vec<SubStream>, restart: bool },
    /// Feed these m-lines of this subscriber from other publishers' streams (no renegotiation).
    Switch { who: Who, sources: Vec<SwitchSource> },
    /// This publisher's bitrate cap, sent to it as REMB (its `configure` `bitrate`).
    Bitrate { who: Who, bitrate: u64 },
    /// Ask this publisher for a keyframe (its `configure` `keyframe`).
    Keyframe { who: Who },
    /// Relay (`true`) or hold this publisher's stream `mid` (its `configure` `send`).
    Sending { who: Who, mid: Mid, send: bool },
    /// Mute (`moderate`) or unmute this publisher's stream `mid` for all its subscribers.
    Mute { who: Who, mid: Mid, muted: bool },
    /// Send (`true`) or hold these m-lines (index, send) of this subscriber.
    Send { who: Who, streams: Vec<(usize, bool)> },
    /// Relay these publishers' data channel messages on this subscriber's data m-line.
    AddData { who: Who, sources: Vec<(ParticipantId, Who)> },
    /// Stop relaying these publishers' data to this subscriber.
    RemoveData { who: Who, feeds: Vec<ParticipantId> },
    /// New simulcast targets for these m-lines of this subscriber (`configure`).
    Layers { who: Who, streams: Vec<(usize, Simulcast)> },
    /// The playout delay these m-lines of this subscriber carry (none: the publisher's).
    Delays { who: Who, streams: Vec<(usize, Option<[u8; 3]>)> },
    /// The playout delay this publisher's video stream `mid` carries to every subscriber
    /// (none: what the publisher sends).
    PublisherDelay { who: Who, mid: Mid, delay: Option<[u8; 3]> },
    /// This publisher's RTP forwarders end (it stopped publishing or left).
    StopForwarders { who: Who },
    /// Record this publisher's streams (each to its own `.mjr` file).
    Record { who: Who, recording: Recording },
    /// Stop (and close) this publisher's recordings.
    StopRecording { who: Who },
}

/// A change the shell must mirror outside (handle binding in the store).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Membership {
    Joined(Who),
    Left(Who),
    /// A join that failed: the handle was routed here but is not a member.
    Rejected(Who),
}

impl Membership {
    pub fn who(&self) -> Who {
        match self {
            Membership::Joined(w) | Membership::Left(w) | Membership::Rejected(w) => *w,
        }
    }
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
        self.notice(who, Some(txn), Event::Error(e.clone()))
    }

    fn notice(mut self, to: Who, transaction: Option<&str>, data: Event) -> Self {
        self.notices.push(Notice { to, transaction: transaction.map(str::to_owned), data, jsep: None });
        self
    }
}

#[derive(Clone, Debug)]
struct Participant {
    who: Who,
    private_id: ParticipantId,
    display: Option<String>,
    metadata: Option<serde_json::Value>,
    /// What it publishes, once its PeerConnection is up.
    published: Option<Published>,
    /// An offer is being answered (a second `publish` meanwhile is refused).
    publishing: bool,
    /// The stream descriptions that offer's `publish` gave, for its streams by mid.
    descriptions: Vec<(Mid, String)>,
    /// Its streams are recorded (Janus's `recording_active`), into files named from
    /// `recording_base` when it gave one.
    recording: bool,
    recording_base: Option<String>,
    /// Its own `audio_active_packets` and `audio_level_average` (0: the room's).
    talk: (u64, u64),
    /// Its `publish_remotely`s, by remote id.
    remotes: BTreeMap<String, Remotization>,
}

impl Participant {
    /// Janus's publisher entry (`publishers` event, `joined`), with `talking` in `joined` when
    /// it sends audio levels.
    fn publisher_entry(&self, id: ParticipantId, list: StreamList, opus_fec: bool) -> Option<PublisherEntry> {
        let p = self.published.as_ref()?;
        Some(PublisherEntry {
            id,
            display: self.display.clone(),
            metadata: self.metadata.clone(),
            publication: p.publication(list, opus_fec),
            talking: (list == StreamList::Joined && p.has_audio_levels()).then(|| p.is_talking()),
        })
    }

    fn attendee(&self, id: ParticipantId) -> Attendee {
        Attendee { id, display: self.display.clone(), metadata: self.metadata.clone() }
    }
}

/// What a handle is in this room.
#[derive(Clone, Debug, PartialEq, Eq)]
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
    /// Each publisher's RTP forwarders.
    forwarders: BTreeMap<ParticipantId, Vec<Forwarder>>,
    /// Id source, injectable so tests are deterministic.
    next_id: Box<dyn FnMut() -> u64 + Send>,
}

fn err(code: VideoRoomCode, reason: impl Into<String>) -> VideoRoomError {
    VideoRoomError::new(code, reason)
}

/// A `configure`'s entries, checked before anything changes (Janus's order): a mid may be left
/// out only when there is a single entry, and each named one must be `known` (else 428 with
/// `unknown`'s reason).
fn check_mids(
    c: &shared::janus::videoroom::Configure,
    known: impl Fn(&str) -> bool,
    unknown: impl Fn(&str) -> String,
) -> Result<(), VideoRoomError> {
    for e in &c.streams {
        match &e.mid {
            None if c.streams.len() > 1 => {
                return Err(err(VideoRoomCode::InvalidElement, "Invalid value (mid can't be null in a streams array)"))
            }
            Some(m) if !known(m) => return Err(err(VideoRoomCode::NoSuchFeed, unknown(m))),
            _ => {}
        }
    }
    Ok(())
}

/// Janus's `JANUS_CHECK_SECRET`: no secret configured means no check.
fn check_secret(expected: Option<&str>, given: Option<&str>, member: &str) -> Result<(), VideoRoomError> {
    match (expected, given) {
        (None, _) => Ok(()),
        (Some(_), None) => Err(err(VideoRoomCode::MissingElement, format!("Missing mandatory element ({member})"))),
        (Some(e), Some(g)) if shared::secret::same(e, g) => Ok(()),
        (Some(_), Some(_)) => Err(err(VideoRoomCode::Unauthorized, format!("Unauthorized (wrong {member})"))),
    }
}

/// A media request Portunus does not serve where it arrived fails loudly, never silently.
pub fn media_unavailable(name: AsyncName) -> VideoRoomError {
    err(
        VideoRoomCode::UnknownError,
        format!("Request '{}' is not supported here by Portunus", format!("{name:?}").to_ascii_lowercase()),
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
            forwarders: BTreeMap::new(),
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

    /// Its participants and handles, as the node and its worker count them.
    pub fn occupied(&self) -> crate::workers::Occupied {
        let members = self.participants.values().filter(|p| !p.who.is_remote()).count();
        crate::workers::Occupied {
            participants: self.participant_count(),
            handles: (members + self.subscriptions.len()) as u64,
        }
    }

    /// Handles that have joined and not left (remote publishers have none).
    pub fn members(&self) -> Vec<Who> {
        self.participants.values().map(|p| p.who).filter(|w| !w.is_remote()).collect()
    }

    /// Whether `who` came to this room (and may have left it since).
    pub fn knows(&self, who: Who) -> bool {
        self.slots.contains_key(&who)
    }

    /// Every handle in the room: its publishers' and its subscribers'.
    pub fn handles(&self) -> Vec<Who> {
        let mut all = self.members();
        all.extend(self.subscriptions.keys().copied());
        all
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
                let mut out = Outcome::default().notice(who, Some(txn), Event::Error(e));
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
        match self.slots.get(&who).cloned() {
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
                    let room = self.config.room.clone();
                    let mut out = Outcome::default().notice(who, Some(txn), Event::Paused { room });
                    out.media.push(MediaAction::Pause { who, paused: true });
                    Ok(out)
                }
                AsyncName::Leave => {
                    self.subscriptions.remove(&who);
                    self.slots.insert(who, Slot::Gone);
                    let room = self.config.room.clone();
                    let mut out = Outcome::default().notice(who, Some(txn), Event::Left { room });
                    out.media.push(MediaAction::Close { who });
                    out.membership.push(Membership::Left(who));
                    Ok(out)
                }
                AsyncName::Switch => match parsed? {
                    AsyncRequest::Switch(sw) => self.switch(who, txn, sw),
                    _ => Err(media_unavailable(name)),
                },
                AsyncName::Configure => match parsed? {
                    AsyncRequest::Configure(c) => self.configure_subscription(who, txn, c),
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
                AsyncName::Configure | AsyncName::Publish => {
                    let changes = match parsed {
                        Ok(AsyncRequest::Configure(c)) => c,
                        Err(e) => return Err(e),
                        _ => Default::default(),
                    };
                    self.configure(who, pid, txn, name, jsep, changes)
                }
                _ => Err(err(
                    VideoRoomCode::InvalidRequest,
                    format!("Unknown request '{}'", format!("{name:?}").to_ascii_lowercase()),
                )),
            },
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
        let PublisherJoin { id, display, metadata, audio_active_packets, audio_level_average } = publisher;
        if let Some(id) = &id {
            if self.participants.contains_key(id) {
                return Err(err(VideoRoomCode::IdExists, format!("User ID {id} already exists")));
            }
        }
        let id = id.unwrap_or_else(|| self.fresh(|s, i| s.participants.contains_key(i)));
        // Janus's private ids are numbers even under `string_ids`.
        let private_id = self.fresh_num(|s, i| s.private_ids.contains(i));
        let mut out = Outcome::default();
        let fec = self.config.opus_fec;
        let publishers: Vec<PublisherEntry> = self
            .participants
            .iter()
            .filter_map(|(id, p)| p.publisher_entry(id.clone(), StreamList::Joined, fec))
            .collect();
        let attendees = self.config.notify_joining.then(|| {
            self.participants
                .iter()
                .filter(|(_, p)| p.published.is_none())
                .map(|(id, p)| p.attendee(id.clone()))
                .collect::<Vec<_>>()
        });
        let joined = Event::Joined {
            room: self.config.room.clone(),
            description: self.config.description.clone(),
            id: id.clone(),
            private_id: private_id.clone(),
            publishers,
            attendees,
        };
        out = out.notice(who, Some(txn), joined);
        if self.config.notify_joining {
            let who = Attendee { id: id.clone(), display: display.clone(), metadata: metadata.clone() };
            let ev = Event::Joining { room: self.config.room.clone(), who };
            for p in self.participants.values() {
                out = out.notice(p.who, None, ev.clone());
            }
        }
        self.private_ids.insert(private_id.clone());
        self.participants.insert(
            id.clone(),
            Participant {
                who,
                private_id,
                display,
                metadata,
                published: None,
                publishing: false,
                descriptions: Vec::new(),
                recording: false,
                recording_base: None,
                talk: (audio_active_packets, audio_level_average),
                remotes: BTreeMap::new(),
            },
        );
        self.slots.insert(who, Slot::Publisher(id));
        out.membership.push(Membership::Joined(who));
        Ok(out)
    }

    /// A new participant id nobody holds: a string one in a room named by a string
    /// (`string_ids`), as Janus makes them.
    fn fresh(&mut self, taken: impl Fn(&Self, &ParticipantId) -> bool) -> ParticipantId {
        if !self.config.room.0.is_text() {
            return self.fresh_num(taken);
        }
        loop {
            let id = ParticipantId::random_of(true);
            if !taken(self, &id) {
                return id;
            }
        }
    }

    /// A new number id nobody holds.
    fn fresh_num(&mut self, taken: impl Fn(&Self, &ParticipantId) -> bool) -> ParticipantId {
        loop {
            let id = ParticipantId::num((self.next_id)());
            if !id.0.is_unset() && !taken(self, &id) {
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
        self.drop_forwarders(pid.clone(), p.who, &mut out);
        if p.recording && p.published.is_some() {
            out.media.push(MediaAction::StopRecording { who: p.who });
        }
        self.private_ids.remove(&p.private_id);
        self.slots.insert(p.who, Slot::Gone);
        let room = &self.config.room.clone();
        match how {
            Departure::Kicked => out = out.notice(p.who, None, Event::LeavingOk { room: room.clone(), kicked: true }),
            _ if txn.is_some() => out = out.notice(p.who, txn, Event::LeavingOk { room: room.clone(), kicked: false }),
            _ => {}
        }
        let ev = Event::Departed { room: room.clone(), how, id: pid, display: p.display, metadata: p.metadata };
        for other in self.participants.values() {
            out = out.notice(other.who, None, ev.clone());
        }
        out.membership.push(Membership::Left(p.who));
        out
    }

    /// Tells everyone but the publisher itself what it publishes (Janus's `publishers`).
    fn announce(&self, publisher: Who, entry: Option<PublisherEntry>, out: &mut Outcome) {
        let Some(entry) = entry else { return };
        let ev = Event::Publishers { room: self.config.room.clone(), publishers: vec![entry] };
        for other in self.participants.values().filter(|o| o.who != publisher) {
            out.notices.push(Notice { to: other.who, transaction: None, data: ev.clone(), jsep: None });
        }
    }

    /// The handle's PeerConnection or the handle itself is gone.
    pub fn on_gone(&mut self, who: Who, reason: GoneReason) -> Outcome {
        match (self.slots.get(&who).cloned(), reason) {
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
}

#[cfg(test)]
mod tests;
