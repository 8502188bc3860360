//! Test harness: a Portunus server started on free loopback ports in its own thread and actix
//! system, Janus clients over real WebSocket and HTTP connections, and the golden-file matcher.
//!
//! Tests read as specifications: they speak Janus JSON to a real server and compare what comes
//! back with what Janus 1.1.2 answers (`tests/golden`, recorded from a real Janus).

pub mod allocations;
pub mod clients;
pub mod clip;
pub mod golden;
pub mod hosts;
pub mod janus_js;
pub mod janus_oracle;
pub mod lossy;
pub mod peer;
pub mod procs;
pub mod raw_http;
mod redis_server;
pub mod sansio;
pub mod tls;
pub mod videoroom;

pub use clients::*;
pub use golden::*;
pub use redis_server::{Monitor, RedisServer};

use shared::config::Config;
use std::sync::mpsc;
use std::time::Duration;

/// How long a test waits for any single reply or event before failing.
pub const WAIT: Duration = Duration::from_secs(5);

/// A configuration for tests: loopback, free ports, one worker per listener.
pub fn test_config() -> Config {
    Config {
        bind: "127.0.0.1".into(),
        ws_port: 0,
        http_port: 0,
        admin_port: 0,
        admin_ws_port: Some(0),
        workers: 1,
        log: "warn".into(),
        // Peers on one machine meet on loopback.
        media_ips: vec!["127.0.0.1".into()],
        media_port: if single_port() { free_udp_port() } else { 0 },
        ..Config::default()
    }
}

/// Whether media goes through one UDP port per server (`media_port`):
/// `PORTUNUS_TEST_SINGLE_PORT=1` runs the media suites that way (`tests/run.sh` does).
pub fn single_port() -> bool {
    std::env::var("PORTUNUS_TEST_SINGLE_PORT").is_ok_and(|v| v == "1")
}

/// A UDP port nothing holds right now.
pub fn free_udp_port() -> u16 {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").expect("a free UDP port");
    s.local_addr().expect("its address").port()
}

/// A standalone Portunus running in its own thread; stopped when dropped.
pub struct TestServer {
    pub ws_url: String,
    /// The Admin API over WebSocket, when configured (`test_config` does).
    pub admin_ws_url: Option<String>,
    pub http_url: String,
    pub admin_url: String,
    pub base_url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// The server's runtimes, its media node's workers' included (their tasks can be counted).
    runtimes: Vec<tokio::runtime::Handle>,
    /// In cluster runs (`PORTUNUS_TEST_BACKEND=redis`): the media node and Redis behind the gateway.
    cluster: Option<(TestNode, RedisServer)>,
}

/// Which backends `TestServer::start`/`with` use: `PORTUNUS_TEST_BACKEND=redis` runs every
/// standalone-mode test against a cluster (a Redis, a media node, a gateway) instead.
pub fn cluster_backend() -> bool {
    std::env::var("PORTUNUS_TEST_BACKEND").is_ok_and(|b| b == "redis")
}

impl TestServer {
    pub fn start() -> Self {
        Self::with(test_config())
    }

    pub fn with(cfg: Config) -> Self {
        if cluster_backend() {
            let redis = RedisServer::start();
            // The node shares the test's configuration (its media settings live there).
            let node = TestNode::start_with(cfg.clone(), &redis.url(), "node-1");
            let mut server = Self::spawn(cfg, Some(redis.url()));
            server.cluster = Some((node, redis));
            return server;
        }
        Self::spawn(cfg, None)
    }

    /// A cluster-mode gateway on the Redis at `redis_url` (media nodes run separately).
    pub fn cluster(cfg: Config, redis_url: &str) -> Self {
        Self::spawn(cfg, Some(redis_url.to_owned()))
    }

    fn spawn(cfg: Config, redis_url: Option<String>) -> Self {
        shared::telemetry::init_for_tests(&std::env::var("PORTUNUS_TEST_LOG").unwrap_or_else(|_| "warn".into()));
        let (tx, rx) = mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let base = cfg.base_path().to_owned();
        let thread = std::thread::spawn(move || {
            let sys = actix::System::new();
            sys.block_on(async move {
                let started = match redis_url {
                    None => gateway::start_standalone(cfg).await,
                    Some(url) => gateway::start_cluster(cfg, &url).await,
                };
                match started {
                    Ok(r) => {
                        // The node's runtimes are the core thread's and its workers', never this one.
                        let runtimes = [vec![tokio::runtime::Handle::current()], r.media_runtimes.clone()].concat();
                        let _ = tx.send(Ok((r.ws, r.http, r.admin, r.admin_ws, runtimes)));
                        let _ = stop_rx.await;
                        r.stop().await;
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e.to_string()));
                    }
                }
            });
        });
        let (ws, http, admin, admin_ws, runtimes) = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("server thread did not report")
            .expect("server failed to start");
        let http_url = format!("http://{http}");
        Self {
            ws_url: format!("ws://{ws}/"),
            base_url: format!("{http_url}{base}"),
            http_url,
            admin_url: format!("http://{admin}"),
            admin_ws_url: admin_ws.map(|a| format!("ws://{a}/")),
            stop: Some(stop_tx),
            thread: Some(thread),
            runtimes,
            cluster: None,
        }
    }

    /// Where the media plane's metrics are served: the media node's admin port in cluster runs,
    /// the gateway's (which carries its in-process node's series) standalone.
    pub fn media_admin_url(&self) -> &str {
        self.cluster.as_ref().map_or(&self.admin_url, |(n, _)| &n.admin_url)
    }

    /// Tasks alive on the server's runtimes (the gateway's and its media node's workers', and
    /// in cluster runs the media node's): a leak of peers or forwarding loops shows here.
    pub fn alive_tasks(&self) -> usize {
        let node = self.cluster.as_ref().map_or(0, |(n, _)| alive_tasks(&n.runtimes));
        alive_tasks(&self.runtimes) + node
    }
}

