//! Test harness: a Portunus server started on free loopback ports in its own thread and actix
//! system, Janus clients over real WebSocket and HTTP connections, and the golden-file matcher.
//!
//! Tests read as specifications: they speak Janus JSON to a real server and compare what comes
//! back with what Janus 1.1.2 answers (`tests/golden`, recorded from a real Janus).

pub mod allocations;
pub mod clip;
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

pub use redis_server::{Monitor, RedisServer};

use actix_codec::Framed;
use awc::ws::{Codec, Frame, Message};
use awc::BoxedSocket;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use shared::config::Config;
use std::path::PathBuf;
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

/// A unique transaction id.
pub fn txn() -> String {
    format!("t{:x}", rand::random::<u64>())
}

/// A Janus client over one WebSocket.
pub struct WsClient {
    conn: Framed<BoxedSocket, Codec>,
}

/// Opens a Janus WebSocket (subprotocol `janus-protocol`) to `url`, failing after `wait`.
pub async fn janus_websocket(url: &str, wait: Duration) -> Result<Framed<BoxedSocket, Codec>, String> {
    websocket_speaking(url, "janus-protocol", wait).await
}

/// Opens a WebSocket offering `subprotocol` to `url`, failing after `wait`.
pub async fn websocket_speaking(
    url: &str,
    subprotocol: &str,
    wait: Duration,
) -> Result<Framed<BoxedSocket, Codec>, String> {
    let (_resp, conn) = awc::Client::builder()
        .max_http_version(awc::http::Version::HTTP_11)
        .timeout(wait)
        .finish()
        .ws(url)
        .protocols([subprotocol])
        .max_frame_size(4 << 20)
        .connect()
        .await
        .map_err(|e| format!("WebSocket connect to {url}: {e}"))?;
    Ok(conn)
}

impl WsClient {
    /// A Janus WebSocket opened by `client` (e.g. one that speaks TLS).
    pub async fn connect_by(client: &awc::Client, url: &str) -> Result<Self, String> {
        let (_resp, conn) = client
            .ws(url)
            .protocols(["janus-protocol"])
            .connect()
            .await
            .map_err(|e| format!("WebSocket connect to {url}: {e}"))?;
        Ok(Self { conn })
    }

    /// A client of the Admin API over WebSocket (`janus-admin-protocol`).
    pub async fn connect_admin(url: &str) -> Self {
        Self { conn: websocket_speaking(url, "janus-admin-protocol", WAIT).await.expect("admin WebSocket connect") }
    }

    pub async fn connect(url: &str) -> Self {
        Self { conn: janus_websocket(url, WAIT).await.expect("WebSocket connect") }
    }

    /// [`WsClient::connect`] that returns None instead of failing the test.
    pub async fn try_connect(url: &str) -> Option<Self> {
        janus_websocket(url, WAIT).await.ok().map(|conn| Self { conn })
    }

    /// Sends a request; false when the socket is gone.
    pub async fn try_send(&mut self, v: &Value) -> bool {
        self.conn.send(Message::Text(v.to_string().into())).await.is_ok()
    }

    pub async fn send_text(&mut self, text: impl Into<String>) {
        self.conn.send(Message::Text(text.into().into())).await.expect("send");
    }

    pub async fn send(&mut self, v: &Value) {
        self.send_text(v.to_string()).await;
    }

    /// The next JSON message, failing the test after [`WAIT`].
    pub async fn recv(&mut self) -> Value {
        self.try_recv(WAIT).await.expect("no message from server in time")
    }

    /// The next JSON message within `wait`, or `None`.
    pub async fn try_recv(&mut self, wait: Duration) -> Option<Value> {
        match self.next_within(wait).await {
            Next::Message(v) => Some(v),
            Next::Quiet | Next::Closed => None,
        }
    }

