//! The Janus Admin API (`POST /admin` on the admin port), answered as Janus 1.1.2 answers it,
//! for the whole cluster: sessions and stored tokens live in the `Store`, so any gateway
//! lists every session and a token added on one gateway authorizes on all at once.
//!
//! Requests parse at the edge (`shared::janus::admin`); this module runs them: at the server
//! level (`POST /admin`), a session's (`/admin/S`: `list_handles`, `destroy_session`) and a
//! handle's (`/admin/S/H`: `detach_handle`, `hangup_webrtc`, which act as the client's own
//! `detach` and `hangup` would, events included).

use crate::api::auth::TokenMode;
use crate::api::Dispatcher;
use serde_json::{json, Value};
use shared::clock::{Clock, SystemClock};
use shared::ids::{HandleId, SessionId};
use shared::janus::admin::{self, AdminRequest, AdminTarget};
use shared::janus::errors::{CoreCode, CoreError};
use shared::janus::errors::{VideoRoomCode, VideoRoomError};
use shared::janus::reply::Reply;
use shared::janus::transport_query;
use shared::janus::videoroom::{self as vr, VideoRoomRequest};
use shared::janus::VIDEOROOM_PLUGIN;
use shared::secret::same;
use shared::store::{HandleRecord, SessionRecord};
use shared::wire::CaptureAnswer;

/// The plugins a token may name: the ones this server has.
const PLUGINS: [&str; 1] = [VIDEOROOM_PLUGIN];

/// Answers one Admin API request; `path` holds the ids of `/admin/S[/H]`.
pub async fn handle(d: &Dispatcher, bytes: &[u8], path: Option<(u64, Option<u64>)>) -> Value {
    let env = match admin::parse(bytes, path) {
        Ok(env) => env,
        Err((txn, e)) => return admin::error(txn.as_deref(), &e),
    };
    let txn = env.transaction.as_str();
    let sid = match env.target {
        AdminTarget::Root => None,
        AdminTarget::Session(s) | AdminTarget::Handle(s, _) => Some(SessionId(s)),
    };
    let fail = |e: &CoreError| json_of(Reply::error(sid, Some(txn), e));
    if env.needs_secret() {
        if let Some(want) = &d.cfg().admin_secret {
            if !env.admin_secret.as_deref().is_some_and(|given| same(want, given)) {
                return fail(&CoreError::default_for(CoreCode::Unauthorized));
            }
        }
    }
    tracing::debug!(request = ?env.request.as_ref().map(AdminRequest::label), target = ?env.target, "admin request");
    let result = match env.target {
        AdminTarget::Root => match env.request {
            Ok(request) => run(d, txn, request).await,
            Err(e) => Err(e),
        },
        AdminTarget::Session(s) | AdminTarget::Handle(s, _) => {
            let hid = match env.target {
                AdminTarget::Handle(_, h) => Some(HandleId(h)),
                _ => None,
            };
            at_session(d, txn, SessionId(s), hid, env.request).await
        }
    };
    result.unwrap_or_else(|e| fail(&e))
}

fn json_of(reply: Reply) -> Value {
    serde_json::from_slice(&reply.to_bytes()).unwrap_or_default()
}

