//! `portunus-gateway`: the Janus-compatible front door. Without `--redis-url` it runs
//! standalone: gateway plus an in-process media node, no Redis needed.

use clap::Parser;
use shared::config::Config;
use std::path::PathBuf;

#[global_allocator]
static HEAP: shared::heap::Jemalloc = shared::heap::Jemalloc;

#[derive(Parser, Debug)]
#[command(name = "portunus-gateway", version, about = "Portunus: a Janus-API-compatible WebRTC SFU cluster")]
struct Cli {
    /// TOML configuration file (see deploy/portunus.example.toml).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long)]
    bind: Option<String>,
    /// Janus WebSocket port.
    #[arg(long)]
    ws_port: Option<u16>,
    /// Janus HTTP REST/long-poll port.
    #[arg(long)]
    http_port: Option<u16>,
    /// Metrics/health and Admin API (HTTP) port.
    #[arg(long)]
    admin_port: Option<u16>,
    /// Admin API over WebSocket (subprotocol janus-admin-protocol); off unless set.
    #[arg(long)]
    admin_ws_port: Option<u16>,
    /// HTTP base path.
    #[arg(long)]
    http_base_path: Option<String>,
    /// Seconds of inactivity before a session times out (0 disables).
    #[arg(long)]
    session_timeout: Option<u64>,
    /// Seconds a closed WebSocket's sessions stay claimable (0: destroyed at once).
    #[arg(long)]
    reclaim_timeout: Option<u64>,
    /// Redis URL for cluster mode; absent means standalone.
    #[arg(long)]
    redis_url: Option<String>,
    /// Serve this folder of static pages (e.g. /usr/share/janus/demos) under /demos/ on the HTTP port.
    #[arg(long = "demos")]
    demos_dir: Option<String>,
    /// TLS certificate chain (PEM) for every listener; needs --tls-key.
    #[arg(long)]
    tls_cert: Option<String>,
    /// TLS private key (PEM).
    #[arg(long)]
    tls_key: Option<String>,
}

impl Cli {
    fn overrides(&self) -> Vec<(&'static str, String)> {
        let mut v = Vec::new();
        let mut put = |k: &'static str, val: Option<String>| {
            if let Some(x) = val {
                v.push((k, x));
            }
        };
        put("bind", self.bind.clone());
        put("ws_port", self.ws_port.map(|p| p.to_string()));
        put("http_port", self.http_port.map(|p| p.to_string()));
        put("admin_port", self.admin_port.map(|p| p.to_string()));
        put("admin_ws_port", self.admin_ws_port.map(|p| p.to_string()));
        put("http_base_path", self.http_base_path.clone());
        put("session_timeout", self.session_timeout.map(|p| p.to_string()));
        put("reclaim_timeout", self.reclaim_timeout.map(|p| p.to_string()));
        put("redis_url", self.redis_url.clone());
        put("demos_dir", self.demos_dir.clone());
        put("tls_cert", self.tls_cert.clone());
        put("tls_key", self.tls_key.clone());
        v
    }
}

#[actix_web::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let cfg = match Config::load(cli.config.as_deref(), &cli.overrides()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("portunus-gateway: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    shared::telemetry::init(&cfg.log);
    for w in cfg.warnings() {
        tracing::warn!("{w}");
    }
    let started = match &cfg.redis_url {
        Some(url) => {
            tracing::info!(redis = %url, "cluster mode: state in Redis, media nodes run as portunus-media-node");
            gateway::start_cluster(cfg.clone(), url).await
        }
        None => {
            tracing::info!("standalone mode: no Redis, single media node in-process");
            gateway::start_standalone(cfg.clone()).await
        }
    };
    let running = match started {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "cannot start");
            // Exit now: returning would drop actors that were already started (the in-process
            // media node's timers) after the runtime, which panics instead of exiting cleanly.
            std::process::exit(1);
        }
    };
    tracing::info!("Janus WebSocket API: ws://{} (subprotocol janus-protocol)", running.ws);
    tracing::info!("Janus HTTP API:      http://{}{}", running.http, cfg.base_path());
    tracing::info!("metrics and health:  http://{}/metrics, /healthz, /readyz", running.admin);
    let mut signals = match shared::shutdown::signals() {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot install signal handlers");
            return std::process::ExitCode::from(1);
        }
    };
    let _ = signals.recv().await;
    // Drain: refuse new sessions (472), serve the current ones until their sockets close or
    // drain_timeout passes; a second signal stops at once.
    tracing::info!(drain_timeout = cfg.drain_timeout, "draining");
    running.dispatcher.set_accepting(false);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(cfg.drain_timeout);
    loop {
        if running.dispatcher.metrics().ws_connections().get() == 0 || tokio::time::Instant::now() >= deadline {
            break;
        }
        tokio::select! {
            _ = signals.recv() => break,
            _ = tokio::time::sleep(std::time::Duration::from_millis(500)) => {}
        }
    }
    // Close the WebSockets left (each after writing the events it took; the rest wait in the
    // mailboxes for the clients' claims elsewhere), then stop.
    running.dispatcher.go_away();
    let closing = tokio::time::Instant::now() + std::time::Duration::from_secs(1);
    while running.dispatcher.metrics().ws_connections().get() > 0 && tokio::time::Instant::now() < closing {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    tracing::info!("shutting down");
    running.stop().await;
    std::process::ExitCode::SUCCESS
}
