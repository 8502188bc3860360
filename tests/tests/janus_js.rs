//! The official janus.js (Debian package `libjs-janus-gateway`, unmodified), run under Node,
//! drives create -> attach videoroom -> list -> join -> keepalive -> destroy over WebSocket and
//! over HTTP. The server's session timeout is shorter than the idle wait, so the session only
//! survives if janus.js's own keepalives (WS) or long-polls (HTTP) reach Portunus.

use portunus_tests::janus_js::run_janus_js_flow;
use portunus_tests::*;
use serde_json::Value;

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
    let v = run_janus_js_flow(&server.ws_url, 3500);
    assert_eq!(v["rooms"], serde_json::json!([1234]));
    assert_eq!(v["joined"]["room"], 1234);
    assert_eq!(v["joined"]["description"], "Demo Room");
    assert_eq!(v["participants"], 1);
    assert!(v["sent"]["keepalive"].as_u64().unwrap() >= 3, "janus.js sent keepalives: {v}");
    let reqs: Vec<&str> = v["sent"]["requests"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert_eq!(reqs.first(), Some(&"create"));
    // janus.js's keepalive timer (every 500 ms here) stops only once the destroy is answered, so
    // one may leave between the destroy and its answer; no other request may follow it.
    let after: Vec<&&str> = reqs.iter().skip_while(|r| **r != "destroy").collect();
    assert_eq!(after.first(), Some(&&"destroy"), "janus.js destroyed its session: {reqs:?}");
    assert!(after[1..].iter().all(|r| **r == "keepalive"), "after the destroy: {reqs:?}");
}

#[test]
fn janus_js_over_http() {
    let server = server();
    let v = run_janus_js_flow(&server.base_url, 3500);
    assert_eq!(v["rooms"], serde_json::json!([1234]));
    assert_eq!(v["joined"]["room"], 1234);
    assert_eq!(v["participants"], 1);
    assert!(v["sent"]["longpoll"].as_u64().unwrap() >= 1, "janus.js long-polled: {v}");
}
