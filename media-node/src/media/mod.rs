//! Media: WebRTC peers for publishers and subscribers on webrtc-rs. Only this module imports
//! webrtc-rs, so the library can be swapped (str0m, the sans-IO `rtc` core) without touching
//! rooms: `peer` sets PeerConnections up, `publisher` holds a publisher's, `subscriber` a
//! subscriber's; `forward` is the per-packet path from a publisher's track to its subscribers',
//! with `rewrite` (sequence numbers and timestamps), `vp8` (keyframes, temporal layers),
//! `simulcast` (which layer a stream takes), `gop` (a publisher layer's latest group of pictures) and `preroll` (video kept while a subscriber connects); `keyframe_pacing` says when a publisher's keyframe requests go out; `data` relays publishers' data channel messages to
//! a subscriber's, `feedback` is an interceptor for the `rtc` core (the RTCP the application
//! acts on), `extensions` the RTP header extensions both legs negotiate and relay (`tap` is the
//! pass-through interceptor these are written on; `capture` writes a handle's packets to a pcap or
//! text2pcap file from it), `sdp` reads what the room needs to announce
//! from an SDP, `tuning` holds the knobs the Admin API turns (no-media timer, slow-link
//! threshold, NACK queue), and `error` says why something failed and what the VideoRoom answers then.

pub mod arrivals;
pub mod candidates;
pub mod capture;
pub mod codec;
pub mod data;
pub mod error;
pub mod extensions;
pub mod feed;
pub mod feedback;
pub mod forward;
pub mod forwarder;
pub mod gop;
pub mod gso;
pub mod incoming;
pub mod keyframe_pacing;
pub mod outgoing;
pub mod peer;
pub mod preroll;
pub mod publisher;
pub mod recorder;
pub mod remote;
pub mod retransmit;
pub mod rewrite;
mod runtime;
pub mod sdp;
pub mod send_history;
pub mod simulcast;
pub mod single_port;
pub mod stats;
pub mod subscriber;
pub mod svc;
pub mod talk;
pub mod tap;
pub mod tuning;
pub mod vp8;

pub use error::{MediaError, MediaStep};