/// Session- and handle-level requests (Janus: the session, then the handle, must exist; then
/// the request's own fields are checked).
async fn at_session(
    d: &Dispatcher,
    txn: &str,
    sid: SessionId,
    hid: Option<HandleId>,
    request: Result<AdminRequest, CoreError>,
) -> Result<Value, CoreError> {
    let store = d.backends().store.clone();
    if store.session(sid).await.map_err(store_error)?.is_none() {
        return Err(CoreError::new(CoreCode::SessionNotFound, format!("No such session {sid}")));
    }
    let handle = match hid {
        None => None,
        Some(h) => Some(store.handle(sid, h).await.map_err(store_error)?.ok_or_else(|| no_such_handle(sid, h))?),
    };
    let unhandled =
        |verb: &str| CoreError::new(CoreCode::InvalidRequestPath, format!("Unhandled request '{verb}' at this path"));
    // Janus's handle-level requests run their followups (events, the media node's part) too.
    let finish = |out: Result<crate::api::Outcome, crate::api::error::GatewayError>| async move {
        let out = out.map_err(|e| e.to_core())?;
        if let Some(f) = out.followup {
            f.await;
        }
        Ok::<_, CoreError>(json_of(out.reply))
    };
    match (handle, request?) {
        (None, AdminRequest::ListHandles) => {
            let ids = store.session_handles(sid).await.map_err(store_error)?;
            let mut reply = json_of(Reply::success(Some(sid), txn));
            reply["handles"] = json!(ids.iter().map(|h| h.0).collect::<Vec<_>>());
            Ok(reply)
        }
        (None, AdminRequest::DestroySession) => finish(d.destroy(sid, txn, None).await).await,
        (None, AdminRequest::SetSessionTimeout { timeout }) => {
            // -1: the default again (Janus's global session timeout).
            let (ms, own) = match u64::try_from(timeout) {
                Ok(t) => (t * 1000, true),
                Err(_) => (d.cfg().session_timeout * 1000, false),
            };
            if !store.set_session_timeout(sid, ms, own).await.map_err(store_error)? {
                return Err(CoreError::new(CoreCode::SessionNotFound, format!("No such session {sid}")));
            }
            Ok(admin::success(txn, json!({"timeout": timeout, "session_id": sid.0})))
        }
        (Some(h), AdminRequest::HandleInfo { plugin_only }) => {
            let session = store.session(sid).await.map_err(store_error)?;
            let from_node = d.handle_query(&h).await.map_err(|e| e.to_core())?;
            let mut reply = json_of(Reply::success(Some(sid), txn));
            reply["handle_id"] = json!(h.id.0);
            reply["info"] = handle_info(&h, session.as_ref(), from_node, plugin_only);
            Ok(reply)
        }
        (Some(h), AdminRequest::StartCapture(spec)) => {
            let format = spec.format.name();
            match d.start_capture(&h, spec).await.map_err(|e| e.to_core())? {
                CaptureAnswer::Started => Ok(admin::success(txn, json!({}))),
                CaptureAnswer::AlreadyStarted => Err(unknown(format!("{format} already started"))),
                CaptureAnswer::CannotStart(why) => {
                    tracing::warn!(handle = %h.id, %why, "capture not started");
                    Err(unknown(format!("Error starting {format} dump")))
                }
                CaptureAnswer::NoHandle => Err(no_such_handle(sid, h.id)),
                other => Err(unknown(format!("unexpected capture answer {other:?}"))),
            }
        }
        (Some(h), AdminRequest::StopCapture(_)) => match d.stop_capture(&h).await.map_err(|e| e.to_core())? {
            CaptureAnswer::Stopped => Ok(admin::success(txn, json!({}))),
            CaptureAnswer::NotStarted => Err(unknown("Capture not started")),
            CaptureAnswer::NoHandle => Err(no_such_handle(sid, h.id)),
            other => Err(unknown(format!("unexpected capture answer {other:?}"))),
        },
        (Some(h), AdminRequest::DetachHandle) => finish(d.detach(h, txn).await).await,
        (Some(h), AdminRequest::HangupWebrtc) => finish(d.hangup(h, txn).await).await,
        (_, r) => Err(unhandled(&verb_of(&r))),
    }
}

/// The verb a request was made with (for "Unhandled request" replies).
fn verb_of(r: &AdminRequest) -> String {
    match r {
        AdminRequest::Unknown(v) => v.clone(),
        other => other.label().to_owned(),
    }
}

/// `host` resolved as the answering gateway resolves it, or Janus's error for a name that does not.
async fn resolved(host: &str) -> Result<std::net::IpAddr, CoreError> {
    crate::api::handle::resolve(host).await.ok_or_else(|| unknown("Could not resolve address"))
}

/// Microseconds since `start` (Janus's `elapsed`).
fn micros_since(start: std::time::Instant) -> u64 {
    u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX)
}

