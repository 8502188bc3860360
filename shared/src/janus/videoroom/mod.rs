//! The VideoRoom plugin vocabulary (`janus.plugin.videoroom`): requests parsed at the edge into
//! typed values, the room configuration, and the bodies of its replies and events.
//!
//! Janus checks a VideoRoom request in a fixed order (request name, then the request's own
//! parameters, then the room, then participant-level details). Where a later check needs room
//! state that only the media node has, the parsed value carries the deferred outcome as a
//! `Result` so the node reports errors in Janus's order.

mod events;
mod forwarding;
mod participant;
pub mod remote;
mod room;

pub use forwarding::{ForwardStream, RtpForward, SrtpKey, StreamRef};
pub use participant::{
    AsyncRequest, Configure, ConfigureStream, DelayChoice, Descriptions, Join, LayerChoice, Ptype, PublisherJoin,
    SubscribeStream, SubscriberJoin, Switch, SwitchStream, UnsubscribeStream, Update,
};
pub use remote::{PublishRemotely, RemotePublisher, RemoteRef, RemoteStream};

pub use events::*;
pub use room::{RoomConfig, DEFAULT_MAX_PUBLISHERS, MIN_BITRATE};

use crate::ids::{ParticipantId, RoomId};
use crate::janus::errors::{VideoRoomCode, VideoRoomError};
use crate::janus::json::{self, Invalid, JType, Param};
use crate::janus::request::PluginBody;
use crate::media::Mid;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A parsed VideoRoom request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum VideoRoomRequest {
    /// Answered at once with `success` + `plugindata`.
    Sync(SyncRequest),
    /// Answered with `ack`, then an `event` carrying the same transaction.
    Async { name: AsyncName, parsed: Result<AsyncRequest, VideoRoomError> },
}

/// Synchronous requests.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum SyncRequest {
    Create {
        room: Option<RoomId>,
        config: Box<Map<String, Value>>,
        /// A room made without an id gets a string one (`string_ids`).
        string_ids: bool,
    },
    Edit(EditRoom),
    Destroy {
        room: RoomId,
        secret: Option<String>,
        permanent: bool,
    },
    Exists {
        room: RoomId,
    },
    /// `list`; private rooms too when the request carried the right `admin_key`.
    List {
        private: bool,
    },
    ListParticipants {
        room: RoomId,
    },
    Allowed {
        room: RoomId,
        secret: Option<String>,
        action: AllowedAction,
        allowed: Option<Vec<String>>,
    },
    Kick {
        room: RoomId,
        secret: Option<String>,
        id: ParticipantId,
    },
    /// Mute or unmute one stream (`mid`) of a publisher for everyone.
    Moderate {
        room: RoomId,
        secret: Option<String>,
        id: ParticipantId,
        mid: Mid,
        mute: bool,
    },
    AddRemotePublisher(Box<RemotePublisher>),
    UpdateRemotePublisher(Box<RemotePublisher>),
    RemoveRemotePublisher {
        room: RoomId,
        id: ParticipantId,
        secret: Option<String>,
    },
    PublishRemotely(Box<PublishRemotely>),
    UnpublishRemotely(RemoteRef),
    ListRemotes(RemoteRef),
    RtpForward(Box<RtpForward>),
    StopRtpForward {
        room: RoomId,
        publisher_id: ParticipantId,
        stream_id: u32,
        secret: Option<String>,
    },
    ListForwarders {
        room: RoomId,
        secret: Option<String>,
    },
    /// `enable_recording`: the room's recording, and so every publisher's, on or off.
    EnableRecording {
        room: RoomId,
        secret: Option<String>,
        record: bool,
    },
    /// The request failed validation; the error is the reply.
    Invalid(VideoRoomError),
}

