//! The Portunus media node: VideoRoom rooms, each owned by one [`room::RoomActor`], reached
//! only through the bus so that nothing assumes the gateway shares this process.
//!
//! It never talks to a client's signalling socket: it answers RPCs on its node channel and
//! emits events into session mailboxes (invariant 2 in ARCHITECTURE.md). It owns the room state
//! machine and the media: WebRTC peers and RTP forwarding.
//!
//! # Layout
//! - [`agent`]: `NodeAgent`, the node's front door: RPC intake, room actors by id, room loading.
//! - [`room`]: `RoomActor` (shell) and `RoomState` (pure VideoRoom logic, unit-tested).
//! - [`workers`]: the threads rooms run on, one per core by default.
//! - [`outbox`]: the one ordered path for everything the node writes (events, bindings, replies).
//! - [`metrics`]: the media plane's Prometheus series; [`admin`]: `/metrics`, `/healthz`, `/readyz`.

/// The vocabulary the node speaks (for tools built on the node, such as its fuzz targets).
pub use shared;

pub mod admin;
pub mod agent;
pub mod media;
pub mod metrics;
pub mod outbox;
pub mod room;
pub mod workers;

use shared::config::Config;
use shared::ids::NodeId;
use shared::Backends;

/// A started media node: its agent, a signal that fires once a drain has completed, and the
/// runtimes it runs on, each once (its own and its workers', `workers`).
pub struct Node {
    pub agent: actix::Addr<agent::NodeAgent>,
    pub drained: tokio::sync::oneshot::Receiver<()>,
    pub runtimes: Vec<tokio::runtime::Handle>,
}

/// Starts a media node in the current actix system and returns it.
pub async fn start(cfg: &Config, backends: Backends) -> Result<Node, String> {
    let node = NodeId(cfg.node_id.clone());
    let workers = workers::Workers::start(cfg.media_workers)?;
    metrics::METRICS.watch_runtimes(workers.gauges());
    let runtimes = workers.runtimes();
    let sub = backends.bus.subscribe(&shared::keys::node_rpc(&node)).await.map_err(|e| e.to_string())?;
    let outbox = outbox::Outbox::start(backends.clone());
    // Still registered under this name: an earlier run of this node crashed and this one came
    // back before its registration lapsed (a drained node leaves the registry, and a lapsed one
    // was cleaned up by a gateway). Its handles' peers died with it, so their clients are told
    // now rather than never.
    let registered = backends.store.live_nodes().await.map_err(|e| e.to_string())?;
    if registered.iter().any(|n| n.node == node) {
        shared::lost_node::hang_up(&backends, &node).await;
    }
    // Registered before returning, so a gateway started next can place rooms here at once.
    let status = shared::store::NodeStatus { node: node.clone(), load: 0, draining: false };
    backends.store.register_node(status, agent::NODE_TTL_MS).await.map_err(|e| e.to_string())?;
    tracing::info!(node = %node, "media node ready");
    let (tx, drained) = tokio::sync::oneshot::channel();
    let udp_ips = cfg
        .media_ips
        .iter()
        .map(|ip| ip.parse().map_err(|e| format!("media_ips: {ip:?}: {e}")))
        .collect::<Result<Vec<std::net::IpAddr>, String>>()?;
    let ports = match (cfg.media_port_min, cfg.media_port_max) {
        (0, 0) => None,
        (min, max) => Some(media::peer::PortRange::new(min, max).ok_or(format!("media ports: bad range {min}-{max}"))?),
    };
    if let Some(ip) = &cfg.public_ip {
        ip.parse::<std::net::IpAddr>().map_err(|e| format!("public_ip: {ip:?}: {e}"))?;
    }
    let ice_servers = cfg
        .ice_servers
        .iter()
        .map(|url| media::peer::IceServer {
            url: url.clone(),
            username: cfg.turn_username.clone().unwrap_or_default(),
            credential: cfg.turn_password.clone().unwrap_or_default(),
        })
        .collect();
    let forward_allowed = cfg
        .rtp_forward_allowed
        .iter()
        .map(|r| r.parse::<media::forwarder::AddressRange>().map_err(|e| format!("rtp_forward_allowed: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    let single_port = match cfg.media_port {
        0 => None,
        port => {
            Some(media::single_port::SinglePort::open(&udp_ips, port).map_err(|e| format!("media_port {port}: {e}"))?)
        }
    };
    // The knobs the Admin API turned before this node started override its configuration.
    let tuning = media::tuning::LiveTuning::new(cfg.tuning());
    tuning.reset_to(&backends.store.knobs().await.map_err(|e| e.to_string())?);
    let media = media::peer::MediaSettings {
        udp_ips,
        ports,
        single_port,
        public_ip: cfg.public_ip.clone(),
        ice_servers,
        tuning,
        forward_allowed: forward_allowed.into(),
        rec_dir: cfg.rec_dir.clone().into(),
        protected_folders: cfg.protected_folders.iter().map(std::path::PathBuf::from).collect(),
    };
    let agent = agent::NodeAgent::start(node, backends, outbox, sub, tx, media, workers);
    agent::NodeAgent::with_max_rooms(&agent, cfg.max_rooms);
    Ok(Node { agent, drained, runtimes })
}
