//! Records Janus 1.1.2's VideoRoom replies to the test suite's own WebRTC publisher into
//! `tests/golden`: what a real Janus says to the very offer the tests send (Opus with in-band
//! FEC and VP8 from webrtc-rs), so the golden files and the tests' client agree. Not part of the
//! suite: run it by hand (`cargo run -p portunus-tests --bin record-golden`, as root: Janus runs
//! in a network namespace of its own) and review the diff.
//!
//! Cases: `videoroom.configured_event.json` (the publisher's `configured` with the answer) and
//! `videoroom.publishers_event.json` (what another participant of the room is told).

use portunus_tests::janus_oracle::JanusOracle;
use portunus_tests::peer::TestPublisher;
use portunus_tests::{golden_dir, WsClient};
use serde_json::{json, Value};
use std::time::Duration;

/// Waits for a message matching `pred`, among those `early` already holds first.
async fn wait_for(ws: &mut WsClient, early: &mut Vec<Value>, pred: impl Fn(&Value) -> bool) -> Value {
    if let Some(i) = early.iter().position(&pred) {
        return early.remove(i);
    }
    for _ in 0..100 {
        if let Some(m) = ws.try_recv(Duration::from_millis(200)).await {
            if pred(&m) {
                return m;
            }
        }
    }
    panic!("Janus sent nothing matching");
}

/// Replaces the random values of an event by the golden files' placeholders.
fn placeholders(mut v: Value, sender: &str) -> Value {
    v["session_id"] = json!("<session_id>");
    v["sender"] = json!(sender);
    if v.get("transaction").is_some() {
        v["transaction"] = json!("<transaction>");
    }
    if v.get("jsep").is_some() {
        v["jsep"]["sdp"] = json!("<sdp>");
    }
    if let Some(list) = v.pointer_mut("/plugindata/data/publishers").and_then(Value::as_array_mut) {
        for p in list {
            p["id"] = json!("<publisher_id>");
        }
    }
    v
}

fn write(name: &str, v: &Value) {
    let path = golden_dir().join(name);
    std::fs::write(&path, format!("{}\n", serde_json::to_string_pretty(v).expect("json"))).expect("write golden");
    println!("wrote {}", path.display());
}

#[actix_web::main]
async fn main() {
    let janus = JanusOracle::start("");
    let mut watcher = WsClient::connect(&janus.ws_url).await;
    let sw = watcher.create_session().await;
    let hw = watcher.attach(sw).await;
    // The demo room as Debian's sample configuration declares it.
    let create = json!({"request": "create", "room": 1234, "description": "Demo Room", "publishers": 6,
        "bitrate": 128000, "fir_freq": 10});
    watcher.message(sw, hw, create).await;
    let mut early = Vec::new();
    let (_, more) = watcher
        .call(json!({"janus": "message", "session_id": sw, "handle_id": hw,
            "body": {"request": "join", "room": 1234, "ptype": "publisher", "display": "watcher"}}))
        .await;
    early.extend(more);
    wait_for(&mut watcher, &mut early, |m| m["plugindata"]["data"]["videoroom"] == "joined").await;

    let mut ws = WsClient::connect(&janus.ws_url).await;
    let sid = ws.create_session().await;
    let h = ws.attach(sid).await;
    let mut mine = Vec::new();
    let (_, more) = ws
        .call(json!({"janus": "message", "session_id": sid, "handle_id": h,
            "body": {"request": "join", "room": 1234, "ptype": "publisher", "display": "videoroom_media_ws-publisher"}}))
        .await;
    mine.extend(more);
    wait_for(&mut ws, &mut mine, |m| m["plugindata"]["data"]["videoroom"] == "joined").await;
    let (mut publisher, offer) = TestPublisher::offer().await;
    let (_, more) = ws
        .call(json!({"janus": "message", "session_id": sid, "handle_id": h,
            "body": {"request": "publish"}, "jsep": {"type": "offer", "sdp": offer}}))
        .await;
    mine.extend(more);
    let configured = wait_for(&mut ws, &mut mine, |m| m["plugindata"]["data"]["configured"] == "ok").await;
    publisher.accept(configured["jsep"]["sdp"].as_str().expect("answer")).await;
    assert!(publisher.connected(Duration::from_secs(10)).await, "the publisher connected to Janus");
    let publishers = wait_for(&mut watcher, &mut early, |m| m["plugindata"]["data"]["publishers"].is_array()).await;
    write("videoroom.configured_event.json", &placeholders(configured, "<handle_id>"));
    write("videoroom.publishers_event.json", &placeholders(publishers, "<sender>"));
    publisher.close().await;
}
