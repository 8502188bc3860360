//! The Janus Admin API (`janus-admin-protocol`): requests parsed at the edge into
//! [`AdminRequest`], in Janus's check order (`janus_process_incoming_admin_request`): the
//! envelope (`transaction`, `janus`), then `info` and `ping` (no secret), then `admin_secret`,
//! then each request's own fields. Replies have Janus's shapes.

use super::errors::{CoreCode, CoreError};
use super::json::{validate, JType, Param};
use super::request::Transport;
use super::transport_query::{self, TransportQuery};
use crate::tuning::Knob;
use serde_json::{json, Map, Value};

/// An Admin API request that reached its verb.
#[derive(Clone, Debug, PartialEq)]
pub enum AdminRequest {
    Info,
    Ping,
    GetStatus,
    ListSessions,
    /// `add_token`: `plugins` absent or empty allows every plugin.
    AddToken {
        token: String,
        plugins: Vec<Value>,
    },
    /// `allow_token` / `disallow_token`: `plugins` is non-empty.
    AllowToken {
        token: String,
        plugins: Vec<Value>,
        allow: bool,
    },
    RemoveToken {
        token: String,
    },
    ListTokens,
    /// Janus's log level, 0 to 7 (this process's tracing filter).
    SetLogLevel {
        level: u8,
    },
    /// Whether this process's log lines start with their time.
    SetLogTimestamps {
        on: bool,
    },
    /// Whether this process's log lines are coloured.
    SetLogColors {
        on: bool,
    },
    /// Whether new sessions are accepted (this gateway's, as a drain sets it).
    AcceptNewSessions {
        accept: bool,
    },
    /// At the server: the default timeout of every session without its own (seconds, 0: none).
    /// At a session: that session's (-1: the default again).
    SetSessionTimeout {
        timeout: i64,
    },
    /// A VideoRoom request (`request`) run as the plugin's Admin API hook runs it.
    MessagePlugin {
        plugin: String,
        request: Option<Value>,
    },
    /// Beyond Janus: the cluster's media nodes (load, state) and the rooms each holds.
    ListNodes,
    /// How this gateway resolves `address`, and how long it took.
    ResolveAddress {
        address: String,
    },
    /// A STUN Binding request from this gateway (from `local_port`, 0: any) to `address`:`port`,
    /// and the address its answer maps.
    TestStun {
        address: String,
        port: u16,
        local_port: u16,
    },
    /// The media workers of every live node and the participants each serves (Janus: its
    /// static event loops and their handles).
    LoopsInfo,
    /// `line` written to this process's log at Janus's log `level` (info when absent or out
    /// of range).
    CustomLogline {
        line: String,
        level: u8,
    },
    /// `query_eventhandler`: a request for the named event handler (Portunus loads none).
    QueryEventHandler,
    /// `query_logger`: a request for the named external logger (Portunus loads none).
    QueryLogger,
    /// `query_transport`: a request for the named transport (`None`: not one of ours).
    QueryTransport(Option<(Transport, TransportQuery)>),
    /// `custom_event`: an event with the given `schema` and `data` for the event handlers
    /// (none, so it goes nowhere, as in a Janus whose event handlers are off).
    CustomEvent,
    /// `set_no_media_timer`, `set_slowlink_threshold`, `set_min_nack_queue`,
    /// `set_nack_optimizations`: a media knob, for the whole cluster.
    Tune(Knob),
    /// Session-level: the session's handles.
    ListHandles,
    DestroySession,
    /// Handle-level.
    DetachHandle,
    HangupWebrtc,
    /// What the handle is and does; with `plugin_only`, the plugin's part alone.
    HandleInfo {
        plugin_only: bool,
    },
    /// `start_pcap` / `start_text2pcap`: the handle's packets, both ways, written to a file.
    StartCapture(CaptureSpec),
    /// `stop_pcap` / `stop_text2pcap` (either stops the handle's capture, whatever its format).
    StopCapture(CaptureFormat),
    /// Anything else (answered "Unhandled request ... at this path", as Janus answers a
    /// request it has no branch for where it arrived).
    Unknown(String),
}

