//! `query_transport`: what the Admin API asks a transport plugin. Janus's HTTP and WebSocket
//! transports answer two requests, `configure` (tweaks: the JSON layout, which the gateway
//! switches) and `connections` (how many clients). Their answer is the success reply's
//! `response`, and what they refuse is said inside it with the transport's own codes (411-413),
//! not as a Janus error. Parsed here at the edge; the gateway fills in its counts.

use super::json::{validate, Invalid, JType, Param};
use super::layout::Layout;
use super::request::Transport;
use serde_json::{json, Map, Value};

/// A transport's request, checked as that transport checks it.
#[derive(Clone, Debug, PartialEq)]
pub enum TransportQuery {
    Configure(Configure),
    Connections,
    /// Not a request the transport knows, or no `request` at all.
    Refused(Refusal),
}

/// `configure`. Janus takes what it can of it even when a field has the wrong type (the
/// answer then carries both `result` 200 and the error), so the refusal rides along.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Configure {
    /// Whether the transport's events go to event handlers (`events: true`).
    pub events: bool,
    /// The JSON layout asked for (`json`), or the name given when it is none of Janus's.
    pub json: Option<Result<Layout, String>>,
    /// The WebSocket transport's library logging asked for (`logging`).
    pub logging: bool,
    pub refusal: Option<Refusal>,
}

/// A transport's error, answered inside `response` (`error_code`, `error`).
#[derive(Clone, Debug, PartialEq)]
pub struct Refusal {
    pub code: u16,
    pub error: String,
}

/// The transports' own codes (the same numbers in both).
const INVALID_REQUEST: u16 = 411;
const MISSING_ELEMENT: u16 = 412;
const INVALID_ELEMENT: u16 = 413;

const REQUEST: [Param; 1] = [Param::req("request", JType::Str)];
const HTTP_CONFIGURE: [Param; 2] = [Param::opt("events", JType::Bool), Param::opt("json", JType::Str)];
const WS_CONFIGURE: [Param; 3] =
    [Param::opt("events", JType::Bool), Param::opt("json", JType::Str), Param::opt("logging", JType::Str)];

fn refusal(e: Invalid) -> Refusal {
    let code = match e {
        Invalid::Missing(_) => MISSING_ELEMENT,
        Invalid::WrongType(_) => INVALID_ELEMENT,
    };
    Refusal { code, error: e.reason().to_owned() }
}

/// `request` (the Admin API request's own `request` object, if any) as `transport` reads it.
pub fn parse(transport: Transport, request: Option<&Map<String, Value>>) -> TransportQuery {
    let empty = Map::new();
    let obj = request.unwrap_or(&empty);
    if let Err(e) = validate(obj, &REQUEST) {
        return TransportQuery::Refused(refusal(e));
    }
    let text = |k: &str| obj.get(k).and_then(Value::as_str).map(str::to_owned);
    let name = text("request").unwrap_or_default();
    match name.to_ascii_lowercase().as_str() {
        "configure" => {
            let params: &[Param] = match transport {
                Transport::Http => &HTTP_CONFIGURE,
                Transport::Ws => &WS_CONFIGURE,
            };
            TransportQuery::Configure(Configure {
                events: obj.get("events") == Some(&Value::Bool(true)),
                json: text("json").map(|name| Layout::named(&name).ok_or(name)),
                logging: transport == Transport::Ws && text("logging").is_some(),
                refusal: validate(obj, params).err().map(refusal),
            })
        }
        "connections" => TransportQuery::Connections,
        _ => TransportQuery::Refused(Refusal { code: INVALID_REQUEST, error: format!("Unknown request '{name}'") }),
    }
}

/// What a gateway counts for `connections`: its own clients (in a cluster, each gateway
/// answers for itself, as each Janus does).
#[derive(Clone, Copy, Debug, Default)]
pub struct Counts {
    /// Open connections to the Janus API's HTTP listener and to the admin listener.
    pub http: u64,
    pub admin_http: u64,
    /// HTTP requests being answered (parked long-polls included), as Janus's `messages`.
    pub requests: u64,
    /// Open WebSocket connections (the Janus API's and the Admin API's).
    pub websockets: u64,
    /// Whether the listeners speak TLS (Janus names them `https`, `admin_https` then).
    pub tls: bool,
}

