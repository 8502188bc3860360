//! Simulcast (VP8, rid-based), with real webrtc-rs peers over DTLS-SRTP: a publisher sends
//! three layers (`h;m;l`) with three temporal layers each; a subscriber receives one layer at a
//! time, the highest by default, the one it picks with `configure`, a lower one while its choice
//! stops arriving (Janus's `fallback`), and is told each change (`substream` / `temporal`
//! events). Its stream stays one unbroken RTP sequence through every change.

use portunus_tests::peer::{simulcast_marks, Offering, TestPublisher, TestSubscriber};
use portunus_tests::videoroom::{publishing_with, received_while_sending, subscribe_to_streams};
use portunus_tests::{TestServer, WsClient};
use serde_json::{json, Value};
use std::time::Duration;

/// A simulcast publisher in room 1234, connected, on its own WebSocket.
async fn simulcast_publisher(url: &str) -> (WsClient, u64, TestPublisher) {
    let (p, answer) = publishing_with(url, "simulcaster", Offering { simulcast: true, ..Offering::default() }).await;
    assert!(answer.contains("a=simulcast:recv"), "the answer accepts simulcast:\n{answer}");
    (p.ws, p.feed, p.peer)
}

/// The (layer, temporal layer, sequence number) of each video packet, in arrival order.
fn video(got: &[(String, rtc::rtp::Packet)]) -> Vec<(u8, u8, u16)> {
    got.iter()
        .filter(|(k, _)| k == "video")
        .map(|(_, p)| {
            let (layer, tid) = simulcast_marks(&p.payload).expect("a marked simulcast payload");
            (layer, tid, p.header.sequence_number)
        })
        .collect()
}

/// Every sequence number follows the one before: nothing missing, nothing repeated.
fn assert_unbroken(v: &[(u8, u8, u16)]) {
    for w in v.windows(2) {
        assert_eq!(w[1].2, w[0].2.wrapping_add(1), "sequence broken between {:?} and {:?}", w[0], w[1]);
    }
}

/// The plugin events (`substream` / `temporal` changes) received so far on `ws`.
async fn layer_events(ws: &mut WsClient) -> Vec<Value> {
    let mut out = Vec::new();
    while let Some(m) = ws.try_recv(Duration::from_millis(100)).await {
        let data = &m["plugindata"]["data"];
        if data.get("substream").is_some() || data.get("temporal").is_some() {
            out.push(data.clone());
        }
    }
    out
}

/// The core `media` events received so far on `ws`.
async fn media_events(ws: &mut WsClient) -> Vec<Value> {
    let mut out = Vec::new();
    while let Some(m) = ws.try_recv(Duration::from_millis(100)).await {
        if m["janus"] == "media" {
            out.push(m);
        }
    }
    out
}

async fn configure(ws: &mut WsClient, sid: u64, h: u64, stream: Value) {
    ws.call(json!({"janus": "message", "session_id": sid, "handle_id": h,
        "body": {"request": "configure", "streams": [stream]}}))
        .await;
    ws.expect_skipping_core("configured", |m| m["plugindata"]["data"]["configured"] == "ok").await;
}

async fn subscriber(url: &str, feed: u64, entry: Value) -> (WsClient, u64, u64, TestSubscriber, Value) {
    let mut ws = WsClient::connect(url).await;
    let sid = ws.create_session().await;
    let mut stream = json!({"feed": feed});
    if let (Some(s), Some(extra)) = (stream.as_object_mut(), entry.as_object()) {
        s.extend(extra.clone());
    }
    let ((sub, h), attached) = subscribe_to_streams(&mut ws, sid, json!([stream])).await;
    (ws, sid, h, sub, attached)
}

