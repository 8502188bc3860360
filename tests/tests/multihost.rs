//! A cluster across real hosts: every process is a host of its own in a private network this
//! test makes (`tests/src/hosts.rs`): a redis-server, two gateways, three media nodes, an nginx
//! in front, and the test's own clients (Janus over WebSocket, webrtc-rs peers) on a client
//! host. Links are cut, filtered and made lossy as a real network would be. Needs root.

use portunus_tests::hosts::{wait_http_ok, Host, Network, Pid};
use portunus_tests::peer::set_peer_addr;
use portunus_tests::procs::binaries;
use portunus_tests::videoroom::{join_as_publisher, publish_offer, subscribe_to_streams};
use portunus_tests::*;
use serde_json::json;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Each topology is nine hosts with their processes: one at a time on two cores.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

const REDIS: usize = 0;
const GATEWAYS: [usize; 2] = [1, 2];
const NODES: [usize; 3] = [3, 4, 5];
const NGINX: usize = 6;
const CLIENT: usize = 7;
const WS_PORT: u16 = 8188;
const HTTP_PORT: u16 = 8088;
const ADMIN_PORT: u16 = 7088;
/// Every media node serves all its PeerConnections on this one UDP port (`media_port`), as a
/// Kubernetes host port or a load balancer would have it.
const MEDIA_PORT: u16 = 10000;

struct Cluster {
    net: Network,
    dir: PathBuf,
    gateways: Vec<Pid>,
    nodes: Vec<Pid>,
    _turn: std::sync::MutexGuard<'static, ()>,
}

