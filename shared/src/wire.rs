//! Envelopes on the bus between gateways and media nodes. Serde lives here (and in `janus`)
//! only; every envelope carries a version so mixed versions during a rolling update are detected.

use crate::ids::{HandleId, RoomId, SessionId};
use crate::janus::admin::CaptureSpec;
use crate::janus::request::{Candidate, Jsep};
use crate::janus::videoroom::VideoRoomRequest;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Bumped on any incompatible change of the types below.
pub const WIRE_VERSION: u16 = 1;

/// A request from a gateway to a media node, answered on `reply_to`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RpcEnvelope {
    pub v: u16,
    pub corr_id: u64,
    /// The channel to publish the [`RpcReply`] on; empty when the sender wants none (a
    /// command whose answer would change nothing: a trickle, a handle gone).
    pub reply_to: String,
    pub cmd: NodeCommand,
}

impl RpcEnvelope {
    /// `cmd` sent asking for no reply (the node publishes none).
    pub fn told(cmd: NodeCommand) -> Self {
        Self { v: WIRE_VERSION, corr_id: 0, reply_to: String::new(), cmd }
    }
}

/// An encoded envelope around its room's place: `head`, the room id's JSON, `tail`. What a
/// store that reads the room itself (a handle's binding) completes and publishes. An envelope
/// that names no room is whole in `head`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AroundRoom {
    pub head: String,
    pub tail: String,
}

impl AroundRoom {
    /// The envelope `build` makes for a room, that room left out. The room must be the last
    /// thing in the envelope a client can write text into: the place is found by the room's
    /// last occurrence (a client's transaction could spell the stand-in too).
    pub fn of(build: impl FnOnce(RoomId) -> RpcEnvelope) -> Self {
        let mark = RoomId(crate::ids::JanusId::Text("\u{0}room\u{0}".into()));
        let text = String::from_utf8(encode(&build(mark.clone())).to_vec()).unwrap_or_default();
        let mark = String::from_utf8(encode(&mark).to_vec()).unwrap_or_default();
        let (head, tail) = text.rsplit_once(&mark).unwrap_or((&text, ""));
        Self { head: head.to_owned(), tail: tail.to_owned() }
    }

    /// An envelope that names no room, whole.
    pub fn whole(envelope: &RpcEnvelope) -> Self {
        Self { head: String::from_utf8(encode(envelope).to_vec()).unwrap_or_default(), tail: String::new() }
    }

    /// `HandleGone` for `session`'s `handle`, told (no reply).
    pub fn handle_gone(session: SessionId, handle: HandleId, reason: GoneReason) -> Self {
        Self::of(|room| RpcEnvelope::told(NodeCommand::HandleGone { session, handle, room, reason }))
    }
}

/// Everything a media node can be asked to do.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum NodeCommand {
    /// A VideoRoom message from a handle. `bound_room` is the room the handle joined, if any.
    Plugin {
        session: SessionId,
        handle: HandleId,
        transaction: String,
        request: VideoRoomRequest,
        jsep: Option<Jsep>,
        bound_room: Option<RoomId>,
        /// The handle's packet capture (Admin API), for a join: the room starts it once the
        /// handle is in.
        capture: Option<Box<CaptureSpec>>,
    },
    /// The handle's WebRTC side is gone (`hangup`) or the handle itself is (detach, destroy,
    /// session timeout, transport closed).
    HandleGone { session: SessionId, handle: HandleId, room: RoomId, reason: GoneReason },
    /// ICE candidates trickled by the client for this handle's PeerConnection.
    Trickle { session: SessionId, handle: HandleId, room: RoomId, candidates: Vec<Candidate> },
    /// Take no new rooms; serve the current ones until they empty or `deadline_secs` pass, then exit.
    Drain { deadline_secs: u64 },
    /// The Admin API's `handle_info`: answered `Sync({"plugin_specific", "webrtc", "sdps"})`,
    /// or `Sync(null)` when the handle is not in the room here.
    HandleInfo { session: SessionId, handle: HandleId, room: RoomId },
    /// The Admin API's `start_pcap`/`stop_pcap` (and text2pcap): a capture of the handle's
    /// packets on this node (`start: None` stops it), answered `Sync` with a [`CaptureAnswer`].
    Capture { session: SessionId, handle: HandleId, room: RoomId, start: Option<CaptureSpec> },
    /// The Admin API's `start_pcap` for a handle in no room here: the capture's file made
    /// (its folder created, a pcap header written) and closed, as Janus makes it at once;
    /// answered `Sync` with `Started` or `CannotStart`. The handle's room writes to it later.
    PrepareCapture(CaptureSpec),
    /// A media knob turned (Admin API): in effect on the node's media from now on.
    Tune(crate::tuning::Knob),
    /// The Admin API's `loops_info`: answered `Sync([{"id", "handles"}])`, one entry per media
    /// worker (its id, its rooms' participants).
    Loops,
}

