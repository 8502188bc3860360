//! The media node's monitoring listener on its admin port: Prometheus `/metrics` (the media
//! plane's series), `/healthz` (the process serves HTTP) and `/readyz` (registered in the
//! cluster and not draining: a node that is not ready gets no new rooms from the gateways, and a
//! Kubernetes Service stops sending it anything).

use crate::agent::{NodeAgent, Readiness, Ready};
use actix::Addr;
use actix_web::dev::ServerHandle;
use actix_web::{web, App, HttpResponse, HttpServer};
use std::net::SocketAddr;
use std::time::Duration;

/// A probe answers even when the agent is busy.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Serves the admin routes on `bind:port` (port 0: any free port); returns where it listens.
pub fn serve(agent: Addr<NodeAgent>, bind: &str, port: u16) -> std::io::Result<(SocketAddr, ServerHandle)> {
    let data = web::Data::new(agent);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .route("/metrics", web::get().to(metrics))
            .route("/healthz", web::get().to(healthz))
            .route("/readyz", web::get().to(readyz))
    })
    .workers(1)
    .disable_signals()
    .bind((bind, port))?;
    let addr = server.addrs().first().copied().ok_or_else(|| std::io::Error::other("admin listener has no address"))?;
    let server = server.run();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    Ok((addr, handle))
}

async fn metrics() -> HttpResponse {
    let mut text = crate::metrics::METRICS.render();
    shared::heap::render(&mut text);
    HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(text)
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain").body("ok\n")
}

async fn readyz(agent: web::Data<Addr<NodeAgent>>) -> HttpResponse {
    let unavailable =
        |why: &str| HttpResponse::ServiceUnavailable().content_type("text/plain").body(format!("{why}\n"));
    match tokio::time::timeout(PROBE_TIMEOUT, agent.send(Ready)).await {
        Ok(Ok(Readiness::Ready)) => HttpResponse::Ok().content_type("text/plain").body("ready\n"),
        Ok(Ok(Readiness::Draining)) => unavailable("draining"),
        Ok(Ok(Readiness::Unregistered)) => unavailable("not registered in the cluster"),
        Ok(Err(_)) | Err(_) => unavailable("node agent not answering"),
    }
}