/// The file format of a packet capture.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum CaptureFormat {
    /// libpcap 2.4, each packet in a made-up Ethernet/IPv4/UDP frame (Janus's `start_pcap`).
    Pcap,
    /// One text line per packet for Wireshark's `text2pcap` (Janus's `start_text2pcap`).
    Text2pcap,
}

impl CaptureFormat {
    /// The name Janus's replies and `handle_info` use for it.
    pub fn name(self) -> &'static str {
        match self {
            CaptureFormat::Pcap => "pcap",
            CaptureFormat::Text2pcap => "text2pcap",
        }
    }
}

/// A packet capture asked for: where (`folder`, created if missing; `filename`, else a random
/// name) and how much of each packet (`truncate` bytes, 0: all of it).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CaptureSpec {
    pub format: CaptureFormat,
    pub folder: Option<String>,
    pub filename: Option<String>,
    pub truncate: u32,
}

impl CaptureSpec {
    /// The spec with its file named: `filename` as given, else a random name as Janus makes
    /// one. Named once, where the capture is asked for, so that every node that writes it
    /// later writes the same file.
    pub fn named(mut self) -> Self {
        let extension = match self.format {
            CaptureFormat::Pcap => "pcap",
            CaptureFormat::Text2pcap => "txt",
        };
        if self.filename.is_none() {
            self.filename = Some(format!("janus-text2pcap-{}.{extension}", rand::random::<u32>()));
        }
        self
    }

    /// The file as Janus names it (`folder/filename`, joined as text: an absolute `filename`
    /// stays under `folder`), once [`CaptureSpec::named`] has named it.
    pub fn path(&self) -> String {
        let name = self.filename.as_deref().unwrap_or_default();
        match &self.folder {
            Some(folder) => format!("{folder}/{name}"),
            None => name.to_owned(),
        }
    }
}

/// Where an Admin request is addressed: the server, a session, or a handle (ids as given:
/// 0 or none is no id).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdminTarget {
    Root,
    Session(u64),
    Handle(u64, u64),
}

/// A parsed request: its transaction and what it asks, or the Janus error to answer.
pub struct AdminEnvelope {
    pub transaction: String,
    pub target: AdminTarget,
    /// The verb as spelled (`info` and `ping` need no secret, checked before the verb's fields).
    pub verb: String,
    /// The secret it carries (`admin_secret`), when a string.
    pub admin_secret: Option<String>,
    pub request: Result<AdminRequest, CoreError>,
}

const ENVELOPE: [Param; 2] = [Param::req("transaction", JType::Str), Param::req("janus", JType::Str)];
const ADD_TOKEN: [Param; 2] = [Param::req("token", JType::Str), Param::opt("plugins", JType::Array)];
const TOKEN: [Param; 1] = [Param::req("token", JType::Str)];
const LEVEL: [Param; 1] = [Param::req("level", JType::Int).positive()];
const TIMESTAMPS: [Param; 1] = [Param::req("timestamps", JType::Bool)];
const COLORS: [Param; 1] = [Param::req("colors", JType::Bool)];
const ACCEPT: [Param; 1] = [Param::req("accept", JType::Bool)];
const RESOLVE: [Param; 1] = [Param::req("address", JType::Str)];
const TEST_STUN: [Param; 3] = [
    Param::req("address", JType::Str),
    Param::req("port", JType::Int).positive(),
    Param::opt("localport", JType::Int).positive(),
];
const LOGLINE: [Param; 2] = [Param::req("line", JType::Str), Param::opt("level", JType::Int).positive()];
const QUERY_HANDLER: [Param; 2] = [Param::req("handler", JType::Str), Param::opt("request", JType::Object)];
const QUERY_LOGGER: [Param; 2] = [Param::req("logger", JType::Str), Param::opt("request", JType::Object)];
const QUERY_TRANSPORT: [Param; 2] = [Param::req("transport", JType::Str), Param::opt("request", JType::Object)];
const CUSTOM_EVENT: [Param; 2] = [Param::req("schema", JType::Str), Param::req("data", JType::Object)];
const GLOBAL_TIMEOUT: [Param; 1] = [Param::req("timeout", JType::Int).positive()];
const SESSION_TIMEOUT: [Param; 1] = [Param::req("timeout", JType::Int)];
const MESSAGE_PLUGIN: [Param; 2] = [Param::req("plugin", JType::Str), Param::opt("request", JType::Object)];
const HANDLE_INFO: [Param; 1] = [Param::opt("plugin_only", JType::Bool)];
const CAPTURE: [Param; 3] = [
    Param::opt("folder", JType::Str),
    Param::opt("filename", JType::Str),
    Param::opt("truncate", JType::Int).positive(),
];
const NO_MEDIA_TIMER: [Param; 1] = [Param::req("no_media_timer", JType::Int).positive()];
const SLOWLINK_THRESHOLD: [Param; 1] = [Param::req("slowlink_threshold", JType::Int).positive()];
const MIN_NACK_QUEUE: [Param; 1] = [Param::req("min_nack_queue", JType::Int).positive()];
const NACK_OPTIMIZATIONS: [Param; 1] = [Param::req("nack_optimizations", JType::Bool)];