impl SyncRequest {
    /// The room this request is about, when it needs the room's owner.
    pub fn room(&self) -> Option<RoomId> {
        match self {
            SyncRequest::Edit(e) => Some(e.room.clone()),
            SyncRequest::Destroy { room, .. }
            | SyncRequest::ListParticipants { room }
            | SyncRequest::Allowed { room, .. }
            | SyncRequest::Kick { room, .. }
            | SyncRequest::Moderate { room, .. }
            | SyncRequest::StopRtpForward { room, .. }
            | SyncRequest::ListForwarders { room, .. }
            | SyncRequest::EnableRecording { room, .. }
            | SyncRequest::RemoveRemotePublisher { room, .. } => Some(room.clone()),
            SyncRequest::RtpForward(f) => Some(f.room.clone()),
            SyncRequest::AddRemotePublisher(r) | SyncRequest::UpdateRemotePublisher(r) => Some(r.room.clone()),
            SyncRequest::PublishRemotely(p) => Some(p.room.clone()),
            SyncRequest::UnpublishRemotely(r) | SyncRequest::ListRemotes(r) => Some(r.room.clone()),
            _ => None,
        }
    }
}

/// `edit`'s fields.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EditRoom {
    pub room: RoomId,
    pub secret: Option<String>,
    pub new_description: Option<String>,
    pub new_is_private: Option<bool>,
    pub new_secret: Option<String>,
    pub new_pin: Option<String>,
    pub new_require_pvtid: Option<bool>,
    pub new_bitrate: Option<u64>,
    pub new_fir_freq: Option<u64>,
    pub new_publishers: Option<u64>,
    pub new_lock_record: Option<bool>,
    pub new_rec_dir: Option<String>,
    pub permanent: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AllowedAction {
    Enable,
    Disable,
    Add,
    Remove,
}

/// The asynchronous request names (Janus's list in `janus_videoroom_handle_message`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AsyncName {
    Join,
    JoinAndConfigure,
    Configure,
    Publish,
    Unpublish,
    Start,
    Pause,
    Switch,
    Subscribe,
    Unsubscribe,
    Update,
    Leave,
}

impl AsyncName {
    fn parse(s: &str) -> Option<Self> {
        use AsyncName::*;
        Some(match s {
            "join" => Join,
            "joinandconfigure" => JoinAndConfigure,
            "configure" => Configure,
            "publish" => Publish,
            "unpublish" => Unpublish,
            "start" => Start,
            "pause" => Pause,
            "switch" => Switch,
            "subscribe" => Subscribe,
            "unsubscribe" => Unsubscribe,
            "update" => Update,
            "leave" => Leave,
            _ => return None,
        })
    }
    pub fn is_join(self) -> bool {
        matches!(self, AsyncName::Join | AsyncName::JoinAndConfigure)
    }
}

const REQUEST: [Param; 1] = [Param::req("request", JType::Str)];
const ROOM: [Param; 1] = [Param::req("room", JType::Id)];
const EDIT: [Param; 12] = [
    Param::opt("secret", JType::Str),
    Param::opt("new_description", JType::Str),
    Param::opt("new_is_private", JType::Bool),
    Param::opt("new_secret", JType::Str),
    Param::opt("new_pin", JType::Str),
    Param::opt("new_require_pvtid", JType::Bool),
    Param::opt("new_bitrate", JType::Int).positive(),
    Param::opt("new_fir_freq", JType::Int).positive(),
    Param::opt("new_publishers", JType::Int).positive(),
    Param::opt("new_lock_record", JType::Bool),
    Param::opt("new_rec_dir", JType::Str),
    Param::opt("permanent", JType::Bool),
];
const DESTROY: [Param; 1] = [Param::opt("permanent", JType::Bool)];
const ALLOWED: [Param; 3] =
    [Param::opt("secret", JType::Str), Param::req("action", JType::Str), Param::opt("allowed", JType::Array)];
const ID: [Param; 1] = [Param::req("id", JType::Id)];
const ID_OPT: [Param; 1] = [Param::opt("id", JType::Id)];
const KICK: [Param; 1] = [Param::opt("secret", JType::Str)];
const JOIN: [Param; 8] = [
    Param::req("ptype", JType::Str),
    Param::opt("audio", JType::Bool),
    Param::opt("video", JType::Bool),
    Param::opt("data", JType::Bool),
    Param::opt("bitrate", JType::Int).positive(),
    Param::opt("record", JType::Bool),
    Param::opt("filename", JType::Str),
    Param::opt("token", JType::Str),
];
const PUBLISHER: [Param; 2] = [Param::opt("display", JType::Str), Param::opt("metadata", JType::Object)];

const MODERATE: [Param; 3] =
    [Param::opt("secret", JType::Str), Param::req("mid", JType::Str), Param::req("mute", JType::Bool)];

