//! Why the media side could not do what the room asked, and the VideoRoom error each failure
//! becomes — decided here and nowhere else.

use shared::janus::errors::{VideoRoomCode, VideoRoomError};
use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MediaError {
    /// The client's SDP (offer or answer) was refused at `step`.
    Sdp { step: &'static str, detail: String },
    /// The WebRTC stack failed at `step` (a PeerConnection, a codec, a track).
    Stack { step: &'static str, detail: String },
    /// A socket or file could not be opened or used.
    Io { what: String, detail: String },
    /// A parameter of the request cannot be used (SRTP crypto).
    Invalid(String),
    /// What the request refers to is not there (any more).
    Gone(&'static str),
    /// State another task left broken (a poisoned lock): a bug.
    Bug(&'static str),
}

impl MediaError {
    pub fn sdp(step: &'static str, e: impl fmt::Display) -> Self {
        Self::Sdp { step, detail: e.to_string() }
    }

    pub fn stack(step: &'static str, e: impl fmt::Display) -> Self {
        Self::Stack { step, detail: e.to_string() }
    }

    pub fn io(what: impl fmt::Display, e: impl fmt::Display) -> Self {
        Self::Io { what: what.to_string(), detail: e.to_string() }
    }
}

impl fmt::Display for MediaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sdp { step, detail } | Self::Stack { step, detail } => write!(f, "{step}: {detail}"),
            Self::Io { what, detail } => write!(f, "{what}: {detail}"),
            Self::Invalid(s) => f.write_str(s),
            Self::Gone(s) | Self::Bug(s) => f.write_str(s),
        }
    }
}

impl std::error::Error for MediaError {}

/// What the room asked the media side to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MediaStep {
    /// Answer a publisher's offer.
    Publish,
    /// Build a subscriber's PeerConnection and offer.
    Subscribe,
    /// Apply a subscriber's answer.
    Start,
    /// Offer a subscriber again.
    Renegotiate,
    /// Start an RTP forwarder.
    Forward,
    /// Receive a remote publisher, or send to a remote server.
    Remote,
}

impl MediaError {
    /// The VideoRoom error a request gets when its media `step` failed this way: the client's
    /// SDP or parameters are the client's error, anything else the server's (499).
    pub fn in_step(&self, step: MediaStep) -> VideoRoomError {
        if let Self::Invalid(reason) = self {
            return VideoRoomError::new(VideoRoomCode::InvalidElement, reason.clone());
        }
        let sdp = matches!(self, Self::Sdp { .. });
        let code = |client: VideoRoomCode| if sdp { client } else { VideoRoomCode::UnknownError };
        match step {
            MediaStep::Publish => {
                VideoRoomError::new(code(VideoRoomCode::InvalidSdp), format!("Error processing the SDP offer: {self}"))
            }
            MediaStep::Start => {
                VideoRoomError::new(code(VideoRoomCode::InvalidSdp), format!("Error processing the SDP answer: {self}"))
            }
            MediaStep::Subscribe => {
                let code =
                    if matches!(self, Self::Gone(_)) { VideoRoomCode::NoSuchFeed } else { VideoRoomCode::UnknownError };
                VideoRoomError::new(code, format!("Cannot subscribe: {self}"))
            }
            MediaStep::Renegotiate => {
                VideoRoomError::new(VideoRoomCode::UnknownError, format!("Error renegotiating: {self}"))
            }
            MediaStep::Forward => {
                VideoRoomError::new(VideoRoomCode::UnknownError, format!("Could not start the forwarder ({self})"))
            }
            MediaStep::Remote => VideoRoomError::new(VideoRoomCode::UnknownError, self.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clients_sdp_is_the_clients_error_and_the_rest_the_servers() {
        let bad = MediaError::sdp("remote description", "no m-line");
        let e = bad.in_step(MediaStep::Publish);
        assert_eq!(e.code, VideoRoomCode::InvalidSdp);
        assert_eq!(e.reason, "Error processing the SDP offer: remote description: no m-line");
        assert_eq!(bad.in_step(MediaStep::Start).code, VideoRoomCode::InvalidSdp);
        let ours = MediaError::stack("PeerConnection", "no ports");
        assert_eq!(ours.in_step(MediaStep::Publish).code, VideoRoomCode::UnknownError);
        assert_eq!(
            MediaError::Gone("the publisher is gone").in_step(MediaStep::Subscribe).code,
            VideoRoomCode::NoSuchFeed
        );
        let crypto = MediaError::Invalid("Invalid SRTP crypto".into()).in_step(MediaStep::Forward);
        assert_eq!((crypto.code, crypto.reason.as_str()), (VideoRoomCode::InvalidElement, "Invalid SRTP crypto"));
        let socket = MediaError::io("UDP socket", "in use").in_step(MediaStep::Forward);
        assert_eq!(socket.reason, "Could not start the forwarder (UDP socket: in use)");
    }
}