/// How a [`NodeCommand::Capture`] went.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CaptureAnswer {
    /// Writing (`handle_info` names the file).
    Started,
    Stopped,
    /// The handle has a capture already (of either format).
    AlreadyStarted,
    /// A stop, and the handle has no capture.
    NotStarted,
    /// The file could not be opened (or is in a protected folder, or too many are open).
    CannotStart(String),
    /// The room here has no such handle.
    NoHandle,
}

impl CaptureAnswer {
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or_default()
    }
    pub fn from_value(v: Value) -> Option<Self> {
        serde_json::from_value(v).ok()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum GoneReason {
    /// `hangup`: the PeerConnection closes, the handle stays.
    Hangup,
    /// `detach`, `destroy`, timeout or transport close: the participant leaves.
    Detached,
}

/// A media node's answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RpcReply {
    pub v: u16,
    pub corr_id: u64,
    pub result: RpcResult,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum RpcResult {
    /// A synchronous plugin answer: `plugindata.data`.
    Sync(Value),
    /// The command was taken; its outcome travels as events through the session's mailbox.
    Accepted,
    /// The room is owned by another node (its placement moved): look the owner up again.
    WrongNode,
    /// The node could not serve it (shutting down, store unreachable, ...).
    Failed(String),
}

/// Signals on a session's channel (`keys::session_channel`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Signal {
    /// The mailbox has events.
    Wake,
    /// Another transport connection (`owner`) claimed the session.
    Claimed { owner: u64 },
    /// The session is gone (destroyed or timed out); its last events are in the mailbox.
    Over,
}

impl Signal {
    pub fn to_bytes(self) -> bytes::Bytes {
        bytes::Bytes::from(serde_json::to_vec(&self).unwrap_or_default())
    }
    pub fn from_bytes(b: &[u8]) -> Option<Self> {
        serde_json::from_slice(b).ok()
    }
}

/// Encodes an envelope for the bus.
pub fn encode<T: Serialize>(v: &T) -> bytes::Bytes {
    bytes::Bytes::from(crate::janus::reply::to_json(v))
}

/// Decodes an envelope, rejecting other wire versions.
pub fn decode_rpc(b: &[u8]) -> Result<RpcEnvelope, String> {
    let e: RpcEnvelope = serde_json::from_slice(b).map_err(|e| e.to_string())?;
    if e.v != WIRE_VERSION {
        return Err(format!("wire version {} (expected {WIRE_VERSION})", e.v));
    }
    Ok(e)
}

pub fn decode_reply(b: &[u8]) -> Result<RpcReply, String> {
    let r: RpcReply = serde_json::from_slice(b).map_err(|e| e.to_string())?;
    if r.v != WIRE_VERSION {
        return Err(format!("wire version {} (expected {WIRE_VERSION})", r.v));
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::JanusId;

    /// The envelope completed with a room's JSON is the envelope encoded with that room, for
    /// numeric rooms past 2^53 and string rooms that need escaping.
    #[test]
    fn handle_gone_around_its_room_completes_to_its_encoding() {
        let (s, h) = (SessionId(8_000_000_000_000_001), HandleId(42));
        let around = AroundRoom::handle_gone(s, h, GoneReason::Detached);
        for room in [
            RoomId(JanusId::Num(u64::MAX)),
            RoomId(JanusId::Num(1234)),
            RoomId(JanusId::Text("a \"quoted\" /room\\ é".into())),
        ] {
            let json = String::from_utf8(encode(&room).to_vec()).unwrap();
            let whole = format!("{}{json}{}", around.head, around.tail);
            let want = RpcEnvelope::told(NodeCommand::HandleGone {
                session: s,
                handle: h,
                room,
                reason: GoneReason::Detached,
            });
            assert_eq!(whole.as_bytes(), &encode(&want)[..]);
            assert_eq!(decode_rpc(whole.as_bytes()).unwrap(), want);
        }
    }

    /// A `Plugin` command's room is found where it goes even when the client's transaction
    /// spells the stand-in.
    #[test]
    fn a_transaction_spelling_the_stand_in_does_not_move_the_room() {
        let envelope = |room| RpcEnvelope {
            v: WIRE_VERSION,
            corr_id: 7,
            reply_to: "gw".into(),
            cmd: NodeCommand::Plugin {
                session: SessionId(1),
                handle: HandleId(2),
                transaction: "\u{0}room\u{0}".into(),
                request: leave_request(),
                jsep: None,
                bound_room: Some(room),
                capture: None,
            },
        };
        let around = AroundRoom::of(envelope);
        let room = RoomId(JanusId::Num(99));
        let whole = format!("{}99{}", around.head, around.tail);
        assert_eq!(decode_rpc(whole.as_bytes()).unwrap(), envelope(room));
    }

    /// A VideoRoom `leave`, as parsed.
    fn leave_request() -> crate::janus::videoroom::VideoRoomRequest {
        let body = serde_json::json!({"request": "leave"}).as_object().cloned().unwrap_or_default();
        let body = crate::janus::request::PluginBody::from_map(body);
        crate::janus::videoroom::parse_request(&body, crate::janus::videoroom::Policy::default()).unwrap()
    }
}