#[actix_web::test]
async fn a_subscriber_gets_the_highest_layer_then_the_substream_and_temporal_layer_it_configures() {
    let server = TestServer::start();
    let (_pws, feed, mut publisher) = simulcast_publisher(&server.ws_url).await;
    let (mut ws, sid, h, mut sub, attached) = subscriber(&server.ws_url, feed, json!({})).await;
    let entry = &attached["plugindata"]["data"]["streams"][1];
    assert_eq!(entry["type"], "video", "{attached}");
    assert_eq!(entry["simulcast"]["substream-target"], 2, "{attached}");
    assert_eq!(entry["simulcast"]["temporal-layer-target"], 2, "{attached}");

    let v = video(&received_while_sending(&mut [&mut publisher], &mut sub, 800).await);
    assert!(v.len() > 30, "video arrives: {} packets", v.len());
    assert!(v.iter().all(|(layer, _, _)| *layer == 2), "only the highest layer: {v:?}");
    assert!([0, 1, 2].iter().all(|t| v.iter().any(|(_, tid, _)| tid == t)), "every temporal layer: {v:?}");
    let events = layer_events(&mut ws).await;
    assert!(events.iter().any(|e| e["substream"] == 2 && e["mid"] == "1"), "{events:?}");

    configure(&mut ws, sid, h, json!({"mid": "1", "substream": 0})).await;
    let after = video(&received_while_sending(&mut [&mut publisher], &mut sub, 800).await);
    let lowest = after.iter().position(|(layer, _, _)| *layer == 0).expect("the lowest layer arrives");
    assert!(after[lowest..].iter().all(|(layer, _, _)| *layer == 0), "then only it: {after:?}");
    assert!(lowest < after.len() / 2, "within the first keyframe interval: {after:?}");
    let events = layer_events(&mut ws).await;
    assert!(events.iter().any(|e| e["substream"] == 0), "{events:?}");
    let mut whole = v.clone();
    whole.extend(&after);
    assert_unbroken(&whole);

    configure(&mut ws, sid, h, json!({"mid": "1", "temporal": 0})).await;
    let base = video(&received_while_sending(&mut [&mut publisher], &mut sub, 800).await);
    let only_base = base.iter().position(|(_, tid, _)| *tid == 0).expect("temporal layer 0 arrives");
    assert!(base[only_base..].iter().all(|(layer, tid, _)| (*layer, *tid) == (0, 0)), "then only it: {base:?}");
    assert!(base.len() > 15, "a quarter of the frames of a 0-2-1-2 pattern: {}", base.len());
    let events = layer_events(&mut ws).await;
    assert!(events.iter().any(|e| e["temporal"] == 0), "{events:?}");
    whole.extend(&base);
    assert_unbroken(&whole);
    sub.close().await;
    publisher.close().await;
}

#[actix_web::test]
async fn a_stopped_layer_falls_back_to_the_one_below_and_comes_back_when_it_resumes() {
    let server = TestServer::start();
    let (mut pws, feed, mut publisher) = simulcast_publisher(&server.ws_url).await;
    let (mut ws, _sid, _h, mut sub, _) = subscriber(&server.ws_url, feed, json!({"substream": 2})).await;
    let v = video(&received_while_sending(&mut [&mut publisher], &mut sub, 600).await);
    assert!(!v.is_empty() && v.iter().all(|(layer, _, _)| *layer == 2), "{v:?}");
    layer_events(&mut ws).await;

    // The highest layer stops (a browser short of bandwidth): after `fallback` (250 ms), the
    // next one down.
    publisher.set_layer_stopped(2, true);
    let down = video(&received_while_sending(&mut [&mut publisher], &mut sub, 1200).await);
    assert!(down.last().is_some_and(|(layer, _, _)| *layer == 1), "fell back to layer 1: {down:?}");
    let events = layer_events(&mut ws).await;
    assert!(events.iter().any(|e| e["substream"] == 1), "{events:?}");
    // The publisher hears it as Janus says it: that substream stopped (the no-media timer).
    let media = media_events(&mut pws).await;
    assert!(media.iter().any(|m| m["mid"] == "1" && m["receiving"] == false && m["substream"] == 2), "{media:?}");

    publisher.set_layer_stopped(2, false);
    let up = video(&received_while_sending(&mut [&mut publisher], &mut sub, 1200).await);
    assert!(up.last().is_some_and(|(layer, _, _)| *layer == 2), "back on layer 2: {up:?}");
    let events = layer_events(&mut ws).await;
    assert!(events.iter().any(|e| e["substream"] == 2), "{events:?}");
    let media = media_events(&mut pws).await;
    assert!(media.iter().any(|m| m["receiving"] == true && m["substream"] == 2), "{media:?}");
    let mut whole = v;
    whole.extend(down);
    whole.extend(up);
    assert_unbroken(&whole);
    sub.close().await;
    publisher.close().await;
}

