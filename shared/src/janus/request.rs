//! Parsing Janus requests at the edge, in the order Janus itself checks them
//! (`janus_process_incoming_request` in `janus.c`).
//!
//! Parsing happens in two steps because Janus checks the session and handle *before* the
//! verb-specific fields: [`parse`] yields an [`Envelope`] (transaction, verb, target ids, or the
//! root-level requests already decided), the dispatcher resolves the session and handle, and then
//! the envelope's typed accessors ([`Envelope::attach`], [`Envelope::message`], [`Envelope::trickle`])
//! validate the rest. Nothing outside this module reads the raw JSON.

use super::errors::{CoreCode, CoreError};
use super::json::{self, Invalid, JType, Param};
use crate::ids::{HandleId, SessionId};
use serde_json::{Map, Value};

/// Which transport a request came on: the two word a JSON syntax error differently.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Ws,
    Http,
}

impl Transport {
    /// The transport by the name Janus's `info` lists it under (`query_transport`).
    pub fn named(name: &str) -> Option<Self> {
        match name {
            "janus.transport.http" => Some(Transport::Http),
            "janus.transport.websockets" => Some(Transport::Ws),
            _ => None,
        }
    }
}

/// The core verbs (matched case-insensitively, like Janus's `strcasecmp`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verb {
    Info,
    Ping,
    Create,
    Keepalive,
    Attach,
    Destroy,
    Detach,
    Hangup,
    Claim,
    Message,
    Trickle,
    Unknown(String),
}

impl Verb {
    fn parse(s: &str) -> Self {
        match s.to_ascii_lowercase().as_str() {
            "info" => Verb::Info,
            "ping" => Verb::Ping,
            "create" => Verb::Create,
            "keepalive" => Verb::Keepalive,
            "attach" => Verb::Attach,
            "destroy" => Verb::Destroy,
            "detach" => Verb::Detach,
            "hangup" => Verb::Hangup,
            "claim" => Verb::Claim,
            "message" => Verb::Message,
            "trickle" => Verb::Trickle,
            _ => Verb::Unknown(s.to_owned()),
        }
    }

    /// A short, bounded label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Verb::Info => "info",
            Verb::Ping => "ping",
            Verb::Create => "create",
            Verb::Keepalive => "keepalive",
            Verb::Attach => "attach",
            Verb::Destroy => "destroy",
            Verb::Detach => "detach",
            Verb::Hangup => "hangup",
            Verb::Claim => "claim",
            Verb::Message => "message",
            Verb::Trickle => "trickle",
            Verb::Unknown(_) => "unknown",
        }
    }
}

/// An error reply before or during dispatch: which ids and transaction Janus echoes with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestError {
    pub session_id: Option<SessionId>,
    pub transaction: Option<String>,
    pub error: CoreError,
}

/// The addressed level of a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Root,
    Session(SessionId),
    Handle(SessionId, HandleId),
}

/// A request whose envelope is valid.
#[derive(Clone, Debug)]
pub struct Envelope {
    pub transaction: String,
    pub verb: Verb,
    /// The verb as the client spelled it (echoed in "Unknown request '...'").
    pub verb_text: String,
    pub target: Target,
    /// `create`'s client-chosen id (`id`), when non-zero.
    pub requested_id: Option<SessionId>,
    raw: Map<String, Value>,
}

/// A request's `apisecret` and `token`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Credentials {
    pub apisecret: Option<String>,
    pub token: Option<String>,
}

/// Janus's `incoming_request_parameters`, checked in this order.
const ENVELOPE: [Param; 3] =
    [Param::req("transaction", JType::Str), Param::req("janus", JType::Str), Param::opt("id", JType::Int).positive()];