fn invalid(e: super::json::Invalid) -> CoreError {
    let code = match e {
        super::json::Invalid::Missing(_) => CoreCode::MissingMandatoryElement,
        super::json::Invalid::WrongType(_) => CoreCode::InvalidElementType,
    };
    CoreError::new(code, e.reason())
}

/// Parses one Admin API request; `path` holds the ids of an HTTP path (`/admin/S/H`), else the
/// body's `session_id`/`handle_id` count. `Err` is an envelope error (no transaction to echo,
/// or bad JSON), answered as is.
pub fn parse(bytes: &[u8], path: Option<(u64, Option<u64>)>) -> Result<AdminEnvelope, (Option<String>, CoreError)> {
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|e| (None, CoreError::new(CoreCode::InvalidJson, format!("JSON error: on line {}: {e}", e.line()))))?;
    let obj = match value {
        Value::Object(m) => m,
        _ => return Err((None, CoreError::new(CoreCode::InvalidJsonObject, "JSON error: not an object"))),
    };
    validate(&obj, &ENVELOPE).map_err(|e| (None, invalid(e)))?;
    let text = |k: &str| obj.get(k).and_then(Value::as_str).map(str::to_owned);
    let transaction = text("transaction").unwrap_or_default();
    let verb = text("janus").unwrap_or_default();
    let id = |k: &str| obj.get(k).and_then(Value::as_u64).unwrap_or(0);
    let (session, handle) = match path {
        Some((s, h)) => (s, h.unwrap_or(0)),
        None => (id("session_id"), id("handle_id")),
    };
    let target = match (session, handle) {
        (0, 0) => AdminTarget::Root,
        (s, 0) => AdminTarget::Session(s),
        (s, h) => AdminTarget::Handle(s, h),
    };
    let request = request(&verb.to_ascii_lowercase(), &verb, &obj, target);
    Ok(AdminEnvelope { transaction, target, verb, admin_secret: text("admin_secret"), request })
}