/// The transport's answer, as Janus's transports shape it.
pub fn answer(transport: Transport, query: &TransportQuery, counts: &Counts) -> Value {
    let mut response = Map::new();
    let refused = match query {
        TransportQuery::Refused(r) => Some(r),
        TransportQuery::Connections => {
            response.insert("result".into(), json!(200));
            match transport {
                Transport::Http => {
                    let (http, admin) = if counts.tls { ("https", "admin_https") } else { ("http", "admin_http") };
                    response.insert("connections".into(), json!({http: counts.http, admin: counts.admin_http}));
                    response.insert("messages".into(), json!(counts.requests));
                }
                Transport::Ws => {
                    response.insert("connections".into(), json!(counts.websockets));
                }
            }
            None
        }
        TransportQuery::Configure(c) => {
            response.insert("result".into(), json!(200));
            let mut notes = Vec::new();
            // No event handlers here: Janus's words when its own are off.
            if c.events {
                notes.push("Event handlers disabled at the core level");
            }
            // The layout itself is switched by the gateway (`Layout`); a name it does not know
            // is left out.
            if matches!(c.json, Some(Err(_))) {
                notes.push("Ignored unsupported indentation format");
            }
            // The WebSocket transport is not libwebsockets: there is no such logging to switch.
            if c.logging {
                notes.push("Ignored libwebsockets logging (not used by this transport)");
            }
            if !notes.is_empty() {
                response.insert("notes".into(), json!(notes));
            }
            c.refusal.as_ref()
        }
    };
    if let Some(r) = refused {
        response.insert("error_code".into(), json!(r.code));
        response.insert("error".into(), json!(r.error));
    }
    Value::Object(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(t: Transport, request: Value) -> Value {
        answer(
            t,
            &parse(t, request.as_object()),
            &Counts { http: 2, admin_http: 1, requests: 1, websockets: 3, tls: false },
        )
    }

    #[test]
    fn connections_are_counted_per_transport() {
        let http = query(Transport::Http, json!({"request": "connections"}));
        assert_eq!(http, json!({"result": 200, "connections": {"http": 2, "admin_http": 1}, "messages": 1}));
        let ws = query(Transport::Ws, json!({"request": "connections"}));
        assert_eq!(ws, json!({"result": 200, "connections": 3}));
    }

    #[test]
    fn refusals_are_answered_inside_the_response() {
        assert_eq!(
            answer(Transport::Http, &parse(Transport::Http, None), &Counts::default()),
            json!({"error_code": 412, "error": "Missing mandatory element (request)"})
        );
        assert_eq!(
            query(Transport::Http, json!({"request": 5})),
            json!({"error_code": 413, "error": "Invalid element type (request should be a string)"})
        );
        assert_eq!(
            query(Transport::Ws, json!({"request": "reload"})),
            json!({"error_code": 411, "error": "Unknown request 'reload'"})
        );
    }

    #[test]
    fn configure_takes_what_it_can_and_says_what_it_ignored() {
        assert_eq!(query(Transport::Http, json!({"request": "configure", "json": "Indented"})), json!({"result": 200}));
        assert_eq!(
            query(Transport::Http, json!({"request": "configure", "events": true, "json": "fancy"})),
            json!({"result": 200, "notes": ["Event handlers disabled at the core level", "Ignored unsupported indentation format"]})
        );
        // A wrong type still configures the rest, and says so.
        let wrong = query(Transport::Ws, json!({"request": "configure", "events": "yes", "logging": "all"}));
        assert_eq!(wrong["result"], 200, "{wrong}");
        assert_eq!(wrong["error_code"], 413, "{wrong}");
        assert_eq!(wrong["notes"], json!(["Ignored libwebsockets logging (not used by this transport)"]), "{wrong}");
        // The HTTP transport has no `logging` to look at.
        assert_eq!(query(Transport::Http, json!({"request": "configure", "logging": "all"})), json!({"result": 200}));
    }
}