fn no_such_handle(sid: SessionId, h: HandleId) -> CoreError {
    CoreError::new(CoreCode::HandleNotFound, format!("No such handle {h} in session {sid}"))
}

/// A gauge's value as a count (a gauge never goes below 0 here).
fn count(g: &prometheus::IntGauge) -> u64 {
    u64::try_from(g.get()).unwrap_or(0)
}

fn unknown(reason: impl Into<String>) -> CoreError {
    CoreError::new(CoreCode::Unknown, reason)
}

fn store_error(e: shared::store::StoreError) -> CoreError {
    unknown(format!("State store unavailable ({e})"))
}

async fn run(d: &Dispatcher, txn: &str, request: AdminRequest) -> Result<Value, CoreError> {
    let store = d.backends().store.clone();
    let stored = || match d.auth().tokens {
        TokenMode::Stored => Ok(()),
        _ => Err(unknown("Stored-Token based authentication disabled")),
    };
    Ok(match request {
        AdminRequest::Info => serde_json::from_slice(&d.info(txn).to_bytes()).unwrap_or_default(),
        AdminRequest::Ping => admin::pong(txn),
        AdminRequest::GetStatus => {
            let cfg = d.cfg();
            // The default a `set_session_timeout` made, else the configured one (seconds).
            let session_timeout =
                store.default_session_timeout().await.map_err(store_error)?.map_or(cfg.session_timeout, |ms| ms / 1000);
            let tuning = cfg.tuning().overlaid(&store.knobs().await.map_err(store_error)?);
            admin::success(
                txn,
                json!({"status": {
                    "token_auth": d.auth().token_auth(),
                    "session_timeout": session_timeout,
                    "reclaim_session_timeout": cfg.reclaim_timeout,
                    "candidates_timeout": 45,
                    "log_level": shared::telemetry::janus_level(),
                    "log_timestamps": shared::telemetry::timestamps(),
                    "log_colors": shared::telemetry::colors(),
                    "locking_debug": false,
                    "refcount_debug": false,
                    "libnice_debug": false,
                    "min_nack_queue": tuning.min_nack_queue,
                    "nack-optimizations": tuning.nack_optimizations,
                    "no_media_timer": tuning.no_media_timer,
                    "slowlink_threshold": tuning.slowlink_threshold,
                }}),
            )
        }
        AdminRequest::Tune(knob) => {
            let knob = knob.in_effect();
            store.set_knob(knob).await.map_err(store_error)?;
            d.tune_nodes(knob).await.map_err(|e| e.to_core())?;
            let mut reply = admin::success(txn, json!({}));
            reply[knob.janus_name()] = knob.janus_value();
            reply
        }
        AdminRequest::ResolveAddress { address } => {
            let start = std::time::Instant::now();
            let ip = resolved(&address).await?;
            admin::success(txn, json!({"ip": ip.to_string(), "elapsed": micros_since(start)}))
        }
        AdminRequest::TestStun { address, port, local_port } => {
            use shared::stun_probe::{probe, ANSWER_TIMEOUT};
            let start = std::time::Instant::now();
            let ip = resolved(&address).await?;
            let mapped = probe(std::net::SocketAddr::new(ip, port), local_port, ANSWER_TIMEOUT).await.map_err(|e| {
                tracing::warn!(%address, port, error = %e, "test_stun");
                unknown("STUN request failed")
            })?;
            let (ip, port, elapsed) = (mapped.ip().to_string(), mapped.port(), micros_since(start));
            admin::success(txn, json!({"public_ip": ip, "public_port": port, "elapsed": elapsed}))
        }
        AdminRequest::CustomLogline { line, level } => {
            shared::telemetry::janus_log(level, &line);
            admin::success(txn, json!({}))
        }
        // `info` lists no event handlers and no loggers: Janus's answers when the name is none
        // of its own, and when its event handlers are off.
        AdminRequest::QueryEventHandler => {
            return Err(CoreError::new(CoreCode::PluginNotFound, "Invalid event handler"))
        }
        AdminRequest::QueryLogger => return Err(CoreError::new(CoreCode::PluginNotFound, "Invalid logger")),
        AdminRequest::QueryTransport(None) => {
            return Err(CoreError::new(CoreCode::PluginNotFound, "Invalid transport"))
        }
        AdminRequest::QueryTransport(Some((transport, query))) => {
            if let transport_query::TransportQuery::Configure(transport_query::Configure {
                json: Some(Ok(layout)),
                ..
            }) = &query
            {
                d.set_layout(transport, *layout);
            }
            let m = d.metrics();
            let counts = transport_query::Counts {
                http: count(&m.http_connections("http")),
                admin_http: count(&m.http_connections("admin")),
                requests: count(m.http_requests()),
                websockets: count(m.ws_connections()) + count(m.admin_ws_connections()),
                tls: d.cfg().serves_tls(),
            };
            admin::success(txn, json!({"response": transport_query::answer(transport, &query, &counts)}))
        }
        AdminRequest::CustomEvent => admin::success(txn, json!({})),
        AdminRequest::SetSessionTimeout { timeout } => {
            let secs = u64::try_from(timeout).unwrap_or(0);
            store.set_default_session_timeout(secs * 1000).await.map_err(store_error)?;
            admin::success(txn, json!({"timeout": timeout}))
        }
        AdminRequest::MessagePlugin { plugin, request } => {
            if !PLUGINS.contains(&plugin.as_str()) {
                return Err(CoreError::new(CoreCode::PluginNotFound, "Invalid plugin"));
            }
            let body = request.and_then(|r| r.as_object().cloned()).unwrap_or_default();
            let body = shared::janus::request::PluginBody::from_map(body);
            let response = match vr::parse_request(&body, d.videoroom_policy()) {
                Err(e) => vr::error(&e),
                Ok(VideoRoomRequest::Sync(req)) => {
                    d.videoroom_sync(SessionId(0), HandleId(0), txn, req).await.map_err(|e| e.to_core())?
                }
                // The VideoRoom's Admin API hook answers only its synchronous requests.
                Ok(VideoRoomRequest::Async { .. }) => vr::error(&VideoRoomError::new(
                    VideoRoomCode::InvalidRequest,
                    format!("Unknown request '{}'", body.as_map().get("request").and_then(Value::as_str).unwrap_or("")),
                )),
            };
            admin::success(txn, json!({"response": response}))
        }
        AdminRequest::SetLogLevel { level } => {
            shared::telemetry::set_janus_level(level).map_err(unknown)?;
            admin::success(txn, json!({"level": level}))
        }
        AdminRequest::SetLogTimestamps { on } => {
            shared::telemetry::set_timestamps(on);
            admin::success(txn, json!({"log_timestamps": on}))
        }
        AdminRequest::SetLogColors { on } => {
            shared::telemetry::set_colors(on);
            admin::success(txn, json!({"log_colors": on}))
        }
        AdminRequest::AcceptNewSessions { accept } => {
            d.set_accepting(accept);
            admin::success(txn, json!({"accept": accept}))
        }
        AdminRequest::ListNodes => list_nodes(d, txn).await?,
        AdminRequest::LoopsInfo => admin::success(txn, json!({"loops": d.loops().await.map_err(|e| e.to_core())?})),
        AdminRequest::ListSessions => {
            let ids = store.list_sessions().await.map_err(store_error)?;
            admin::success(txn, json!({"sessions": ids.iter().map(|s| s.0).collect::<Vec<_>>()}))
        }
        AdminRequest::AddToken { token, plugins } => {
            stored()?;
            // Janus skips what is not a plugin it has; no list (or an empty one) means all.
            let plugins: Vec<String> = if plugins.is_empty() {
                PLUGINS.map(str::to_owned).to_vec()
            } else {
                plugins.iter().filter_map(Value::as_str).filter(|p| PLUGINS.contains(p)).map(str::to_owned).collect()
            };
            let now = store.add_token(&token, &plugins).await.map_err(store_error)?;
            admin::success(txn, json!({"data": {"plugins": now}}))
        }
        AdminRequest::AllowToken { token, plugins, allow } => {
            stored()?;
            if store.token(&token).await.map_err(store_error)?.is_none() {
                return Err(CoreError::new(CoreCode::TokenNotFound, format!("Token {token} not found")));
            }
            let valid: Option<Vec<String>> =
                plugins.iter().map(|p| p.as_str().filter(|p| PLUGINS.contains(p)).map(str::to_owned)).collect();
            let Some(plugins) = valid else {
                return Err(CoreError::new(
                    CoreCode::InvalidElementType,
                    "Invalid element type (some of the provided plugins are invalid)",
                ));
            };
            let now = store.allow_token(&token, &plugins, allow).await.map_err(store_error)?;
            admin::success(txn, json!({"data": {"plugins": now.unwrap_or_default()}}))
        }
        AdminRequest::RemoveToken { token } => {
            stored()?;
            if !store.remove_token(&token).await.map_err(store_error)? {
                return Err(unknown("Error removing token"));
            }
            admin::success(txn, json!({}))
        }
        AdminRequest::ListTokens => {
            stored()?;
            let tokens = store.list_tokens().await.map_err(store_error)?;
            // Janus lists only tokens that may use some plugin.
            let listed: Vec<Value> = tokens
                .into_iter()
                .filter(|(_, p)| !p.is_empty())
                .map(|(t, p)| json!({"token": t, "allowed_plugins": p}))
                .collect();
            admin::success(txn, json!({"data": {"tokens": listed}}))
        }
        // Janus answers a request it has no branch for at the server level like this.
        other => {
            return Err(CoreError::new(
                CoreCode::InvalidRequestPath,
                format!("Unhandled request '{}' at this path", verb_of(&other)),
            ))
        }
    })
}

