//! `portunus-media-node`: a media node for cluster mode. Cluster mode (Redis backends) arrives
//! with the cluster issue; until then this binary refuses to start rather than pretend.

use clap::Parser;

#[derive(Parser, Debug)]
#[command(name = "portunus-media-node", version, about = "Portunus media node (cluster mode)")]
struct Cli {
    /// Redis URL shared with the gateways.
    #[arg(long)]
    redis_url: Option<String>,
    /// This node's name in the cluster.
    #[arg(long)]
    node_id: Option<String>,
}

fn main() {
    let cli = Cli::parse();
    shared::telemetry::init("info");
    tracing::error!(
        redis_url = ?cli.redis_url,
        node_id = ?cli.node_id,
        "cluster mode (Redis) is not implemented yet; run `portunus-gateway` without --redis-url for standalone mode, which embeds a media node"
    );
    std::process::exit(2);
}