fn request(
    verb: &str,
    spelled: &str,
    obj: &Map<String, Value>,
    target: AdminTarget,
) -> Result<AdminRequest, CoreError> {
    let token = || obj.get("token").and_then(Value::as_str).unwrap_or_default().to_owned();
    let plugins = || obj.get("plugins").and_then(Value::as_array).cloned().unwrap_or_default();
    Ok(match verb {
        "info" => AdminRequest::Info,
        "ping" => AdminRequest::Ping,
        "get_status" => AdminRequest::GetStatus,
        "list_sessions" => AdminRequest::ListSessions,
        "list_tokens" => AdminRequest::ListTokens,
        "set_log_level" => {
            validate(obj, &LEVEL).map_err(invalid)?;
            let level = obj.get("level").and_then(Value::as_u64).unwrap_or(0);
            if level > 7 {
                return Err(CoreError::new(
                    CoreCode::InvalidElementType,
                    "Invalid element type (level should be between 0 and 7)",
                ));
            }
            AdminRequest::SetLogLevel { level: level as u8 }
        }
        "set_log_timestamps" => {
            validate(obj, &TIMESTAMPS).map_err(invalid)?;
            AdminRequest::SetLogTimestamps { on: obj.get("timestamps") == Some(&Value::Bool(true)) }
        }
        "set_log_colors" => {
            validate(obj, &COLORS).map_err(invalid)?;
            AdminRequest::SetLogColors { on: obj.get("colors") == Some(&Value::Bool(true)) }
        }
        "accept_new_sessions" => {
            validate(obj, &ACCEPT).map_err(invalid)?;
            AdminRequest::AcceptNewSessions { accept: obj.get("accept").and_then(Value::as_bool).unwrap_or(false) }
        }
        "set_session_timeout" => {
            let root = target == AdminTarget::Root;
            validate(obj, if root { &GLOBAL_TIMEOUT } else { &SESSION_TIMEOUT }).map_err(invalid)?;
            let timeout = obj.get("timeout").and_then(Value::as_i64).unwrap_or(0);
            if !root && timeout < -1 {
                return Err(CoreError::new(
                    CoreCode::InvalidElementType,
                    "Invalid element type (timeout should be a non-negative integer or -1)",
                ));
            }
            AdminRequest::SetSessionTimeout { timeout }
        }
        "message_plugin" => {
            validate(obj, &MESSAGE_PLUGIN).map_err(invalid)?;
            AdminRequest::MessagePlugin { plugin: text_of(obj, "plugin"), request: obj.get("request").cloned() }
        }
        "handle_info" => {
            validate(obj, &HANDLE_INFO).map_err(invalid)?;
            AdminRequest::HandleInfo { plugin_only: obj.get("plugin_only").and_then(Value::as_bool).unwrap_or(false) }
        }
        // Handle-level only: elsewhere Janus has no branch for them.
        "start_pcap" | "start_text2pcap" if matches!(target, AdminTarget::Handle(..)) => {
            validate(obj, &CAPTURE).map_err(invalid)?;
            let format = if verb == "start_pcap" { CaptureFormat::Pcap } else { CaptureFormat::Text2pcap };
            let text = |k: &str| obj.get(k).and_then(Value::as_str).map(str::to_owned);
            AdminRequest::StartCapture(CaptureSpec {
                format,
                folder: text("folder"),
                filename: text("filename"),
                truncate: count(obj, "truncate"),
            })
        }
        "stop_pcap" if matches!(target, AdminTarget::Handle(..)) => AdminRequest::StopCapture(CaptureFormat::Pcap),
        "stop_text2pcap" if matches!(target, AdminTarget::Handle(..)) => {
            AdminRequest::StopCapture(CaptureFormat::Text2pcap)
        }
        "list_nodes" => AdminRequest::ListNodes,
        "loops_info" => AdminRequest::LoopsInfo,
        "resolve_address" => {
            validate(obj, &RESOLVE).map_err(invalid)?;
            AdminRequest::ResolveAddress { address: text_of(obj, "address") }
        }
        "test_stun" => {
            validate(obj, &TEST_STUN).map_err(invalid)?;
            // Janus keeps the low 16 bits of a port past 65535, as its `uint16_t` does.
            let port = |k: &str| obj.get(k).and_then(Value::as_u64).unwrap_or(0) as u16;
            AdminRequest::TestStun {
                address: text_of(obj, "address"),
                port: port("port"),
                local_port: port("localport"),
            }
        }
        "custom_logline" => {
            validate(obj, &LOGLINE).map_err(invalid)?;
            let level = obj.get("level").and_then(Value::as_u64).filter(|l| *l <= 7).unwrap_or(4);
            AdminRequest::CustomLogline { line: text_of(obj, "line"), level: level as u8 }
        }
        "query_eventhandler" => {
            validate(obj, &QUERY_HANDLER).map_err(invalid)?;
            AdminRequest::QueryEventHandler
        }
        "query_logger" => {
            validate(obj, &QUERY_LOGGER).map_err(invalid)?;
            AdminRequest::QueryLogger
        }
        "query_transport" => {
            validate(obj, &QUERY_TRANSPORT).map_err(invalid)?;
            let request = obj.get("request").and_then(Value::as_object);
            let transport = Transport::named(&text_of(obj, "transport"));
            AdminRequest::QueryTransport(transport.map(|t| (t, transport_query::parse(t, request))))
        }
        "custom_event" => {
            validate(obj, &CUSTOM_EVENT).map_err(invalid)?;
            AdminRequest::CustomEvent
        }
        "set_no_media_timer" => {
            validate(obj, &NO_MEDIA_TIMER).map_err(invalid)?;
            AdminRequest::Tune(Knob::NoMediaTimer(count(obj, "no_media_timer")))
        }
        "set_slowlink_threshold" => {
            validate(obj, &SLOWLINK_THRESHOLD).map_err(invalid)?;
            AdminRequest::Tune(Knob::SlowlinkThreshold(count(obj, "slowlink_threshold")))
        }
        "set_min_nack_queue" => {
            validate(obj, &MIN_NACK_QUEUE).map_err(invalid)?;
            AdminRequest::Tune(Knob::MinNackQueue(count(obj, "min_nack_queue")))
        }
        "set_nack_optimizations" => {
            validate(obj, &NACK_OPTIMIZATIONS).map_err(invalid)?;
            AdminRequest::Tune(Knob::NackOptimizations(obj.get("nack_optimizations") == Some(&Value::Bool(true))))
        }
        "list_handles" => AdminRequest::ListHandles,
        "destroy_session" => AdminRequest::DestroySession,
        "detach_handle" => AdminRequest::DetachHandle,
        "hangup_webrtc" => AdminRequest::HangupWebrtc,
        "add_token" => {
            validate(obj, &ADD_TOKEN).map_err(invalid)?;
            AdminRequest::AddToken { token: token(), plugins: plugins() }
        }
        "allow_token" | "disallow_token" => {
            validate(obj, &ADD_TOKEN).map_err(invalid)?;
            let plugins = plugins();
            if plugins.is_empty() {
                return Err(CoreError::new(
                    CoreCode::InvalidElementType,
                    "Invalid element type (plugins should be a non-empty array)",
                ));
            }
            AdminRequest::AllowToken { token: token(), plugins, allow: verb == "allow_token" }
        }
        "remove_token" => {
            validate(obj, &TOKEN).map_err(invalid)?;
            AdminRequest::RemoveToken { token: token() }
        }
        _ => AdminRequest::Unknown(spelled.to_owned()),
    })
}

