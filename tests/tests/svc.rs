//! VP9 SVC: in a room with `video_svc` (VP9 only), a publisher's spatial and temporal layers
//! travel in one stream, and each subscriber gets the layers it asks for with `spatial_layer`
//! and `temporal_layer` (Janus's defaults 1 and 2), told with Janus's `spatial_layer` /
//! `temporal_layer` events; the frame ends, for it, with the marker on its top layer, and its
//! sequence numbers run on without holes. (`svc_janus.rs` compares remote SVC publishers with
//! a real Janus.)

use portunus_tests::peer::{svc_marks, Offering, TestSubscriber};
use portunus_tests::videoroom::{publishing_in, received_while_sending, subscribe_in, Publishing};
use portunus_tests::*;
use rtc::rtp;
use serde_json::{json, Value};

const ROOM: u64 = 99;

/// The video packets received while the publisher sends for `ms`.
async fn video(p: &mut Publishing, sub: &mut TestSubscriber, ms: u64) -> Vec<rtp::Packet> {
    let got = received_while_sending(&mut [&mut p.peer], sub, ms).await;
    got.into_iter().filter(|(k, _)| k == "video").map(|(_, p)| p).collect()
}

/// The (spatial, temporal) layers seen, and whether the sequence numbers run without a hole.
fn layers_and_continuity(packets: &[rtp::Packet]) -> (Vec<(u8, u8)>, bool) {
    let mut layers: Vec<(u8, u8)> = packets.iter().filter_map(|p| svc_marks(&p.payload)).collect();
    layers.sort_unstable();
    layers.dedup();
    let continuous =
        packets.windows(2).all(|w| w[1].header.sequence_number == w[0].header.sequence_number.wrapping_add(1));
    (layers, continuous)
}

/// Waits until the subscriber was told each of `wanted` (`key: value` in an event: a layer
/// event, or `configured`), in any order; other events are skipped (the layers climb one
/// keyframe at a time).
async fn layer_events(ws: &mut WsClient, h: u64, wanted: &[(&str, Value)], what: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let mut missing: Vec<(&str, Value)> = wanted.to_vec();
    let mut seen = Vec::new();
    while let Some(wait) = deadline.checked_duration_since(std::time::Instant::now()) {
        let Some(m) = ws.try_recv(wait).await else { break };
        if m["sender"] == h {
            missing.retain(|(k, v)| m["plugindata"]["data"][*k] != *v);
        }
        if missing.is_empty() {
            return;
        }
        seen.push(m);
    }
    panic!("{what}: no event for {missing:?}; got {seen:?}");
}

#[actix_web::test]
async fn a_subscriber_gets_the_spatial_and_temporal_layers_it_asks_for() {
    let server = TestServer::start();
    let mut ws = WsClient::connect(&server.ws_url).await;
    let sid = ws.create_session().await;
    let h = ws.attach(sid).await;
    let create = json!({"request": "create", "room": ROOM, "videocodec": "vp9", "video_svc": true});
    let created = ws.message(sid, h, create).await;
    assert_eq!(created["plugindata"]["data"]["videoroom"], "created", "{created}");
    let listed = ws.message(sid, h, json!({"request": "list"})).await;
    let room =
        listed["plugindata"]["data"]["list"].as_array().and_then(|l| l.iter().find(|r| r["room"] == ROOM)).cloned();
    assert_eq!(room.as_ref().map(|r| r["video_svc"].clone()), Some(json!(true)), "{listed}");

    let offering = Offering { video_codec: Some("vp9"), svc: true, ..Offering::default() };
    let (mut p, _) = publishing_in(&server.ws_url, ROOM, "svc", offering).await;
    let mut sws = WsClient::connect(&server.ws_url).await;
    let ssid = sws.create_session().await;
    let ((mut sub, sh), attached) =
        subscribe_in(&mut sws, ssid, ROOM, json!([{"feed": p.feed}]), Default::default()).await;
    let video_entry = &attached["plugindata"]["data"]["streams"][1];
    assert_eq!(
        video_entry["svc"],
        json!({"spatial-layer": -1, "target-spatial-layer": 1, "temporal-layer": -1, "target-temporal-layer": 2}),
        "{attached}"
    );

    // Janus's defaults: spatial layers 0 and 1, every temporal layer.
    let packets = video(&mut p, &mut sub, 1200).await;
    // Spatial layer 0 at the first keyframe (layer 1 not seen yet), 1 at the next; temporal
    // layer 2 at the first switching point.
    layer_events(&mut sws, sh, &[("temporal_layer", json!(2)), ("spatial_layer", json!(1))], "defaults").await;
    let (layers, continuous) = layers_and_continuity(&packets);
    assert!(packets.len() >= 60, "video arrives: {}", packets.len());
    assert!(layers.iter().all(|(s, _)| *s <= 1), "nothing above spatial layer 1: {layers:?}");
    assert!(layers.contains(&(1, 2)) && layers.contains(&(0, 0)), "{layers:?}");
    assert!(continuous, "the sequence has no hole where layers were left out");
    for p in packets.iter().filter(|p| svc_marks(&p.payload).is_some_and(|(s, _)| s == 1)) {
        assert!(p.header.marker, "layer 1 ends each frame for this subscriber");
    }

    // Down to the base layers: at the next keyframe, and at the end of a base temporal frame.
    let configure = json!({"request": "configure", "streams": [{"mid": "1", "spatial_layer": 0, "temporal_layer": 0}]});
    let ack = sws.message(ssid, sh, configure).await;
    assert_eq!(ack["janus"], "ack", "{ack}");
    video(&mut p, &mut sub, 400).await;
    layer_events(
        &mut sws,
        sh,
        &[("configured", json!("ok")), ("temporal_layer", json!(0)), ("spatial_layer", json!(0))],
        "down",
    )
    .await;
    let packets = video(&mut p, &mut sub, 600).await;
    let (layers, continuous) = layers_and_continuity(&packets);
    assert_eq!(layers, [(0, 0)], "only the base layers");
    assert!(continuous && packets.iter().all(|p| p.header.marker), "one packet per frame, each ending it");

    // Asking for what it already gets is confirmed at once (as Janus).
    let configure = json!({"request": "configure", "streams": [{"mid": "1", "spatial_layer": 0}]});
    let ack = sws.message(ssid, sh, configure).await;
    assert_eq!(ack["janus"], "ack", "{ack}");
    layer_events(&mut sws, sh, &[("configured", json!("ok")), ("spatial_layer", json!(0))], "confirmed").await;

    // Up to everything.
    let configure = json!({"request": "configure", "streams": [{"mid": "1", "spatial_layer": 2, "temporal_layer": 2}]});
    let ack = sws.message(ssid, sh, configure).await;
    assert_eq!(ack["janus"], "ack", "{ack}");
    video(&mut p, &mut sub, 400).await;
    layer_events(&mut sws, sh, &[("configured", json!("ok")), ("spatial_layer", json!(2))], "up").await;
    let packets = video(&mut p, &mut sub, 600).await;
    let (layers, continuous) = layers_and_continuity(&packets);
    assert!(layers.contains(&(2, 2)) && layers.contains(&(0, 0)), "{layers:?}");
    assert!(continuous);
    sub.close().await;
    p.peer.close().await;
}
