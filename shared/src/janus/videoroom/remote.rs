//! Remote publishers (Janus 1.1): rooms cascaded between servers over plain RTP.
//! `publish_remotely` sends a local publisher's streams to another server's room, every stream to
//! one port, told apart by SSRC (1000 + 10 × m-line index, + the simulcast layer) and data channel
//! messages in RTP envelopes; `add_remote_publisher` creates, on the receiving side, a publisher
//! fed by such packets on a port of its own, which subscribers take like any other.
//! `unpublish_remotely`, `listremotes`, `update_remote_publisher` and `remove_remote_publisher`
//! complete the family. Parsed in Janus's order; the room and the publishers are the room's to
//! check.

use super::room::VIDEO_CODECS;
use super::{check, check_lock, room_of, ID, ID_OPT, ROOM};
use crate::ids::{ParticipantId, RoomId};
use crate::janus::errors::{VideoRoomCode, VideoRoomError};
use crate::janus::json::{self, JType, Param};
use crate::media::{ExtensionIds, MediaKind, Mid};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The SSRC of a remote publisher's first stream; each m-line index adds [`SSRC_STEP`], each
/// simulcast layer 1 (Janus's `REMOTE_PUBLISHER_BASE_SSRC` and `_SSRC_STEP`).
pub const BASE_SSRC: u32 = 1000;
pub const SSRC_STEP: u32 = 10;

/// The SSRC a remotized stream is sent with.
pub fn remote_ssrc(mindex: usize, layer: u8) -> u32 {
    BASE_SSRC + SSRC_STEP * u32::try_from(mindex).unwrap_or(u32::MAX / SSRC_STEP - BASE_SSRC) + u32::from(layer)
}

/// Which stream (m-line index) and layer an SSRC of a remote publisher is, if it is one.
pub fn from_remote_ssrc(ssrc: u32) -> Option<(usize, u8)> {
    let diff = ssrc.checked_sub(BASE_SSRC)?;
    Some(((diff / SSRC_STEP) as usize, (diff % SSRC_STEP) as u8))
}

/// One stream a remote publisher sends. Janus names them by their place in the list (mid and
/// m-line index both the position), whatever `mid`/`mindex` say.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteStream {
    pub mid: Mid,
    pub mindex: usize,
    pub kind: MediaKind,
    /// Lower case (`opus`, `vp8`); none for data.
    pub codec: Option<String>,
    pub description: Option<String>,
    pub disabled: bool,
    pub simulcast: bool,
    pub stereo: bool,
    pub fec: bool,
    pub dtx: bool,
    /// VP9 SVC: every layer in the one stream (Janus's `svc`).
    pub svc: bool,
    /// The ids its packets give the relayed header extensions (`audiolevel_ext_id`,
    /// `videoorient_ext_id`, `playoutdelay_ext_id`; 0 or none: not sent).
    pub extensions: ExtensionIds,
}

/// `add_remote_publisher` and `update_remote_publisher`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RemotePublisher {
    pub room: RoomId,
    /// `add`: the id asked for (else a random one); `update`: the publisher.
    pub id: Option<ParticipantId>,
    pub secret: Option<String>,
    pub display: Option<String>,
    /// `add`: the port to receive on (else any free one).
    pub port: Option<u16>,
    pub streams: Vec<RemoteStream>,
}

/// `publish_remotely`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishRemotely {
    pub room: RoomId,
    pub publisher_id: ParticipantId,
    pub secret: Option<String>,
    pub remote_id: String,
    /// An address: a host name is resolved before the room sees the request.
    pub host: String,
    pub port: u16,
    pub rtcp_port: Option<u16>,
}

/// `unpublish_remotely` (with `remote_id`) and `listremotes` (without).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteRef {
    pub room: RoomId,
    pub publisher_id: ParticipantId,
    pub secret: Option<String>,
    pub remote_id: Option<String>,
}

const PUBLISH_REMOTELY: [Param; 6] = [
    Param::opt("secret", JType::Str),
    Param::req("remote_id", JType::Str),
    Param::req("host", JType::Str),
    Param::opt("host_family", JType::Str),
    Param::req("port", JType::Int).positive(),
    Param::opt("rtcp_port", JType::Int).positive(),
];
const UNPUBLISH_REMOTELY: [Param; 2] = [Param::opt("secret", JType::Str), Param::req("remote_id", JType::Str)];
const LIST_REMOTES: [Param; 1] = [Param::opt("secret", JType::Str)];
const PUBLISHER_ID: [Param; 1] = [Param::req("publisher_id", JType::Id)];
const REMOTE_PUBLISHER: [Param; 6] = [
    Param::opt("secret", JType::Str),
    Param::opt("display", JType::Str),
    Param::opt("mcast", JType::Str),
    Param::opt("iface", JType::Str),
    Param::opt("port", JType::Int).positive(),
    Param::req("streams", JType::Array),
];
const REMOTE_PUBLISHER_UPDATE: [Param; 3] =
    [Param::opt("secret", JType::Str), Param::opt("display", JType::Str), Param::req("streams", JType::Array)];
