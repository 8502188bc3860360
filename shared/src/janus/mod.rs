//! The Janus API: the only client-facing serde types.
//!
//! - [`admin`]: the Admin API's requests and replies.
//! - [`errors`]: core and VideoRoom error codes.
//! - [`json`]: Janus-style parameter validation with Janus's reason texts.
//! - [`request`]: request parsing at the edge into typed values.
//! - [`reply`]: replies and events with Janus's exact shapes.
//! - [`signed_token`]: Janus's HMAC-signed tokens (`token_auth_secret`).
//! - [`videoroom`]: the VideoRoom plugin's requests, room configuration and event bodies.

pub mod admin;
pub mod errors;
pub mod json;
pub mod layout;
pub mod reply;
pub mod request;
pub mod signed_token;
pub mod transport_query;
pub mod videoroom;

/// The package name of the only plugin Portunus serves.
pub const VIDEOROOM_PLUGIN: &str = "janus.plugin.videoroom";
