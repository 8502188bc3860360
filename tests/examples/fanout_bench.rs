//! Forwarding cost: one publisher sends VP8-shaped RTP at a fixed rate to N subscribers through
//! a Portunus at WS_URL; prints packets sent and received. Run the server in another process
//! and read its CPU time to get CPU per forwarded packet. Measures, asserts nothing.
//!
//! usage: cargo run --release -p portunus-tests --example fanout_bench -- WS_URL SUBSCRIBERS SECONDS PPS

use portunus_tests::peer::{TestPublisher, TestSubscriber};
use portunus_tests::WsClient;
use serde_json::json;
use std::time::{Duration, Instant};

#[actix_web::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let url = args.first().cloned().unwrap_or_else(|| "ws://127.0.0.1:8188/".into());
    let n: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(20);
    let seconds: u64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(10);
    let pps: u64 = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(100);
    let mut ws = WsClient::connect(&url).await;
    let sid = ws.create_session().await;
    let hp = ws.attach(sid).await;
    let joined = ws.message_event(sid, hp, json!({"request": "join", "room": 1234, "ptype": "publisher"})).await;
    let feed = joined["plugindata"]["data"]["id"].as_u64().expect("joined");
    let (mut publisher, offer) = TestPublisher::offer().await;
    ws.request(json!({"janus": "message", "session_id": sid, "handle_id": hp,
        "body": {"request": "publish"}, "jsep": {"type": "offer", "sdp": offer}}))
        .await;
    let configured = ws.recv().await;
    publisher.accept(configured["jsep"]["sdp"].as_str().expect("answer")).await;
    assert!(publisher.connected(Duration::from_secs(10)).await);
    let mut subs = Vec::new();
    for _ in 0..n {
        let (att, _) = ws.call(json!({"janus": "attach", "session_id": sid, "plugin": "janus.plugin.videoroom"})).await;
        let h = att["data"]["id"].as_u64().expect("handle");
        ws.call(json!({"janus": "message", "session_id": sid, "handle_id": h,
            "body": {"request": "join", "room": 1234, "ptype": "subscriber", "streams": [{"feed": feed}]}}))
            .await;
        let attached = ws.expect_skipping_core("attached", |m| m["sender"] == h).await;
        let (sub, answer) = TestSubscriber::answer(attached["jsep"]["sdp"].as_str().expect("offer")).await;
        ws.call(json!({"janus": "message", "session_id": sid, "handle_id": h,
            "body": {"request": "start"}, "jsep": {"type": "answer", "sdp": answer}}))
            .await;
        ws.expect_skipping_core("started", |m| m["sender"] == h).await;
        subs.push(sub);
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    for s in subs.iter_mut() {
        while s.packets.try_recv().is_ok() {}
    }
    println!("{{\"phase\":\"start\"}}");
    let started = Instant::now();
    let interval = Duration::from_micros(1_000_000 / pps);
    let mut sent = 0u64;
    let mut next = tokio::time::Instant::now();
    while started.elapsed() < Duration::from_secs(seconds) {
        publisher.send().await;
        sent += 2; // one audio and one video packet
        next += interval;
        tokio::time::sleep_until(next).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut received = 0u64;
    for s in subs.iter_mut() {
        while s.packets.try_recv().is_ok() {
            received += 1;
        }
    }
    println!(
        "{}",
        json!({"subscribers": n, "seconds": seconds, "sent": sent, "expected": sent * n as u64, "received": received,
               "loss": 1.0 - received as f64 / (sent * n as u64) as f64})
    );
}
