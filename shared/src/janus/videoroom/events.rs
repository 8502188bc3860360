//! What the VideoRoom says to a handle (`plugindata.data`): replies to synchronous requests and
//! events, typed, and their Janus JSON — Janus's field names, written here and nowhere else.
//!
//! A field Janus leaves out when it has nothing to say is an `Option` (or a `bool` written only
//! when true, where Janus never writes `false`).

use crate::ids::{ParticipantId, RoomId};
use crate::janus::errors::VideoRoomError;
use crate::janus::videoroom::RoomConfig;
use crate::media::{MediaKind, Mid, PlayoutDelay};
use serde_json::Value;

mod json;
#[cfg(test)]
mod tests;

pub use json::error;

/// A VideoRoom reply or event.
#[derive(Clone, Debug, PartialEq)]
pub enum VideoRoomEvent {
    Error(VideoRoomError),
    // Replies to synchronous requests.
    Created {
        room: RoomId,
        permanent: bool,
    },
    Edited {
        room: RoomId,
        permanent: bool,
    },
    /// The reply to `destroy` (with `permanent`) and the event every participant gets (without).
    Destroyed {
        room: RoomId,
        permanent: Option<bool>,
    },
    Exists {
        room: RoomId,
        exists: bool,
    },
    /// `list`: each room with its participant count.
    List(Vec<(RoomConfig, u64)>),
    /// A bare `{"videoroom":"success"}` (`kick`, `moderate`, remote publisher changes).
    Success,
    /// `allowed`: the list, unless the check was disabled.
    Allowed {
        room: RoomId,
        allowed: Option<Vec<String>>,
    },
    Participants {
        room: RoomId,
        participants: Vec<ParticipantEntry>,
    },
    RtpForward {
        room: RoomId,
        publisher_id: ParticipantId,
        forwarders: Vec<Forwarder>,
    },
    StopRtpForward {
        room: RoomId,
        publisher_id: ParticipantId,
        stream_id: u32,
    },
    Forwarders {
        room: RoomId,
        publishers: Vec<PublisherForwarders>,
    },
    /// `enable_recording`.
    Recording {
        record: bool,
    },
    /// `add_remote_publisher`: the ports the other server sends to.
    RemotePublisherAdded {
        room: RoomId,
        id: ParticipantId,
        port: u16,
        rtcp_port: u16,
    },
    /// `publish_remotely`, `unpublish_remotely` (`remote_id: None`).
    Remote {
        room: RoomId,
        id: ParticipantId,
        remote_id: Option<String>,
    },
    /// `listremotes`.
    Remotes {
        room: RoomId,
        id: ParticipantId,
        list: Vec<RemoteEntry>,
    },
    // Events.
    Joined {
        room: RoomId,
        description: String,
        id: ParticipantId,
        private_id: ParticipantId,
        publishers: Vec<PublisherEntry>,
        /// With `notify_joining`: the participants that do not publish.
        attendees: Option<Vec<Attendee>>,
    },
    Joining {
        room: RoomId,
        who: Attendee,
    },
    Publishers {
        room: RoomId,
        publishers: Vec<PublisherEntry>,
    },
    /// What the others hear when a participant leaves, is kicked, or unpublishes.
    Departed {
        room: RoomId,
        how: Departure,
        id: ParticipantId,
        display: Option<String>,
        metadata: Option<Value>,
    },
    /// `{"leaving":"ok"}` to the participant itself (`reason: "kicked"` when it was).
    LeavingOk {
        room: RoomId,
        kicked: bool,
    },
    UnpublishedOk {
        room: RoomId,
    },
    /// `configured`; a publisher whose offer was just answered also hears what it publishes.
    Configured {
        room: RoomId,
        publication: Option<Publication>,
    },
    /// A publisher changed its display name (Janus sends no room here).
    Renamed {
        id: ParticipantId,
        display: String,
    },
    /// A stream losing packets: a publisher's carries its bitrate cap.
    SlowLink {
        current_bitrate: Option<u64>,
    },
    /// `talking` / `stopped-talking`.
    Talking {
        room: RoomId,
        id: ParticipantId,
        mindex: usize,
        mid: Mid,
        talking: bool,
        average: f32,
    },
    Moderation {
        room: RoomId,
        id: ParticipantId,
        mid: Mid,
        muted: bool,
    },
    Paused {
        room: RoomId,
    },
    Left {
        room: RoomId,
    },
    Started {
        room: RoomId,
    },
    /// A subscription's offer; `legacy` when it joined with the deprecated `feed`.
    Attached {
        room: RoomId,
        legacy: Option<LegacyFeed>,
        streams: Vec<SubscriberStream>,
    },
    Switched {
        room: RoomId,
        changes: usize,
        streams: Vec<SubscriberStream>,
    },
    /// A subscription changed: with its streams when a new offer comes with it.
    Updated {
        room: RoomId,
        streams: Option<Vec<SubscriberStream>>,
    },
    /// A change waits for the answer to the previous offer.
    Updating {
        room: RoomId,
    },
    /// A layered stream now relays another layer (`substream`/`temporal`, or
    /// `spatial_layer`/`temporal_layer` for VP9 SVC).
    Layer {
        room: RoomId,
        mid: Mid,
        svc: bool,
        spatial: Option<i8>,
        temporal: Option<i8>,
    },
}

