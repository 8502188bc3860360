//! RTP forwarders (`rtp_forward`, `stop_rtp_forward`, `listforwarders`): a publisher's streams
//! sent as plain (or SRTP) RTP, and data channel messages as UDP datagrams, to a host and port,
//! for recorders, transcoders and media servers outside the room. Parsed in Janus's order:
//! the request's parameters (both the `streams` array and the older per-kind ports), the
//! admin key when forwarding is locked, the SRTP settings; the room and the publisher are the
//! room's to check.

use super::{check, check_lock, room_of, ROOM};
use crate::ids::{ParticipantId, RoomId};
use crate::janus::errors::{VideoRoomCode, VideoRoomError};
use crate::janus::json::{self, JType, Param};
use crate::media::{MediaKind, Mid};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// `rtp_forward`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RtpForward {
    pub room: RoomId,
    pub publisher_id: ParticipantId,
    pub secret: Option<String>,
    /// Each stream to forward; a host name is resolved to an address before the room sees it.
    pub streams: Vec<ForwardStream>,
    pub srtp: Option<SrtpKey>,
}

/// Which of the publisher's streams a forwarder takes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StreamRef {
    Mid(Mid),
    /// The older API names streams by kind (`audio_port`, `video_port`, `data_port`).
    Kind(MediaKind),
}

/// Where a further simulcast layer goes: port, SSRC and payload type (`port_2`, `ssrc_2`, `pt_2`).
pub type LayerOutlet = (u16, Option<u32>, Option<u8>);

/// One stream's forwarder(s).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ForwardStream {
    pub stream: StreamRef,
    pub host: String,
    pub port: u16,
    /// Where the receiver's RTCP comes from (its PLIs reach the publisher).
    pub rtcp_port: Option<u16>,
    pub ssrc: Option<u32>,
    pub pt: Option<u8>,
    /// A simulcast source forwarded as one stream, the best layer available (like a viewer).
    pub simulcast: bool,
    /// A simulcast source's second and third layers forwarded apart: (port, ssrc, pt).
    pub more_layers: [Option<LayerOutlet>; 2],
}

/// SRTP for forwarded RTP (`srtp_suite` 32 or 80, `srtp_crypto` as in SDES: base64 of the
/// 16-byte key and 14-byte salt).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SrtpKey {
    pub suite: u8,
    pub crypto: String,
}

const PORT: JType = JType::Int;

const RTP_FORWARD: [Param; 21] = [
    Param::opt("secret", JType::Str),
    Param::req("host", JType::Str),
    Param::opt("host_family", JType::Str),
    Param::opt("simulcast", JType::Bool),
    Param::opt("srtp_suite", JType::Int).positive(),
    Param::opt("srtp_crypto", JType::Str),
    Param::opt("streams", JType::Array),
    Param::opt("video_port", PORT).positive(),
    Param::opt("video_rtcp_port", PORT).positive(),
    Param::opt("video_ssrc", JType::Int).positive(),
    Param::opt("video_pt", JType::Int).positive(),
    Param::opt("video_port_2", PORT).positive(),
    Param::opt("video_ssrc_2", JType::Int).positive(),
    Param::opt("video_pt_2", JType::Int).positive(),
    Param::opt("video_port_3", PORT).positive(),
    Param::opt("video_ssrc_3", JType::Int).positive(),
    Param::opt("video_pt_3", JType::Int).positive(),
    Param::opt("audio_port", PORT).positive(),
    Param::opt("audio_rtcp_port", PORT).positive(),
    Param::opt("audio_ssrc", JType::Int).positive(),
    Param::opt("audio_pt", JType::Int).positive(),
];
const DATA_PORT: [Param; 1] = [Param::opt("data_port", PORT).positive()];
const PUBLISHER_ID: [Param; 1] = [Param::req("publisher_id", JType::Id)];
const STREAM: [Param; 17] = [
    Param::opt("secret", JType::Str),
    Param::req("mid", JType::Str),
    Param::opt("host", JType::Str),
    Param::opt("host_family", JType::Str),
    Param::req("port", PORT).positive(),
    Param::opt("rtcp_port", PORT).positive(),
    Param::opt("ssrc", JType::Int).positive(),
    Param::opt("pt", JType::Int).positive(),
    Param::opt("simulcast", JType::Bool),
    Param::opt("srtp_suite", JType::Int).positive(),
    Param::opt("srtp_crypto", JType::Str),
    Param::opt("port_2", PORT).positive(),
    Param::opt("ssrc_2", JType::Int).positive(),
    Param::opt("pt_2", JType::Int).positive(),
    Param::opt("port_3", PORT).positive(),
    Param::opt("ssrc_3", JType::Int).positive(),
    Param::opt("pt_3", JType::Int).positive(),
];
const STOP: [Param; 2] = [Param::opt("secret", JType::Str), Param::req("stream_id", JType::Int).positive()];
const LIST: [Param; 1] = [Param::opt("secret", JType::Str)];

fn invalid(reason: String) -> VideoRoomError {
    VideoRoomError::new(VideoRoomCode::InvalidElement, reason)
}

fn port(obj: &Map<String, Value>, k: &str) -> Result<Option<u16>, VideoRoomError> {
    match obj.get(k).and_then(Value::as_u64) {
        None => Ok(None),
        Some(p) => u16::try_from(p).map(Some).map_err(|_| invalid(format!("Invalid element ({k} should be a port)"))),
    }
}

fn u32_of(obj: &Map<String, Value>, k: &str) -> Option<u32> {
    obj.get(k).and_then(Value::as_u64).and_then(|v| u32::try_from(v).ok())
}

