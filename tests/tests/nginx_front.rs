//! The deployment the README describes: nginx round-robin (no stickiness) in front of two
//! gateway processes, two media nodes, one redis-server — run with `deploy/nginx/portunus.conf.template`
//! itself. The official janus.js works through it over WebSocket and HTTP, and a parked
//! long-poll completed by an event is completely framed behind the proxy (a browser
//! otherwise reports ERR_INCOMPLETE_CHUNKED_ENCODING).

use portunus_tests::hosts::http_ok;
use portunus_tests::janus_js::run_janus_js_flow;
use portunus_tests::procs::{spawn_gateway_env, spawn_node, spawn_program, GatewayProc, NodeProc, Proc};
use portunus_tests::raw_http::read_framed_response;
use portunus_tests::*;
use serde_json::{json, Value};
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

struct Front {
    _nginx: Proc,
    http: String,
    ws: String,
    gateways: Vec<GatewayProc>,
    _nodes: Vec<NodeProc>,
    _redis: RedisServer,
    _dir: TempDir,
}

struct TempDir(PathBuf);
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn nginx_binary() -> &'static str {
    for p in ["/usr/sbin/nginx", "/usr/bin/nginx"] {
        if std::path::Path::new(p).is_file() {
            return p;
        }
    }
    panic!("nginx not found: apt-get install nginx (tests/run.sh does)");
}

fn front() -> Front {
    let redis = RedisServer::start();
    let nodes = vec![spawn_node(&redis.url(), "node-1"), spawn_node(&redis.url(), "node-2")];
    // Short timers so the janus.js flow proves keepalives within seconds (as in janus_js.rs).
    let env = [("PORTUNUS_LONGPOLL_TIMEOUT", "1")];
    let gateways: Vec<GatewayProc> =
        (0..2).map(|_| spawn_gateway_env(&redis.url(), &["--session-timeout", "2"], &env)).collect();
    let hostport = |u: &str| {
        u.trim_start_matches("http://").trim_start_matches("ws://").split('/').next().unwrap_or("").to_owned()
    };
    let http_up: String = gateways.iter().map(|g| format!("server {}; ", hostport(&g.base_url))).collect();
    let ws_up: String = gateways.iter().map(|g| format!("server {}; ", hostport(&g.ws_url))).collect();
    let dir = std::env::temp_dir().join(format!("portunus-nginx-{}-{}", std::process::id(), gateways[0].proc.pid()));
    std::fs::create_dir_all(&dir).unwrap();
    let template = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/nginx/portunus.conf.template");
    let template = std::fs::read_to_string(template).unwrap();
    let start = |ports: &[u16]| {
        let conf = template
            .replace("@RUN_DIR@", dir.to_str().unwrap())
            .replace("@LISTEN@", "127.0.0.1")
            .replace("@HTTP_PORT@", &ports[0].to_string())
            .replace("@WS_PORT@", &ports[1].to_string())
            .replace("@HTTP_UPSTREAMS@", &http_up)
            .replace("@WS_UPSTREAMS@", &ws_up);
        let conf_path = dir.join("nginx.conf");
        std::fs::write(&conf_path, conf).unwrap();
        // One process (no master/worker pair), so killing it by PID leaves nothing behind.
        spawn_program(
            nginx_binary(),
            &["-c", conf_path.to_str().unwrap(), "-p", dir.to_str().unwrap(), "-g", "daemon off; master_process off;"],
        )
    };
    let ready = |p: &[u16]| http_ok(SocketAddr::from(([127, 0, 0, 1], p[0])), "/janus/info");
    let (nginx, ports) = Proc::start_listening(2, start, ready);
    let (http_port, ws_port) = (ports[0], ports[1]);
    // The nodes must be registered before the flows start.
    std::thread::sleep(Duration::from_millis(300));
    Front {
        _nginx: nginx,
        http: format!("http://127.0.0.1:{http_port}/janus"),
        ws: format!("ws://127.0.0.1:{ws_port}/"),
        gateways,
        _nodes: nodes,
        _redis: redis,
        _dir: TempDir(dir),
    }
}

async fn requests_served(g: &GatewayProc) -> u64 {
    let mut r = awc::Client::new().get(format!("{}/metrics", g.admin_url)).send().await.unwrap();
    let text = String::from_utf8(r.body().await.unwrap().to_vec()).unwrap();
    text.lines()
        .filter(|l| l.starts_with("portunus_requests_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

#[actix_web::test]
async fn janus_js_works_through_a_round_robin_nginx_front() {
    let f = front();
    let v = run_janus_js_flow(&f.http, 3500);
    assert_eq!(v["participants"], 1, "{v}");
    let v = run_janus_js_flow(&f.ws, 3500);
    assert_eq!(v["participants"], 1, "{v}");
    assert!(v["sent"]["keepalive"].as_u64().unwrap() >= 3, "{v}");
    // Round-robin really spread the HTTP flow over both gateways.
    for g in &f.gateways {
        assert!(requests_served(g).await > 0, "gateway {} served nothing", g.admin_url);
    }
}

#[actix_web::test]
async fn a_long_poll_behind_nginx_is_completely_framed() {
    let f = front();
    let http = HttpClient::new(&f.http);
    let sid = http.create_session().await;
    let h = http.attach(sid).await;
    let addr = f.http.trim_start_matches("http://").split('/').next().unwrap().to_owned();
    let reader = std::thread::spawn(move || {
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(s, "GET /janus/{sid}?maxev=1 HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
        read_framed_response(&mut s)
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    http.post(&format!("/{sid}/{h}"), json!({"janus": "detach"})).await;
    let (status, _, body) = reader.join().unwrap();
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    let ev: Value = serde_json::from_slice(&body).expect("one complete JSON document");
    assert_eq!(ev["janus"], "detached");
}
