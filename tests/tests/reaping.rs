//! Keepalive-driven reaping: an idle session gets `timeout` on its transport and is destroyed
//! within 2 s after its deadline; its handles leave their rooms; activity keeps it alive.

use portunus_tests::*;
use serde_json::json;
use std::time::{Duration, Instant};

fn short_timeout(secs: u64) -> TestServer {
    let mut cfg = test_config();
    cfg.session_timeout = secs;
    cfg.longpoll_timeout = 30;
    TestServer::with(cfg)
}

#[actix_web::test]
async fn an_idle_websocket_session_times_out_and_its_room_hears_it() {
    let server = short_timeout(2);
    let mut idle = WsClient::connect(&server.ws_url).await;
    let mut watcher = WsClient::connect(&server.ws_url).await;
    let (si, sw) = (idle.create_session().await, watcher.create_session().await);
    let (hi, hw) = (idle.attach(si).await, watcher.attach(sw).await);
    watcher.message(sw, hw, json!({"request": "join", "room": 1234, "ptype": "publisher", "display": "w"})).await;
    watcher.expect("joined", |m| m["plugindata"]["data"]["videoroom"] == "joined").await;
    idle.message(si, hi, json!({"request": "join", "room": 1234, "ptype": "publisher", "display": "idle"})).await;
    let joined = idle.expect("joined", |m| m["plugindata"]["data"]["videoroom"] == "joined").await;
    let idle_id = joined["plugindata"]["data"]["id"].clone();
    let last_activity = Instant::now();
    // The watcher stays active with keepalives; the idle one does nothing. The room's `leaving`
    // may reach the watcher before the idle socket's `timeout` is read here, so what arrives
    // around a keepalive's ack is kept, not refused.
    let mut heard = Vec::new();
    let timeout = loop {
        if let Some(m) = idle.try_recv(Duration::from_millis(500)).await {
            break m;
        }
        let (ack, others) = watcher.call(json!({"janus": "keepalive", "session_id": sw})).await;
        assert_eq!(ack["janus"], "ack", "{ack}");
        heard.extend(others);
        assert!(last_activity.elapsed() < Duration::from_secs(6), "no timeout event");
    };
    let waited = last_activity.elapsed();
    assert_golden("event.timeout.json", &timeout);
    assert_eq!(timeout["session_id"], si);
    // Deadline 2 s after the last activity; reaped within 2 s after it (plus this loop's 0.5 s step).
    assert!(waited >= Duration::from_millis(1900) && waited <= Duration::from_millis(4500), "reaped after {waited:?}");
    let is_leaving = |m: &serde_json::Value| m["plugindata"]["data"]["leaving"].is_u64();
    assert!(heard.len() <= 1 && heard.iter().all(is_leaving), "only the room's one leaving may come early: {heard:?}");
    let left = match heard.pop() {
        Some(m) => m,
        None => watcher.expect("leaving", is_leaving).await,
    };
    assert_eq!(left["plugindata"]["data"]["leaving"], idle_id);
    // The session is gone; the socket stays usable.
    let r = idle.request(json!({"janus": "keepalive", "session_id": si})).await;
    assert_eq!(r["error"]["code"], 458);
    assert_eq!(idle.request(json!({"janus": "ping"})).await["janus"], "pong");
    let (status, _) = HttpClient::new(&server.base_url).get(&format!("/{si}")).await;
    assert_eq!(status, 404);
}

#[actix_web::test]
async fn a_parked_long_poll_receives_the_timeout_event() {
    let server = short_timeout(1);
    let http = HttpClient::new(&server.base_url);
    let sid = http.create_session().await;
    let got = http.poll(sid, 1).await;
    assert_golden("http.longpoll_timeout_event.json", &got);
    let (status, body) = http.get(&format!("/{sid}")).await;
    assert_eq!((status, body.len()), (404, 0));
}

#[actix_web::test]
async fn any_request_on_the_session_counts_as_activity() {
    let server = short_timeout(2);
    let mut ws = WsClient::connect(&server.ws_url).await;
    let sid = ws.create_session().await;
    let h = ws.attach(sid).await;
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(5) {
        // A plugin message (not a keepalive) keeps it alive too.
        let r = ws.message(sid, h, json!({"request": "exists", "room": 1234})).await;
        assert_eq!(r["janus"], "success", "{r}");
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
}

#[actix_web::test]
async fn a_zero_timeout_never_reaps() {
    let server = short_timeout(0);
    let mut ws = WsClient::connect(&server.ws_url).await;
    let sid = ws.create_session().await;
    assert!(ws.try_recv(Duration::from_millis(2500)).await.is_none());
    assert_eq!(ws.request(json!({"janus": "keepalive", "session_id": sid})).await["janus"], "ack");
}

#[actix_web::test]
async fn many_idle_sessions_are_each_reaped_once() {
    let server = short_timeout(1);
    let mut ws = WsClient::connect(&server.ws_url).await;
    let mut sessions = std::collections::HashSet::new();
    for _ in 0..50 {
        sessions.insert(ws.create_session().await);
    }
    let mut timed_out = std::collections::HashSet::new();
    while timed_out.len() < sessions.len() {
        let m = ws.recv().await;
        assert_eq!(m["janus"], "timeout");
        assert!(timed_out.insert(m["session_id"].as_u64().unwrap()), "timeout sent twice: {m}");
    }
    assert_eq!(timed_out, sessions);
    assert!(ws.try_recv(Duration::from_millis(1500)).await.is_none());
}
