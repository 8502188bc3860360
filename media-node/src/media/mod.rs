//! Media: WebRTC peers for publishers (and, next, subscribers) on webrtc-rs. `peer` is the only
//! module that imports webrtc-rs, so the library can be swapped (str0m, the sans-IO `rtc` core)
//! without touching rooms; `sdp` reads what the room needs to announce from an SDP.

pub mod peer;
pub mod sdp;