/// A validated non-negative integer field, as a count (beyond `u32`: the largest).
fn count(obj: &Map<String, Value>, k: &str) -> u32 {
    obj.get(k).and_then(Value::as_u64).map_or(0, |v| u32::try_from(v).unwrap_or(u32::MAX))
}

fn text_of(obj: &Map<String, Value>, k: &str) -> String {
    obj.get(k).and_then(Value::as_str).unwrap_or_default().to_owned()
}

impl AdminEnvelope {
    /// Whether the request needs the admin secret (all but `info` and `ping` to the server).
    pub fn needs_secret(&self) -> bool {
        self.target != AdminTarget::Root || !matches!(self.verb.to_ascii_lowercase().as_str(), "info" | "ping")
    }
}

impl AdminRequest {
    /// A bounded label for metrics and logs.
    pub fn label(&self) -> &'static str {
        match self {
            AdminRequest::Info => "info",
            AdminRequest::Ping => "ping",
            AdminRequest::GetStatus => "get_status",
            AdminRequest::ListSessions => "list_sessions",
            AdminRequest::AddToken { .. } => "add_token",
            AdminRequest::AllowToken { allow: true, .. } => "allow_token",
            AdminRequest::AllowToken { allow: false, .. } => "disallow_token",
            AdminRequest::RemoveToken { .. } => "remove_token",
            AdminRequest::ListTokens => "list_tokens",
            AdminRequest::SetLogLevel { .. } => "set_log_level",
            AdminRequest::SetLogTimestamps { .. } => "set_log_timestamps",
            AdminRequest::SetLogColors { .. } => "set_log_colors",
            AdminRequest::AcceptNewSessions { .. } => "accept_new_sessions",
            AdminRequest::SetSessionTimeout { .. } => "set_session_timeout",
            AdminRequest::MessagePlugin { .. } => "message_plugin",
            AdminRequest::HandleInfo { .. } => "handle_info",
            AdminRequest::StartCapture(CaptureSpec { format: CaptureFormat::Pcap, .. }) => "start_pcap",
            AdminRequest::StartCapture(CaptureSpec { format: CaptureFormat::Text2pcap, .. }) => "start_text2pcap",
            AdminRequest::StopCapture(CaptureFormat::Pcap) => "stop_pcap",
            AdminRequest::StopCapture(CaptureFormat::Text2pcap) => "stop_text2pcap",
            AdminRequest::ListNodes => "list_nodes",
            AdminRequest::LoopsInfo => "loops_info",
            AdminRequest::ResolveAddress { .. } => "resolve_address",
            AdminRequest::TestStun { .. } => "test_stun",
            AdminRequest::CustomLogline { .. } => "custom_logline",
            AdminRequest::QueryEventHandler => "query_eventhandler",
            AdminRequest::QueryLogger => "query_logger",
            AdminRequest::QueryTransport(_) => "query_transport",
            AdminRequest::CustomEvent => "custom_event",
            AdminRequest::Tune(Knob::NoMediaTimer(_)) => "set_no_media_timer",
            AdminRequest::Tune(Knob::SlowlinkThreshold(_)) => "set_slowlink_threshold",
            AdminRequest::Tune(Knob::MinNackQueue(_)) => "set_min_nack_queue",
            AdminRequest::Tune(Knob::NackOptimizations(_)) => "set_nack_optimizations",
            AdminRequest::ListHandles => "list_handles",
            AdminRequest::DestroySession => "destroy_session",
            AdminRequest::DetachHandle => "detach_handle",
            AdminRequest::HangupWebrtc => "hangup_webrtc",
            AdminRequest::Unknown(_) => "unknown",
        }
    }
}