/// Parses one request. `path` carries the ids of an HTTP path (`/janus/S/H`); WebSocket passes none.
pub fn parse(
    bytes: &[u8],
    transport: Transport,
    path: Option<(Option<SessionId>, Option<HandleId>)>,
) -> Result<Envelope, RequestError> {
    let value = parse_json(bytes, transport)?;
    let mut obj = match value {
        Value::Object(m) => m,
        // Janus validates an array like an object with no members: transaction is missing first.
        Value::Array(_) => Map::new(),
        other => return Err(bare(CoreCode::InvalidJson, not_container(&other, transport))),
    };
    // Ids count only when they are JSON integers; a string id is treated as absent.
    let int_id = |m: &Map<String, Value>, k: &str| -> (bool, u64) {
        match m.get(k) {
            None | Some(Value::Null) => (false, 0),
            Some(v) => (true, v.as_u64().unwrap_or(0)),
        }
    };
    if let Some((ps, ph)) = path {
        // Over HTTP the path is authoritative; a conflicting payload id is an error (janus_http.c).
        for (key, from_path) in [("session_id", ps.map(|s| s.0)), ("handle_id", ph.map(|h| h.0))] {
            if let Some(p) = from_path {
                let (present, v) = int_id(&obj, key);
                if present && v != 0 && v != p {
                    let which = if key == "session_id" { "session" } else { "handle" };
                    return Err(RequestError {
                        session_id: None,
                        transaction: json::string(&obj, "transaction"),
                        error: CoreError::new(
                            CoreCode::InvalidRequestPath,
                            format!("Conflicting {which} ID (payload and path)"),
                        ),
                    });
                }
                obj.insert(key.to_owned(), Value::from(p));
            }
        }
    }
    let (_, sid) = int_id(&obj, "session_id");
    let (h_present, hid) = int_id(&obj, "handle_id");
    let echo_sid = (sid != 0).then_some(SessionId(sid));
    if let Err(e) = json::validate(&obj, &ENVELOPE) {
        let code = match e {
            Invalid::Missing(_) => CoreCode::MissingMandatoryElement,
            Invalid::WrongType(_) => CoreCode::InvalidElementType,
        };
        return Err(RequestError { session_id: echo_sid, transaction: None, error: CoreError::new(code, e.reason()) });
    }
    let transaction = json::string(&obj, "transaction").unwrap_or_default();
    let verb_text = json::string(&obj, "janus").unwrap_or_default();
    let verb = Verb::parse(&verb_text);
    let fail = |sid: Option<SessionId>, error: CoreError| RequestError {
        session_id: sid,
        transaction: Some(transaction.clone()),
        error,
    };
    let target = if sid == 0 && hid == 0 {
        match verb {
            Verb::Info | Verb::Ping | Verb::Create => Target::Root,
            _ => {
                return Err(fail(
                    None,
                    CoreError::new(
                        CoreCode::InvalidRequestPath,
                        format!("Unhandled request '{verb_text}' at this path"),
                    ),
                ))
            }
        }
    } else if sid == 0 {
        return Err(fail(None, CoreError::default_for(CoreCode::SessionNotFound)));
    } else if h_present && hid == 0 {
        return Err(fail(echo_sid, CoreError::default_for(CoreCode::HandleNotFound)));
    } else if hid != 0 {
        Target::Handle(SessionId(sid), HandleId(hid))
    } else {
        Target::Session(SessionId(sid))
    };
    let requested_id = match json::uint(&obj, "id") {
        0 => None,
        id => Some(SessionId(id)),
    };
    Ok(Envelope { transaction, verb, verb_text, target, requested_id, raw: obj })
}

fn bare(code: CoreCode, reason: String) -> RequestError {
    RequestError { session_id: None, transaction: None, error: CoreError::new(code, reason) }
}

fn parse_json(bytes: &[u8], transport: Transport) -> Result<Value, RequestError> {
    serde_json::from_slice::<Value>(bytes).map_err(|e| {
        let reason = match transport {
            Transport::Ws => format!(
                "Invalid Janus API request - <string>({},{}): {}",
                e.line(),
                e.column(),
                strip_position(&e.to_string())
            ),
            Transport::Http => {
                format!("JSON error: on line {}: {}", e.line(), strip_position(&e.to_string()))
            }
        };
        bare(CoreCode::InvalidJson, reason)
    })
}

fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_owned(),
        None => msg.to_owned(),
    }
}

/// jansson only accepts an object or an array at the top level.
fn not_container(v: &Value, transport: Transport) -> String {
    let near: String = v.to_string().chars().take(16).collect();
    match transport {
        Transport::Ws => {
            format!("Invalid Janus API request - <string>(1,1): '[' or '{{' expected near '{near}'")
        }
        Transport::Http => format!("JSON error: on line 1: '[' or '{{' expected near '{near}'"),
    }
}

/// `attach`'s fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attach {
    pub plugin: String,
    pub opaque_id: Option<String>,
}

/// A JSEP offer or answer.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Jsep {
    #[serde(rename = "type")]
    pub kind: JsepType,
    pub sdp: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trickle: Option<bool>,
    /// The order of a simulcast offer's rids: `hml` (the default: highest quality first) or
    /// `lmh`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rid_order: Option<String>,
    /// A server's offer that restarts ICE (Janus marks it so).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart: Option<bool>,
}

impl Jsep {
    /// A server's offer (a subscriber's PeerConnection).
    pub fn offer(sdp: String) -> Self {
        Self { kind: JsepType::Offer, sdp, trickle: None, rid_order: None, restart: None }
    }

    /// A server's answer (a publisher's PeerConnection).
    pub fn answer(sdp: String) -> Self {
        Self { kind: JsepType::Answer, sdp, trickle: None, rid_order: None, restart: None }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JsepType {
    Offer,
    Answer,
}

/// A plugin message: the body stays JSON because each plugin parses its own vocabulary
/// (see [`crate::janus::videoroom::parse_request`]); the core only checks it is an object.
#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    pub body: PluginBody,
    pub jsep: Option<Jsep>,
}

/// A plugin request body, opaque to the core; only plugin parsers look inside.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct PluginBody(pub(crate) Map<String, Value>);

impl PluginBody {
    /// The raw object, for plugin parsers in this crate and for tests.
    pub fn as_map(&self) -> &Map<String, Value> {
        &self.0
    }
    pub fn from_map(m: Map<String, Value>) -> Self {
        Self(m)
    }
}

/// One trickled candidate.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Candidate {
    /// `{"completed":true}` or `null`: end of candidates.
    Completed,
    Ice {
        sdp_mid: Option<String>,
        sdp_mline_index: Option<u64>,
        candidate: String,
    },
}

const ATTACH: [Param; 3] = [
    Param::req("plugin", JType::Str),
    Param::opt("opaque_id", JType::Str),
    Param::opt("loop_index", JType::Int).positive(),
];
const BODY: [Param; 1] = [Param::req("body", JType::Object)];
const JSEP: [Param; 6] = [
    Param::req("type", JType::Str),
    Param::req("sdp", JType::Str),
    Param::opt("trickle", JType::Bool),
    Param::opt("rid_order", JType::Str),
    Param::opt("force_relay", JType::Bool),
    Param::opt("e2ee", JType::Bool),
];

fn from_invalid(e: Invalid) -> CoreError {
    match e {
        Invalid::Missing(r) => CoreError::new(CoreCode::MissingMandatoryElement, r),
        Invalid::WrongType(r) => CoreError::new(CoreCode::InvalidElementType, r),
    }
}

impl Envelope {
    /// The session this request names, if any.
    /// What the request presents to be authorized: `apisecret` and `token`, each only when a
    /// string (Janus ignores any other type).
    pub fn credentials(&self) -> Credentials {
        let text = |k: &str| self.raw.get(k).and_then(Value::as_str).map(str::to_owned);
        Credentials { apisecret: text("apisecret"), token: text("token") }
    }

    pub fn session(&self) -> Option<SessionId> {
        match self.target {
            Target::Root => None,
            Target::Session(s) | Target::Handle(s, _) => Some(s),
        }
    }