const RECORD: [Param; 2] = [Param::req("record", JType::Bool), Param::opt("secret", JType::Str)];

fn vr(e: Invalid) -> VideoRoomError {
    match e {
        Invalid::Missing(r) => VideoRoomError::new(VideoRoomCode::MissingElement, r),
        Invalid::WrongType(r) => VideoRoomError::new(VideoRoomCode::InvalidElement, r),
    }
}

fn check(obj: &Map<String, Value>, params: &[Param]) -> Result<(), VideoRoomError> {
    json::validate(obj, params).map_err(vr)
}

fn room_of(obj: &Map<String, Value>) -> RoomId {
    RoomId(json::janus_id(obj, "room"))
}

const ADMIN_KEY: [Param; 1] = [Param::req("admin_key", JType::Str)];

/// With forwarding locked to the deployment's admin key (`lock_rtp_forward`), a forwarding
/// request (`rtp_forward`, `publish_remotely`) must carry it.
fn check_lock(obj: &Map<String, Value>, lock_key: Option<&str>) -> Result<(), VideoRoomError> {
    let Some(want) = lock_key else { return Ok(()) };
    check(obj, &ADMIN_KEY)?;
    let given = json::string(obj, "admin_key").unwrap_or_default();
    if !crate::secret::same(want, &given) {
        return Err(VideoRoomError::new(VideoRoomCode::Unauthorized, "Unauthorized (wrong admin_key)"));
    }
    Ok(())
}

/// What the deployment decides about VideoRoom requests: Janus's `admin_key` (when set,
/// `create` must carry it and a `list` carrying it shows private rooms too),
/// `lock_rtp_forward` (with an admin key, `rtp_forward` must carry it too) and `string_ids`
/// (room and participant ids are strings, not numbers).
#[derive(Clone, Copy, Debug, Default)]
pub struct Policy<'a> {
    pub admin_key: Option<&'a str>,
    pub lock_rtp_forward: bool,
    pub string_ids: bool,
}

impl<'a> Policy<'a> {
    pub fn new(admin_key: Option<&'a str>, lock_rtp_forward: bool, string_ids: bool) -> Self {
        Self { admin_key, lock_rtp_forward, string_ids }
    }
}

fn admin_key_check(obj: &Map<String, Value>, name: &str, admin_key: Option<&str>) -> Result<bool, VideoRoomError> {
    let Some(want) = admin_key else { return Ok(false) };
    let given = obj.get("admin_key").and_then(Value::as_str).filter(|k| !k.is_empty());
    if name == "list" && given.is_none() {
        return Ok(false);
    }
    if name != "create" && name != "list" {
        return Ok(false);
    }
    check(obj, &ADMIN_KEY)?;
    if !given.is_some_and(|g| crate::secret::same(want, g)) {
        return Err(VideoRoomError::new(VideoRoomCode::Unauthorized, "Unauthorized (wrong admin_key)"));
    }
    Ok(true)
}

/// Parses a VideoRoom request body under the deployment's [`Policy`]. `Err` is a reply-level
/// error (missing or unknown `request`), which Janus answers synchronously whatever the request.
pub fn parse_request(body: &PluginBody, policy: Policy<'_>) -> Result<VideoRoomRequest, VideoRoomError> {
    json::with_string_ids(policy.string_ids, || parse_with(body, policy))
}

fn parse_with(body: &PluginBody, policy: Policy<'_>) -> Result<VideoRoomRequest, VideoRoomError> {
    let obj = body.as_map();
    check(obj, &REQUEST)?;
    let name = json::string(obj, "request").unwrap_or_default();
    let lower = name.to_ascii_lowercase();
    let lock_key = policy.admin_key.filter(|_| policy.lock_rtp_forward);
    if let Some(sync) = parse_sync(obj, &lower, lock_key) {
        let sync = match (sync, admin_key_check(obj, &lower, policy.admin_key)) {
            (_, Err(e)) => Err(e),
            (Ok(SyncRequest::List { .. }), Ok(private)) => Ok(SyncRequest::List { private }),
            (sync, Ok(_)) => sync,
        };
        return Ok(VideoRoomRequest::Sync(sync.unwrap_or_else(SyncRequest::Invalid)));
    }
    if let Some(a) = AsyncName::parse(&lower) {
        return Ok(VideoRoomRequest::Async { name: a, parsed: participant::parse_async(obj, a) });
    }
    Err(VideoRoomError::new(VideoRoomCode::InvalidRequest, format!("Unknown request '{name}'")))
}

