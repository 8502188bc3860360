//! Malformed input and limits: every message gets exactly one Janus reply, the connection
//! survives, and limits answer with clear errors.

use portunus_tests::*;
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde_json::json;
use shared::testing::fuzz::mutate;

#[actix_web::test]
async fn mutated_requests_over_websocket_each_get_one_reply_and_the_socket_survives() {
    let server = TestServer::start();
    let mut ws = WsClient::connect(&server.ws_url).await;
    let sid = ws.create_session().await;
    let hid = ws.attach(sid).await;
    let seeds = [
        json!({"janus": "message", "transaction": "m", "session_id": sid, "handle_id": hid,
            "body": {"request": "listparticipants", "room": 1234}}),
        json!({"janus": "trickle", "transaction": "m", "session_id": sid, "handle_id": hid, "candidate": {"completed": true}}),
        json!({"janus": "keepalive", "transaction": "m", "session_id": sid}),
        json!({"janus": "message", "transaction": "m", "session_id": sid, "handle_id": hid,
            "body": {"request": "exists", "room": 1234}, "jsep": {"type": "offer", "sdp": "v=0"}}),
    ];
    let mut rng = StdRng::seed_from_u64(7);
    for i in 0..400 {
        let mut bytes = seeds[i % seeds.len()].to_string().into_bytes();
        mutate(&mut rng, &mut bytes, true);
        // Invalid UTF-8 cannot go in a text frame; a real client could not send it either.
        let Ok(text) = String::from_utf8(bytes) else { continue };
        ws.send_text(text.clone()).await;
        let marker = format!("sync{i}");
        ws.send(&json!({"janus": "ping", "transaction": marker})).await;
        let mut replies = 0;
        loop {
            let m = ws.recv().await;
            if m["transaction"] == json!(marker) {
                break;
            }
            match m["janus"].as_str() {
                Some("error" | "success" | "ack" | "pong" | "server_info") => replies += 1,
                _ => {} // Events caused by an earlier (valid) mutation.
            }
        }
        assert_eq!(replies, 1, "exactly one reply to {text:?}");
    }
}

#[actix_web::test]
async fn limits_answer_with_clear_errors() {
    let mut cfg = test_config();
    cfg.max_sessions_per_connection = 2;
    cfg.max_handles_per_session = 2;
    cfg.max_sessions = 4;
    let server = TestServer::with(cfg);
    let mut ws = WsClient::connect(&server.ws_url).await;
    let sid = ws.create_session().await;
    ws.create_session().await;
    let r = ws.request(json!({"janus": "create"})).await;
    assert_eq!(r["error"]["code"], 472, "{r}");
    assert!(r["error"]["reason"].as_str().unwrap().contains("limit 2"));
    ws.attach(sid).await;
    ws.attach(sid).await;
    let r = ws.request(json!({"janus": "attach", "session_id": sid, "plugin": "janus.plugin.videoroom"})).await;
    assert_eq!(r["error"]["code"], 461, "{r}");
    // The deployment-wide limit.
    let http = HttpClient::new(&server.base_url);
    http.create_session().await;
    http.create_session().await;
    let r = http.post("", json!({"janus": "create"})).await;
    assert_eq!(r["error"]["code"], 472, "{r}");
}

#[actix_web::test]
async fn metrics_health_and_readiness_are_served_on_the_admin_port() {
    let server = TestServer::start();
    let mut ws = WsClient::connect(&server.ws_url).await;
    let sid = ws.create_session().await;
    ws.attach(sid).await;
    ws.request(json!({"janus": "bogus", "session_id": sid})).await;
    let client = awc::Client::new();
    let mut r = client.get(format!("{}/metrics", server.admin_url)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let text = String::from_utf8(r.body().await.unwrap().to_vec()).unwrap();
    for needle in [
        "portunus_sessions 1",
        "portunus_handles 1",
        "portunus_ws_connections 1",
        r#"portunus_requests_total{result="ok",verb="create"} 1"#,
        r#"portunus_requests_total{result="453",verb="unknown"} 1"#,
        "portunus_request_duration_seconds_bucket",
    ] {
        assert!(text.contains(needle), "metrics lack {needle:?}:\n{text}");
    }
    for path in ["/healthz", "/readyz"] {
        let r = client.get(format!("{}{path}", server.admin_url)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
    }
}