const REMOTE_STREAM: [Param; 16] = [
    Param::req("mid", JType::Str),
    Param::req("mindex", JType::Int).positive(),
    Param::req("type", JType::Str),
    Param::opt("codec", JType::Str),
    Param::opt("description", JType::Str),
    Param::opt("disabled", JType::Bool),
    Param::opt("stereo", JType::Bool),
    Param::opt("fec", JType::Bool),
    Param::opt("dtx", JType::Bool),
    Param::opt("h264_profile", JType::Bool),
    Param::opt("vp9_profile", JType::Bool),
    Param::opt("simulcast", JType::Bool),
    Param::opt("svc", JType::Bool),
    Param::opt("audiolevel_ext_id", JType::Int),
    Param::opt("videoorient_ext_id", JType::Int),
    Param::opt("playoutdelay_ext_id", JType::Int),
];

const AUDIO_CODECS: [&str; 6] = ["opus", "multiopus", "pcmu", "pcma", "g722", "isac32"];

fn err(code: VideoRoomCode, reason: &str) -> VideoRoomError {
    VideoRoomError::new(code, reason)
}

/// `publish_remotely`, checked as Janus checks it; `lock_key` as for `rtp_forward`.
pub(super) fn parse_publish(
    obj: &Map<String, Value>,
    lock_key: Option<&str>,
) -> Result<PublishRemotely, VideoRoomError> {
    check(obj, &PUBLISH_REMOTELY)?;
    check(obj, &ROOM)?;
    check(obj, &PUBLISHER_ID)?;
    check_lock(obj, lock_key)?;
    let port = u16::try_from(json::uint(obj, "port")).unwrap_or(0);
    if port == 0 {
        return Err(err(VideoRoomCode::InvalidElement, "Invalid element (port must be a non-zero positive integer)"));
    }
    if let Some(f) = json::string(obj, "host_family") {
        if !f.eq_ignore_ascii_case("ipv4") && !f.eq_ignore_ascii_case("ipv6") {
            return Err(err(VideoRoomCode::InvalidElement, &format!("Unsupported protocol family ({f})")));
        }
    }
    Ok(PublishRemotely {
        room: room_of(obj),
        publisher_id: ParticipantId(json::janus_id(obj, "publisher_id")),
        secret: json::string(obj, "secret"),
        remote_id: json::string(obj, "remote_id").unwrap_or_default(),
        host: json::string(obj, "host").unwrap_or_default(),
        port,
        rtcp_port: u16::try_from(json::uint(obj, "rtcp_port")).ok().filter(|p| *p > 0),
    })
}

/// `unpublish_remotely` (`with_id`) or `listremotes`.
pub(super) fn parse_ref(obj: &Map<String, Value>, with_id: bool) -> Result<RemoteRef, VideoRoomError> {
    check(obj, if with_id { &UNPUBLISH_REMOTELY[..] } else { &LIST_REMOTES[..] })?;
    check(obj, &ROOM)?;
    check(obj, &PUBLISHER_ID)?;
    Ok(RemoteRef {
        room: room_of(obj),
        publisher_id: ParticipantId(json::janus_id(obj, "publisher_id")),
        secret: json::string(obj, "secret"),
        remote_id: with_id.then(|| json::string(obj, "remote_id").unwrap_or_default()),
    })
}

/// A header extension id (1-14, one-byte form, as Janus takes them), if given.
fn ext_id(obj: &Map<String, Value>, key: &str) -> Option<u8> {
    u8::try_from(json::uint(obj, key)).ok().filter(|id| (1..=14).contains(id))
}

