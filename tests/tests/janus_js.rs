//! The official janus.js (Debian package `libjs-janus-gateway`, unmodified), run under Node,
//! drives create -> attach videoroom -> list -> join -> keepalive -> destroy over WebSocket and
//! over HTTP. The server's session timeout is shorter than the idle wait, so the session only
//! survives if janus.js's own keepalives (WS) or long-polls (HTTP) reach Portunus.

use portunus_tests::*;
use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;

fn janus_js() -> PathBuf {
    let p = std::env::var("JANUS_JS").map(PathBuf::from).unwrap_or_else(|_| "/usr/share/javascript/janus-gateway/janus.js".into());
    assert!(
        p.is_file(),
        "janus.js not found at {} (apt-get install libjs-janus-gateway, or set JANUS_JS); .ci/run installs it",
        p.display()
    );
    p
}

/// Node, with the flag that gives Node 20 a global WebSocket when it needs it.
fn node() -> Command {
    let probe = Command::new("node").args(["-e", "process.stdout.write(typeof WebSocket)"]).output();
    let out = probe.expect("node not found (apt-get install nodejs); .ci/run installs it");
    let mut cmd = Command::new("node");
    if String::from_utf8_lossy(&out.stdout) != "function" {
        let flagged = Command::new("node")
            .args(["--experimental-websocket", "-e", "process.exit(typeof WebSocket === 'function' ? 0 : 1)"])
            .status()
            .is_ok_and(|s| s.success());
        // Otherwise janus_flow.js falls back to the `ws` package that tests/run.sh installs.
        if flagged {
            cmd.arg("--experimental-websocket");
        }
    }
    cmd
}

fn run_flow(server_url: &str, wait_ms: u64) -> Value {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("js/janus_flow.js");
    let out = node()
        .arg(script)
        .arg(server_url)
        .arg(janus_js())
        .arg(wait_ms.to_string())
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().find_map(|l| l.strip_prefix("RESULT ")).unwrap_or_else(|| {
        panic!("no RESULT line; status {:?}\nstdout:\n{stdout}\nstderr:\n{}", out.status, String::from_utf8_lossy(&out.stderr))
    });
    let v: Value = serde_json::from_str(line).expect("RESULT JSON");
    assert!(out.status.success() && v["ok"] == true, "janus.js flow failed: {v}\nstderr: {}", String::from_utf8_lossy(&out.stderr));
    v
}

fn server() -> TestServer {
    let mut cfg = test_config();
    cfg.session_timeout = 2;
    // As with Janus, a parked long-poll must come back before the session times out.
    cfg.longpoll_timeout = 1;
    TestServer::with(cfg)
}

#[test]
fn janus_js_over_websocket() {
    let server = server();
    let v = run_flow(&server.ws_url, 3500);
    assert_eq!(v["rooms"], serde_json::json!([1234]));
    assert_eq!(v["joined"]["room"], 1234);
    assert_eq!(v["joined"]["description"], "Demo Room");
    assert_eq!(v["participants"], 1);
    assert!(v["sent"]["keepalive"].as_u64().unwrap() >= 3, "janus.js sent keepalives: {v}");
    let reqs: Vec<&str> = v["sent"]["requests"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert_eq!(reqs.first(), Some(&"create"));
    assert_eq!(reqs.last(), Some(&"destroy"));
}

#[test]
fn janus_js_over_http() {
    let server = server();
    let v = run_flow(&server.base_url, 3500);
    assert_eq!(v["rooms"], serde_json::json!([1234]));
    assert_eq!(v["joined"]["room"], 1234);
    assert_eq!(v["participants"], 1);
    assert!(v["sent"]["longpoll"].as_u64().unwrap() >= 1, "janus.js long-polled: {v}");
}
