//! Janus error codes: the core table (`apierror.h`) and the VideoRoom table
//! (`janus_videoroom.c`), as `#[repr(u16)]` enums. Every numeric code Portunus sends comes from here.

use thiserror::Error;

/// Core API error codes (`JANUS_ERROR_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u16)]
pub enum CoreCode {
    Unauthorized = 403,
    UnauthorizedPlugin = 405,
    /// Portunus's own: the request rate limit was exceeded (Janus has no rate limits).
    TooManyRequests = 429,
    TransportSpecific = 450,
    MissingRequest = 452,
    UnknownRequest = 453,
    InvalidJson = 454,
    InvalidJsonObject = 455,
    MissingMandatoryElement = 456,
    InvalidRequestPath = 457,
    SessionNotFound = 458,
    HandleNotFound = 459,
    PluginNotFound = 460,
    PluginAttach = 461,
    PluginMessage = 462,
    PluginDetach = 463,
    JsepUnknownType = 464,
    JsepInvalidSdp = 465,
    TrickleInvalidStream = 466,
    InvalidElementType = 467,
    SessionConflict = 468,
    UnexpectedAnswer = 469,
    TokenNotFound = 470,
    WebrtcState = 471,
    NotAcceptingSessions = 472,
    Unknown = 490,
}

impl CoreCode {
    pub fn code(self) -> u16 {
        self as u16
    }

    /// The default reason Janus uses when a call site gives none (`janus_get_api_error`).
    pub fn default_reason(self) -> &'static str {
        use CoreCode::*;
        match self {
            Unauthorized => "Unauthorized request (wrong or missing secret/token)",
            UnauthorizedPlugin => "Unauthorized access to plugin (token is not allowed to)",
            TooManyRequests => "Too many requests",
            TransportSpecific => "Transport specific error",
            MissingRequest => "Missing request",
            UnknownRequest => "Unknown request",
            InvalidJson => "Invalid JSON",
            InvalidJsonObject => "Invalid JSON Object",
            MissingMandatoryElement => "Missing mandatory element",
            InvalidRequestPath => "Invalid path for this request",
            SessionNotFound => "Session not found",
            HandleNotFound => "Handle not found",
            PluginNotFound => "Plugin not found",
            PluginAttach => "Error attaching plugin",
            PluginMessage => "Error sending message to plugin",
            PluginDetach => "Error detaching from plugin",
            JsepUnknownType => "Unsupported JSEP type",
            JsepInvalidSdp => "Invalid SDP",
            TrickleInvalidStream => "Invalid stream",
            InvalidElementType => "Invalid element type",
            SessionConflict => "Session ID already in use",
            UnexpectedAnswer => "Unexpected ANSWER (no OFFER)",
            TokenNotFound => "Token not found",
            WebrtcState => "Wrong WebRTC state",
            NotAcceptingSessions => "Currently not accepting new sessions",
            Unknown => "Unknown error",
        }
    }
}

/// A core-level error: code plus reason text, as carried in `{"janus":"error","error":{...}}`.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("{code:?}: {reason}")]
pub struct CoreError {
    pub code: CoreCode,
    pub reason: String,
}

impl CoreError {
    pub fn new(code: CoreCode, reason: impl Into<String>) -> Self {
        Self { code, reason: reason.into() }
    }
    /// The error with Janus's default reason for its code.
    pub fn default_for(code: CoreCode) -> Self {
        Self::new(code, code.default_reason())
    }
}

/// VideoRoom plugin error codes (`JANUS_VIDEOROOM_ERROR_*`), carried inside `plugindata.data`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[repr(u16)]
pub enum VideoRoomCode {
    UnknownError = 499,
    NoMessage = 421,
    InvalidJson = 422,
    InvalidRequest = 423,
    JoinFirst = 424,
    AlreadyJoined = 425,
    NoSuchRoom = 426,
    RoomExists = 427,
    NoSuchFeed = 428,
    MissingElement = 429,
    InvalidElement = 430,
    InvalidSdpType = 431,
    PublishersFull = 432,
    Unauthorized = 433,
    AlreadyPublished = 434,
    NotPublished = 435,
    IdExists = 436,
    InvalidSdp = 437,
    InvalidFeed = 438,
}

/// A VideoRoom error: `{"videoroom":"event","error_code":N,"error":"..."}`.
#[derive(Clone, Debug, PartialEq, Eq, Error, serde::Serialize, serde::Deserialize)]
#[error("{code:?}: {reason}")]
pub struct VideoRoomError {
    pub code: VideoRoomCode,
    pub reason: String,
}

impl VideoRoomError {
    pub fn new(code: VideoRoomCode, reason: impl Into<String>) -> Self {
        Self { code, reason: reason.into() }
    }
    pub fn no_such_room(room: impl std::fmt::Display) -> Self {
        Self::new(VideoRoomCode::NoSuchRoom, format!("No such room ({room})"))
    }
}
