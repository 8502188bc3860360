//! The Redis store's keys (prefix `pt:`; a session's keys share the hash tag `{s:SID}`):
//! `pt:{s:SID}:meta` (hash: created, timeout, owner, gone, own, who, relay, kept),
//! `pt:{s:SID}:handles` (hash of handle JSON), `pt:{s:SID}:mbox` (list of events),
//! `pt:{s:SID}:grave` (marks a destroyed session's readable mailbox), `pt:sessions` (set),
//! `pt:deadlines` (zset), `pt:handles:count`, `pt:room:R` (room JSON), `pt:room:R:n`
//! (participants), `pt:room:R:node` (owner), `pt:rooms`, `pt:knobs` (hash: the media knobs
//! turned), `pt:node:N` (a media node's registration) and `pt:node:N:handles` (the handles
//! bound to it).
//!
//! Session keys also expire by themselves, at least 60 s past the deadline (the expiry, 2x the
//! timeout + 60 s, is renewed once it would come nearer; the meta's `kept` is when it was set
//! for): a safety net for when no gateway is left to reap them, far enough past the deadline
//! that a reaper always finds the session (and sends its `timeout`) first.

use crate::ids::{NodeId, RoomId, SessionId};

pub(super) fn meta(s: SessionId) -> String {
    format!("pt:{{s:{s}}}:meta")
}
pub(super) fn handles(s: SessionId) -> String {
    format!("pt:{{s:{s}}}:handles")
}
pub(super) fn mbox(s: SessionId) -> String {
    format!("pt:{{s:{s}}}:mbox")
}
pub(super) fn grave(s: SessionId) -> String {
    format!("pt:{{s:{s}}}:grave")
}
pub(super) const SESSIONS: &str = "pt:sessions";
pub(super) const DEADLINES: &str = "pt:deadlines";
/// The Admin API's default session timeout (ms), once set.
pub(super) const DEFAULT_TIMEOUT: &str = "pt:sessions:timeout";
pub(super) const HANDLE_COUNT: &str = "pt:handles:count";
pub(super) const ROOMS: &str = "pt:rooms";
// Keyed by the id's key form: a number, or `s:` and a string id.
pub(super) fn room_key(r: &RoomId) -> String {
    format!("pt:room:{}", r.0.key())
}
pub(super) fn room_n(r: &RoomId) -> String {
    format!("pt:room:{}:n", r.0.key())
}
pub(super) fn room_node(r: &RoomId) -> String {
    format!("pt:room:{}:node", r.0.key())
}
pub(super) const NODES: &str = "pt:nodes";
/// Stored tokens: token -> the plugins it may attach to, one per line.
pub(super) const TOKENS: &str = "pt:tokens";
/// The media knobs the Admin API turned: field -> value (`tuning::Knob`).
pub(super) const KNOBS: &str = "pt:knobs";
/// Set once the declared rooms exist; gone with everything else when Redis loses its data.
pub(super) const SEEDED: &str = "pt:seeded";
pub(super) fn node_key(n: &NodeId) -> String {
    format!("pt:node:{n}")
}