/// `handle_info`'s `info`, as Janus builds it: the session and handle, then what the media node
/// holding the handle's room said (`plugin_specific`, `sdps`, `webrtc`), and the flags those
/// imply.
fn handle_info(h: &HandleRecord, session: Option<&SessionRecord>, node: Value, plugin_only: bool) -> Value {
    let mut info = serde_json::Map::new();
    info.insert("session_id".into(), json!(h.session.0));
    if let Some(s) = session {
        let last = s.deadline_ms.map(|d| d.saturating_sub(s.timeout_ms)).unwrap_or(s.created_ms);
        info.insert("session_last_activity".into(), json!(last * 1000));
        info.insert("session_timeout".into(), json!(s.timeout_ms / 1000));
        let transport = if s.owner.is_some() { "janus.transport.websockets" } else { "janus.transport.http" };
        info.insert("session_transport".into(), json!(transport));
    }
    info.insert("handle_id".into(), json!(h.id.0));
    if let Some(o) = &h.opaque_id {
        info.insert("opaque_id".into(), json!(o));
    }
    info.insert("loop-running".into(), json!(true));
    // Handles keep no creation time of their own: the session's is the closest known.
    info.insert("created".into(), json!(session.map_or(0, |s| s.created_ms) * 1000));
    info.insert("current_time".into(), json!(SystemClock.now_ms() * 1000));
    info.insert("plugin".into(), json!(h.plugin));
    // Not in a room (or its node does not know it): what Janus's VideoRoom says of such a handle.
    let mut plugin_specific =
        node.get("plugin_specific").cloned().unwrap_or_else(|| json!({"hangingup": 0, "destroyed": 0}));
    if let (Some(b), Some(p)) = (&h.binding, plugin_specific.as_object_mut()) {
        if node.get("plugin_specific").is_some() {
            // Beyond Janus: which media node holds the handle's room.
            p.insert("node".into(), json!(b.node.to_string()));
        }
    }
    info.insert("plugin_specific".into(), plugin_specific);
    if plugin_only {
        return Value::Object(info);
    }
    let webrtc = node.get("webrtc");
    let sdps = node.get("sdps").cloned().unwrap_or_else(|| json!({}));
    let sdp = |k: &str| sdps.get(k).and_then(Value::as_str);
    let ready = webrtc.and_then(|w| w.pointer("/dtls/ready")).and_then(Value::as_bool).unwrap_or(false);
    let negotiated = sdp("local").is_some() && sdp("remote").is_some();
    let subscriber = node.pointer("/plugin_specific/type").and_then(Value::as_str) == Some("subscriber");
    let rtx = ["local", "remote"].iter().any(|k| sdp(k).is_some_and(|s| s.contains(" apt=")));
    info.insert(
        "flags".into(),
        json!({
            "got-offer": sdps.get(if subscriber { "local" } else { "remote" }).is_some(),
            "got-answer": sdps.get(if subscriber { "remote" } else { "local" }).is_some(),
            "negotiated": negotiated,
            "processing-offer": false,
            // Janus: set when the peer's SDP came without candidates (they trickle after it).
            "starting": negotiated && !sdp("remote").is_some_and(|s| s.contains("a=candidate:")),
            "ice-restart": false,
            "ready": ready,
            "stopped": false,
            "alert": false,
            "trickle": negotiated,
            "all-trickles": false,
            "resend-trickles": false,
            "trickle-synced": false,
            "data-channels": sdp("local").is_some_and(|s| s.contains("m=application")),
            // Janus 1.x no longer sets these two (a handle's media are listed per mid).
            "has-audio": false,
            "has-video": false,
            "new-datachan-sdp": false,
            // Janus: an `apt` mapping in either SDP (retransmissions on their own SSRC).
            "rfc4588-rtx": rtx,
            "cleaning": false,
            "e2ee": false,
        }),
    );
    info.insert("sdps".into(), sdps);
    info.insert("queued-packets".into(), json!(0));
    // The capture its room writes, else the one the handle keeps for the room it joins next.
    let kept = h.capture.as_ref().map(|c| (json!(c.format.name()), json!(c.path())));
    let running = node.pointer("/capture/format").cloned().zip(node.pointer("/capture/file").cloned());
    if let Some((Value::String(format), file)) = running.or(kept) {
        info.insert(format!("dump-to-{format}"), json!(true));
        info.insert(format!("{format}-file"), file);
    }
    if let Some(w) = webrtc {
        info.insert("webrtc".into(), w.clone());
    }
    Value::Object(info)
}

