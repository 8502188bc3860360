//! Replies and events with Janus's exact shapes. Field order follows Janus's own output so that
//! captures read the same side by side.

use super::errors::CoreError;
use super::request::{Jsep, RequestError};
use crate::ids::{HandleId, SessionId};
use crate::media::{MediaKind, Mid};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `{"code":N,"reason":"..."}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub code: u16,
    pub reason: String,
}

/// `{"id":N}` in create/attach successes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdData {
    pub id: u64,
}

/// `plugindata`: which plugin answered and its JSON payload (built by the plugin's typed builders).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PluginData {
    pub plugin: String,
    pub data: Value,
}

/// A direct reply to one request.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "janus", rename_all = "snake_case")]
pub enum Reply {
    Success {
        #[serde(skip_serializing_if = "Option::is_none")]
        session_id: Option<SessionId>,
        transaction: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        sender: Option<HandleId>,
        #[serde(skip_serializing_if = "Option::is_none")]
        data: Option<IdData>,
        #[serde(skip_serializing_if = "Option::is_none")]
        plugindata: Option<PluginData>,
    },
    Ack {
        session_id: SessionId,
        transaction: String,
    },
    Pong {
        transaction: String,
    },
    Error {
        #[serde(skip_serializing_if = "Option::is_none")]
        session_id: Option<SessionId>,
        #[serde(skip_serializing_if = "Option::is_none")]
        transaction: Option<String>,
        error: ErrorBody,
    },
    ServerInfo(Box<ServerInfo>),
}

impl Reply {
    pub fn success(session_id: Option<SessionId>, transaction: &str) -> Self {
        Reply::Success { session_id, transaction: transaction.to_owned(), sender: None, data: None, plugindata: None }
    }
    pub fn with_id(session_id: Option<SessionId>, transaction: &str, id: u64) -> Self {
        Reply::Success {
            session_id,
            transaction: transaction.to_owned(),
            sender: None,
            data: Some(IdData { id }),
            plugindata: None,
        }
    }
    pub fn plugin_success(sid: SessionId, hid: HandleId, transaction: &str, pd: PluginData) -> Self {
        Reply::Success {
            session_id: Some(sid),
            transaction: transaction.to_owned(),
            sender: Some(hid),
            data: None,
            plugindata: Some(pd),
        }
    }
    pub fn ack(session_id: SessionId, transaction: &str) -> Self {
        Reply::Ack { session_id, transaction: transaction.to_owned() }
    }
    pub fn error(session_id: Option<SessionId>, transaction: Option<&str>, e: &CoreError) -> Self {
        Reply::Error {
            session_id,
            transaction: transaction.map(str::to_owned),
            error: ErrorBody { code: e.code.code(), reason: e.reason.clone() },
        }
    }
    pub fn from_request_error(e: &RequestError) -> Self {
        Self::error(e.session_id, e.transaction.as_deref(), &e.error)
    }
    /// The error code, when this is an error (for metrics).
    pub fn error_code(&self) -> Option<u16> {
        match self {
            Reply::Error { error, .. } => Some(error.code),
            _ => None,
        }
    }
    pub fn to_bytes(&self) -> Vec<u8> {
        to_json(self)
    }
    /// The reply as text (a WebSocket text frame), with no UTF-8 check to pay: serde_json writes
    /// a `String` as it goes.
    pub fn to_text(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| {
            tracing::error!(error = %e, "serialization of a Janus message failed");
            SERIALIZATION_FAILED.to_owned()
        })
    }
}

/// Serializes a reply or event; these types cannot fail to serialize (no maps with non-string keys).
pub fn to_json<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_else(|e| {
        tracing::error!(error = %e, "serialization of a Janus message failed");
        SERIALIZATION_FAILED.as_bytes().to_vec()
    })
}

/// What goes out in place of a message that failed to serialize.
const SERIALIZATION_FAILED: &str = r#"{"janus":"error","error":{"code":490,"reason":"Unknown error"}}"#;

/// The `server_info` reply to `info`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ServerInfo {
    pub transaction: String,
    pub name: String,
    pub version: u32,
    pub version_string: String,
    pub author: String,
    #[serde(rename = "portunus-version")]
    pub portunus_version: String,
    pub data_channels: bool,
    #[serde(rename = "accepting-new-sessions")]
    pub accepting_new_sessions: bool,
    #[serde(rename = "session-timeout")]
    pub session_timeout: u64,
    #[serde(rename = "reclaim-session-timeout")]
    pub reclaim_session_timeout: u64,
    #[serde(rename = "server-name")]
    pub server_name: String,
    pub ipv6: bool,
    #[serde(rename = "ice-tcp")]
    pub ice_tcp: bool,
    #[serde(rename = "full-trickle")]
    pub full_trickle: bool,
    pub api_secret: bool,
    pub auth_token: bool,
    pub event_handlers: bool,
    pub opaqueid_in_api: bool,
    pub transports: serde_json::Map<String, Value>,
    pub events: serde_json::Map<String, Value>,
    pub loggers: serde_json::Map<String, Value>,
    pub plugins: serde_json::Map<String, Value>,
}

/// A component entry in `server_info` (`transports`, `plugins`).
pub fn component(name: &str, description: &str, version_string: &str, version: u32) -> Value {
    serde_json::json!({
        "name": name,
        "author": "Portunus",
        "description": description,
        "version_string": version_string,
        "version": version,
    })
}

/// Asynchronous messages delivered through a session's mailbox.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "janus", rename_all = "snake_case")]
pub enum Event {
    /// A plugin event; `transaction` is present when it answers a request.
    Event {
        session_id: SessionId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        transaction: Option<String>,
        sender: HandleId,
        plugindata: PluginData,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        jsep: Option<Jsep>,
    },
    Detached {
        session_id: SessionId,
        sender: HandleId,
    },
    Hangup {
        session_id: SessionId,
        sender: HandleId,
        reason: String,
    },
    Webrtcup {
        session_id: SessionId,
        sender: HandleId,
    },
    Media {
        session_id: SessionId,
        sender: HandleId,
        mid: Mid,
        #[serde(rename = "type")]
        kind: MediaKind,
        receiving: bool,
        /// Which substream, when the stream is simulcast (Janus reports them one by one).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        substream: Option<u8>,
    },
    Timeout {
        session_id: SessionId,
    },
    /// Packets of one stream are being lost (`uplink`: media Janus sends, as the peer reports
    /// it; otherwise media Janus receives); `lost` in the last second.
    Slowlink {
        session_id: SessionId,
        sender: HandleId,
        mid: Mid,
        media: MediaKind,
        uplink: bool,
        lost: u32,
    },
}

impl Event {
    pub fn to_bytes(&self) -> Vec<u8> {
        to_json(self)
    }
}

/// The long-poll's "nothing happened" answer.
pub const KEEPALIVE_EVENT: &[u8] = br#"{"janus":"keepalive"}"#;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::janus::errors::CoreCode;
    use serde_json::json;

    #[test]
    fn shapes_match_janus() {
        let v: Value = serde_json::from_slice(&Reply::with_id(None, "t", 5).to_bytes()).unwrap();
        assert_eq!(v, json!({"janus":"success","transaction":"t","data":{"id":5}}));
        let v: Value = serde_json::from_slice(&Reply::ack(SessionId(1), "t").to_bytes()).unwrap();
        assert_eq!(v, json!({"janus":"ack","session_id":1,"transaction":"t"}));
        let e = CoreError::new(CoreCode::SessionNotFound, "No such session 3");
        let v: Value = serde_json::from_slice(&Reply::error(Some(SessionId(3)), Some("t"), &e).to_bytes()).unwrap();
        assert_eq!(
            v,
            json!({"janus":"error","session_id":3,"transaction":"t","error":{"code":458,"reason":"No such session 3"}})
        );
        let v: Value = serde_json::from_slice(&Event::Timeout { session_id: SessionId(9) }.to_bytes()).unwrap();
        assert_eq!(v, json!({"janus":"timeout","session_id":9}));
    }
}
