//! The Portunus gateway: the Janus API over WebSocket and HTTP.
//!
//! The gateway parses and validates requests, keeps sessions and handles in the `Store`,
//! delivers session events from mailboxes, and sends VideoRoom work to media nodes over the
//! bus. In standalone mode ([`start_standalone`]) it also runs a media node in-process.
//!
//! # Layout
//! - [`api`]: the Janus core (`Dispatcher`): sessions, handles, plugin routing, error mapping.
//! - [`transport`]: WebSocket (`janus-protocol`) and HTTP REST/long-poll.
//! - [`core_thread`]: the thread the core actors (and an in-process node) run on.
//! - [`rpc`]: request/reply to media nodes over the bus, with deadlines.
//! - [`reaper`]: keepalive-driven session reaping.
//! - [`nodes`]: live media nodes and room placement.
//! - [`metrics`], [`admin`]: Prometheus metrics, health and readiness; [`admin_api`]: the Janus
//!   Admin API on the same port.
//! - [`declared_rooms`]: rooms from configuration; [`start_standalone`]: the in-process node's
//!   wiring.

pub mod admin;
pub mod admin_api;
pub mod api;
pub mod core_thread;
pub mod dashboard;
pub mod declared_rooms;
pub mod demos;
pub mod limits;
pub mod metrics;
pub mod nodes;
pub mod reaper;
pub mod rpc;
pub mod tls;
pub mod transport;

use actix::Actor;
use actix_web::dev::ServerHandle;
use actix_web::{middleware, web, App, HttpServer};
use api::Dispatcher;
use core_thread::Unstarted;
use futures_util::future::LocalBoxFuture;
use shared::clock::SystemClock;
use shared::config::Config;
use shared::store::RedisStore;
use shared::Backends;
use std::net::SocketAddr;
use std::sync::Arc;

/// Seconds a stopping gateway lets its last connections finish (after the drain).
const SHUTDOWN_GRACE_SECS: u64 = 1;
/// How long a WebSocket whose close handshake is done waits for its peer to close the TCP
/// connection before closing it.
const WS_DISCONNECT_GRACE: std::time::Duration = std::time::Duration::from_millis(50);

/// A running gateway: where it listens, and how to stop it.
pub struct Running {
    pub ws: SocketAddr,
    pub http: SocketAddr,
    pub admin: SocketAddr,
    /// The Admin API's WebSocket listener, when configured.
    pub admin_ws: Option<SocketAddr>,
    pub dispatcher: Dispatcher,
    servers: Vec<ServerHandle>,
    /// The runtimes the in-process media node runs on, each once (standalone; none in a
    /// cluster).
    pub media_runtimes: Vec<tokio::runtime::Handle>,
}

impl Running {
    /// Stops accepting connections and closes the listeners, the WebSocket server last: its first
    /// worker runs the core actors, which requests still finishing elsewhere wait on (a request
    /// cut off from its RPC reply would be answered with an error while its node answers too).
    pub async fn stop(&self) {
        for s in self.servers.iter().rev() {
            s.stop(true).await;
        }
    }
}

/// Starts a standalone Portunus (gateway + in-process media node) on in-memory backends.
/// Must run inside an actix system. Port 0 in `cfg` picks free ports.
#[cfg(feature = "standalone")]
pub async fn start_standalone(cfg: Config) -> std::io::Result<Running> {
    let node_cfg = cfg.clone();
    // Started on the core thread, beside the RPC client that talks to it. The in-process node
    // drains with the process; its own drain signal is not needed here.
    let node: OnCoreThread = Box::new(move |backends| {
        Box::pin(async move { media_node::start(&node_cfg, backends).await.map(|n| n.runtimes) })
    });
    let backends = Backends::memory();
    declared_rooms::seed_rooms(&cfg, &*backends.store).await.map_err(std::io::Error::other)?;
    let running = serve(cfg, backends, node).await?;
    running.dispatcher.metrics().include_media_node();
    Ok(running)
}

/// A gateway built without the media stack serves only as a cluster's gateway.
#[cfg(not(feature = "standalone"))]
pub async fn start_standalone(_cfg: Config) -> std::io::Result<Running> {
    Err(std::io::Error::other(
        "this gateway was built without standalone mode (the `standalone` feature): set redis_url to run it in a cluster",
    ))
}

