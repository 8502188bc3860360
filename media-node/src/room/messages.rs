//! The closed set of messages a `RoomActor` handles.

use super::state::Who;
use crate::media::MediaError;
use actix::Message;
use shared::janus::errors::VideoRoomError;
use shared::janus::request::Jsep;
use shared::janus::videoroom::{AsyncName, AsyncRequest, HandleInfo, SyncRequest, VideoRoomEvent};
use shared::wire::GoneReason;

/// A synchronous request for this room; answers `plugindata.data`.
#[derive(Message)]
#[rtype(result = "SyncAnswer")]
pub struct Sync(pub SyncRequest);

/// The answer to [`Sync`]: the data, and whether the room is gone afterwards (destroyed).
pub struct SyncAnswer {
    pub data: VideoRoomEvent,
    pub room_closed: bool,
}

/// An asynchronous request from a handle; its outcome travels as events.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Async {
    pub who: Who,
    pub transaction: String,
    pub name: AsyncName,
    pub parsed: Result<AsyncRequest, VideoRoomError>,
    pub jsep: Option<Jsep>,
    /// The handle's packet capture, started once a join has it in the room.
    pub capture: Option<Box<shared::janus::admin::CaptureSpec>>,
    /// Where to acknowledge the request (`Accepted`: the gateway's channel and the call's id),
    /// which the room does as it takes it, ahead of the events it causes.
    pub ack: Option<(String, u64)>,
}

/// A handle's PeerConnection or the handle itself went away.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Gone {
    pub who: Who,
    pub reason: GoneReason,
}

/// Something happened to a publisher's PeerConnection.
#[derive(Message)]
#[rtype(result = "()")]
pub struct PeerNotice {
    pub who: Who,
    pub event: crate::media::peer::PeerEvent,
}

/// A publisher's offer was answered (or refused).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Answered {
    pub who: Who,
    pub transaction: String,
    pub result: Result<(crate::media::publisher::PublisherPeer, String), MediaError>,
}

/// A subscriber's offer was built (or not).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Offered {
    pub who: Who,
    pub transaction: String,
    pub result: Result<(crate::media::subscriber::SubscriberPeer, String), MediaError>,
}

/// A subscriber's answer was applied (or not).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Started {
    pub who: Who,
    pub transaction: String,
    pub result: Result<(), MediaError>,
}

/// A subscriber's new offer after some of its streams lost their publisher (or not).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Renegotiated {
    pub who: Who,
    pub transaction: Option<String>,
    pub result: Result<String, MediaError>,
}

/// ICE candidates the client trickled for a handle's PeerConnection.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Trickle {
    pub who: Who,
    pub candidates: Vec<shared::janus::request::Candidate>,
}

/// Answered, with the handles in the room, once everything sent to the room before it has been
/// handled (the end of a drain waits for it).
#[derive(Message)]
#[rtype(result = "Vec<crate::room::state::Who>")]
pub struct Flush;

/// What the room knows of a handle, for the Admin API's `handle_info`. `None`: not here.
#[derive(Message)]
#[rtype(result = "Option<QueryAnswer>")]
pub struct Query(pub Who);

pub struct QueryAnswer {
    /// `plugin_specific`.
    pub info: HandleInfo,
    /// Its PeerConnection, whose statistics are read outside the actor.
    pub pc: Option<std::sync::Arc<dyn webrtc::peer_connection::PeerConnection>>,
    /// Its running packet capture: format and file.
    pub capture: Option<(shared::janus::admin::CaptureFormat, String)>,
}

/// Starts (`start`) or stops a handle's packet capture; a stop's receiver answers once the
/// file has all that was captured.
#[derive(Message)]
#[rtype(result = "(shared::wire::CaptureAnswer, Option<tokio::sync::oneshot::Receiver<()>>)")]
pub struct CaptureOrder {
    pub who: Who,
    pub start: Option<shared::janus::admin::CaptureSpec>,
}