    /// The next text frame as it was written, failing the test after [`WAIT`].
    pub async fn recv_text(&mut self) -> String {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match tokio::time::timeout_at(deadline, self.conn.next()).await {
                Ok(Some(Ok(Frame::Text(b)))) => return String::from_utf8(b.to_vec()).expect("a UTF-8 text frame"),
                Ok(Some(Ok(Frame::Ping(p)))) => {
                    let _ = self.conn.send(Message::Pong(p)).await;
                }
                Ok(Some(Ok(_))) => {}
                other => panic!("no text frame in time: {other:?}"),
            }
        }
    }

    /// The next JSON message within `wait`, telling a quiet socket from a closed one.
    pub async fn next_within(&mut self, wait: Duration) -> Next {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let frame = match tokio::time::timeout_at(deadline, self.conn.next()).await {
                Err(_) => return Next::Quiet,
                Ok(None) => return Next::Closed,
                Ok(Some(f)) => f,
            };
            match frame {
                Ok(Frame::Text(b) | Frame::Binary(b)) => {
                    return Next::Message(serde_json::from_slice(&b).expect("server sent invalid JSON"))
                }
                Ok(Frame::Ping(p)) => {
                    let _ = self.conn.send(Message::Pong(p)).await;
                }
                Ok(Frame::Close(_)) | Err(_) => return Next::Closed,
                _ => {}
            }
        }
    }

    /// Sends a request (adding a transaction) and returns the reply carrying that transaction;
    /// other messages that arrive meanwhile are returned too, in order.
    pub async fn call(&mut self, mut req: Value) -> (Value, Vec<Value>) {
        let t = txn();
        req["transaction"] = json!(t);
        self.send(&req).await;
        let mut others = Vec::new();
        loop {
            let m = self.recv().await;
            if m["transaction"] == json!(t) && m["janus"] != json!("event") {
                return (m, others);
            }
            others.push(m);
        }
    }

    /// Sends a request and returns its reply, asserting nothing else arrived first.
    pub async fn request(&mut self, req: Value) -> Value {
        let (reply, others) = self.call(req).await;
        assert!(others.is_empty(), "unexpected messages before the reply: {others:?}");
        reply
    }

    pub async fn create_session(&mut self) -> u64 {
        let r = self.request(json!({"janus": "create"})).await;
        r["data"]["id"].as_u64().unwrap_or_else(|| panic!("create failed: {r}"))
    }

    pub async fn attach(&mut self, session: u64) -> u64 {
        let r =
            self.request(json!({"janus": "attach", "session_id": session, "plugin": "janus.plugin.videoroom"})).await;
        r["data"]["id"].as_u64().unwrap_or_else(|| panic!("attach failed: {r}"))
    }

    /// A VideoRoom request on a handle.
    pub async fn message(&mut self, session: u64, handle: u64, body: Value) -> Value {
        self.request(json!({"janus": "message", "session_id": session, "handle_id": handle, "body": body})).await
    }

    /// An asynchronous VideoRoom request: asserts the `ack`, returns the event that follows.
    pub async fn message_event(&mut self, session: u64, handle: u64, body: Value) -> Value {
        let ack = self.message(session, handle, body).await;
        assert_eq!(ack["janus"], "ack", "{ack}");
        self.recv().await
    }

    /// Waits for the next plugin event matching `pred`, skipping core events (webrtcup, media,
    /// hangup) that may interleave; fails on any other plugin event.
    pub async fn expect_skipping_core(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        loop {
            let m = self.recv().await;
            if m["janus"] != "event" {
                continue;
            }
            assert!(pred(&m), "expected {what}, got {m}");
            return m;
        }
    }

    /// Waits for the next message matching `pred`, failing on anything else.
    pub async fn expect(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let m = self.recv().await;
        assert!(pred(&m), "expected {what}, got {m}");
        m
    }

    /// Sends a close frame and waits for the server's (not for the TCP connection to end).
    pub async fn close(mut self) {
        let _ = self.conn.send(Message::Close(None)).await;
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            while let Some(Ok(f)) = self.conn.next().await {
                if matches!(f, Frame::Close(_)) {
                    break;
                }
            }
        })
        .await;
    }
}

/// A Janus client over HTTP.
pub struct HttpClient {
    client: awc::Client,
    pub base: String,
}

impl HttpClient {
    pub fn new(base: &str) -> Self {
        let client = awc::Client::builder().timeout(Duration::from_secs(40)).finish();
        Self { client, base: base.trim_end_matches('/').to_owned() }
    }

    /// POSTs raw text to `path` (relative to the base) and parses the JSON reply.
    pub async fn post_raw(&self, path: &str, body: impl Into<String>) -> Value {
        let mut resp = self
            .client
            .post(format!("{}{path}", self.base))
            .insert_header(("Content-Type", "application/json"))
            .send_body(body.into())
            .await
            .expect("POST");
        assert_eq!(resp.status(), 200, "Janus-level replies are HTTP 200");
        let body = resp.body().limit(8 << 20).await.expect("body");
        serde_json::from_slice(&body)
            .unwrap_or_else(|e| panic!("invalid JSON ({e}): {}", String::from_utf8_lossy(&body)))
    }

    pub async fn post(&self, path: &str, mut req: Value) -> Value {
        if req.get("transaction").is_none() {
            req["transaction"] = json!(txn());
        }
        self.post_raw(path, req.to_string()).await
    }

    /// `GET` returning (status, body).
    pub async fn get(&self, path: &str) -> (u16, Vec<u8>) {
        let mut resp = self.client.get(format!("{}{path}", self.base)).send().await.expect("GET");
        let status = resp.status().as_u16();
        let body = resp.body().limit(8 << 20).await.expect("body");
        (status, body.to_vec())
    }

    /// A long-poll, parsed.
    pub async fn poll(&self, session: u64, maxev: usize) -> Value {
        let (status, body) = self.get(&format!("/{session}?maxev={maxev}")).await;
        assert_eq!(status, 200, "long-poll status");
        serde_json::from_slice(&body).expect("long-poll JSON")
    }

    pub async fn create_session(&self) -> u64 {
        let r = self.post("", json!({"janus": "create"})).await;
        r["data"]["id"].as_u64().unwrap_or_else(|| panic!("create failed: {r}"))
    }

