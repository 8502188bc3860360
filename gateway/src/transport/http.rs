//! The HTTP transport: Janus REST (`POST {base}`, `POST {base}/{session}`,
//! `POST {base}/{session}/{handle}`) and the long-poll (`GET {base}/{session}?maxev=N`).
//!
//! Every Janus-level answer is HTTP 200 JSON with a Content-Length, so responses are always
//! completely framed, also behind reverse proxies (a browser otherwise reports `ERR_INCOMPLETE_CHUNKED_ENCODING`).
//! Sessions are not tied to TCP connections: events wait in the session's mailbox between polls,
//! and any gateway can serve any poll.

use crate::api::error::GatewayError;
use crate::api::{ConnCtx, Dispatcher};
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use shared::ids::{HandleId, SessionId};
use shared::janus::layout::Layout;
use shared::janus::reply::{Reply, KEEPALIVE_EVENT};
use shared::janus::request::{Credentials, Transport};
use shared::keys;
use std::time::Duration;

/// Routes under the configured base path.
pub fn routes(cfg: &mut web::ServiceConfig, base: &str) {
    let scope = if base == "/" { String::new() } else { base.to_owned() };
    let options = || web::method(actix_web::http::Method::OPTIONS).to(preflight_or_404);
    cfg.service(
        web::scope(&scope)
            .service(web::resource(["", "/"]).route(web::post().to(post_root)).route(options()))
            .service(web::resource("/info").route(web::get().to(get_info)).route(options()))
            .service(web::resource("/ping").route(web::get().to(get_ping)).route(options()))
            .service(
                web::resource("/{session}")
                    .route(web::post().to(post_session))
                    .route(web::get().to(long_poll))
                    .route(options()),
            )
            .service(
                web::resource("/{session}/{handle}")
                    .route(web::post().to(post_handle))
                    .route(web::get().to(redirect_to_session))
                    .route(options()),
            )
            .default_service(web::route().to(preflight_or_404)),
    );
}

/// A JSON answer, laid out as the HTTP transport writes JSON (as it is when compact).
fn json(d: &Dispatcher, body: impl Into<Bytes>) -> HttpResponse {
    let mut body = body.into();
    let layout = d.layout(Transport::Http);
    if layout != Layout::Compact {
        body = Bytes::from(layout.lay_out(String::from_utf8_lossy(&body).into_owned()));
    }
    HttpResponse::Ok().content_type("application/json").body(body)
}

/// Reads the body up to the message limit; a larger one gets a Janus error instead.
async fn read_body(mut payload: web::Payload, limit: usize) -> Result<Bytes, usize> {
    let mut buf = BytesMut::new();
    let mut size = 0usize;
    while let Some(chunk) = payload.next().await {
        let Ok(chunk) = chunk else { break };
        size += chunk.len();
        if size <= limit {
            buf.extend_from_slice(&chunk);
        }
    }
    if size > limit {
        Err(size)
    } else {
        Ok(buf.freeze())
    }
}

async fn post(
    d: &Dispatcher,
    req: &HttpRequest,
    payload: web::Payload,
    path: (Option<SessionId>, Option<HandleId>),
) -> HttpResponse {
    let limit = d.cfg().max_message_size;
    let body = match read_body(payload, limit).await {
        Ok(b) => b,
        // Hand the oversize on so the dispatcher answers and counts it like any bad request.
        Err(size) => Bytes::from(vec![b' '; size.min(limit + 1)]),
    };
    let peer = req.peer_addr().map(|a| a.ip());
    let cc = ConnCtx { transport: Transport::Http, owner: None, owned_sessions: 0, peer };
    let out = d.handle(&body, cc, Some(path)).await;
    // Done before answering, as Janus queues a plugin message before its ack: a client's next
    // request (to any gateway) cannot overtake this one at the media node. Events reach HTTP
    // clients through the long-poll, so this changes nothing about ack-before-event.
    if let Some(f) = out.followup {
        f.await;
    }
    json(&d, out.reply.to_bytes())
}

async fn post_root(d: web::Data<Dispatcher>, req: HttpRequest, payload: web::Payload) -> HttpResponse {
    post(&d, &req, payload, (None, None)).await
}

fn parse_id(s: &str) -> Option<u64> {
    s.parse::<u64>().ok().filter(|v| *v > 0)
}

