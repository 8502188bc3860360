//! VideoRoom flows a test drives over the Janus API with its test peers: joining, publishing,
//! subscribing, and sending while a subscriber receives.

use crate::lossy::Network;
use crate::peer::{Offering, TestPublisher, TestSubscriber};
use rtc::rtp;
use std::time::Duration;

/// Attaches a new handle of session `sid` and joins it to the demo room 1234 as a publisher
/// showing `display`; returns the handle and its publisher (feed) id.
pub async fn join_as_publisher(ws: &mut crate::WsClient, sid: u64, display: &str) -> (u64, u64) {
    join_room_as_publisher(ws, sid, 1234, display).await
}

/// [`join_as_publisher`] in `room`.
pub async fn join_room_as_publisher(ws: &mut crate::WsClient, sid: u64, room: u64, display: &str) -> (u64, u64) {
    let h = ws.attach(sid).await;
    let joined = ws
        .message_event(
            sid,
            h,
            serde_json::json!({"request": "join", "room": room, "ptype": "publisher", "display": display}),
        )
        .await;
    let feed = joined["plugindata"]["data"]["id"].as_u64().unwrap_or_else(|| panic!("join failed: {joined}"));
    (h, feed)
}

/// Sends `publish` with a new [`TestPublisher`]'s offer on handle `h` (already joined as a
/// publisher); returns the publisher, not yet connected, and the server's answer SDP. Core
/// events arriving meanwhile are skipped.
pub async fn publish_offer(ws: &mut crate::WsClient, sid: u64, h: u64) -> (TestPublisher, String) {
    publish_offer_from(ws, sid, h, TestPublisher::offer().await).await
}

/// [`publish_offer`] for a publisher already made (simulcast, say) with its offer.
pub async fn publish_offer_from(
    ws: &mut crate::WsClient,
    sid: u64,
    h: u64,
    (publisher, offer): (TestPublisher, String),
) -> (TestPublisher, String) {
    let (ack, _) = ws
        .call(serde_json::json!({"janus": "message", "session_id": sid, "handle_id": h,
            "body": {"request": "publish"}, "jsep": {"type": "offer", "sdp": offer}}))
        .await;
    assert_eq!(ack["janus"], "ack", "{ack}");
    let configured = ws.expect_skipping_core("configured", |m| m["sender"] == h).await;
    let answer = configured["jsep"]["sdp"].as_str().unwrap_or_else(|| panic!("no answer in {configured}"));
    (publisher, answer.to_owned())
}

/// Publishes from a new [`TestPublisher`] on handle `h` (already joined as a publisher) and
/// waits until its PeerConnection is up; core events arriving meanwhile are skipped.
pub async fn publish_via(ws: &mut crate::WsClient, sid: u64, h: u64) -> TestPublisher {
    publish_connected(ws, sid, h, Offering::default()).await.0
}

/// [`publish_via`] offering `offering`; with the server's answer.
async fn publish_connected(ws: &mut crate::WsClient, sid: u64, h: u64, offering: Offering) -> (TestPublisher, String) {
    let (mut publisher, answer) = publish_offer_from(ws, sid, h, TestPublisher::offer_with(offering).await).await;
    publisher.accept(&answer).await;
    assert!(publisher.connected(Duration::from_secs(10)).await, "publisher connected");
    (publisher, answer)
}

