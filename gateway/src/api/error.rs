//! Gateway errors and their one mapping to Janus codes (Janus's `janus_process_error`).

use shared::ids::{HandleId, SessionId};
use shared::janus::errors::{CoreCode, CoreError};
use shared::store::StoreError;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum GatewayError {
    /// A request field failed validation (456, 464, 465, 467, ...), already worded by `shared::janus`.
    #[error(transparent)]
    Invalid(#[from] CoreError),
    #[error("no such session {0}")]
    NoSuchSession(SessionId),
    #[error("no such handle {1} in session {0}")]
    NoSuchHandle(SessionId, HandleId),
    #[error("session {0} already exists")]
    SessionConflict(SessionId),
    #[error("unhandled request '{0}' at this path")]
    WrongPath(String),
    #[error("unknown request '{0}'")]
    UnknownRequest(String),
    #[error("no such plugin '{0}'")]
    NoSuchPlugin(String),
    #[error("session limit {0} reached")]
    TooManySessions(usize),
    #[error("per-connection session limit {0} reached")]
    TooManyConnectionSessions(usize),
    #[error("handle limit {0} reached")]
    TooManyHandles(usize),
    #[error("not accepting new sessions")]
    NotAccepting,
    #[error("media node unavailable: {0}")]
    NodeUnavailable(String),
    #[error("state store unavailable: {0}")]
    Store(String),
    #[error("more than {0} requests queued on one connection")]
    Busy(usize),
    #[error("message of {size} bytes exceeds the {limit}-byte limit")]
    TooLarge { size: usize, limit: usize },
    #[error("unauthorized: wrong or missing secret or token")]
    Unauthorized,
    #[error("the token may not use plugin '{0}'")]
    UnauthorizedPlugin(String),
    #[error("more than {limit} requests per second per {scope}")]
    RateLimited { limit: u32, scope: &'static str },
}

impl From<StoreError> for GatewayError {
    fn from(e: StoreError) -> Self {
        GatewayError::Store(e.to_string())
    }
}

impl GatewayError {
    /// The Janus error for this failure: code and the reason text Janus uses.
    pub fn to_core(&self) -> CoreError {
        use GatewayError::*;
        match self {
            Invalid(e) => e.clone(),
            NoSuchSession(s) => CoreError::new(CoreCode::SessionNotFound, format!("No such session {s}")),
            NoSuchHandle(s, h) => {
                CoreError::new(CoreCode::HandleNotFound, format!("No such handle {h} in session {s}"))
            }
            SessionConflict(_) => CoreError::new(CoreCode::SessionConflict, "Session ID already in use"),
            WrongPath(v) => {
                CoreError::new(CoreCode::InvalidRequestPath, format!("Unhandled request '{v}' at this path"))
            }
            UnknownRequest(v) => CoreError::new(CoreCode::UnknownRequest, format!("Unknown request '{v}'")),
            NoSuchPlugin(p) => CoreError::new(CoreCode::PluginNotFound, format!("No such plugin '{p}'")),
            TooManySessions(n) => CoreError::new(
                CoreCode::NotAcceptingSessions,
                format!("Currently not accepting new sessions (limit of {n} sessions reached)"),
            ),
            TooManyConnectionSessions(n) => CoreError::new(
                CoreCode::NotAcceptingSessions,
                format!("Currently not accepting new sessions on this connection (limit {n})"),
            ),
            TooManyHandles(n) => CoreError::new(
                CoreCode::PluginAttach,
                format!("Couldn't attach to plugin: too many handles (limit {n})"),
            ),
            NotAccepting => CoreError::default_for(CoreCode::NotAcceptingSessions),
            NodeUnavailable(why) => CoreError::new(
                CoreCode::PluginMessage,
                format!("Error sending message to plugin (media node unavailable: {why})"),
            ),
            Store(why) => CoreError::new(CoreCode::Unknown, format!("State store unavailable ({why})")),
            Busy(n) => CoreError::new(
                CoreCode::TransportSpecific,
                format!("Too many requests in flight on this connection (limit {n}); wait for replies"),
            ),
            Unauthorized => CoreError::default_for(CoreCode::Unauthorized),
            UnauthorizedPlugin(p) => {
                CoreError::new(CoreCode::UnauthorizedPlugin, format!("Provided token can't access plugin '{p}'"))
            }
            RateLimited { limit, scope } => CoreError::new(
                CoreCode::TooManyRequests,
                format!("Too many requests (more than {limit} per second per {scope}); slow down"),
            ),
            TooLarge { size, limit } => CoreError::new(
                CoreCode::TransportSpecific,
                format!("Message too large ({size} bytes, limit {limit} bytes)"),
            ),
        }
    }

    /// A bounded label for metrics.
    pub fn code(&self) -> u16 {
        self.to_core().code.code()
    }
}