    pub async fn attach(&self, session: u64) -> u64 {
        let r = self.post(&format!("/{session}"), json!({"janus": "attach", "plugin": "janus.plugin.videoroom"})).await;
        r["data"]["id"].as_u64().unwrap_or_else(|| panic!("attach failed: {r}"))
    }

    pub async fn message(&self, session: u64, handle: u64, body: Value) -> Value {
        self.post(&format!("/{session}/{handle}"), json!({"janus": "message", "body": body})).await
    }
}

/// Where the recorded Janus replies live (`tests/golden`, see its README).
pub fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("golden")
}

pub fn golden(name: &str) -> Value {
    let p = golden_dir().join(name);
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Compares a reply with a golden one: same keys everywhere, same values, except that golden
/// placeholders (`"<session_id>"`, or `<id>` inside a string) match any value. Returns the
/// first difference.
pub fn matches_golden(golden: &Value, actual: &Value) -> Result<(), String> {
    fn walk(g: &Value, a: &Value, path: &str) -> Result<(), String> {
        match (g, a) {
            (Value::String(gs), _) if gs.starts_with('<') && gs.ends_with('>') && !gs[1..].contains('<') => Ok(()),
            (Value::String(gs), Value::String(as_)) if gs.contains('<') => {
                let pattern = regex_lite::escape(gs);
                let re = regex_lite::Regex::new(&format!("^{}$", placeholder_re().replace_all(&pattern, ".+")))
                    .map_err(|e| e.to_string())?;
                if re.is_match(as_) {
                    Ok(())
                } else {
                    Err(format!("{path}: {as_:?} does not match {gs:?}"))
                }
            }
            (Value::Object(go), Value::Object(ao)) => {
                let gk: Vec<_> = go.keys().collect();
                let ak: Vec<_> = ao.keys().collect();
                let mut gks = gk.clone();
                let mut aks = ak.clone();
                gks.sort();
                aks.sort();
                if gks != aks {
                    return Err(format!("{path}: keys {aks:?} differ from golden {gks:?}"));
                }
                for (k, gv) in go {
                    walk(gv, &ao[k], &format!("{path}.{k}"))?;
                }
                Ok(())
            }
            (Value::Array(ga), Value::Array(aa)) => {
                if ga.len() != aa.len() {
                    return Err(format!("{path}: {} elements, golden has {}", aa.len(), ga.len()));
                }
                for (i, (gv, av)) in ga.iter().zip(aa).enumerate() {
                    walk(gv, av, &format!("{path}[{i}]"))?;
                }
                Ok(())
            }
            _ if g == a => Ok(()),
            _ => Err(format!("{path}: {a} differs from golden {g}")),
        }
    }
    walk(golden, actual, "$")
}

fn placeholder_re() -> regex_lite::Regex {
    // Escaped placeholders look like `<id>` (no regex metacharacters inside).
    regex_lite::Regex::new(r"<[a-z_\-]+>").expect("static regex")
}

/// Asserts `actual` matches the golden file `name`.
#[track_caller]
pub fn assert_golden(name: &str, actual: &Value) {
    if let Err(d) = matches_golden(&golden(name), actual) {
        panic!("{name}: {d}\nactual: {actual:#}");
    }
}

/// A free loopback port (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
}

/// What [`WsClient::next_within`] saw.
pub enum Next {
    Message(Value),
    /// Nothing within the wait; the socket is open.
    Quiet,
    Closed,
}

/// `GET url` with a 5 s timeout: (status, body as text).
pub async fn get_text(url: &str) -> (u16, String) {
    let mut resp = awc::Client::new()
        .get(url)
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let body = resp.body().limit(8 << 20).await.unwrap_or_else(|e| panic!("GET {url}: body: {e}"));
    (resp.status().as_u16(), String::from_utf8_lossy(&body).into_owned())
}

/// An Admin API request over HTTP to `url` (an `/admin[/S[/H]]` endpoint, Portunus's or
/// Janus's) with `transaction`, and `secret` as its `admin_secret` unless it names one; the JSON
/// answer, within 5 s.
pub async fn admin_post(url: &str, transaction: &str, secret: &str, req: Value) -> Value {
    admin_post_within(url, transaction, secret, req, Duration::from_secs(5)).await
}

/// [`admin_post`], the answer within `within` (a request that waits on the network itself).
pub async fn admin_post_within(url: &str, transaction: &str, secret: &str, mut req: Value, within: Duration) -> Value {
    req["transaction"] = json!(transaction);
    if req.get("admin_secret").is_none() {
        req["admin_secret"] = json!(secret);
    }
    let mut r = awc::Client::new()
        .post(url)
        .timeout(within)
        .send_json(&req)
        .await
        .unwrap_or_else(|e| panic!("POST {url}: {e}"));
    r.json().limit(1 << 20).await.unwrap_or_else(|e| panic!("POST {url}: not a JSON answer: {e}"))
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