/// What `sub` receives while each of `publishers` sends an audio and a video packet every 10 ms
/// for `ms` milliseconds (then 200 ms for stragglers), in arrival order, with each track's kind.
pub async fn received_while_sending(
    publishers: &mut [&mut TestPublisher],
    sub: &mut TestSubscriber,
    ms: u64,
) -> Vec<(String, rtp::Packet)> {
    for _ in 0..ms / 10 {
        for p in publishers.iter_mut() {
            p.send().await;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut got = Vec::new();
    while let Ok(kp) = sub.packets.try_recv() {
        got.push(kp);
    }
    got
}

/// A publisher in the demo room with its media up, on its own WebSocket and session.
pub struct Publishing {
    pub ws: crate::WsClient,
    pub sid: u64,
    pub handle: u64,
    pub feed: u64,
    pub peer: TestPublisher,
}

/// Connects to `ws_url`, joins room 1234 as "publisher" and publishes (connected).
pub async fn publishing(ws_url: &str) -> Publishing {
    publishing_with(ws_url, "publisher", Offering::default()).await.0
}

/// Connects to `ws_url`, joins room 1234 as `display` and publishes what `offering` says
/// (simulcast, a data channel, a lossy network), connected; with the server's answer.
pub async fn publishing_with(ws_url: &str, display: &str, offering: Offering) -> (Publishing, String) {
    publishing_in(ws_url, 1234, display, offering).await
}

/// [`publishing_with`] in `room`.
pub async fn publishing_in(ws_url: &str, room: u64, display: &str, offering: Offering) -> (Publishing, String) {
    let mut ws = crate::WsClient::connect(ws_url).await;
    let sid = ws.create_session().await;
    let (handle, feed) = join_room_as_publisher(&mut ws, sid, room, display).await;
    let (peer, answer) = publish_connected(&mut ws, sid, handle, offering).await;
    (Publishing { ws, sid, handle, feed, peer }, answer)
}

/// Subscribes a new handle of session `sid` to all streams of `feed` with a new
/// [`TestSubscriber`], through `start`; core events arriving meanwhile are skipped.
pub async fn subscribe_via(ws: &mut crate::WsClient, sid: u64, feed: u64) -> (TestSubscriber, u64) {
    subscribe_to_streams(ws, sid, serde_json::json!([{"feed": feed}])).await.0
}

/// Subscribes a new handle of session `sid` to `streams` (the `join` request's list) with a new
/// [`TestSubscriber`], through `start`; returns it, its handle and the `attached` event.
pub async fn subscribe_to_streams(
    ws: &mut crate::WsClient,
    sid: u64,
    streams: serde_json::Value,
) -> ((TestSubscriber, u64), serde_json::Value) {
    subscribe_on(ws, sid, streams, Network::default()).await
}

/// [`subscribe_to_streams`] with a subscriber on a simulated network.
pub async fn subscribe_on(
    ws: &mut crate::WsClient,
    sid: u64,
    streams: serde_json::Value,
    net: Network,
) -> ((TestSubscriber, u64), serde_json::Value) {
    subscribe_in(ws, sid, 1234, streams, net).await
}

/// [`subscribe_on`] in `room`.
pub async fn subscribe_in(
    ws: &mut crate::WsClient,
    sid: u64,
    room: u64,
    streams: serde_json::Value,
    net: Network,
) -> ((TestSubscriber, u64), serde_json::Value) {
    use serde_json::json;
    let (att, _) = ws.call(json!({"janus": "attach", "session_id": sid, "plugin": "janus.plugin.videoroom"})).await;
    let h = att["data"]["id"].as_u64().unwrap_or_else(|| panic!("attach failed: {att}"));
    ws.call(json!({"janus": "message", "session_id": sid, "handle_id": h,
        "body": {"request": "join", "room": room, "ptype": "subscriber", "streams": streams}}))
        .await;
    let attached = ws.expect_skipping_core("attached", |m| m["sender"] == h).await;
    let offer = attached["jsep"]["sdp"].as_str().unwrap_or_else(|| panic!("no offer in {attached}"));
    let (sub, answer) = TestSubscriber::answer_on(offer, net).await;
    ws.call(json!({"janus": "message", "session_id": sid, "handle_id": h, "body": {"request": "start"},
        "jsep": {"type": "answer", "sdp": answer}}))
        .await;
    ws.expect_skipping_core("started", |m| m["sender"] == h).await;
    ((sub, h), attached)
}

/// A publisher in the demo room and one subscriber of all its streams (on a WebSocket and
/// session of its own): the publisher, the subscriber's socket and session, the subscriber
/// and its handle.
pub async fn publisher_and_subscriber(ws_url: &str) -> (Publishing, crate::WsClient, u64, TestSubscriber, u64) {
    let p = publishing(ws_url).await;
    let mut sws = crate::WsClient::connect(ws_url).await;
    let ssid = sws.create_session().await;
    let (sub, sh) = subscribe_via(&mut sws, ssid, p.feed).await;
    (p, sws, ssid, sub, sh)
}
