//! Media: WebRTC peers for publishers and subscribers on webrtc-rs. `peer` is the only module
//! that imports webrtc-rs (with `keyframe_requests`, an interceptor for its `rtc` core), so the
//! library can be swapped (str0m, the sans-IO `rtc` core) without touching rooms; `sdp` reads
//! what the room needs to announce from an SDP.

pub mod keyframe_requests;
pub mod peer;
pub mod sdp;