impl TestServer {
    /// The kernel thread ids of the threads the media node's rooms run on (its worker threads;
    /// with one worker, its own), for tests that attribute work to them.
    pub async fn media_worker_threads(&self) -> Vec<i32> {
        // Each list starts with the node's own runtime, then its workers' (`WorkerGauges::all`);
        // standalone, the server thread's comes first.
        let node = self.cluster.as_ref().map_or(&self.runtimes[1..], |(n, _)| &n.runtimes[..]);
        let workers = if node.len() > 1 { &node[1..] } else { node };
        let mut tids = Vec::new();
        for h in workers {
            tids.push(h.spawn(async { unsafe { libc::gettid() } }).await.expect("the worker runs"));
        }
        tids
    }
}

fn alive_tasks(runtimes: &[tokio::runtime::Handle]) -> usize {
    runtimes.iter().map(|h| h.metrics().num_alive_tasks()).sum()
}

/// A cluster-mode media node in its own thread and actix system; stopped when dropped.
pub struct TestNode {
    pub node_id: String,
    /// Its `/metrics`, `/healthz`, `/readyz`.
    pub admin_url: String,
    /// The node's runtime and its workers'.
    runtimes: Vec<tokio::runtime::Handle>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TestNode {
    pub fn start(redis_url: &str, node_id: &str) -> Self {
        Self::start_with(test_config(), redis_url, node_id)
    }

    /// A node with the media settings (addresses, ports, ICE) of `cfg`.
    pub fn start_with(mut cfg: Config, redis_url: &str, node_id: &str) -> Self {
        cfg.node_id = node_id.to_owned();
        cfg.redis_url = Some(redis_url.to_owned());
        let url = redis_url.to_owned();
        let (tx, rx) = mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let sys = actix::System::new();
            sys.block_on(async move {
                let started = match shared::Backends::redis(&url).await {
                    Ok(b) => media_node::start(&cfg, b).await,
                    Err(e) => Err(e),
                };
                let started = started.and_then(|node| {
                    let admin =
                        media_node::admin::serve(node.agent.clone(), "127.0.0.1", 0).map_err(|e| e.to_string())?;
                    Ok((node, admin.0))
                });
                match started {
                    Ok((node, admin)) => {
                        let _ = tx.send(Ok((node.runtimes.clone(), admin)));
                        // Runs until stopped, or until it has drained (as the binary exits then).
                        tokio::select! {
                            _ = stop_rx => {}
                            _ = node.drained => {}
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e));
                    }
                }
            });
        });
        let (runtimes, admin) = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("node thread did not report")
            .expect("node failed to start");
        Self {
            node_id: node_id.to_owned(),
            admin_url: format!("http://{admin}"),
            runtimes,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    /// Whether the node has exited (stopped, or drained).
    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(|t| t.is_finished())
    }

    /// Stops the node abruptly: its actors and heartbeats end with its actix system.
    pub fn stop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for TestNode {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        // Then the node, then Redis (field order would drop them before the gateway stopped).
        drop(self.cluster.take());
    }
}

/// A free loopback port (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
}

/// The value of one sample in a Prometheus text exposition (`series` with its labels, exactly as
/// rendered), or None when absent.
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
}

/// A process's `/metrics` show its heap served by jemalloc: the megabytes a running server
/// holds are counted there (a binary on another allocator leaves jemalloc's heap nearly empty).
pub fn assert_heap_is_jemalloc(text: &str) {
    let allocated = metric(text, "portunus_heap_allocated_bytes").unwrap_or_else(|| panic!("no heap gauge:\n{text}"));
    let resident = metric(text, "portunus_heap_resident_bytes").unwrap_or_else(|| panic!("no heap gauge:\n{text}"));
    assert!(allocated > 1_048_576.0, "the heap is not jemalloc's: {allocated} bytes allocated");
    assert!(resident >= allocated, "resident {resident} < allocated {allocated}");
}