/// How a participant went, as the others hear it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Departure {
    Leaving,
    Kicked,
    Unpublished,
}

/// `{id, display?, metadata?}`: a participant in `attendees` and `joining`.
#[derive(Clone, Debug, PartialEq)]
pub struct Attendee {
    pub id: ParticipantId,
    pub display: Option<String>,
    pub metadata: Option<Value>,
}

/// A participant as `listparticipants` shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct ParticipantEntry {
    pub id: ParticipantId,
    pub display: Option<String>,
    pub metadata: Option<Value>,
    pub publisher: bool,
    /// A remote publisher (`add_remote_publisher`).
    pub remote: bool,
    /// Whether it is talking, for a publisher sending audio levels.
    pub talking: Option<bool>,
}

/// A publisher in `publishers` and `joined`.
#[derive(Clone, Debug, PartialEq)]
pub struct PublisherEntry {
    pub id: ParticipantId,
    pub display: Option<String>,
    pub metadata: Option<Value>,
    pub publication: Publication,
    /// In `joined`, for a publisher sending audio levels.
    pub talking: Option<bool>,
}

/// What a publisher publishes: the codecs of its first audio and video stream, and its streams.
#[derive(Clone, Debug, PartialEq)]
pub struct Publication {
    pub audio_codec: Option<String>,
    pub video_codec: Option<String>,
    pub streams: Vec<PublisherStream>,
}

/// A publisher's stream. Which flags are set depends on the list it is in (the room state
/// decides); a disabled stream carries nothing but its place.
#[derive(Clone, Debug, PartialEq)]
pub struct PublisherStream {
    pub kind: MediaKind,
    pub mindex: usize,
    pub mid: Mid,
    pub disabled: bool,
    pub description: Option<String>,
    pub codec: Option<String>,
    /// `vp9_profile` / `h264_profile`.
    pub profile: Option<CodecProfile>,
    pub stereo: bool,
    pub fec: bool,
    pub dtx: bool,
    pub talking: Option<bool>,
    pub moderated: bool,
    pub simulcast: bool,
    pub svc: bool,
}