#[actix_web::test]
async fn subscribing_with_an_out_of_range_substream_is_refused_like_janus() {
    let server = TestServer::start();
    let (_pws, feed, publisher) = simulcast_publisher(&server.ws_url).await;
    let mut ws = WsClient::connect(&server.ws_url).await;
    let sid = ws.create_session().await;
    let h = ws.attach(sid).await;
    let ev = ws
        .message_event(
            sid,
            h,
            json!({"request": "join", "room": 1234, "ptype": "subscriber", "streams": [{"feed": feed, "substream": 3}]}),
        )
        .await;
    let data = &ev["plugindata"]["data"];
    assert_eq!(data["error_code"], 430, "{ev}");
    assert_eq!(data["error"], "Invalid value (substream/spatial_layer should be 0, 1 or 2)", "{ev}");
    publisher.close().await;
}

/// `switch` onto a simulcast publisher takes the layers the entry names (Janus resets them
/// with the new source): here the lowest, after a plain publisher's video.
#[actix_web::test]
async fn switching_onto_a_simulcast_publisher_takes_the_substream_asked_for() {
    let server = TestServer::start();
    let portunus_tests::videoroom::Publishing { ws: _plain_ws, feed: plain, peer: mut plain_peer, .. } =
        portunus_tests::videoroom::publishing(&server.ws_url).await;
    let (_sws, simulcaster, mut sc) = simulcast_publisher(&server.ws_url).await;
    let (mut ws, sid, h, mut sub, _) = subscriber(&server.ws_url, plain, json!({})).await;
    let got = received_while_sending(&mut [&mut plain_peer, &mut sc], &mut sub, 500).await;
    assert!(got.iter().any(|(k, p)| k == "video" && simulcast_marks(&p.payload).is_none()), "the plain video first");

    ws.call(json!({"janus": "message", "session_id": sid, "handle_id": h, "body": {"request": "switch",
        "streams": [{"feed": simulcaster, "mid": "1", "sub_mid": "1", "substream": 0}]}}))
        .await;
    let switched = ws.expect_skipping_core("switched", |m| m["plugindata"]["data"]["switched"] == "ok").await;
    assert_eq!(switched["plugindata"]["data"]["changes"], 1, "{switched}");
    assert_eq!(switched["plugindata"]["data"]["streams"][1]["simulcast"]["substream-target"], 0, "{switched}");
    received_while_sending(&mut [&mut plain_peer, &mut sc], &mut sub, 500).await;
    let got = received_while_sending(&mut [&mut plain_peer, &mut sc], &mut sub, 800).await;
    let layers: Vec<u8> = got
        .iter()
        .filter(|(k, _)| k == "video")
        .map(|(_, p)| simulcast_marks(&p.payload).map_or(9, |(layer, _)| layer))
        .collect();
    assert!(!layers.is_empty() && layers.iter().all(|l| *l == 0), "only the simulcaster's lowest layer: {layers:?}");
    sub.close().await;
    sc.close().await;
    plain_peer.close().await;
}

/// H.264 and VP9 simulcast (rid layers, no temporal layers): the subscriber starts on the
/// highest layer and, asked for the lowest, takes it over at that layer's first keyframe of its
/// codec (an H.264 IDR slice, a VP9 frame not inter-predicted), its sequence unbroken.
#[actix_web::test]
async fn h264_and_vp9_simulcast_layers_change_at_their_codecs_keyframes() {
    let server = TestServer::start();
    for (room, codec, keyframe) in [(4646, "h264", 0x65), (4647, "vp9", 0x0c)] {
        simulcast_in_codec(&server, room, codec, keyframe).await;
    }
}

