//! The Janus Admin API (`POST /admin` on the admin port), answered as Janus 1.1.2 answers it,
//! for the whole cluster: sessions and stored tokens live in the `Store`, so any gateway
//! lists every session and a token added on one gateway authorizes on all at once.
//!
//! Requests parse at the edge (`shared::janus::admin`); this module runs them.

use crate::api::auth::{same, TokenMode};
use crate::api::Dispatcher;
use serde_json::{json, Value};
use shared::janus::admin::{self, AdminRequest};
use shared::janus::errors::{CoreCode, CoreError};
use shared::janus::VIDEOROOM_PLUGIN;

/// The plugins a token may name: the ones this server has.
const PLUGINS: [&str; 1] = [VIDEOROOM_PLUGIN];

/// Answers one Admin API request.
pub async fn handle(d: &Dispatcher, bytes: &[u8]) -> Value {
    let env = match admin::parse(bytes) {
        Ok(env) => env,
        Err((txn, e)) => return admin::error(txn.as_deref(), &e),
    };
    let txn = env.transaction.as_str();
    if env.needs_secret() {
        if let Some(want) = &d.cfg().admin_secret {
            if !env.admin_secret.as_deref().is_some_and(|given| same(want, given)) {
                return admin::error(Some(txn), &CoreError::default_for(CoreCode::Unauthorized));
            }
        }
    }
    let request = match env.request {
        Ok(r) => r,
        Err(e) => return admin::error(Some(txn), &e),
    };
    tracing::debug!(request = request.label(), "admin request");
    run(d, txn, request).await.unwrap_or_else(|e| admin::error(Some(txn), &e))
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
                    "log_level": 4,
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
        AdminRequest::Unknown(verb) => {
            return Err(CoreError::new(CoreCode::UnknownRequest, format!("Unknown request '{verb}'")))
        }
    })
}
