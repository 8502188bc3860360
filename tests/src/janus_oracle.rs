//! A real Janus Gateway 1.1.2 (Debian's `janus`) beside Portunus, for tests that send both the
//! same client and compare what each answers: the VideoRoom plugin and the WebSocket transport,
//! a private configuration folder.
//!
//! Janus gathers no ICE candidates on a loopback interface, so it runs on a test host of its
//! own ([`crate::hosts`]: a private network namespace on a bridge nothing else reaches), and the
//! calling thread moves onto a second host, the client's, whose address the test's WebRTC peers
//! gather on; Portunus servers the test starts afterwards live on the client host too. Janus
//! stops (by PID) when the oracle is dropped, also when a test fails.

use crate::hosts::{Network, Pid};
use crate::WsClient;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The oracle's Admin API secret.
pub const JANUS_ADMIN_SECRET: &str = "oracle";

/// Janus's Admin API port (HTTP transport, Janus API off).
const ADMIN_PORT: u16 = 7088;

/// How long Janus may take to load its plugins and listen.
const START_TIMEOUT: Duration = Duration::from_secs(20);

pub struct JanusOracle {
    /// Janus's host (0) and the client's (1).
    net: Option<Network>,
    /// Janus's process, on host 0.
    pid: Pid,
    /// Its WebSocket endpoint (`janus-protocol`).
    pub ws_url: String,
    /// Its Admin API (HTTP, `POST {admin_url}/S/H`; the secret is [`JANUS_ADMIN_SECRET`]).
    pub admin_url: String,
    /// Janus's address, and the client host's (where the test's peers and servers live).
    pub addr: std::net::Ipv4Addr,
    pub client_addr: std::net::Ipv4Addr,
    /// Its configuration (and log, `janus.log`).
    pub dir: PathBuf,
}

/// Where Debian installs Janus's plugins and transports.
fn janus_lib() -> PathBuf {
    let debian = PathBuf::from("/usr/lib/x86_64-linux-gnu/janus");
    if debian.join("plugins").is_dir() {
        return debian;
    }
    // Another architecture's multiarch folder.
    std::fs::read_dir("/usr/lib")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("janus"))
        .find(|p| p.join("plugins/libjanus_videoroom.so").is_file())
        .unwrap_or(debian)
}

impl JanusOracle {
    /// Starts Janus with the VideoRoom's `general` settings `videoroom_general` (e.g.
    /// `admin_key = "x"`, or empty), moves the calling thread onto the client host and waits
    /// until Janus's WebSocket answers there. Once per test process (the peers' address is set
    /// once).
    pub fn start(videoroom_general: &str) -> Self {
        assert!(Path::new("/usr/bin/janus").is_file(), "Janus is not installed (tests/deps.sh installs `janus`)");
        let mut net = Network::new();
        let (janus, client) = (net.add("janus"), net.add("client"));
        let ws_port = 8188;
        // One folder per Janus: a test's Janus ending removes its own, not one starting beside it.
        static STARTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("portunus-janus-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("janus config folder");
        let conf = dir.as_path();
        let lib = janus_lib();
        let (rtp_min, rtp_max) = (20_000, 20_200);
        std::fs::write(
            conf.join("janus.jcfg"),
            format!(
                r#"general: {{
    configs_folder = "{conf}"
    plugins_folder = "{lib}/plugins"
    transports_folder = "{lib}/transports"
    events_folder = "{lib}/events"
    loggers_folder = "{lib}/loggers"
    debug_level = 2
    admin_secret = "{JANUS_ADMIN_SECRET}"
    protected_folders = {protected:?}
}}
media: {{ rtp_port_range = "{rtp_min}-{rtp_max}" }}
nat: {{ ice_enforce_list = "eth0" ignore_mdns = true }}
plugins: {{ disable = "libjanus_audiobridge.so,libjanus_duktape.so,libjanus_echotest.so,libjanus_lua.so,libjanus_nosip.so,libjanus_recordplay.so,libjanus_sip.so,libjanus_streaming.so,libjanus_textroom.so,libjanus_videocall.so,libjanus_voicemail.so" }}
transports: {{ disable = "libjanus_mqtt.so,libjanus_nanomsg.so,libjanus_pfunix.so,libjanus_rabbitmq.so" }}
loggers: {{ disable = "libjanus_jsonlog.so" }}
events: {{ broadcast = false }}
"#,
                conf = conf.display(),
                lib = lib.display(),
                // Janus's defaults, which Portunus's configuration has too.
                protected = shared::config::Config::default().protected_folders,
            ),
        )
        .expect("janus.jcfg");
        std::fs::write(
            conf.join("janus.transport.websockets.jcfg"),
            format!("general: {{\n    json = \"compact\"\n    ws = true\n    ws_port = {ws_port}\n}}\n"),
        )
        .expect("websockets config");
        std::fs::write(
            conf.join("janus.transport.http.jcfg"),
            format!("general: {{\n    http = false\n}}\nadmin: {{\n    admin_http = true\n    admin_port = {ADMIN_PORT}\n}}\n"),
        )
        .expect("http config");
        std::fs::write(conf.join("janus.plugin.videoroom.jcfg"), format!("general: {{\n{videoroom_general}\n}}\n"))
            .expect("videoroom config");
        let jcfg = conf.join("janus.jcfg");
        let args = ["-C".to_owned(), jcfg.display().to_string(), "-F".to_owned(), conf.display().to_string()];
        let pid = net.host(janus).spawn(Path::new("/usr/bin/janus"), &args, &[], &conf.join("janus.log"));
        net.host(client).enter();
        crate::peer::set_peer_addr(&net.addr(client).to_string());
        let addr = std::net::SocketAddr::from((net.addr(janus), ws_port));
        let deadline = Instant::now() + START_TIMEOUT;
        while std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            assert!(Instant::now() < deadline, "Janus did not listen on {addr} within {START_TIMEOUT:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
        let (janus_addr, client_addr) = (net.addr(janus), net.addr(client));
        let admin_url = format!("http://{janus_addr}:{ADMIN_PORT}/admin");
        Self { net: Some(net), pid, ws_url: format!("ws://{addr}/"), admin_url, addr: janus_addr, client_addr, dir }
    }
}