impl Cluster {
    /// Starts the whole topology and moves the calling thread onto the client host.
    fn start() -> Self {
        let turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
        let dir = std::env::temp_dir().join(format!("portunus-hosts-{}-{}", std::process::id(), rand::random::<u32>()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut net = Network::new();
        for name in ["redis", "gw-1", "gw-2", "node-1", "node-2", "node-3", "nginx", "client"] {
            net.add(name);
        }
        let redis_addr = net.addr(REDIS);
        let redis_dir = dir.join("redis");
        std::fs::create_dir_all(&redis_dir).unwrap();
        net.host(REDIS).spawn(
            std::path::Path::new("/usr/bin/redis-server"),
            &["--port", "6379", "--bind", "0.0.0.0", "--protected-mode", "no", "--save", "", "--appendonly", "no"]
                .map(String::from)
                .into_iter()
                .chain(["--dir".to_owned(), redis_dir.display().to_string()])
                .collect::<Vec<_>>(),
            &[],
            &dir.join("redis.log"),
        );
        net.host(CLIENT).enter();
        set_peer_addr(&net.addr(CLIENT).to_string());
        wait_tcp(SocketAddr::from((redis_addr, 6379)));
        let mut c = Self { net, dir, gateways: Vec::new(), nodes: Vec::new(), _turn: turn };
        for n in 0..NODES.len() {
            let pid = c.spawn_node(n);
            c.nodes.push(pid);
        }
        for g in 0..GATEWAYS.len() {
            let pid = c.spawn_gateway(g);
            c.gateways.push(pid);
        }
        let (net, dir) = (&mut c.net, &c.dir);
        for &i in NODES.iter().chain(GATEWAYS.iter()) {
            wait_http_ok(SocketAddr::from((net.addr(i), ADMIN_PORT)), "/readyz", Duration::from_secs(20));
        }
        start_nginx(net, dir);
        wait_http_ok(SocketAddr::from((net.addr(NGINX), HTTP_PORT)), "/janus/info", Duration::from_secs(10));
        c
    }

    fn redis_url(&self) -> String {
        format!("redis://{}:6379", self.net.addr(REDIS))
    }

    /// Starts gateway `g` (0 or 1) on its host. Short drains and a reclaim window, as a rolling
    /// update wants.
    fn spawn_gateway(&mut self, g: usize) -> Pid {
        let args = gateway_args(&self.redis_url());
        let env = [
            ("RUST_LOG", "info".to_owned()),
            ("PORTUNUS_DRAIN_TIMEOUT", "2".to_owned()),
            ("PORTUNUS_RECLAIM_TIMEOUT", "30".to_owned()),
        ];
        let log = self.dir.join(format!("gw-{}.log", g + 1));
        let (gateway_bin, _) = binaries();
        self.net.host(GATEWAYS[g]).spawn(gateway_bin, &args, &env, &log)
    }

    /// Starts media node `n` (0, 1 or 2) on its host, gathering on the host's address, every
    /// PeerConnection on [`MEDIA_PORT`].
    fn spawn_node(&mut self, n: usize) -> Pid {
        let id = format!("node-{}", n + 1);
        let url = self.redis_url();
        let args = ["--redis-url", &url, "--node-id", &id, "--admin-port", &ADMIN_PORT.to_string()];
        let env = [
            ("RUST_LOG", "info".to_owned()),
            ("PORTUNUS_DRAIN_TIMEOUT", "2".to_owned()),
            ("PORTUNUS_MEDIA_IPS", self.net.addr(NODES[n]).to_string()),
            ("PORTUNUS_MEDIA_PORT", MEDIA_PORT.to_string()),
        ];
        let log = self.dir.join(format!("{id}.log"));
        let (_, node_bin) = binaries();
        self.net.host(NODES[n]).spawn(node_bin, &args.map(String::from), &env, &log)
    }

    fn ws_url(&self) -> String {
        format!("ws://{}:{WS_PORT}/", self.net.addr(NGINX))
    }

    fn http_url(&self, host: usize) -> String {
        format!("http://{}:{HTTP_PORT}/janus", self.net.addr(host))
    }

    fn admin(&self, host: usize) -> String {
        format!("http://{}:{ADMIN_PORT}", self.net.addr(host))
    }

    /// The media node host whose address `sdp` announces (its candidates), if any.
    fn node_in(&self, sdp: &str) -> Option<usize> {
        let addrs = candidate_addrs(sdp);
        NODES.iter().copied().find(|&i| addrs.contains(&self.net.addr(i)))
    }

    fn host(&mut self, i: usize) -> &mut Host {
        self.net.host(i)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("process logs kept in {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn gateway_args(redis_url: &str) -> Vec<String> {
    let ports = [("--ws-port", WS_PORT), ("--http-port", HTTP_PORT), ("--admin-port", ADMIN_PORT)];
    let mut args = vec!["--redis-url".to_owned(), redis_url.to_owned()];
    for (flag, port) in ports {
        args.extend([flag.to_owned(), port.to_string()]);
    }
    args
}

/// nginx from `deploy/nginx/portunus.conf.template`, listening on its host's address.
fn start_nginx(net: &mut Network, dir: &std::path::Path) {
    let run = dir.join("nginx");
    std::fs::create_dir_all(&run).unwrap();
    let ups = |port: u16| -> String { GATEWAYS.iter().map(|&g| format!("server {}:{port}; ", net.addr(g))).collect() };
    let template = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/nginx/portunus.conf.template");
    let conf = std::fs::read_to_string(template)
        .unwrap()
        .replace("@RUN_DIR@", run.to_str().unwrap())
        .replace("@LISTEN@", &net.addr(NGINX).to_string())
        .replace("@HTTP_PORT@", &HTTP_PORT.to_string())
        .replace("@WS_PORT@", &WS_PORT.to_string())
        .replace("@HTTP_UPSTREAMS@", &ups(HTTP_PORT))
        .replace("@WS_UPSTREAMS@", &ups(WS_PORT));
    let conf_path = run.join("nginx.conf");
    std::fs::write(&conf_path, conf).unwrap();
    let nginx = ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .into_iter()
        .find(|p| std::path::Path::new(p).is_file())
        .expect("nginx not found: apt-get install nginx (tests/run.sh does)");
    let args =
        ["-c", conf_path.to_str().unwrap(), "-p", run.to_str().unwrap(), "-g", "daemon off; master_process off;"];
    net.host(NGINX).spawn(std::path::Path::new(nginx), &args.map(String::from), &[], &dir.join("nginx.log"));
}

fn wait_tcp(addr: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {addr}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The addresses of the candidates an SDP announces.
fn candidate_addrs(sdp: &str) -> Vec<Ipv4Addr> {
    sdp.lines()
        .filter_map(|l| l.strip_prefix("a=candidate:"))
        .filter_map(|c| c.split_whitespace().nth(4)?.parse().ok())
        .collect()
}

/// The UDP ports of the candidates an SDP announces.
fn candidate_ports(sdp: &str) -> Vec<u16> {
    sdp.lines()
        .filter_map(|l| l.strip_prefix("a=candidate:"))
        .filter_map(|c| c.split_whitespace().nth(5)?.parse().ok())
        .collect()
}

/// Sends audio and video every 10 ms for `ms` and counts what `sub` receives.
async fn flows(
    publisher: &mut portunus_tests::peer::TestPublisher,
    sub: &mut portunus_tests::peer::TestSubscriber,
    ms: u64,
) -> usize {
    let mut got = Vec::new();
    for _ in 0..ms / 10 {
        publisher.send().await;
        tokio::time::sleep(Duration::from_millis(10)).await;
        while let Ok(p) = sub.packets.try_recv() {
            got.push(p);
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    while let Ok(p) = sub.packets.try_recv() {
        got.push(p);
    }
    got.len()
}

#[actix_web::test]
async fn media_goes_from_clients_straight_to_the_media_node_that_owns_the_room() {
    let c = Cluster::start();
    let mut ws = WsClient::connect(&c.ws_url()).await;
    let sid = ws.create_session().await;
    let (hp, feed) = join_as_publisher(&mut ws, sid, "publisher").await;
    let (mut publisher, answer) = publish_offer(&mut ws, sid, hp).await;
    // The answer announces the owning node's own address, never the balancer's or a gateway's.
    let addrs = candidate_addrs(&answer);
    let owner = c.node_in(&answer).unwrap_or_else(|| panic!("no media node address among {addrs:?}"));
    let ports = candidate_ports(&answer);
    assert!(ports.iter().all(|p| *p == MEDIA_PORT), "every candidate on the node's one port: {ports:?}");
    for other in [NGINX, GATEWAYS[0], GATEWAYS[1], REDIS] {
        assert!(!addrs.contains(&c.net.addr(other)), "{addrs:?} announces a non-media host");
    }
    publisher.accept(&answer).await;
    assert!(publisher.connected(Duration::from_secs(10)).await, "publisher connected across hosts");
    let ((mut sub, _), attached) = subscribe_to_streams(&mut ws, sid, json!([{"feed": feed}])).await;
    let offer = attached["jsep"]["sdp"].as_str().unwrap();
    assert_eq!(c.node_in(offer), Some(owner), "the subscriber meets the same node");
    assert!(candidate_ports(offer).iter().all(|p| *p == MEDIA_PORT), "the subscriber too: {offer}");
    let got = flows(&mut publisher, &mut sub, 1_500).await;
    assert!(got >= 150, "{got} packets crossed the hosts");
    // The owner forwarded them, and only the owner holds the room.
    for &n in &NODES {
        let (_, text) = get_text(&format!("{}/metrics", c.admin(n))).await;
        let forwarded = metric(&text, "portunus_forwarded_packets_total").unwrap_or(0.0);
        let rooms = metric(&text, "portunus_node_rooms").unwrap_or(0.0);
        if n == owner {
            assert!(forwarded >= 128.0 && rooms == 1.0, "owner forwarded {forwarded}, rooms {rooms}");
        } else {
            assert!(forwarded == 0.0 && rooms == 0.0, "node host {n} forwarded {forwarded}, rooms {rooms}");
        }
    }
    sub.close().await;
    publisher.close().await;
}

#[actix_web::test]
async fn a_media_node_whose_link_is_cut_is_replaced_and_stands_down_when_the_link_returns() {
    let c = Cluster::start();
    let mut ws = WsClient::connect(&c.ws_url()).await;
    let sid = ws.create_session().await;
    let (hp, _) = join_as_publisher(&mut ws, sid, "publisher").await;
    let (mut publisher, answer) = publish_offer(&mut ws, sid, hp).await;
    let cut = c.node_in(&answer).expect("a media node's address");
    publisher.accept(&answer).await;
    assert!(publisher.connected(Duration::from_secs(10)).await);
    c.net.set_link(cut, false);
    let t = Instant::now();
    loop {
        let m = ws.try_recv(Duration::from_secs(6).saturating_sub(t.elapsed())).await;
        let m = m.unwrap_or_else(|| panic!("no hangup within 6 s of the cut ({:?})", t.elapsed()));
        if m["janus"] == "hangup" && m["sender"] == hp {
            assert_eq!(m["reason"], "Media node lost", "{m}");
            break;
        }
    }
    let hangup_after = t.elapsed();
    eprintln!("media node link cut -> hangup: {} ms", hangup_after.as_millis());
    publisher.close().await;
    // The same handle joins again and publishes on a live node; media flows there.
    // Core events of the lost PeerConnection (`media` receiving false, ...) may come first.
    ws.call(json!({"janus": "message", "session_id": sid, "handle_id": hp,
        "body": {"request": "join", "room": 1234, "ptype": "publisher", "display": "again"}}))
        .await;
    let joined = ws.expect_skipping_core("joined", |m| m["sender"] == hp).await;
    let feed = joined["plugindata"]["data"]["id"].as_u64().unwrap_or_else(|| panic!("{joined}"));
    let (mut publisher, answer) = publish_offer(&mut ws, sid, hp).await;
    let now = c.node_in(&answer).expect("a media node's address");
    assert_ne!(now, cut, "the room moved off the cut node");
    publisher.accept(&answer).await;
    assert!(publisher.connected(Duration::from_secs(10)).await);
    let ((mut sub, _), _) = subscribe_to_streams(&mut ws, sid, json!([{"feed": feed}])).await;
    assert!(flows(&mut publisher, &mut sub, 1_000).await >= 100, "media flows on the new node");
    // The link returns: the cut node learns it lost the room and serves nothing of it.
    c.net.set_link(cut, true);
    wait_http_ok(SocketAddr::from((c.net.addr(cut), ADMIN_PORT)), "/healthz", Duration::from_secs(10));
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (_, text) = get_text(&format!("{}/metrics", c.admin(cut))).await;
        if metric(&text, "portunus_node_rooms") == Some(0.0) {
            break;
        }
        assert!(Instant::now() < deadline, "the cut node still serves its old room:\n{text}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Nothing of the room reached the client from the old node, and the room is whole.
    let (parts, _) = ws
        .call(json!({"janus": "message", "session_id": sid, "handle_id": hp,
            "body": {"request": "listparticipants", "room": 1234}}))
        .await;
    let parts = parts["plugindata"]["data"]["participants"].as_array().cloned().unwrap_or_default();
    assert_eq!(parts.len(), 1, "{parts:?}");
    assert_eq!(parts[0]["display"], "again");
    assert!(flows(&mut publisher, &mut sub, 500).await >= 50, "media still flows on the new node");
    sub.close().await;
    publisher.close().await;
}

#[actix_web::test]
async fn a_gateway_cut_off_from_redis_answers_errors_within_two_seconds_and_recovers_by_itself() {
    let mut c = Cluster::start();
    let gw = GATEWAYS[0];
    let mut ws = WsClient::connect(&format!("ws://{}:{WS_PORT}/", c.net.addr(gw))).await;
    let sid = ws.create_session().await;
    let h = ws.attach(sid).await;
    let redis = c.net.addr(REDIS);
    c.host(gw).nft(&format!(
        "table inet cut {{\n chain out {{ type filter hook output priority 0; ip daddr {redis} drop; }}\n \
         chain inp {{ type filter hook input priority 0; ip saddr {redis} drop; }}\n}}\n"
    ));
    let http = HttpClient::new(&c.http_url(gw));
    let requests = [
        json!({"janus": "keepalive", "session_id": sid}),
        json!({"janus": "create"}),
        json!({"janus": "attach", "session_id": sid, "plugin": "janus.plugin.videoroom"}),
        json!({"janus": "message", "session_id": sid, "handle_id": h, "body": {"request": "list"}}),
        json!({"janus": "message", "session_id": sid, "handle_id": h,
            "body": {"request": "join", "room": 1234, "ptype": "publisher"}}),
        json!({"janus": "detach", "session_id": sid, "handle_id": h}),
    ];
    let mut slowest = Duration::ZERO;
    for _round in 0..2 {
        for r in &requests {
            let t = Instant::now();
            let reply = ws.request(r.clone()).await;
            let took = t.elapsed();
            slowest = slowest.max(took);
            assert_eq!(reply["janus"], "error", "{r} -> {reply}");
            assert!(took < Duration::from_secs(2), "{r} took {took:?}");
            let t = Instant::now();
            let path = r["session_id"].as_u64().map_or(String::new(), |s| format!("/{s}"));
            let path = r["handle_id"].as_u64().map_or(path.clone(), |h| format!("{path}/{h}"));
            let reply = http.post(&path, r.clone()).await;
            slowest = slowest.max(t.elapsed());
            assert_eq!(reply["janus"], "error", "HTTP {r} -> {reply}");
            assert!(t.elapsed() < Duration::from_secs(2), "HTTP {r} took {:?}", t.elapsed());
        }
    }
    eprintln!("gateway cut off from Redis: slowest error reply {} ms", slowest.as_millis());
    let (status, _) = get_text(&format!("{}/readyz", c.admin(gw))).await;
    assert_eq!(status, 503, "a gateway without its store is not ready");
    // The link returns: the same process serves again, the old session included.
    c.host(gw).run("nft", &["delete", "table", "inet", "cut"]);
    let t = Instant::now();
    loop {
        let r = ws.request(json!({"janus": "keepalive", "session_id": sid})).await;
        if r["janus"] == "ack" {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(30), "no recovery: {r}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!("gateway back in service {} ms after its link to Redis returned", t.elapsed().as_millis());
    let joined = ws.message_event(sid, h, json!({"request": "join", "room": 1234, "ptype": "publisher"})).await;
    assert_eq!(joined["plugindata"]["data"]["videoroom"], "joined", "{joined}");
}

#[actix_web::test]
async fn with_five_percent_loss_between_a_subscriber_and_its_node_repair_keeps_what_it_gets_whole() {
    let mut c = Cluster::start();
    let mut ws = WsClient::connect(&c.ws_url()).await;
    let sid = ws.create_session().await;
    let (hp, feed) = join_as_publisher(&mut ws, sid, "publisher").await;
    let (mut publisher, answer) = publish_offer(&mut ws, sid, hp).await;
    publisher.accept(&answer).await;
    assert!(publisher.connected(Duration::from_secs(10)).await);
    let ((mut sub, _), _) = subscribe_to_streams(&mut ws, sid, json!([{"feed": feed}])).await;
    // Media flows before the link turns lossy (on a loaded machine DTLS can take a while): what is
    // measured is repair, not the handshake.
    let flowing = std::time::Instant::now();
    'up: loop {
        assert!(flowing.elapsed() < Duration::from_secs(30), "video reaches the subscriber before the loss starts");
        publisher.send().await;
        tokio::time::sleep(Duration::from_millis(10)).await;
        while let Ok((kind, _)) = sub.packets.try_recv() {
            if kind == "video" {
                break 'up;
            }
        }
    }
    while sub.packets.try_recv().is_ok() {}
    // The subscriber's own UDP port, from its answer, carried by `subscribe_to_streams`: every
    // packet to and from it crosses a 5 % random drop in each direction on the client host.
    let port = sub_port(&sub);
    c.host(CLIENT).nft(&format!(
        "table inet lossy {{\n \
           chain out {{ type filter hook output priority 0; udp sport {port} numgen random mod 100 < 5 drop; }}\n \
           chain inp {{ type filter hook input priority 0; udp dport {port} numgen random mod 100 < 5 drop; }}\n}}\n"
    ));
    // Video only: the test's Opus stand-in gets no NACK repair (as Opus does not).
    let mut seqs = std::collections::BTreeSet::new();
    let mut first: Option<u16> = None;
    let sent = 500;
    for _ in 0..sent {
        publisher.send().await;
        tokio::time::sleep(Duration::from_millis(10)).await;
        while let Ok((kind, p)) = sub.packets.try_recv() {
            if kind == "video" {
                first.get_or_insert(p.header.sequence_number);
                seqs.insert(p.header.sequence_number);
            }
        }
    }
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    while let Ok((kind, p)) = sub.packets.try_recv() {
        if kind == "video" {
            seqs.insert(p.header.sequence_number);
        }
    }
    let (lo, hi) = (*seqs.first().expect("video arrived"), *seqs.last().unwrap());
    let expected = usize::from(hi.wrapping_sub(lo)) + 1;
    let loss = 1.0 - seqs.len() as f64 / expected as f64;
    eprintln!(
        "5 % link loss each way: subscriber got {}/{expected} video packets (loss {:.2} %)",
        seqs.len(),
        loss * 100.0
    );
    assert!(expected >= 200, "only {expected} video packets reached the subscriber's stream");
    assert!(loss < 0.005, "loss after repair {:.2} %", loss * 100.0);
    // The publisher never stalled: its node saw no loss from it, and asked it for nothing.
    let owner = c.node_in(&answer).unwrap();
    let (_, text) = get_text(&format!("{}/metrics", c.admin(owner))).await;
    assert_eq!(metric(&text, "portunus_incoming_lost_packets_total"), Some(0.0), "{text}");
    assert!(metric(&text, "portunus_nacks_received_total").is_some_and(|n| n > 0.0), "repair was asked for:\n{text}");
    sub.close().await;
    publisher.close().await;
}

/// The local UDP port of a test subscriber's selected candidate pair.
fn sub_port(sub: &portunus_tests::peer::TestSubscriber) -> u16 {
    let mut ports = candidate_ports(&sub.answer);
    ports.dedup();
    assert_eq!(ports.len(), 1, "one UDP port expected in {}", sub.answer);
    ports[0]
}

/// What one client's session received, for the exactly-once check.
#[derive(Default)]
struct Tally {
    /// Transactions of the asynchronous requests the server acknowledged.
    acked: std::collections::HashSet<String>,
    /// Events per transaction, as sent (a failure shows them).
    events: std::collections::HashMap<String, Vec<String>>,
    /// The last message, as sent: the same one again straight after it is a redelivery. (Equal
    /// messages can be legitimate further apart: a handle hung up by two node restarts gets two
    /// identical `hangup`s, with its `joined` between them.)
    last: String,
    duplicates: Vec<String>,
    /// Whether the handle is in the room (a `hangup` or a plugin error says it is not).
    joined: bool,
}

impl Tally {
    fn message(&mut self, m: &serde_json::Value) {
        let text = m.to_string();
        if text == self.last {
            self.duplicates.push(text.clone());
        }
        self.last = text.clone();
        if m["janus"] == "event" {
            if let Some(t) = m["transaction"].as_str() {
                self.events.entry(t.to_owned()).or_default().push(text.clone());
            }
            let data = &m["plugindata"]["data"];
            if data["videoroom"] == "joined" {
                self.joined = true;
            } else if data.get("error_code").is_some() {
                self.joined = false;
            }
        }
        if m["janus"] == "hangup" {
            self.joined = false;
        }
    }

    /// Every acknowledged request's event arrived, once; nothing arrived twice.
    fn check(&self, who: &str) {
        let missing: Vec<&String> = self.acked.iter().filter(|t| !self.events.contains_key(*t)).collect();
        let twice: Vec<(&String, &Vec<String>)> = self.events.iter().filter(|(_, e)| e.len() > 1).collect();
        eprintln!(
            "{who}: {} requests acknowledged, {} events by transaction, {} lost, {} duplicated",
            self.acked.len(),
            self.events.len(),
            missing.len(),
            twice.len() + self.duplicates.len()
        );
        assert!(missing.is_empty(), "{who}: events lost for {missing:?}");
        assert!(twice.is_empty() && self.duplicates.is_empty(), "{who}: duplicated {twice:?} {:?}", self.duplicates);
        assert!(self.acked.len() >= 20, "{who}: only {} requests went through", self.acked.len());
    }
}

/// The next asynchronous request for a participant: join when out of the room, else a
/// `configure` (each answered by its own event).
fn next_request(sid: u64, h: u64, joined: bool, n: usize) -> serde_json::Value {
    let body = if joined {
        json!({"request": "configure", "display": format!("n{n}")})
    } else {
        json!({"request": "join", "room": 1234, "ptype": "publisher", "display": format!("n{n}")})
    };
    json!({"janus": "message", "session_id": sid, "handle_id": h, "body": body, "transaction": format!("t{n}")})
}

/// A WebSocket client through the balancer that keeps its session across gateway restarts by
/// reconnecting and claiming it; runs until `stop`, then collects what is still due.
async fn websocket_participant(url: String, stop: std::rc::Rc<std::cell::Cell<bool>>) -> (Tally, usize) {
    let mut ws = WsClient::connect(&url).await;
    let sid = ws.create_session().await;
    let h = ws.attach(sid).await;
    let (mut tally, mut claims, mut n) = (Tally::default(), 0, 0);
    let mut settle: Option<Instant> = None;
    loop {
        if stop.get() && settle.is_none() {
            settle = Some(Instant::now());
        }
        if settle.is_some_and(|s| s.elapsed() > Duration::from_secs(5)) {
            break;
        }
        let mut pending = None;
        if settle.is_none() {
            n += 1;
            let req = next_request(sid, h, tally.joined, n);
            // A socket already gone shows as no reply below, and is replaced there.
            let _ = ws.try_send(&req).await;
            pending = Some(format!("t{n}"));
        }
        // Read until the reply to this request (or a quiet 300 ms when settling). A slow reply
        // is waited for (a request for a room whose node is going away takes the RPC deadline);
        // only a closed socket is replaced.
        let started = Instant::now();
        loop {
            let wait = if pending.is_some() { Duration::from_secs(1) } else { Duration::from_millis(300) };
            match ws.next_within(wait).await {
                Next::Message(m) => {
                    let reply_to = m["transaction"].as_str().map(str::to_owned);
                    if m["janus"] == "ack" {
                        tally.acked.insert(reply_to.clone().unwrap_or_default());
                    } else {
                        tally.message(&m);
                    }
                    if m["janus"] != "event" && reply_to.is_some() && reply_to == pending {
                        break;
                    }
                }
                Next::Quiet if pending.is_none() => break,
                Next::Quiet => {
                    assert!(started.elapsed() < Duration::from_secs(15), "no reply to {pending:?} in 15 s");
                }
                Next::Closed => {
                    // The gateway went away: a new socket through the balancer claims the
                    // session; what was queued meanwhile follows the claim.
                    let deadline = Instant::now() + Duration::from_secs(15);
                    loop {
                        assert!(Instant::now() < deadline, "the session could not be claimed again");
                        ws = match tokio::time::timeout(Duration::from_secs(2), WsClient::try_connect(&url)).await {
                            Ok(Some(ws)) => ws,
                            _ => {
                                tokio::time::sleep(Duration::from_millis(200)).await;
                                continue;
                            }
                        };
                        let (r, early) = ws.call(json!({"janus": "claim", "session_id": sid})).await;
                        for m in &early {
                            tally.message(m);
                        }
                        if r["janus"] == "success" {
                            claims += 1;
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                    break;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (tally, claims)
}

/// An HTTP client through the balancer: requests by POST, events by long-poll, across every
/// restart; runs until `stop`, then collects what is still due.
async fn http_participant(base: String, stop: std::rc::Rc<std::cell::Cell<bool>>) -> Tally {
    let http = HttpClient::new(&base);
    let sid = http.create_session().await;
    let h = http.attach(sid).await;
    let tally = std::rc::Rc::new(std::cell::RefCell::new(Tally::default()));
    let client = awc::Client::builder().timeout(Duration::from_secs(40)).finish();
    let settled = std::rc::Rc::new(std::cell::Cell::new(false));
    let poller = {
        let (tally, settled) = (tally.clone(), settled.clone());
        let url = format!("{base}/{sid}?maxev=10");
        async move {
            while !settled.get() {
                let r = client.get(&url).send().await;
                let Ok(mut r) = r else {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                };
                let body = r.body().await.unwrap_or_default();
                match serde_json::from_slice::<serde_json::Value>(&body) {
                    Ok(serde_json::Value::Array(events)) => events.iter().for_each(|e| tally.borrow_mut().message(e)),
                    Ok(e) if e["janus"] != "keepalive" && e.get("error").is_none() => tally.borrow_mut().message(&e),
                    _ => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        }
    };
    let requester = {
        let tally = tally.clone();
        let post = awc::Client::builder().timeout(Duration::from_secs(10)).finish();
        async move {
            let mut n = 0;
            while !stop.get() {
                n += 1;
                let req = next_request(sid, h, tally.borrow().joined, n);
                if let Ok(mut r) = post.post(format!("{base}/{sid}/{h}")).send_json(&req).await {
                    let reply: serde_json::Value = r.json().await.unwrap_or_default();
                    if reply["janus"] == "ack" {
                        tally.borrow_mut().acked.insert(format!("t{n}"));
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            tokio::time::sleep(Duration::from_secs(5)).await;
            settled.set(true);
        }
    };
    tokio::join!(poller, requester);
    std::rc::Rc::try_unwrap(tally).ok().expect("the tally is the test's").into_inner()
}

/// Polls `url` until it answers 200, without blocking the clients' runtime.
async fn ready(url: String, wait: Duration) {
    let deadline = Instant::now() + wait;
    let client = awc::Client::builder().timeout(Duration::from_secs(1)).finish();
    loop {
        if client.get(&url).send().await.is_ok_and(|r| r.status() == 200) {
            return;
        }
        assert!(Instant::now() < deadline, "{url} never became ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// SIGTERM to a process of `host`, then waits (without blocking the runtime) for it to drain
/// and exit.
async fn drained(c: &mut Cluster, host: usize, pid: Pid) {
    c.host(host).signal(pid, libc::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(15);
    while !c.host(host).wait_exit(pid, Duration::ZERO) {
        assert!(Instant::now() < deadline, "host {host} did not exit after its drain");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[actix_web::test]
async fn a_rolling_restart_of_every_gateway_then_every_media_node_loses_and_repeats_no_event() {
    let mut c = Cluster::start();
    let stop = std::rc::Rc::new(std::cell::Cell::new(false));
    let ws = websocket_participant(c.ws_url(), stop.clone());
    let http = http_participant(c.http_url(NGINX), stop.clone());
    let restarts = async {
        tokio::time::sleep(Duration::from_secs(2)).await;
        for g in 0..GATEWAYS.len() {
            let pid = c.gateways[g];
            drained(&mut c, GATEWAYS[g], pid).await;
            c.gateways[g] = c.spawn_gateway(g);
            ready(format!("{}/readyz", c.admin(GATEWAYS[g])), Duration::from_secs(20)).await;
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        for n in 0..NODES.len() {
            let pid = c.nodes[n];
            drained(&mut c, NODES[n], pid).await;
            c.nodes[n] = c.spawn_node(n);
            ready(format!("{}/readyz", c.admin(NODES[n])), Duration::from_secs(20)).await;
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        stop.set(true);
    };
    let ((ws, claims), http, ()) = tokio::join!(ws, http, restarts);
    eprintln!("rolling restart: the WebSocket client claimed its session {claims} times");
    ws.check("WebSocket client");
    http.check("HTTP client");
    assert!(claims >= 1, "the WebSocket client never had to claim its session: its gateway never restarted?");
}