/// Starts a cluster gateway on the Redis at `url`. Must run inside an actix system.
pub async fn start_cluster(cfg: Config, url: &str) -> std::io::Result<Running> {
    let redis = |e: String| std::io::Error::other(format!("Redis at {url}: {e}"));
    // Declared rooms exist before the gateway listens. They are written over a connection of
    // their own, closed after: the gateway's own connections open on the core thread.
    let seeding = RedisStore::connect(url, Arc::new(SystemClock)).await.map_err(|e| redis(e.to_string()))?;
    declared_rooms::seed_rooms(&cfg, &seeding).await.map_err(std::io::Error::other)?;
    drop(seeding);
    let (backends, io) = Backends::redis_unstarted(url).map_err(redis)?;
    serve(cfg, backends, Box::new(move |_| Box::pin(async move { io.start().await.map(|()| Vec::new()) }))).await
}

/// What starts on the core thread before the gateway's core actors: the Redis connections of a
/// cluster gateway, the in-process media node of a standalone one (the runtimes its rooms run
/// on).
type OnCoreThread =
    Box<dyn FnOnce(Backends) -> LocalBoxFuture<'static, Result<Vec<tokio::runtime::Handle>, String>> + Send>;

/// Listens and starts the core thread. Only WebSocket requests are taken until the core has
/// started, and they are served on its thread: nothing reaches Redis from another thread first,
/// so the connections' I/O stays on the core thread. The HTTP and admin listeners are bound
/// (connections wait in their backlogs) and served after.
async fn serve(cfg: Config, backends: Backends, on_core: OnCoreThread) -> std::io::Result<Running> {
    let gateway_id = format!("gw-{:x}", shared::ids::random_id());
    let (rpc, rpc_unstarted) = Unstarted::new();
    let (nodes, nodes_unstarted) = Unstarted::new();
    let metrics = metrics::Metrics::new();
    let rpc = rpc::Rpc::new(rpc, backends.bus.clone(), &gateway_id);
    let dispatcher = Dispatcher::new(cfg.clone(), backends.clone(), rpc, metrics, nodes);
    let (worker_report, mut worker_reports) = core_thread::worker_reports();

    let tls = tls::server_config(&cfg)?;
    // Binds plain or TLS, the same way for every listener.
    macro_rules! bind {
        ($server:expr, $port:expr) => {{
            let server = $server;
            match &tls {
                Some(t) => server.bind_rustls_0_23((cfg.bind.as_str(), $port), t.clone())?,
                None => server.bind((cfg.bind.as_str(), $port))?,
            }
        }};
    }
    let workers =
        if cfg.workers == 0 { std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2) } else { cfg.workers };
    let data = web::Data::new(dispatcher.clone());
    let cors_origin = cfg.allow_origin.clone();
    let base = cfg.base_path().to_owned();

    let d = data.clone();
    let ws_server = bind!(
        HttpServer::new(move || {
            worker_report.report();
            App::new().app_data(d.clone()).default_service(web::get().to(transport::ws::handshake))
        })
        .workers(workers)
        .on_connect(no_delay)
        // Signals are ours to handle (drain first), not actix-web's (immediate shutdown).
        .disable_signals()
        // Stopping comes after the drain: connections still open then (WebSockets, parked
        // long-polls) are closed after this rather than awaited.
        .shutdown_timeout(SHUTDOWN_GRACE_SECS)
        // After a close handshake the socket is ours to close: a client that does not close its
        // side at once (or never) does not keep it for actix's default second.
        .client_disconnect_timeout(WS_DISCONNECT_GRACE),
        cfg.ws_port
    );
    let ws_addr = first_addr(&ws_server.addrs())?;
    let ws_server = ws_server.run();
    // First in the list, so stopped last (`Running::stop`).
    let mut servers = vec![ws_server.handle()];
    actix_web::rt::spawn(ws_server);

    let d = data.clone();
    let admin_connections = dispatcher.metrics().http_connections("admin");
    let admin_server = bind!(
        HttpServer::new(move || {
            App::new()
                .app_data(d.clone())
                .wrap(middleware::from_fn(transport::counted::request))
                .configure(admin::routes)
        })
        .workers(1)
        .on_connect(move |_, ext| transport::counted::connection(&admin_connections, ext))
        .disable_signals(),
        cfg.admin_port
    );
    let admin_addr = first_addr(&admin_server.addrs())?;
    let admin_server = admin_server.run();

    let demos = cfg.demos_dir.as_ref().map(|dir| demos::Demos {
        dir: dir.into(),
        ws_port: ws_addr.port(),
        admin_port: admin_addr.port(),
        base_path: base.clone(),
        tls: tls.is_some(),
    });
    let d = data.clone();
    let http_connections = dispatcher.metrics().http_connections("http");
    let http_server = bind!(
        HttpServer::new(move || {
            let mut cors = middleware::DefaultHeaders::new().add(("Access-Control-Max-Age", "86400"));
            cors = match &cors_origin {
                Some(o) => cors
                    .add(("Access-Control-Allow-Origin", o.as_str()))
                    .add(("Access-Control-Allow-Credentials", "true")),
                None => cors.add(("Access-Control-Allow-Origin", "*")),
            };
            let (base, demos) = (base.clone(), demos.clone());
            App::new().app_data(d.clone()).wrap(cors).wrap(middleware::from_fn(transport::counted::request)).configure(
                move |c| {
                    if let Some(demos) = demos {
                        demos::routes(c, demos);
                    }
                    transport::http::routes(c, &base)
                },
            )
        })
        .workers(workers)
        .on_connect(move |conn, ext| {
            no_delay(conn, ext);
            transport::counted::connection(&http_connections, ext);
        })
        .disable_signals()
        .shutdown_timeout(SHUTDOWN_GRACE_SECS),
        cfg.http_port
    );
    let http_addr = first_addr(&http_server.addrs())?;
    let http_server = http_server.run();

    let mut after_core = vec![http_server, admin_server];
    let admin_ws = match cfg.admin_ws_port {
        None => None,
        Some(port) => {
            let d = data.clone();
            let server = bind!(
                HttpServer::new(move || {
                    App::new().app_data(d.clone()).default_service(web::get().to(transport::admin_ws::handshake))
                })
                .workers(1)
                .disable_signals()
                .shutdown_timeout(SHUTDOWN_GRACE_SECS)
                .client_disconnect_timeout(WS_DISCONNECT_GRACE),
                port
            );
            let addr = first_addr(&server.addrs())?;
            after_core.push(server.run());
            Some(addr)
        }
    };
    let core = core_thread::first_worker(&mut worker_reports).await?;
    let (started_tx, started) = tokio::sync::oneshot::channel();
    core.spawn_fn(move || {
        actix::spawn(async move {
            let outcome = async {
                let media_runtimes = on_core(backends.clone()).await?;
                rpc::RpcClient::run(rpc_unstarted, backends.clone(), &gateway_id).await?;
                nodes_unstarted.into_context().run(nodes::NodeDirectory::new(backends));
                Ok::<_, String>(media_runtimes)
            };
            let _ = started_tx.send(outcome.await);
        });
    });
    let media_runtimes = match tokio::time::timeout(core_thread::START_TIMEOUT, started).await {
        Ok(Ok(Ok(r))) => r,
        Ok(Ok(Err(e))) => return Err(std::io::Error::other(e)),
        Ok(Err(_)) => return Err(std::io::Error::other("the core thread stopped while starting")),
        Err(_) => return Err(std::io::Error::other("the core actors did not start in time")),
    };
    for server in after_core {
        servers.push(server.handle());
        actix_web::rt::spawn(server);
    }
    reaper::Reaper::new(dispatcher.clone()).start();
    actix_web::rt::spawn(declared_rooms::keep_rooms(cfg.clone(), dispatcher.backends().clone()));
    Ok(Running { ws: ws_addr, http: http_addr, admin: admin_addr, admin_ws, dispatcher, servers, media_runtimes })
}

/// Janus replies come in pairs (an ack, then the event): with Nagle's algorithm the second
/// small write waits for the client's delayed ACK of the first, ~40 ms on Linux.
fn no_delay(conn: &dyn std::any::Any, _: &mut actix_web::dev::Extensions) {
    let tcp = conn.downcast_ref::<actix_web::rt::net::TcpStream>().or_else(|| {
        conn.downcast_ref::<actix_tls::accept::rustls_0_23::TlsStream<actix_web::rt::net::TcpStream>>()
            .map(|t| t.get_ref().0)
    });
    if let Some(tcp) = tcp {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY");
        }
    }
}

fn first_addr(addrs: &[SocketAddr]) -> std::io::Result<SocketAddr> {
    addrs.first().copied().ok_or_else(|| std::io::Error::other("listener has no address"))
}
