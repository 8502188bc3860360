//! The admin/monitoring listener, kept off the client ports: the Janus Admin API (`POST /admin`),
//! Prometheus `/metrics`, `/healthz` (the process serves requests) and `/readyz` (it can reach
//! its state store and accepts new sessions).

use crate::api::Dispatcher;
use actix_web::{web, HttpResponse};
use std::time::Duration;

/// A readiness probe must answer quickly even when the store hangs.
const READY_CHECK_TIMEOUT: Duration = Duration::from_secs(2);

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin", web::post().to(admin_api))
        .route("/admin/{session}", web::post().to(admin_api_session))
        .route("/admin/{session}/{handle}", web::post().to(admin_api_handle))
        .route("/metrics", web::get().to(metrics))
        .route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz))
        .route("/drain", web::post().to(drain_gateway))
        .route("/nodes/{node}/drain", web::post().to(drain_node));
}

/// A Janus Admin API request (bodies over the message limit are refused by the extractor).
async fn admin_api(d: web::Data<Dispatcher>, body: web::Bytes) -> HttpResponse {
    admin_reply(crate::admin_api::handle(&d, &body, None).await)
}

async fn admin_api_session(d: web::Data<Dispatcher>, path: web::Path<u64>, body: web::Bytes) -> HttpResponse {
    admin_reply(crate::admin_api::handle(&d, &body, Some((path.into_inner(), None))).await)
}

async fn admin_api_handle(d: web::Data<Dispatcher>, path: web::Path<(u64, u64)>, body: web::Bytes) -> HttpResponse {
    let (s, h) = path.into_inner();
    admin_reply(crate::admin_api::handle(&d, &body, Some((s, Some(h)))).await)
}

fn admin_reply(reply: serde_json::Value) -> HttpResponse {
    HttpResponse::Ok().content_type("application/json").body(reply.to_string())
}

/// Stop taking new sessions (they get 472); current ones are served on.
async fn drain_gateway(d: web::Data<Dispatcher>) -> HttpResponse {
    d.set_accepting(false);
    tracing::info!("draining on admin request");
    HttpResponse::Ok().content_type("text/plain").body("draining\n")
}

/// Ask a media node to drain: no new rooms, exit once its rooms are empty.
async fn drain_node(d: web::Data<Dispatcher>, node: web::Path<String>) -> HttpResponse {
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