fn parse_sync(
    obj: &Map<String, Value>,
    name: &str,
    lock_key: Option<&str>,
) -> Option<Result<SyncRequest, VideoRoomError>> {
    let parsed = match name {
        "create" => check(obj, &room::CREATE_PARAMS).map(|_| SyncRequest::Create {
            room: Some(room_of(obj)).filter(|r| !r.0.is_unset()),
            config: Box::new(obj.clone()),
            string_ids: json::string_ids(),
        }),
        "edit" => check(obj, &ROOM).and_then(|_| check(obj, &EDIT)).map(|_| {
            let u = |k: &str| obj.get(k).and_then(Value::as_u64);
            SyncRequest::Edit(EditRoom {
                room: room_of(obj),
                secret: json::string(obj, "secret"),
                new_description: json::string(obj, "new_description"),
                new_is_private: json::boolean(obj, "new_is_private"),
                new_secret: json::string(obj, "new_secret"),
                new_pin: json::string(obj, "new_pin"),
                new_require_pvtid: json::boolean(obj, "new_require_pvtid"),
                new_bitrate: u("new_bitrate"),
                new_fir_freq: u("new_fir_freq"),
                new_publishers: u("new_publishers"),
                new_lock_record: json::boolean(obj, "new_lock_record"),
                new_rec_dir: json::string(obj, "new_rec_dir"),
                permanent: json::boolean(obj, "permanent").unwrap_or(false),
            })
        }),
        "destroy" => check(obj, &ROOM).and_then(|_| check(obj, &DESTROY)).map(|_| SyncRequest::Destroy {
            room: room_of(obj),
            secret: json::string(obj, "secret"),
            permanent: json::boolean(obj, "permanent").unwrap_or(false),
        }),
        "exists" => check(obj, &ROOM).map(|_| SyncRequest::Exists { room: room_of(obj) }),
        "list" => Ok(SyncRequest::List { private: false }),
        "listparticipants" => check(obj, &ROOM).map(|_| SyncRequest::ListParticipants { room: room_of(obj) }),
        "allowed" => check(obj, &ROOM).and_then(|_| check(obj, &ALLOWED)).and_then(|_| {
            let text = json::string(obj, "action").unwrap_or_default();
            let action = match text.to_ascii_lowercase().as_str() {
                "enable" => AllowedAction::Enable,
                "disable" => AllowedAction::Disable,
                "add" => AllowedAction::Add,
                "remove" => AllowedAction::Remove,
                _ => {
                    return Err(VideoRoomError::new(
                        VideoRoomCode::InvalidElement,
                        format!("Unsupported action '{text}' (allowed)"),
                    ))
                }
            };
            let allowed = match obj.get("allowed") {
                Some(Value::Array(a)) => Some(
                    a.iter().map(|x| x.as_str().map(str::to_owned)).collect::<Option<Vec<_>>>().ok_or_else(|| {
                        VideoRoomError::new(
                            VideoRoomCode::InvalidElement,
                            "Invalid element in the allowed array (not a string)",
                        )
                    })?,
                ),
                _ => None,
            };
            Ok(SyncRequest::Allowed { room: room_of(obj), secret: json::string(obj, "secret"), action, allowed })
        }),
        "kick" => {
            check(obj, &ROOM).and_then(|_| check(obj, &ID)).and_then(|_| check(obj, &KICK)).map(|_| SyncRequest::Kick {
                room: room_of(obj),
                secret: json::string(obj, "secret"),
                id: ParticipantId(json::janus_id(obj, "id")),
            })
        }
        "moderate" => check(obj, &ROOM).and_then(|_| check(obj, &ID)).and_then(|_| check(obj, &MODERATE)).map(|_| {
            SyncRequest::Moderate {
                room: room_of(obj),
                secret: json::string(obj, "secret"),
                id: ParticipantId(json::janus_id(obj, "id")),
                mid: json::string(obj, "mid").unwrap_or_default().into(),
                mute: json::boolean(obj, "mute").unwrap_or(false),
            }
        }),
        "rtp_forward" => forwarding::parse_rtp_forward(obj, lock_key).map(|f| SyncRequest::RtpForward(Box::new(f))),
        "stop_rtp_forward" => forwarding::parse_stop(obj).map(|(room, publisher_id, stream_id, secret)| {
            SyncRequest::StopRtpForward { room, publisher_id, stream_id, secret }
        }),
        "enable_recording" => {
            check(obj, &RECORD).and_then(|_| check(obj, &ROOM)).map(|_| SyncRequest::EnableRecording {
                room: room_of(obj),
                secret: json::string(obj, "secret"),
                record: json::boolean(obj, "record").unwrap_or(false),
            })
        }
        "listforwarders" => {
            forwarding::parse_list(obj).map(|(room, secret)| SyncRequest::ListForwarders { room, secret })
        }
        "add_remote_publisher" => {
            remote::parse_remote_publisher(obj, true).map(|r| SyncRequest::AddRemotePublisher(Box::new(r)))
        }
        "update_remote_publisher" => {
            remote::parse_remote_publisher(obj, false).map(|r| SyncRequest::UpdateRemotePublisher(Box::new(r)))
        }
        "remove_remote_publisher" => {
            check(obj, &ROOM).and_then(|_| check(obj, &ID)).map(|_| SyncRequest::RemoveRemotePublisher {
                room: room_of(obj),
                id: ParticipantId(json::janus_id(obj, "id")),
                secret: json::string(obj, "secret"),
            })
        }
        "publish_remotely" => remote::parse_publish(obj, lock_key).map(|p| SyncRequest::PublishRemotely(Box::new(p))),
        "unpublish_remotely" => remote::parse_ref(obj, true).map(SyncRequest::UnpublishRemotely),
        "listremotes" => remote::parse_ref(obj, false).map(SyncRequest::ListRemotes),
        _ => return None,
    };
    Some(parsed)
}

