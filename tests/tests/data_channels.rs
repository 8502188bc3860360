//! Data channels through the VideoRoom, with real webrtc-rs peers over DTLS/SCTP: what a
//! publisher sends on its data channels reaches the subscribers that subscribed to its data,
//! in order, text as text and binary as binary, on channels of the same labels (as Janus
//! relays them). A subscriber has one data m-line for all the publishers whose data it takes:
//! subscribing to another publisher's data adds it there (`updated` without a new offer).
//! Each PeerConnection has at most 150 data channels open each way, as Janus.

use portunus_tests::peer::{DataReceived, Offering, TestPublisher, TestSubscriber};
use portunus_tests::videoroom::{publishing_with, subscribe_to_streams};
use portunus_tests::{TestServer, WsClient};
use serde_json::json;
use std::time::Duration;

/// A publisher with a data channel in room 1234, connected, on its own WebSocket; with its feed
/// id and the mid of its data stream.
async fn data_publisher(url: &str, name: &str) -> (WsClient, u64, String, TestPublisher) {
    let (p, answer) = publishing_with(url, name, Offering { data: true, ..Offering::default() }).await;
    let data_mid = answer
        .split("m=application")
        .nth(1)
        .and_then(|m| m.lines().find_map(|l| l.trim().strip_prefix("a=mid:")))
        .unwrap_or_else(|| panic!("the answer accepts the data channel:\n{answer}"))
        .to_owned();
    (p.ws, p.feed, data_mid, p.peer)
}

/// The data messages `sub` receives within `wait`, until `n` arrived.
async fn receive(sub: &mut TestSubscriber, n: usize, wait: Duration) -> Vec<DataReceived> {
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + wait;
    while got.len() < n {
        match tokio::time::timeout_at(deadline, sub.data.recv()).await {
            Ok(Some(m)) => got.push(m),
            _ => break,
        }
    }
    got
}

/// Sends on `publisher`'s default channel until `sub` receives (its channel up, the relay
/// running): the first message received, the rest drained.
async fn warm_up(publisher: &mut TestPublisher, sub: &mut TestSubscriber) -> Option<DataReceived> {
    for _ in 0..50 {
        publisher.send_data("JanusDataChannel", "warm-up", false).await;
        if let Some(first) = receive(sub, 1, Duration::from_millis(200)).await.pop() {
            while !receive(sub, 1, Duration::from_millis(300)).await.is_empty() {}
            return Some(first);
        }
    }
    None
}

fn text(label: &str, s: &str) -> DataReceived {
    (label.to_owned(), true, s.as_bytes().to_vec())
}

#[actix_web::test]
async fn a_publishers_data_channel_messages_reach_its_subscriber_in_order_under_their_labels() {
    let server = TestServer::start();
    let (_pws, feed, _, mut publisher) = data_publisher(&server.ws_url, "alice").await;
    let mut ws = WsClient::connect(&server.ws_url).await;
    let sid = ws.create_session().await;
    let ((mut sub, _h), attached) = subscribe_to_streams(&mut ws, sid, json!([{"feed": feed}])).await;
    let streams = attached["plugindata"]["data"]["streams"].as_array().expect("streams").clone();
    let data = streams.iter().find(|s| s["type"] == "data").unwrap_or_else(|| panic!("a data stream: {attached}"));
    assert_eq!(data["mindex"], 2, "after audio and video: {attached}");
    assert_eq!(data["sources"], 1, "{attached}");
    assert_eq!(data["source_ids"], json!([feed]), "{attached}");
    assert!(attached["jsep"]["sdp"].as_str().is_some_and(|s| s.contains("m=application")), "{attached}");

    // Messages sent before the subscriber's channel is up are not lost once it is: send until
    // the first arrives, then a numbered run that must arrive whole and in order.
    let first = warm_up(&mut publisher, &mut sub).await;
    assert_eq!(first, Some(text("JanusDataChannel", "warm-up")), "the first message arrives");
    for i in 0..20 {
        publisher.send_data("JanusDataChannel", &format!("message {i}"), false).await;
    }
    publisher.send_data("JanusDataChannel", "\u{1}\u{2}binary", true).await;
    let got = receive(&mut sub, 21, Duration::from_secs(5)).await;
    let mut want: Vec<DataReceived> = (0..20).map(|i| text("JanusDataChannel", &format!("message {i}"))).collect();
    want.push(("JanusDataChannel".into(), false, b"\x01\x02binary".to_vec()));
    assert_eq!(got, want);

    // A channel the publisher opens later reaches the subscriber under its own label.
    publisher.send_data("chat", "on another channel", false).await;
    let got = receive(&mut sub, 1, Duration::from_secs(5)).await;
    assert_eq!(got, vec![text("chat", "on another channel")]);
    sub.close().await;
    publisher.close().await;
}