fn pt_of(obj: &Map<String, Value>, k: &str) -> Result<Option<u8>, VideoRoomError> {
    match obj.get(k).and_then(Value::as_u64) {
        None => Ok(None),
        Some(p) if p < 128 => Ok(Some(p as u8)),
        Some(_) => Err(invalid(format!("Invalid element ({k} should be a payload type, 0-127)"))),
    }
}

fn family(obj: &Map<String, Value>) -> Result<(), VideoRoomError> {
    match json::string(obj, "host_family") {
        None => Ok(()),
        Some(f) if f.eq_ignore_ascii_case("ipv4") || f.eq_ignore_ascii_case("ipv6") => Ok(()),
        Some(f) => Err(invalid(format!("Unsupported protocol family ({f})"))),
    }
}

/// `rtp_forward`, checked as Janus checks it; `lock_key` is the deployment's admin key when
/// forwarding is locked to it (`lock_rtp_forward`).
pub(super) fn parse_rtp_forward(
    obj: &Map<String, Value>,
    lock_key: Option<&str>,
) -> Result<RtpForward, VideoRoomError> {
    check(obj, &RTP_FORWARD)?;
    check(obj, &DATA_PORT)?;
    check(obj, &ROOM)?;
    check(obj, &PUBLISHER_ID)?;
    check_lock(obj, lock_key)?;
    family(obj)?;
    let host = json::string(obj, "host").unwrap_or_default();
    let arr = obj.get("streams").and_then(Value::as_array).filter(|a| !a.is_empty());
    let streams = match arr {
        Some(arr) => {
            let mut out = Vec::with_capacity(arr.len());
            for s in arr {
                let s = s
                    .as_object()
                    .ok_or_else(|| invalid("Invalid element type (streams should be an array of objects)".into()))?;
                check(s, &STREAM)?;
                family(s)?;
                let layer = |n: u8| -> Result<Option<LayerOutlet>, VideoRoomError> {
                    match port(s, &format!("port_{n}"))? {
                        Some(p) => Ok(Some((p, u32_of(s, &format!("ssrc_{n}")), pt_of(s, &format!("pt_{n}"))?))),
                        None => Ok(None),
                    }
                };
                out.push(ForwardStream {
                    stream: StreamRef::Mid(json::string(s, "mid").unwrap_or_default().into()),
                    host: json::string(s, "host").unwrap_or_else(|| host.clone()),
                    port: port(s, "port")?.unwrap_or(0),
                    rtcp_port: port(s, "rtcp_port")?,
                    ssrc: u32_of(s, "ssrc"),
                    pt: pt_of(s, "pt")?,
                    simulcast: json::boolean(s, "simulcast").unwrap_or(false),
                    more_layers: [layer(2)?, layer(3)?],
                });
            }
            out
        }
        None => legacy_streams(obj, &host)?,
    };
    let srtp = match (obj.get("srtp_suite").and_then(Value::as_u64), json::string(obj, "srtp_crypto")) {
        (Some(suite), Some(crypto)) => {
            if suite != 32 && suite != 80 {
                return Err(invalid(format!("Invalid SRTP suite ({suite})")));
            }
            Some(SrtpKey { suite: suite as u8, crypto })
        }
        _ => None,
    };
    Ok(RtpForward {
        room: room_of(obj),
        publisher_id: ParticipantId(json::janus_id(obj, "publisher_id")),
        secret: json::string(obj, "secret"),
        streams,
        srtp,
    })
}

/// The older API: one port per kind at the top level.
fn legacy_streams(obj: &Map<String, Value>, host: &str) -> Result<Vec<ForwardStream>, VideoRoomError> {
    let simulcast = json::boolean(obj, "simulcast").unwrap_or(false);
    let mut out = Vec::new();
    for media in [MediaKind::Audio, MediaKind::Video, MediaKind::Data] {
        let kind = media.as_str();
        let Some(p) = port(obj, &format!("{kind}_port"))? else { continue };
        let layer = |n: u8| -> Result<_, VideoRoomError> {
            match port(obj, &format!("video_port_{n}"))? {
                Some(p) if kind == "video" => {
                    Ok(Some((p, u32_of(obj, &format!("video_ssrc_{n}")), pt_of(obj, &format!("video_pt_{n}"))?)))
                }
                _ => Ok(None),
            }
        };
        out.push(ForwardStream {
            stream: StreamRef::Kind(media),
            host: host.to_owned(),
            port: p,
            rtcp_port: port(obj, &format!("{kind}_rtcp_port"))?,
            ssrc: u32_of(obj, &format!("{kind}_ssrc")),
            pt: pt_of(obj, &format!("{kind}_pt"))?,
            simulcast: simulcast && kind == "video",
            more_layers: [layer(2)?, layer(3)?],
        });
    }
    Ok(out)
}

/// `stop_rtp_forward`: (room, publisher, stream id, secret).
pub(super) fn parse_stop(
    obj: &Map<String, Value>,
) -> Result<(RoomId, ParticipantId, u32, Option<String>), VideoRoomError> {
    check(obj, &ROOM)?;
    check(obj, &PUBLISHER_ID)?;
    check(obj, &STOP)?;
    let id = u32_of(obj, "stream_id").ok_or_else(|| invalid("Invalid element (stream_id)".into()))?;
    Ok((room_of(obj), ParticipantId(json::janus_id(obj, "publisher_id")), id, json::string(obj, "secret")))
}

/// `listforwarders`: (room, secret).
pub(super) fn parse_list(obj: &Map<String, Value>) -> Result<(RoomId, Option<String>), VideoRoomError> {
    check(obj, &ROOM)?;
    check(obj, &LIST)?;
    Ok((room_of(obj), json::string(obj, "secret")))
}
