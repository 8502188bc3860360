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
use shared::ids::{HandleId, SessionId};
use shared::janus::admin::{self, AdminRequest, AdminTarget};
use shared::janus::errors::{CoreCode, CoreError};
use shared::janus::reply::Reply;
use shared::janus::VIDEOROOM_PLUGIN;
use shared::secret::same;

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
    let request = match env.request {
        Ok(r) => r,
        Err(e) => return fail(&e),
    };
    tracing::debug!(request = request.label(), target = ?env.target, "admin request");
    let result = match env.target {
        AdminTarget::Root => run(d, txn, request).await,
        AdminTarget::Session(s) | AdminTarget::Handle(s, _) => {
            let hid = match env.target {
                AdminTarget::Handle(_, h) => Some(HandleId(h)),
                _ => None,
            };
            at_session(d, txn, SessionId(s), hid, request).await
        }
    };
    result.unwrap_or_else(|e| fail(&e))
}

fn json_of(reply: Reply) -> Value {
    serde_json::from_slice(&reply.to_bytes()).unwrap_or_default()
}

/// Session- and handle-level requests (Janus: the session, then the handle, must exist).
async fn at_session(
    d: &Dispatcher,
    txn: &str,
    sid: SessionId,
    hid: Option<HandleId>,
    request: AdminRequest,
) -> Result<Value, CoreError> {
    let store = d.backends().store.clone();
    if store.session(sid).await.map_err(store_error)?.is_none() {
        return Err(CoreError::new(CoreCode::SessionNotFound, format!("No such session {sid}")));
    }
    let handle =
        match hid {
            None => None,
            Some(h) => Some(store.handle(sid, h).await.map_err(store_error)?.ok_or_else(|| {
                CoreError::new(CoreCode::HandleNotFound, format!("No such handle {h} in session {sid}"))
            })?),
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
    match (handle, request) {
        (None, AdminRequest::ListHandles) => {
            let ids = store.session_handles(sid).await.map_err(store_error)?;
            let mut reply = json_of(Reply::success(Some(sid), txn));
            reply["handles"] = json!(ids.iter().map(|h| h.0).collect::<Vec<_>>());
            Ok(reply)
        }
        (None, AdminRequest::DestroySession) => finish(d.destroy(sid, txn).await).await,
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
            admin::success(
                txn,
                json!({"status": {
                    "token_auth": d.auth().token_auth(),
                    "session_timeout": cfg.session_timeout,
                    "reclaim_session_timeout": cfg.reclaim_timeout,
                    "candidates_timeout": 45,
                    "log_level": shared::telemetry::janus_level(),
                    "log_timestamps": false,
                    "log_colors": false,
                    "locking_debug": false,
                    "refcount_debug": false,
                    "libnice_debug": false,
                    "min_nack_queue": 200,
                    "no_media_timer": 1,
                    "slowlink_threshold": cfg.slowlink_threshold,
                }}),
            )
        }
        AdminRequest::SetLogLevel { level } => {
            shared::telemetry::set_janus_level(level).map_err(unknown)?;
            admin::success(txn, json!({"level": level}))
        }
        AdminRequest::AcceptNewSessions { accept } => {
            d.set_accepting(accept);
            admin::success(txn, json!({"accept": accept}))
        }
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