#[actix_web::test]
async fn subscribing_to_a_second_publishers_data_shares_the_data_mline_without_an_offer() {
    let server = TestServer::start();
    let (_aws, alice, _, mut a) = data_publisher(&server.ws_url, "alice").await;
    let (_bws, bob, bob_data_mid, mut b) = data_publisher(&server.ws_url, "bob").await;
    let mut ws = WsClient::connect(&server.ws_url).await;
    let sid = ws.create_session().await;
    let ((mut sub, h), _) = subscribe_to_streams(&mut ws, sid, json!([{"feed": alice}])).await;

    ws.call(json!({"janus": "message", "session_id": sid, "handle_id": h,
        "body": {"request": "subscribe", "streams": [{"feed": bob, "mid": bob_data_mid}]}}))
        .await;
    let updated = ws.expect_skipping_core("updated", |m| m["plugindata"]["data"]["videoroom"] == "updated").await;
    assert!(updated.get("jsep").is_none(), "no renegotiation for more data: {updated}");
    assert!(updated["plugindata"]["data"].get("streams").is_none(), "{updated}");

    // Both publishers' messages arrive on the one channel.
    let mut seen = (false, false);
    for i in 0..50 {
        a.send_data("JanusDataChannel", &format!("alice {i}"), false).await;
        b.send_data("JanusDataChannel", &format!("bob {i}"), false).await;
        for (_, _, bytes) in receive(&mut sub, 2, Duration::from_millis(200)).await {
            seen.0 |= bytes.starts_with(b"alice");
            seen.1 |= bytes.starts_with(b"bob");
        }
        if seen == (true, true) {
            break;
        }
    }
    assert_eq!(seen, (true, true), "messages from alice and from bob");

    // Unsubscribing from bob's data stops his messages, not alice's.
    ws.call(json!({"janus": "message", "session_id": sid, "handle_id": h,
        "body": {"request": "unsubscribe", "streams": [{"feed": bob, "mid": bob_data_mid}]}}))
        .await;
    ws.expect_skipping_core("updated", |m| m["plugindata"]["data"]["videoroom"] == "updated").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    while !receive(&mut sub, 1, Duration::from_millis(200)).await.is_empty() {}
    for i in 0..10 {
        a.send_data("JanusDataChannel", &format!("alice again {i}"), false).await;
        b.send_data("JanusDataChannel", &format!("bob again {i}"), false).await;
    }
    let got = receive(&mut sub, 20, Duration::from_secs(2)).await;
    assert_eq!(got.len(), 10, "only alice's: {got:?}");
    assert!(got.iter().all(|(_, _, m)| m.starts_with(b"alice again")), "{got:?}");
    sub.close().await;
    a.close().await;
    b.close().await;
}

/// A PeerConnection has at most 150 data channels open each way, as Janus's SCTP association
/// (`MAX_DATA_CHANNELS`): two publishers' 200 labels reach a subscriber on 150 channels at most,
/// and a publisher's channels past 150 are closed.
#[actix_web::test]
async fn data_channels_are_limited_to_150_each_way() {
    let server = TestServer::start();
    let (_aws, alice, _, mut a) = data_publisher(&server.ws_url, "alice").await;
    let (_bws, bob, _, mut b) = data_publisher(&server.ws_url, "bob").await;
    let mut ws = WsClient::connect(&server.ws_url).await;
    let sid = ws.create_session().await;
    let ((mut sub, _h), _) = subscribe_to_streams(&mut ws, sid, json!([{"feed": alice}, {"feed": bob}])).await;
    assert!(warm_up(&mut a, &mut sub).await.is_some(), "the subscriber's data channel is up");
    for i in 0..100 {
        a.send_data(&format!("a{i}"), "hello", false).await;
        b.send_data(&format!("b{i}"), "hello", false).await;
    }
    let got = receive(&mut sub, 200, Duration::from_secs(10)).await;
    let labels: std::collections::HashSet<_> =
        got.iter().map(|(label, _, _)| label.clone()).filter(|l| l != "JanusDataChannel").collect();
    eprintln!("{} labels relayed", labels.len());
    // The subscriber's default channel and 149 more.
    assert!(
        (100..=149).contains(&labels.len()),
        "{} labels relayed to one subscriber beside its default channel",
        labels.len()
    );
    // Alice has 101 open; of 60 more, 49 may open and the rest are closed.
    let mut more = Vec::new();
    for i in 0..60 {
        more.push(a.open_data_channel(&format!("c{i}")).await);
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let open = more.iter().filter(|o| *o.borrow()).count();
    eprintln!("{open} of 60 more channels open");
    assert!(open <= 49, "{open} of 60 more channels open beside 101: more than 150");
    assert!(open >= 40, "{open} of 60 more channels open: the first 49 should be");
    sub.close().await;
    a.close().await;
    b.close().await;
}
