//! The admin/monitoring listener, kept off the client ports: the Janus Admin API (`POST /admin`,
//! and `GET /admin/info` as Janus's HTTP transport answers it), the live cluster dashboard
//! (`/dashboard`), Prometheus `/metrics`, `/healthz` (the process serves requests), `/readyz`
//! (it can reach its state store and accepts new sessions), and the drains. The Admin API and the
//! dashboard answer browsers of other origins (CORS), as Janus's admin endpoint does; the drains
//! need the admin secret (header `X-Admin-Secret`) when one is set.

use crate::api::Dispatcher;
use actix_web::{web, HttpResponse};
use shared::janus::request::Transport;
use std::time::Duration;

/// A readiness probe must answer quickly even when the store hangs.
const READY_CHECK_TIMEOUT: Duration = Duration::from_secs(2);

pub fn routes(cfg: &mut web::ServiceConfig) {
    let preflight = || web::method(actix_web::http::Method::OPTIONS).to(preflight);
    cfg.route("/admin", web::post().to(admin_api))
        .route("/admin", preflight())
        .route("/admin/info", web::get().to(admin_info))
        .route("/admin/{session}", web::post().to(admin_api_session))
        .route("/admin/{session}", preflight())
        .route("/admin/{session}/{handle}", web::post().to(admin_api_handle))
        .route("/admin/{session}/{handle}", preflight())
        .route("/dashboard", web::get().to(crate::dashboard::page))
        .route("/metrics", web::get().to(metrics))
        .route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz))
        .route("/drain", web::post().to(drain_gateway))
        .route("/nodes/{node}/drain", web::post().to(drain_node));
}

/// A Janus Admin API request (bodies over the message limit are refused by the extractor).
async fn admin_api(d: web::Data<Dispatcher>, body: web::Bytes) -> HttpResponse {
    admin_reply(&d, crate::admin_api::handle(&d, &body, None).await)
}

async fn admin_api_session(d: web::Data<Dispatcher>, path: web::Path<u64>, body: web::Bytes) -> HttpResponse {
    admin_reply(&d, crate::admin_api::handle(&d, &body, Some((path.into_inner(), None))).await)
}

async fn admin_api_handle(d: web::Data<Dispatcher>, path: web::Path<(u64, u64)>, body: web::Bytes) -> HttpResponse {
    let (s, h) = path.into_inner();
    admin_reply(&d, crate::admin_api::handle(&d, &body, Some((s, Some(h)))).await)
}

/// An Admin API answer, laid out as the HTTP transport writes JSON.
fn admin_reply(d: &Dispatcher, reply: serde_json::Value) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Access-Control-Allow-Origin", "*"))
        .content_type("application/json")
        .body(d.layout(Transport::Http).lay_out(reply.to_string()))
}

/// `GET /admin/info`: the server info (no secret, as in Janus).
async fn admin_info(d: web::Data<Dispatcher>) -> HttpResponse {
    let txn = format!("{:x}", shared::ids::random_id());
    admin_reply(&d, serde_json::from_slice(&d.info(&txn).to_bytes()).unwrap_or_default())
}

/// CORS preflight: the admin demo page and the dashboard may be served from another origin.
async fn preflight(req: actix_web::HttpRequest) -> HttpResponse {
    let asked = req.headers().get("Access-Control-Request-Headers").cloned();
    let mut r = HttpResponse::NoContent();
    r.insert_header(("Access-Control-Allow-Origin", "*"))
        .insert_header(("Access-Control-Allow-Methods", "GET, POST, OPTIONS"))
        .insert_header(("Access-Control-Max-Age", "86400"));
    if let Some(h) = asked {
        r.insert_header(("Access-Control-Allow-Headers", h));
    }
    r.finish()
}

/// The drains change what the cluster serves: with an admin secret set, they need it.
fn admin_allowed(d: &Dispatcher, req: &actix_web::HttpRequest) -> Result<(), HttpResponse> {
    let Some(want) = &d.cfg().admin_secret else { return Ok(()) };
    let given = req.headers().get("X-Admin-Secret").and_then(|v| v.to_str().ok());
    if given.is_some_and(|g| shared::secret::same(want, g)) {
        Ok(())
    } else {
        Err(HttpResponse::Forbidden().content_type("text/plain").body("admin secret required (X-Admin-Secret)\n"))
    }
}

/// Stop taking new sessions (they get 472); current ones are served on.
async fn drain_gateway(d: web::Data<Dispatcher>, req: actix_web::HttpRequest) -> HttpResponse {
    if let Err(refused) = admin_allowed(&d, &req) {
        return refused;
    }
    d.set_accepting(false);
    tracing::info!("draining on admin request");
    HttpResponse::Ok().content_type("text/plain").body("draining\n")
}

/// Ask a media node to drain: no new rooms, exit once its rooms are empty.
async fn drain_node(d: web::Data<Dispatcher>, req: actix_web::HttpRequest, node: web::Path<String>) -> HttpResponse {
    if let Err(refused) = admin_allowed(&d, &req) {
        return refused;
    }
    match d.drain_node(shared::ids::NodeId(node.into_inner())).await {
        Ok(()) => HttpResponse::Accepted().content_type("text/plain").body("draining\n"),
        Err(e) => HttpResponse::BadGateway().content_type("text/plain").body(format!("{e}\n")),
    }
}

async fn metrics(d: web::Data<Dispatcher>) -> HttpResponse {
    let store = &d.backends().store;
    let view = async {
        let (sessions, handles) = store.counts().await?;
        let nodes = store.live_nodes().await?;
        let rooms = store.list_rooms().await?.len() as u64;
        Ok::<_, shared::store::StoreError>(crate::metrics::ClusterView { sessions, handles, nodes, rooms })
    };
    let view = tokio::time::timeout(READY_CHECK_TIMEOUT, view).await.ok().and_then(Result::ok);
    HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(d.metrics().render(view))
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain").body("ok\n")
}

async fn readyz(d: web::Data<Dispatcher>) -> HttpResponse {
    let store_ok = matches!(tokio::time::timeout(READY_CHECK_TIMEOUT, d.backends().store.counts()).await, Ok(Ok(_)));
    match (store_ok, d.accepting()) {
        (true, true) => HttpResponse::Ok().content_type("text/plain").body("ready\n"),
        (false, _) => HttpResponse::ServiceUnavailable().content_type("text/plain").body("state store unreachable\n"),
        (true, false) => HttpResponse::ServiceUnavailable().content_type("text/plain").body("draining\n"),
    }
}