impl PublisherStream {
    /// A stream with nothing but its place and kind set.
    pub fn new(kind: MediaKind, mindex: usize, mid: Mid) -> Self {
        Self {
            kind,
            mindex,
            mid,
            disabled: false,
            description: None,
            codec: None,
            profile: None,
            stereo: false,
            fec: false,
            dtx: false,
            talking: None,
            moderated: false,
            simulcast: false,
            svc: false,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum CodecProfile {
    Vp9(String),
    H264(String),
}

/// The publisher a subscription made with the deprecated `feed` names.
#[derive(Clone, Debug, PartialEq)]
pub struct LegacyFeed {
    pub id: ParticipantId,
    pub display: Option<String>,
    pub metadata: Option<Value>,
}

/// A subscription's stream in `attached`, `updated`, `switched`.
#[derive(Clone, Debug, PartialEq)]
pub struct SubscriberStream {
    pub kind: MediaKind,
    pub active: bool,
    pub mindex: usize,
    pub mid: Mid,
    /// The client's name for it, given when subscribing.
    pub crossrefid: Option<String>,
    /// Its m-line was answered, and it still has a source (Janus's `ready`).
    pub ready: bool,
    pub send: bool,
    pub source: StreamSource,
}

/// What a subscription's stream carries.
// A listing is built per event and written out at once, never kept in bulk: the feed's fields
// stay inline.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum StreamSource {
    /// The data m-line: every publisher whose messages it relays.
    Data { sources: Vec<ParticipantId> },
    /// Nothing any more (its publisher went): an inactive m-line.
    None,
    Feed {
        id: ParticipantId,
        display: Option<String>,
        /// Its publisher's `metadata`.
        metadata: Option<Value>,
        mid: Mid,
        /// Its publisher stream's description.
        description: Option<String>,
        codec: String,
        /// Its publisher stream's H.264 or VP9 profile.
        profile: Option<CodecProfile>,
        layers: Option<Layers>,
        /// A playout delay the subscriber asked for.
        delay: Option<PlayoutDelay>,
    },
}

/// A layered stream's layers: relayed (-1 before the first packet) and wanted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layers {
    Simulcast { substream: i8, substream_target: u8, temporal: i8, temporal_target: u8, fallback: Option<u64> },
    Svc { spatial: i8, spatial_target: u8, temporal: i8, temporal_target: u8 },
}

/// An RTP forwarder, as `rtp_forward` and `listforwarders` show it.
#[derive(Clone, Debug, PartialEq)]
pub struct Forwarder {
    pub stream_id: u32,
    pub kind: MediaKind,
    pub host: String,
    pub port: u16,
    /// Where the forwarder hears the receiver's RTCP (a video forwarder with an RTCP port).
    pub local_rtcp_port: Option<u16>,
    pub remote_rtcp_port: Option<u16>,
    pub ssrc: Option<u32>,
    pub pt: Option<u8>,
    pub substream: Option<u8>,
    pub srtp: bool,
}

/// A publisher's forwarders in `listforwarders`.
#[derive(Clone, Debug, PartialEq)]
pub struct PublisherForwarders {
    pub publisher_id: ParticipantId,
    pub display: Option<String>,
    pub forwarders: Vec<Forwarder>,
}

/// A remotization in `listremotes`.
#[derive(Clone, Debug, PartialEq)]
pub struct RemoteEntry {
    pub remote_id: String,
    pub host: String,
    pub port: u16,
    pub rtcp_port: Option<u16>,
}

/// What the Admin API's `handle_info` shows of a VideoRoom handle (`plugin_specific`).
#[derive(Clone, Debug, PartialEq)]
pub enum HandleInfo {
    Publisher {
        room: RoomId,
        id: ParticipantId,
        private_id: ParticipantId,
        display: Option<String>,
        bitrate: u64,
        streams: Vec<PublishedStreamInfo>,
    },
    Subscriber {
        room: RoomId,
        /// The last offer was answered.
        answered: bool,
        pending_offer: bool,
        pending_restart: bool,
        /// Known where the PeerConnection is (the room's shell).
        paused: Option<bool>,
        streams: Vec<SubscriberStream>,
    },
    /// It left: nothing but its type.
    None,
}

/// A published stream in `handle_info`, with how many subscriptions it feeds.
#[derive(Clone, Debug, PartialEq)]
pub struct PublishedStreamInfo {
    pub kind: MediaKind,
    pub mindex: usize,
    pub mid: Mid,
    pub codec: Option<String>,
    pub rids: Vec<String>,
    pub subscribers: usize,
}
