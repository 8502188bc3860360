//! Several tracks of one kind per publisher: a webrtc-rs publisher sends audio, a camera and a
//! screen share (two VP8 m-lines of different content) in one PeerConnection, as 1.x
//! multistream applications do; every stream is its own feed, known by mid.

use portunus_tests::peer::{Offering, TestSubscriber, SCREEN_FILL};
use portunus_tests::videoroom::{publishing_with, received_while_sending, subscribe_to_streams, Publishing};
use portunus_tests::*;
use serde_json::{json, Value};
use std::collections::HashMap;

/// The byte a test publisher fills its camera's payloads with.
const CAMERA_FILL: u8 = 0x55;

/// Each m-line's SSRC in an offer, by mid (the offer's `a=ssrc` lines).
fn ssrcs_by_mid(sdp: &str) -> HashMap<u32, String> {
    let mut out = HashMap::new();
    let mut mid = None;
    for line in sdp.lines().map(str::trim) {
        if line.starts_with("m=") {
            mid = None;
        } else if let Some(m) = line.strip_prefix("a=mid:") {
            mid = Some(m.to_owned());
        } else if let Some(rest) = line.strip_prefix("a=ssrc:") {
            if let (Some(m), Some(ssrc)) = (&mid, rest.split_whitespace().next().and_then(|s| s.parse().ok())) {
                out.insert(ssrc, m.clone());
            }
        }
    }
    out
}

/// What each of the subscriber's video m-lines received while the publisher sent for `ms`:
/// per publisher mid (through the `attached` streams' `feed_mid`), the fill bytes seen.
async fn video_by_feed_mid(
    p: &mut Publishing,
    sub: &mut TestSubscriber,
    attached: &Value,
    ms: u64,
) -> HashMap<String, Vec<u8>> {
    let offer = attached["jsep"]["sdp"].as_str().expect("offer");
    let ssrc_mid = ssrcs_by_mid(offer);
    let feed_mid_of: HashMap<String, String> = attached["plugindata"]["data"]["streams"]
        .as_array()
        .expect("streams")
        .iter()
        .filter_map(|s| Some((s["mid"].as_str()?.to_owned(), s["feed_mid"].as_str()?.to_owned())))
        .collect();
    let mut out: HashMap<String, Vec<u8>> = HashMap::new();
    for (kind, packet) in received_while_sending(&mut [&mut p.peer], sub, ms).await {
        if kind != "video" {
            continue;
        }
        let sub_mid =
            ssrc_mid.get(&packet.header.ssrc).unwrap_or_else(|| panic!("unknown SSRC {}", packet.header.ssrc));
        let feed_mid = feed_mid_of[sub_mid].clone();
        out.entry(feed_mid).or_default().push(packet.payload.get(4).copied().unwrap_or(0));
    }
    out
}

/// Every byte in `fills` is `fill`, and there are enough of them.
fn all_of(fills: Option<&Vec<u8>>, fill: u8) -> bool {
    fills.is_some_and(|f| f.len() >= 20 && f.iter().all(|b| *b == fill))
}

/// A camera and a screen share in one PeerConnection: `configured` and the subscriber's
/// `attached` list three streams; each video m-line carries its own track's content; a
/// subscriber of one mid gets that one only; `send: false` on the screen stops only the screen;
/// the core's `media` event names each mid.
#[actix_web::test]
async fn a_publisher_with_a_camera_and_a_screen_share_is_two_video_feeds_known_by_mid() {
    let server = TestServer::start();
    let offering = Offering { screen: true, ..Offering::default() };
    let (mut p, _) = publishing_with(&server.ws_url, "presenter", offering).await;

    let mut sws = WsClient::connect(&server.ws_url).await;
    let ssid = sws.create_session().await;
    let ((mut sub, _), attached) = subscribe_to_streams(&mut sws, ssid, json!([{"feed": p.feed}])).await;
    let kinds: Vec<(&str, &str)> = attached["plugindata"]["data"]["streams"]
        .as_array()
        .expect("streams")
        .iter()
        .map(|s| (s["type"].as_str().unwrap_or(""), s["feed_mid"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(kinds, [("audio", "0"), ("video", "1"), ("video", "2")], "{attached}");

    let seen = video_by_feed_mid(&mut p, &mut sub, &attached, 1500).await;
    assert!(all_of(seen.get("1"), CAMERA_FILL), "the camera's m-line carries the camera: {seen:?}");
    assert!(all_of(seen.get("2"), SCREEN_FILL), "the screen's m-line carries the screen: {seen:?}");

    // The publisher heard that each of its streams is arriving, by mid.
    let mut mids = Vec::new();
    for _ in 0..20 {
        let m = p.ws.recv().await;
        if m["janus"] == "media" && m["receiving"] == true {
            mids.push(m["mid"].as_str().unwrap_or_default().to_owned());
            mids.sort();
            mids.dedup();
        }
        if mids.len() == 3 {
            break;
        }
    }
    assert_eq!(mids, ["0", "1", "2"]);

    // A second subscriber picks the screen alone.
    let ((mut screen_only, _), attached2) =
        subscribe_to_streams(&mut sws, ssid, json!([{"feed": p.feed, "mid": "2"}])).await;
    assert_eq!(attached2["plugindata"]["data"]["streams"].as_array().map(Vec::len), Some(1), "{attached2}");
    let seen = video_by_feed_mid(&mut p, &mut screen_only, &attached2, 1500).await;
    assert!(all_of(seen.get("2"), SCREEN_FILL) && seen.len() == 1, "{seen:?}");

    // The presenter stops sending its screen: the camera goes on, the screen stops.
    let body = json!({"request": "configure", "streams": [{"mid": "2", "send": false}]});
    let ack = p.ws.message(p.sid, p.handle, body).await;
    assert_eq!(ack["janus"], "ack", "{ack}");
    let configured = p.ws.expect_skipping_core("configured", |m| m["sender"] == p.handle).await;
    assert_eq!(configured["plugindata"]["data"]["configured"], "ok", "{configured}");
    received_while_sending(&mut [&mut p.peer], &mut sub, 200).await; // what was in flight
    let seen = video_by_feed_mid(&mut p, &mut sub, &attached, 1000).await;
    assert!(all_of(seen.get("1"), CAMERA_FILL), "the camera goes on: {seen:?}");
    assert!(!seen.contains_key("2"), "the screen stopped: {seen:?}");

    screen_only.close().await;
    sub.close().await;
    p.peer.close().await;
}