async fn post_session(
    d: web::Data<Dispatcher>,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> HttpResponse {
    match parse_id(&path) {
        Some(s) => post(&d, &req, payload, (Some(SessionId(s)), None)).await,
        None => HttpResponse::NotFound().finish(),
    }
}

async fn post_handle(
    d: web::Data<Dispatcher>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    payload: web::Payload,
) -> HttpResponse {
    match (parse_id(&path.0), parse_id(&path.1)) {
        (Some(s), Some(h)) => post(&d, &req, payload, (Some(SessionId(s)), Some(HandleId(h)))).await,
        _ => HttpResponse::NotFound().finish(),
    }
}

fn made_up_transaction() -> String {
    format!("{:x}", shared::ids::random_id())
}

async fn get_info(d: web::Data<Dispatcher>) -> HttpResponse {
    json(&d, d.info(&made_up_transaction()).to_bytes())
}

async fn get_ping(d: web::Data<Dispatcher>) -> HttpResponse {
    json(&d, Reply::Pong { transaction: made_up_transaction() }.to_bytes())
}

async fn redirect_to_session(d: web::Data<Dispatcher>, path: web::Path<(String, String)>) -> HttpResponse {
    let base = d.cfg().base_path().trim_end_matches('/').to_owned();
    HttpResponse::Found().insert_header((header::LOCATION, format!("{base}/{}", path.0))).finish()
}

#[derive(serde::Deserialize)]
struct PollQuery {
    maxev: Option<String>,
    /// A long-poll carries its credentials in the query string (the core never sees it).
    apisecret: Option<String>,
    token: Option<String>,
}

/// The long-poll: counts as a keepalive when it starts; answers with the queued events (one,
/// or an array of up to `maxev`), or waits for the next one, or `keepalive` after the timeout.
async fn long_poll(d: web::Data<Dispatcher>, path: web::Path<String>, q: web::Query<PollQuery>) -> HttpResponse {
    let Some(sid) = parse_id(&path).map(SessionId) else { return HttpResponse::NotFound().finish() };
    // Invalid values fall back to one event, like Janus.
    let maxev = q.maxev.as_deref().and_then(|m| m.parse::<usize>().ok()).filter(|m| *m >= 1).unwrap_or(1).min(1000);
    let b = d.backends();
    // As Janus's HTTP transport: unauthorized is a bare 403.
    let creds = Credentials { apisecret: q.apisecret.clone(), token: q.token.clone() };
    match d.auth().check(b.store.as_ref(), &creds).await {
        Ok(_) => {}
        Err(GatewayError::Unauthorized) => return HttpResponse::Forbidden().finish(),
        Err(e) => {
            tracing::warn!(session = %sid, error = %e, "long-poll: credentials not checked");
            return HttpResponse::ServiceUnavailable().finish();
        }
    }
    match b.store.touch_session(sid).await {
        Ok(true) => {}
        Ok(false) => return HttpResponse::NotFound().finish(),
        Err(e) => {
            tracing::warn!(session = %sid, error = %e, "long-poll: store unavailable");
            return HttpResponse::ServiceUnavailable().finish();
        }
    }
    // Counted among the parked long-polls (`/metrics`) while it waits.
    let _parked = super::counted::Counted::new(d.metrics().longpolls().clone());
    // Subscribe before reading the mailbox, so an event pushed in between still wakes us.
    let mut sub = match b.bus.subscribe(&keys::session_channel(sid)).await {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(session = %sid, error = %e, "long-poll: cannot subscribe; answering from the mailbox only");
            None
        }
    };
    let mut events = b.store.pop_events(sid, maxev).await.unwrap_or_default();
    if events.is_empty() {
        let wait = Duration::from_secs(d.cfg().longpoll_timeout);
        if let Some(sub) = sub.as_mut() {
            // Any signal (event, claim, end) releases the poll; Janus answers released polls
            // that found nothing with a keepalive.
            if let Ok(Some(_)) = tokio::time::timeout(wait, sub.recv()).await {
                events = b.store.pop_events(sid, maxev).await.unwrap_or_default();
            }
        } else {
            tokio::time::sleep(wait.min(Duration::from_secs(1))).await;
            events = b.store.pop_events(sid, maxev).await.unwrap_or_default();
        }
    }
    drop(sub);
    d.metrics().events_delivered("http", events.len());
    let body: Bytes = match (events.len(), maxev) {
        (0, 1) => Bytes::from_static(KEEPALIVE_EVENT),
        (0, _) => Bytes::from([b"[".as_slice(), KEEPALIVE_EVENT, b"]"].concat()),
        (_, 1) => events.swap_remove(0),
        _ => {
            let mut v = Vec::with_capacity(events.iter().map(|e| e.len() + 1).sum::<usize>() + 2);
            v.push(b'[');
            for (i, e) in events.iter().enumerate() {
                if i > 0 {
                    v.push(b',');
                }
                v.extend_from_slice(e);
            }
            v.push(b']');
            Bytes::from(v)
        }
    };
    json(&d, body)
}

/// CORS pre-flight (`OPTIONS` anywhere) or 404: echoes the requested method and headers.
async fn preflight_or_404(req: HttpRequest) -> HttpResponse {
    if req.method() != actix_web::http::Method::OPTIONS {
        return HttpResponse::NotFound().finish();
    }
    let h = req.headers();
    let methods = h
        .get(header::ACCESS_CONTROL_REQUEST_METHOD)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("GET, POST, OPTIONS")
        .to_owned();
    let mut resp = HttpResponse::Ok();
    resp.insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, methods));
    if let Some(hs) = h.get(header::ACCESS_CONTROL_REQUEST_HEADERS) {
        resp.insert_header((header::ACCESS_CONTROL_ALLOW_HEADERS, hs.clone()));
    }
    resp.finish()
}