    pub fn attach(&self) -> Result<Attach, CoreError> {
        json::validate(&self.raw, &ATTACH).map_err(from_invalid)?;
        Ok(Attach {
            plugin: json::string(&self.raw, "plugin").unwrap_or_default(),
            opaque_id: json::string(&self.raw, "opaque_id"),
        })
    }

    pub fn message(&self) -> Result<Message, CoreError> {
        json::validate(&self.raw, &BODY).map_err(from_invalid)?;
        let body = match self.raw.get("body") {
            Some(Value::Object(m)) => PluginBody(m.clone()),
            _ => PluginBody(Map::new()),
        };
        let jsep = match self.raw.get("jsep") {
            None | Some(Value::Null) => None,
            Some(Value::Object(j)) => Some(parse_jsep(j)?),
            Some(_) => return Err(CoreError::new(CoreCode::InvalidJsonObject, "Invalid jsep object")),
        };
        Ok(Message { body, jsep })
    }

    pub fn trickle(&self) -> Result<Vec<Candidate>, CoreError> {
        let one = self.raw.get("candidate");
        let many = self.raw.get("candidates");
        match (one, many) {
            (None, None) => Err(CoreError::new(
                CoreCode::MissingMandatoryElement,
                "Missing mandatory element (candidate|candidates)",
            )),
            (Some(_), Some(_)) => {
                Err(CoreError::new(CoreCode::InvalidJson, "Can't have both candidate and candidates"))
            }
            (Some(c), None) => Ok(vec![parse_candidate(c)?]),
            (None, Some(Value::Array(list))) => {
                // Janus ignores failures inside the array.
                Ok(list.iter().filter_map(|c| parse_candidate(c).ok()).collect())
            }
            (None, Some(_)) => Err(CoreError::new(CoreCode::InvalidElementType, "candidates is not an array")),
        }
    }
}

fn parse_jsep(j: &Map<String, Value>) -> Result<Jsep, CoreError> {
    json::validate_fmt(j, &JSEP, "JSEP error: missing mandatory element", "JSEP error: invalid element type")
        .map_err(from_invalid)?;
    let type_text = json::string(j, "type").unwrap_or_default();
    let kind = match type_text.to_ascii_lowercase().as_str() {
        "offer" => JsepType::Offer,
        "answer" => JsepType::Answer,
        _ => {
            return Err(CoreError::new(
                CoreCode::JsepUnknownType,
                format!("JSEP error: unknown message type '{type_text}'"),
            ))
        }
    };
    let sdp = json::string(j, "sdp").unwrap_or_default();
    if !sdp.trim_start().starts_with("v=") {
        return Err(CoreError::new(CoreCode::JsepInvalidSdp, "Invalid SDP (doesn't start with v=)"));
    }
    Ok(Jsep { kind, sdp, trickle: json::boolean(j, "trickle"), rid_order: json::string(j, "rid_order"), restart: None })
}