/// Rooms `list_nodes` shows at most (each costs a placement lookup).
const LISTED_ROOMS: usize = 1000;

/// `list_nodes` (Portunus's own): every live media node with its load and whether it drains,
/// and the rooms placed on each (a room whose owner is not live shows its node as `lost`).
async fn list_nodes(d: &Dispatcher, txn: &str) -> Result<Value, CoreError> {
    let store = &d.backends().store;
    let live = store.live_nodes().await.map_err(store_error)?;
    let mut rooms = store.list_rooms().await.map_err(store_error)?;
    rooms.sort_by_key(|r| r.config.room.0.clone());
    let mut nodes: Vec<Value> = live
        .iter()
        .map(|n| {
            json!({"node": n.node.to_string(), "load": n.load,
                   "state": if n.draining { "draining" } else { "serving" }, "rooms": []})
        })
        .collect();
    let mut listed = Vec::new();
    for r in rooms.iter().take(LISTED_ROOMS) {
        let owner = store.room_owner(r.config.room.clone()).await.map_err(store_error)?;
        let owner = owner.map(|o| o.to_string());
        if let Some(o) = &owner {
            match nodes.iter_mut().find(|n| n["node"] == json!(o)) {
                Some(n) => n["rooms"].as_array_mut().into_iter().for_each(|a| a.push(json!(r.config.room.0))),
                None => nodes.push(json!({"node": o, "load": 0, "state": "lost", "rooms": [r.config.room.0]})),
            }
        }
        listed.push(json!({"room": r.config.room.0, "description": r.config.description,
                           "participants": r.participants, "node": owner}));
    }
    Ok(admin::success(txn, json!({"nodes": nodes, "rooms": listed, "rooms_total": rooms.len()})))
}