async fn simulcast_in_codec(server: &TestServer, room: u64, codec: &'static str, keyframe: u8) {
    use portunus_tests::janus_oracle::Conn;
    let mut owner = Conn::open(&server.ws_url).await;
    let oh = owner.attach().await;
    let create = json!({"request": "create", "room": room, "videocodec": codec, "bitrate": 3_000_000});
    owner.request(oh, create, None).await;
    let mut pc = Conn::open(&server.ws_url).await;
    let (ph, joined) = pc.join(room, "simulcaster").await;
    let feed = joined["plugindata"]["data"]["id"].as_u64().expect("id");
    let offering = Offering { simulcast: true, video_codec: Some(codec), ..Offering::default() };
    let (mut p, offer) = TestPublisher::offer_with(offering).await;
    pc.request(ph, json!({"request": "publish"}), Some(json!({"type": "offer", "sdp": offer}))).await;
    let configured = pc.wait_for("configured", |m| m["plugindata"]["data"]["configured"] == "ok").await;
    assert_eq!(configured["plugindata"]["data"]["video_codec"], codec, "{configured}");
    p.accept(configured["jsep"]["sdp"].as_str().expect("answer")).await;
    assert!(p.connected(Duration::from_secs(10)).await, "publisher connected");

    let mut sc = Conn::open(&server.ws_url).await;
    let sh = sc.attach().await;
    let join = json!({"request": "join", "room": room, "ptype": "subscriber", "streams": [{"feed": feed}]});
    sc.request(sh, join, None).await;
    let attached = sc.wait_for("attached", |m| m["plugindata"]["data"]["videoroom"] == "attached").await;
    let (mut sub, answer) = TestSubscriber::answer(attached["jsep"]["sdp"].as_str().expect("offer")).await;
    sc.request(sh, json!({"request": "start"}), Some(json!({"type": "answer", "sdp": answer}))).await;
    sc.wait_for("started", |m| m["plugindata"]["data"]["started"] == "ok").await;
    // (layer, first byte, sequence number) of each video packet.
    let marks = |got: &[(String, rtc::rtp::Packet)]| -> Vec<(u8, u8, u16)> {
        got.iter()
            .filter(|(k, _)| k == "video")
            .map(|(_, p)| {
                let (layer, _) = simulcast_marks(&p.payload).expect("a marked payload");
                (layer, p.payload[0], p.header.sequence_number)
            })
            .collect()
    };
    let high = marks(&received_while_sending(&mut [&mut p], &mut sub, 1500).await);
    assert!(high.len() > 20 && high.iter().all(|m| m.0 == 2), "the highest layer: {high:?}");
    assert_eq!(high[0].1, keyframe, "it starts on a keyframe");
    let video_mid = attached["plugindata"]["data"]["streams"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["type"] == "video"))
        .and_then(|s| s["mid"].as_str())
        .expect("the video mid")
        .to_owned();
    let body = json!({"request": "configure", "streams": [{"mid": video_mid, "substream": 0}]});
    sc.request(sh, body, None).await;
    let low = marks(&received_while_sending(&mut [&mut p], &mut sub, 1500).await);
    let first_low = low.iter().position(|m| m.0 == 0).expect("the lowest layer comes");
    assert_eq!(low[first_low].1, keyframe, "the lowest layer takes over at a {codec} keyframe: {low:?}");
    assert!(low[first_low..].iter().all(|m| m.0 == 0), "and stays: {low:?}");
    let all: Vec<(u8, u8, u16)> = high.iter().chain(low.iter()).map(|(l, _, s)| (*l, 0, *s)).collect();
    assert_unbroken(&all);
    sub.close().await;
    p.close().await;
}