/// Only the room id, for routing a join before the handle is bound to a room.
pub fn join_room(req: &VideoRoomRequest) -> Option<RoomId> {
    match req {
        VideoRoomRequest::Async { parsed: Ok(AsyncRequest::Join(j)), .. } => Some(j.room.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<VideoRoomRequest, VideoRoomError> {
        parse_request(&PluginBody::from_map(v.as_object().cloned().unwrap()), Policy::default())
    }

    #[test]
    fn request_name_errors_are_immediate() {
        assert_eq!(parse(json!({})).unwrap_err().reason, "Missing mandatory element (request)");
        assert_eq!(parse(json!({"request": "bogus"})).unwrap_err().code, VideoRoomCode::InvalidRequest);
        assert_eq!(parse(json!({"request": 5})).unwrap_err().code, VideoRoomCode::InvalidElement);
    }

    #[test]
    fn sync_requests_validate_like_janus() {
        assert_eq!(
            parse(json!({"request": "exists"})).unwrap(),
            VideoRoomRequest::Sync(SyncRequest::Invalid(VideoRoomError::new(
                VideoRoomCode::MissingElement,
                "Missing mandatory element (room)"
            )))
        );
        assert_eq!(
            parse(json!({"request": "EXISTS", "room": 7})).unwrap(),
            VideoRoomRequest::Sync(SyncRequest::Exists { room: RoomId::num(7) })
        );
        let r = parse(json!({"request": "allowed", "room": 7, "action": "zap"})).unwrap();
        assert!(
            matches!(r, VideoRoomRequest::Sync(SyncRequest::Invalid(e)) if e.reason == "Unsupported action 'zap' (allowed)")
        );
    }

    #[test]
    fn join_defers_participant_checks() {
        let r = parse(json!({"request": "join", "room": 1, "ptype": "bogus"})).unwrap();
        match r {
            VideoRoomRequest::Async { parsed: Ok(AsyncRequest::Join(j)), .. } => {
                assert_eq!(j.ptype.unwrap_err().reason, "Invalid element (ptype)")
            }
            other => panic!("unexpected {other:?}"),
        }
        let r = parse(json!({"request": "join", "ptype": "publisher"})).unwrap();
        assert!(matches!(r, VideoRoomRequest::Async { parsed: Err(e), .. } if e.code == VideoRoomCode::MissingElement));
    }
}
