//! `portunus-media-node`: a media node for cluster mode. It registers in Redis, takes the rooms
//! gateways place on it, and serves them until stopped. SIGTERM (or SIGINT) drains it: no new
//! rooms, exit once its rooms are empty or `drain_timeout` has passed; a second signal exits now.

use clap::Parser;
use shared::config::Config;
use std::path::PathBuf;

#[global_allocator]
static HEAP: shared::heap::Jemalloc = shared::heap::Jemalloc;

#[derive(Parser, Debug)]
#[command(name = "portunus-media-node", version, about = "Portunus media node (cluster mode)")]
struct Cli {
    /// TOML configuration file (see deploy/portunus.example.toml).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Redis URL shared with the gateways (required).
    #[arg(long)]
    redis_url: Option<String>,
    /// This node's name in the cluster (unique per node).
    #[arg(long)]
    node_id: Option<String>,
    /// Port of /metrics, /healthz and /readyz (config `admin_port`).
    #[arg(long)]
    admin_port: Option<u16>,
}

#[actix::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let mut flags = Vec::new();
    if let Some(u) = &cli.redis_url {
        flags.push(("redis_url", u.clone()));
    }
    if let Some(n) = &cli.node_id {
        flags.push(("node_id", n.clone()));
    }
    if let Some(p) = cli.admin_port {
        flags.push(("admin_port", p.to_string()));
    }
    let cfg = match Config::load(cli.config.as_deref(), &flags) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("portunus-media-node: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    shared::telemetry::init(&cfg.log);
    let Some(url) = cfg.redis_url.clone() else {
        tracing::error!("a media node needs --redis-url (standalone mode runs one inside portunus-gateway)");
        return std::process::ExitCode::from(2);
    };
    let backends = match shared::Backends::redis(&url).await {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(redis = %url, error = %e, "cannot reach Redis");
            return std::process::ExitCode::from(1);
        }
    };
    let mut node = match media_node::start(&cfg, backends).await {
        Ok(n) => n,
        Err(e) => {
            tracing::error!(error = %e, "cannot start");
            return std::process::ExitCode::from(1);
        }
    };
    let admin = match media_node::admin::serve(node.agent.clone(), &cfg.bind, cfg.admin_port) {
        Ok((addr, _)) => addr,
        Err(e) => {
            tracing::error!(port = cfg.admin_port, error = %e, "cannot listen on the admin port");
            return std::process::ExitCode::from(1);
        }
    };
    tracing::info!(node = %cfg.node_id, redis = %url, "media node serving");
    tracing::info!("metrics and health:  http://{admin}/metrics, /healthz, /readyz");
    let mut signals = match shared::shutdown::signals() {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot install signal handlers");
            return std::process::ExitCode::from(1);
        }
    };
    let mut asked = false;
    loop {
        tokio::select! {
            _ = &mut node.drained => {
                tracing::info!("drained; exiting");
                return std::process::ExitCode::SUCCESS;
            }
            _ = signals.recv() => {
                if asked {
                    tracing::warn!("second signal; exiting without finishing the drain");
                    return std::process::ExitCode::SUCCESS;
                }
                asked = true;
                node.agent.do_send(media_node::agent::Drain { deadline_secs: cfg.drain_timeout });
            }
        }
    }
}
