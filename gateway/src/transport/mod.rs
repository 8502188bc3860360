//! Client-facing transports. Each turns its framing into bytes for
//! [`crate::api::Dispatcher::handle`] and delivers session events from the mailboxes.
//!
//! - [`ws`]: WebSocket with the `janus-protocol` subprotocol (`answering`: its events held
//!   for the reply of the request in flight).
//! - [`http`]: REST + long-poll.
//! - [`admin_ws`]: the Admin API over WebSocket (`janus-admin-protocol`).
//! - [`counted`]: the HTTP listeners' open connections and requests in flight.

pub mod admin_ws;
mod answering;
pub mod counted;
pub mod http;
pub mod ws;