fn parse_candidate(c: &Value) -> Result<Candidate, CoreError> {
    let obj = match c {
        Value::Null => return Ok(Candidate::Completed),
        Value::Object(o) => o,
        _ => {
            return Err(CoreError::new(
                CoreCode::InvalidElementType,
                "Invalid element type (candidate should be an object)",
            ))
        }
    };
    if json::boolean(obj, "completed") == Some(true) {
        return Ok(Candidate::Completed);
    }
    let candidate = json::string(obj, "candidate").ok_or_else(|| {
        CoreError::new(CoreCode::MissingMandatoryElement, "Trickle error: missing mandatory element (candidate)")
    })?;
    let sdp_mid = json::string(obj, "sdpMid");
    let sdp_mline_index = obj.get("sdpMLineIndex").and_then(Value::as_u64);
    if sdp_mid.is_none() && sdp_mline_index.is_none() {
        return Err(CoreError::new(
            CoreCode::MissingMandatoryElement,
            "Trickle error: missing mandatory element (sdpMid or sdpMLineIndex)",
        ));
    }
    Ok(Candidate::Ice { sdp_mid, sdp_mline_index, candidate })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ws(s: &str) -> Result<Envelope, RequestError> {
        parse(s.as_bytes(), Transport::Ws, None)
    }

    fn code(r: Result<Envelope, RequestError>) -> u16 {
        r.err().map(|e| e.error.code.code()).unwrap_or(0)
    }

    #[test]
    fn envelope_errors_follow_janus_order() {
        assert_eq!(code(ws("not json")), 454);
        assert_eq!(code(ws("5")), 454);
        assert_eq!(code(ws("[]")), 456);
        assert_eq!(ws(r#"{"janus":"info"}"#).unwrap_err().error.reason, "Missing mandatory element (transaction)");
        let e = ws(r#"{"transaction":"t"}"#).unwrap_err();
        assert_eq!(e.error.reason, "Missing mandatory element (janus)");
        assert_eq!(e.transaction, None);
        assert_eq!(code(ws(r#"{"janus":"create","transaction":"t","id":-1}"#)), 467);
        assert_eq!(code(ws(r#"{"janus":"keepalive","transaction":"t"}"#)), 457);
        assert_eq!(code(ws(r#"{"janus":"message","transaction":"t","session_id":"1","handle_id":2}"#)), 458);
        assert_eq!(code(ws(r#"{"janus":"message","transaction":"t","session_id":1,"handle_id":"2"}"#)), 459);
    }

    #[test]
    fn verbs_are_case_insensitive_and_targets_follow_ids() {
        let e = ws(r#"{"janus":"INFO","transaction":"t"}"#).unwrap();
        assert_eq!(e.verb, Verb::Info);
        let e = ws(r#"{"janus":"message","transaction":"t","session_id":5,"handle_id":6}"#).unwrap();
        assert_eq!(e.target, Target::Handle(SessionId(5), HandleId(6)));
    }

    #[test]
    fn http_path_ids_win_and_conflicts_are_rejected() {
        let path = Some((Some(SessionId(7)), None));
        let e = parse(br#"{"janus":"keepalive","transaction":"t"}"#, Transport::Http, path).unwrap();
        assert_eq!(e.target, Target::Session(SessionId(7)));
        let e = parse(br#"{"janus":"keepalive","transaction":"t","session_id":8}"#, Transport::Http, path);
        assert_eq!(code(e), 457);
    }

    #[test]
    fn jsep_and_trickle_checks() {
        let base = r#"{"janus":"message","transaction":"t","session_id":1,"handle_id":2"#;
        let m = |rest: &str| ws(&format!("{base}{rest}}}")).unwrap().message();
        assert_eq!(m("").unwrap_err().code.code(), 456);
        assert_eq!(m(r#","body":3"#).unwrap_err().reason, "Invalid element type (body should be an object)");
        assert_eq!(
            m(r#","body":{},"jsep":{"sdp":"v=0"}"#).unwrap_err().reason,
            "JSEP error: missing mandatory element (type)"
        );
        assert_eq!(m(r#","body":{},"jsep":{"type":"bogus","sdp":"v=0"}"#).unwrap_err().code.code(), 464);
        assert_eq!(m(r#","body":{},"jsep":{"type":"offer","sdp":"x"}"#).unwrap_err().code.code(), 465);
        assert!(m(r#","body":{},"jsep":{"type":"offer","sdp":"v=0\r\n"}"#).unwrap().jsep.is_some());
        let t = |rest: &str| ws(&format!("{base}{rest}}}")).unwrap().trickle();
        assert_eq!(t("").unwrap_err().code.code(), 456);
        assert_eq!(t(r#","candidate":{"completed":true}"#).unwrap(), vec![Candidate::Completed]);
        assert_eq!(t(r#","candidates":5"#).unwrap_err().code.code(), 467);
        assert_eq!(t(r#","candidate":{},"candidates":[]"#).unwrap_err().code.code(), 454);
    }
}