/// `{"janus":"success","transaction":T}` plus `fields`.
pub fn success(transaction: &str, fields: Value) -> Value {
    let mut reply = json!({"janus": "success", "transaction": transaction});
    if let (Some(r), Value::Object(extra)) = (reply.as_object_mut(), fields) {
        r.extend(extra);
    }
    reply
}

/// `{"janus":"pong","transaction":T}`.
pub fn pong(transaction: &str) -> Value {
    json!({"janus": "pong", "transaction": transaction})
}

/// `{"janus":"error","transaction":T,"error":{code,reason}}` (no transaction when unknown).
pub fn error(transaction: Option<&str>, e: &CoreError) -> Value {
    let mut reply = json!({"janus": "error", "error": {"code": e.code.code(), "reason": e.reason}});
    if let Some(t) = transaction {
        reply["transaction"] = json!(t);
        // Janus puts the transaction before the error.
        let obj = reply.as_object_mut().map(std::mem::take).unwrap_or_default();
        let mut ordered = Map::new();
        for k in ["janus", "transaction", "error"] {
            if let Some(v) = obj.get(k) {
                ordered.insert(k.to_owned(), v.clone());
            }
        }
        return Value::Object(ordered);
    }
    reply
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(v: Value) -> Result<AdminRequest, CoreError> {
        parse(v.to_string().as_bytes(), None).map_err(|e| e.1).and_then(|e| e.request)
    }

    #[test]
    fn captures_are_handle_requests_with_janus_s_field_checks() {
        let at = |v: Value, path| parse(v.to_string().as_bytes(), Some(path)).map_err(|e| e.1).and_then(|e| e.request);
        let start = json!({"janus": "start_text2pcap", "transaction": "t", "folder": "/tmp/c", "truncate": 64});
        assert_eq!(
            at(start.clone(), (1, Some(2))).unwrap(),
            AdminRequest::StartCapture(CaptureSpec {
                format: CaptureFormat::Text2pcap,
                folder: Some("/tmp/c".into()),
                filename: None,
                truncate: 64,
            })
        );
        assert_eq!(at(start, (1, None)).unwrap(), AdminRequest::Unknown("start_text2pcap".into()), "not at a session");
        let e = at(json!({"janus": "start_pcap", "transaction": "t", "truncate": -1}), (1, Some(2))).unwrap_err();
        assert_eq!(
            (e.code, e.reason.as_str()),
            (CoreCode::InvalidElementType, "Invalid element type (truncate should be a positive integer)")
        );
        let stop = at(json!({"janus": "stop_pcap", "transaction": "t"}), (1, Some(2))).unwrap();
        assert_eq!((stop.label(), stop), ("stop_pcap", AdminRequest::StopCapture(CaptureFormat::Pcap)));
    }

    #[test]
    fn media_knobs_check_their_fields_as_janus() {
        let e = req(json!({"janus": "set_no_media_timer", "transaction": "t"})).unwrap_err();
        assert_eq!(e.reason, "Missing mandatory element (no_media_timer)");
        let e =
            req(json!({"janus": "set_slowlink_threshold", "transaction": "t", "slowlink_threshold": -1})).unwrap_err();
        assert_eq!(e.reason, "Invalid element type (slowlink_threshold should be a positive integer)");
        let e =
            req(json!({"janus": "set_nack_optimizations", "transaction": "t", "nack_optimizations": 1})).unwrap_err();
        assert_eq!(e.code, CoreCode::InvalidElementType);
        let knob = |v: Value| match req(v).unwrap() {
            AdminRequest::Tune(k) => k,
            other => panic!("not a knob: {other:?}"),
        };
        assert_eq!(
            knob(json!({"janus": "set_min_nack_queue", "transaction": "t", "min_nack_queue": 300})),
            Knob::MinNackQueue(300)
        );
        assert_eq!(
            knob(json!({"janus": "set_no_media_timer", "transaction": "t", "no_media_timer": 5_000_000_000u64})),
            Knob::NoMediaTimer(u32::MAX)
        );
        assert_eq!(
            knob(json!({"janus": "set_nack_optimizations", "transaction": "t", "nack_optimizations": true})),
            Knob::NackOptimizations(true)
        );
    }

    #[test]
    fn token_requests_check_their_fields_as_janus() {
        let e = req(json!({"janus": "add_token", "transaction": "t"})).unwrap_err();
        assert_eq!(
            (e.code, e.reason.as_str()),
            (CoreCode::MissingMandatoryElement, "Missing mandatory element (token)")
        );
        let e = req(json!({"janus": "allow_token", "transaction": "t", "token": "x"})).unwrap_err();
        assert_eq!(e.reason, "Invalid element type (plugins should be a non-empty array)");
        let e = req(json!({"janus": "add_token", "transaction": "t", "token": 5})).unwrap_err();
        assert_eq!(e.code, CoreCode::InvalidElementType);
        assert_eq!(
            req(json!({"janus": "Add_Token", "transaction": "t", "token": "x"})).unwrap(),
            AdminRequest::AddToken { token: "x".into(), plugins: vec![] }
        );
        assert_eq!(req(json!({"janus": "bogus", "transaction": "t"})).unwrap(), AdminRequest::Unknown("bogus".into()));
    }

    #[test]
    fn the_envelope_comes_first() {
        assert!(parse(b"{\"janus\":\"ping\"}", None).is_err(), "no transaction");
        assert!(parse(b"[]", None).is_err());
        assert!(parse(b"nonsense", None).is_err());
        let ok = parse(br#"{"janus":"ping","transaction":"t","admin_secret":5}"#, None).unwrap();
        assert_eq!(ok.admin_secret, None, "a secret that is not a string is no secret");
        let body = br#"{"janus":"list_handles","transaction":"t","session_id":7}"#;
        assert_eq!(parse(body, None).unwrap().target, AdminTarget::Session(7));
        assert_eq!(parse(body, Some((9, Some(3)))).unwrap().target, AdminTarget::Handle(9, 3), "the path wins");
    }

    #[test]
    fn errors_and_successes_have_janus_s_shapes() {
        let e = CoreError::default_for(CoreCode::Unauthorized);
        assert_eq!(
            error(Some("t"), &e).to_string(),
            r#"{"janus":"error","transaction":"t","error":{"code":403,"reason":"Unauthorized request (wrong or missing secret/token)"}}"#
        );
        assert_eq!(
            success("t", json!({"data": {"plugins": []}})).to_string(),
            r#"{"janus":"success","transaction":"t","data":{"plugins":[]}}"#
        );
    }
}
