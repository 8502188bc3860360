//! The Janus API: the only client-facing serde types.
//!
//! - [`errors`]: core and VideoRoom error codes.
//! - [`json`]: Janus-style parameter validation with Janus's reason texts.
//! - [`request`]: request parsing at the edge into typed values.
//! - [`reply`]: replies and events with Janus's exact shapes.
//! - [`videoroom`]: the VideoRoom plugin's requests, room configuration and event bodies.

pub mod errors;
pub mod json;
pub mod reply;
pub mod request;
pub mod videoroom;

/// The package name of the only plugin Portunus serves.
pub const VIDEOROOM_PLUGIN: &str = "janus.plugin.videoroom";