impl JanusOracle {
    /// The test configuration for a Portunus beside this Janus, gathering (and receiving
    /// remote publishers) on the client host's address, which Janus can reach.
    pub fn portunus_config(&self) -> shared::config::Config {
        let mut cfg = crate::test_config();
        cfg.media_ips = vec![self.client_addr.to_string()];
        cfg
    }
}

impl Drop for JanusOracle {
    fn drop(&mut self) {
        // A crashed Janus closes its sockets, which a test sees as a server that went quiet.
        let ended = self.net.as_mut().and_then(|net| net.host(0).exit_status(self.pid));
        // Janus first: its folder holds the log it writes.
        drop(self.net.take());
        if std::thread::panicking() {
            if let Some(status) = ended {
                eprintln!("--- Janus had exited before the test ended: {status} ---");
            }
            let log = std::fs::read_to_string(self.dir.join("janus.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(60).collect();
            eprintln!("--- the end of Janus's log ---");
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A Janus session on its own WebSocket. Janus may send a request's event before the request's
/// `ack`, so messages that arrive while a reply is awaited are kept for the next wait.
pub struct Conn {
    pub ws: WsClient,
    pub sid: u64,
    early: std::collections::VecDeque<Value>,
}

impl Conn {
    pub async fn open(url: &str) -> Self {
        let mut ws = WsClient::connect(url).await;
        let sid = ws.create_session().await;
        Self { ws, sid, early: Default::default() }
    }

    pub async fn attach(&mut self) -> u64 {
        self.ws.attach(self.sid).await
    }

    /// A plugin request (with `jsep`, if any); its reply (`ack` or the synchronous answer).
    pub async fn request(&mut self, h: u64, body: Value, jsep: Option<Value>) -> Value {
        let mut req = json!({"janus": "message", "session_id": self.sid, "handle_id": h, "body": body});
        if let Some(j) = jsep {
            req["jsep"] = j;
        }
        let (reply, others) = self.ws.call(req).await;
        self.early.extend(others);
        reply
    }

    /// `add_remote_publisher` (`body`, whose `room` it is) on handle `h`; returns its reply once
    /// the new publisher is in the room, where a subscriber may join it.
    ///
    /// Janus 1.1.2 adds a remote publisher to its room from the publisher's own thread, after
    /// answering, and without the room's lock: a subscriber joining at once may get "No such
    /// feed", and a `listparticipants` racing that insertion can crash Janus (SIGSEGV). So a
    /// watcher joins the room first and waits for the `publishers` event naming the new one,
    /// which Janus sends after the insertion (Portunus lists it before answering), then leaves.
    pub async fn add_remote_publisher(&mut self, h: u64, body: Value) -> Value {
        let room = body["room"].as_u64().expect("a numeric room");
        let (watcher, _) = self.join(room, "watcher").await;
        let added = self.request(h, body, None).await;
        let Some(id) = added["plugindata"]["data"]["id"].as_u64() else {
            self.leave(watcher).await;
            return added;
        };
        self.wait_for(&format!("publishers naming {id}"), |m| {
            m["sender"] == watcher
                && m["plugindata"]["data"]["publishers"].as_array().is_some_and(|ps| ps.iter().any(|p| p["id"] == id))
        })
        .await;
        self.leave(watcher).await;
        added
    }

    /// `leave` on `h`, a participant's handle, waiting for its `left`.
    async fn leave(&mut self, h: u64) {
        self.request(h, json!({"request": "leave"}), None).await;
        self.wait_for("left", |m| m["sender"] == h && m["plugindata"]["data"]["leaving"] == "ok").await;
    }

    /// Waits up to 10 s for a message matching `pred`, skipping others (core events, acks).
    pub async fn wait_for(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        if let Some(i) = self.early.iter().position(&pred) {
            return self.early.remove(i).expect("present");
        }
        let mut skipped: Vec<Value> = self.early.drain(..).collect();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            match self.ws.try_recv(Duration::from_millis(500)).await {
                Some(m) if pred(&m) => return m,
                Some(m) => skipped.push(m),
                None => {}
            }
        }
        panic!("no {what} within 10 s; skipped meanwhile: {skipped:?}");
    }

    /// Every message until none came for `quiet` (those kept from earlier waits first), in
    /// order.
    pub async fn drain(&mut self, quiet: Duration) -> Vec<Value> {
        let mut out: Vec<Value> = self.early.drain(..).collect();
        while let Some(m) = self.ws.try_recv(quiet).await {
            out.push(m);
        }
        out
    }

    /// Joins `room` as a publisher called `display` on a new handle; returns the handle and
    /// the `joined` event.
    pub async fn join(&mut self, room: u64, display: &str) -> (u64, Value) {
        let h = self.attach().await;
        let body = json!({"request": "join", "room": room, "ptype": "publisher", "display": display});
        let ack = self.request(h, body, None).await;
        assert_eq!(ack["janus"], "ack", "{ack}");
        let joined = self
            .wait_for(&format!("joined ({display})"), |m| {
                m["sender"] == h && m["plugindata"]["data"]["videoroom"] == "joined"
            })
            .await;
        (h, joined)
    }
}

/// `value` with the numbers in `random` (ids, ports), and their text inside strings, replaced by
/// placeholders (`<name>`), so two servers' replies compare.
pub fn placeholders(value: Value, random: &[(u64, &str)]) -> Value {
    let texts: Vec<(String, &str)> = random.iter().map(|(x, name)| (x.to_string(), *name)).collect();
    replace(value, random, &texts)
}

/// [`placeholders`] for string ids (`string_ids`): each of `random`'s strings, wherever it
/// appears inside a string, becomes `<name>`.
pub fn placeholders_text(value: Value, random: &[(&str, &str)]) -> Value {
    let texts: Vec<(String, &str)> = random.iter().map(|(x, name)| ((*x).to_owned(), *name)).collect();
    replace(value, &[], &texts)
}

/// `value` with the numbers in `numbers` and the (non-empty) texts in `texts`, inside any
/// string, replaced by `<name>`.
fn replace(mut value: Value, numbers: &[(u64, &str)], texts: &[(String, &str)]) -> Value {
    fn walk(v: &mut Value, numbers: &[(u64, &str)], texts: &[(String, &str)]) {
        match v {
            Value::Number(n) => {
                if let Some((_, name)) = numbers.iter().find(|(x, _)| Some(*x) == n.as_u64()) {
                    *v = json!(format!("<{name}>"));
                }
            }
            Value::String(s) => {
                for (x, name) in texts.iter().filter(|(x, _)| !x.is_empty()) {
                    *s = s.replace(x.as_str(), &format!("<{name}>"));
                }
            }
            Value::Array(a) => a.iter_mut().for_each(|x| walk(x, numbers, texts)),
            Value::Object(o) => o.values_mut().for_each(|x| walk(x, numbers, texts)),
            _ => {}
        }
    }
    walk(&mut value, numbers, texts);
    value
}

/// A plugin reply's or event's body (`plugindata.data`).
pub fn data(m: &Value) -> Value {
    m["plugindata"]["data"].clone()
}

/// Fails the test unless `ours` answers as `janus` did (Janus's reply as the golden one: its
/// placeholders match anything), showing both.
pub fn same_as_janus(what: &str, janus: &Value, ours: &Value) {
    if let Err(d) = crate::matches_golden(janus, ours) {
        panic!("{what}: {d}\nJanus:    {janus}\nPortunus: {ours}");
    }
}

/// Runs the same steps (`run`, given a server's WebSocket URL) on a Janus started with
/// `videoroom_general` and on a Portunus configured alike (then `adjust`ed), and fails the test
/// unless Portunus answers every step as Janus did.
pub async fn beside_janus<W, F, Fut>(videoroom_general: &str, adjust: impl FnOnce(&mut shared::config::Config), run: F)
where
    W: AsRef<str>,
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Vec<(W, Value)>>,
{
    let janus = JanusOracle::start(videoroom_general);
    let mut cfg = janus.portunus_config();
    adjust(&mut cfg);
    let server = crate::TestServer::with(cfg);
    let theirs = run(janus.ws_url.clone()).await;
    let ours = run(server.ws_url.clone()).await;
    all_as_janus(&theirs, &ours);
}

/// Fails the test unless each of `ours` answers as the same step of `theirs` (Janus's) did,
/// naming every step that differs, with both answers.
pub fn all_as_janus<W: AsRef<str>>(theirs: &[(W, Value)], ours: &[(W, Value)]) {
    assert_eq!(theirs.len(), ours.len(), "as many answers from each server");
    let differ: Vec<String> = theirs
        .iter()
        .zip(ours)
        .filter_map(|((what, j), (_, p))| {
            let d = crate::matches_golden(j, p).err()?;
            Some(format!("{}: {d}\n  Janus    {j}\n  Portunus {p}", what.as_ref()))
        })
        .collect();
    assert!(differ.is_empty(), "{}", differ.join("\n"));
}