/// `add_remote_publisher` (`add`) or `update_remote_publisher`.
pub(super) fn parse_remote_publisher(obj: &Map<String, Value>, add: bool) -> Result<RemotePublisher, VideoRoomError> {
    check(obj, &ROOM)?;
    check(obj, if add { &ID_OPT[..] } else { &ID[..] })?;
    check(obj, if add { &REMOTE_PUBLISHER[..] } else { &REMOTE_PUBLISHER_UPDATE[..] })?;
    let list = obj.get("streams").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    if add && list.is_empty() {
        return Err(err(VideoRoomCode::InvalidElement, "Invalid element value (streams can't be empty)"));
    }
    let mut streams = Vec::with_capacity(list.len());
    for (i, s) in list.iter().enumerate() {
        let Some(s) = s.as_object() else {
            return Err(err(
                VideoRoomCode::InvalidElement,
                "Invalid element type (streams should be an array of objects)",
            ));
        };
        check(s, &REMOTE_STREAM)?;
        let kind = json::string(s, "type")
            .and_then(|t| MediaKind::parse(&t).filter(|_| t != "application"))
            .ok_or_else(|| err(VideoRoomCode::InvalidElement, "Invalid element value (type)"))?;
        let codec = json::string(s, "codec").map(|c| c.to_ascii_lowercase());
        if kind.is_rtp() {
            let Some(c) = codec.as_deref() else {
                return Err(err(VideoRoomCode::MissingElement, "Missing mandatory element (codec)"));
            };
            let known = if kind == MediaKind::Audio { &AUDIO_CODECS[..] } else { &VIDEO_CODECS[..] };
            if !known.contains(&c) {
                return Err(err(VideoRoomCode::MissingElement, "Invalid element value (unsupported codec)"));
            }
        }
        let flag = |k: &str| json::boolean(s, k).unwrap_or(false);
        // Janus names an added publisher's streams by position; an update names them by mid.
        let (mid, mindex) = if add {
            (Mid::from(i.to_string()), i)
        } else {
            (Mid::from(json::string(s, "mid").unwrap_or_default()), json::uint(s, "mindex") as usize)
        };
        streams.push(RemoteStream {
            mid,
            mindex,
            kind,
            codec: codec.filter(|_| kind.is_rtp()),
            description: json::string(s, "description"),
            disabled: flag("disabled"),
            simulcast: kind == MediaKind::Video && flag("simulcast"),
            stereo: flag("stereo"),
            fec: flag("fec"),
            dtx: flag("dtx"),
            svc: kind == MediaKind::Video && flag("svc"),
            extensions: ExtensionIds {
                audio_level: ext_id(s, "audiolevel_ext_id"),
                video_orientation: ext_id(s, "videoorient_ext_id"),
                playout_delay: ext_id(s, "playoutdelay_ext_id"),
            },
        });
    }
    let id = ParticipantId(json::janus_id(obj, "id"));
    Ok(RemotePublisher {
        room: room_of(obj),
        id: Some(id).filter(|i| !i.0.is_unset()),
        secret: json::string(obj, "secret"),
        display: json::string(obj, "display"),
        port: u16::try_from(json::uint(obj, "port")).ok().filter(|p| *p > 0),
        streams,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn ssrcs_name_the_stream_and_the_layer() {
        assert_eq!(remote_ssrc(1, 2), 1012);
        assert_eq!(from_remote_ssrc(1012), Some((1, 2)));
        assert_eq!(from_remote_ssrc(999), None);
    }

    #[test]
    fn remote_publishers_are_checked_as_janus_checks_them() {
        let ok = parse_remote_publisher(
            &obj(json!({"room": 1, "display": "far", "streams": [
                {"mid": "a", "mindex": 7, "type": "audio", "codec": "OPUS"},
                {"mid": "v", "mindex": 9, "type": "video", "codec": "vp8", "simulcast": true},
                {"mid": "d", "mindex": 3, "type": "data"}]})),
            true,
        )
        .unwrap();
        let named: Vec<(&str, usize, MediaKind, Option<&str>)> =
            ok.streams.iter().map(|s| (s.mid.as_str(), s.mindex, s.kind, s.codec.as_deref())).collect();
        assert_eq!(
            named,
            [
                ("0", 0, MediaKind::Audio, Some("opus")),
                ("1", 1, MediaKind::Video, Some("vp8")),
                ("2", 2, MediaKind::Data, None)
            ]
        );
        assert!(ok.streams[1].simulcast);
        let e = |v: Value| parse_remote_publisher(&obj(v), true).unwrap_err();
        assert_eq!(e(json!({"room": 1, "streams": []})).reason, "Invalid element value (streams can't be empty)");
        let no_codec = e(json!({"room": 1, "streams": [{"mid": "0", "mindex": 0, "type": "video"}]}));
        assert_eq!((no_codec.code as u16, no_codec.reason.as_str()), (429, "Missing mandatory element (codec)"));
        let odd = e(json!({"room": 1, "streams": [{"mid": "0", "mindex": 0, "type": "text", "codec": "x"}]}));
        assert_eq!(odd.reason, "Invalid element value (type)");
        let bad = e(json!({"room": 1, "streams": [{"mid": "0", "mindex": 0, "type": "audio", "codec": "mp3"}]}));
        assert_eq!(bad.reason, "Invalid element value (unsupported codec)");
        let h265 = json!({"room": 1, "streams": [{"mid": "0", "mindex": 0, "type": "video", "codec": "h265"}]});
        assert!(parse_remote_publisher(&obj(h265), true).is_ok(), "every video codec Janus knows");
        assert_eq!(e(json!({"streams": [1]})).reason, "Missing mandatory element (room)");
    }

    #[test]
    fn publish_remotely_needs_a_remote_id_host_and_port() {
        let p = |v: Value| parse_publish(&obj(v), None);
        let ok = p(json!({"room": 1, "publisher_id": 5, "remote_id": "r", "host": "10.0.0.1", "port": 5002,
            "rtcp_port": 5003}))
        .unwrap();
        assert_eq!((ok.port, ok.rtcp_port, ok.remote_id.as_str()), (5002, Some(5003), "r"));
        assert_eq!(
            p(json!({"room": 1, "publisher_id": 5, "host": "h", "port": 1})).unwrap_err().reason,
            "Missing mandatory element (remote_id)"
        );
        let locked = parse_publish(
            &obj(json!({"room": 1, "publisher_id": 5, "remote_id": "r", "host": "h", "port": 1, "admin_key": "no"})),
            Some("yes"),
        );
        assert_eq!(locked.unwrap_err().reason, "Unauthorized (wrong admin_key)");
    }
}
