//! Loss repair and RTCP through the SFU, with real webrtc-rs peers over DTLS-SRTP: the
//! publisher's network loses packets on the way in (the media node NACKs them and the
//! publisher retransmits), the subscriber's loses others on the way out (the subscriber NACKs
//! and the media node retransmits from its own buffer); the subscriber still gets every packet.
//! It also hears RTCP sender reports for its streams. Loss repair cannot mend makes Janus's
//! slow-link events.

use portunus_tests::lossy::{Leg, Network};
use portunus_tests::peer::Offering;
use portunus_tests::videoroom::{publishing_with, received_while_sending, subscribe_on, Publishing};
use portunus_tests::{TestServer, WsClient};
use serde_json::json;
use std::collections::BTreeSet;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

#[actix_web::test]
async fn packets_lost_on_either_side_of_the_sfu_are_repaired_and_sender_reports_arrive() {
    let server = TestServer::start();
    let offering = Offering { lose_every: Some(23), ..Offering::default() };
    let (Publishing { ws: _pws, feed, peer: mut publisher, .. }, _) =
        publishing_with(&server.ws_url, "lossy", offering).await;

    let mut ws = WsClient::connect(&server.ws_url).await;
    let sid = ws.create_session().await;
    let net = Network { loss: Some((Leg::Receive, 19)), ..Network::default() };
    let ((mut sub, _), _) = subscribe_on(&mut ws, sid, json!([{"feed": feed}]), net).await;

    // 3 s of media; then time for the last repairs.
    let got = received_while_sending(&mut [&mut publisher], &mut sub, 3000).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut video: BTreeSet<u16> = BTreeSet::new();
    for (kind, p) in got.iter().chain(std::iter::from_fn(|| sub.packets.try_recv().ok()).collect::<Vec<_>>().iter()) {
        if kind == "video" {
            video.insert(p.header.sequence_number);
        }
    }
    let (lost_in, lost_out) = (publisher.dropped.load(Relaxed), sub.net.dropped.load(Relaxed));
    assert!(lost_in >= 10, "the publisher's network lost packets: {lost_in}");
    assert!(lost_out >= 10, "the subscriber's network lost packets: {lost_out}");
    let (first, last) = (*video.first().expect("video arrived"), *video.last().expect("video arrived"));
    let missing: Vec<u16> = (first..=last).filter(|s| !video.contains(s)).collect();
    assert!(video.len() > 200, "video flowed: {} packets", video.len());
    assert!(
        missing.is_empty(),
        "every lost packet repaired; missing {missing:?} of {first}..={last} (lost {lost_in} in, {lost_out} out)"
    );
    let srs = sub.net.sender_reports.load(Relaxed);
    assert!(srs >= 2, "sender reports for the subscriber's streams: {srs}");
    sub.close().await;
    publisher.close().await;
}

/// With `slowlink_threshold` set (Janus's default 0 leaves it off), loss that repair cannot
/// mend makes slow links: a publisher losing packets on the way in gets the VideoRoom's
/// `slow_link` with its bitrate cap, then the core `slowlink` (uplink false: media Janus
/// receives); a subscriber losing packets on the way out gets a bare `slow_link`, then
/// `slowlink` with uplink true (media Janus sends, as its receiver reports say).
#[actix_web::test]
async fn unrepaired_loss_over_the_threshold_makes_slow_link_events_like_janus() {
    let mut cfg = portunus_tests::test_config();
    cfg.slowlink_threshold = 3;
    let server = TestServer::with(cfg);
    let offering = Offering { lose_every: Some(7), persistent_loss: true, ..Offering::default() };
    let (Publishing { ws: mut pws, handle: ph, feed, peer: mut publisher, .. }, _) =
        publishing_with(&server.ws_url, "lossy", offering).await;

    let mut ws = WsClient::connect(&server.ws_url).await;
    let sid = ws.create_session().await;
    let net = Network { loss: Some((Leg::Receive, 5)), persistent: true, ..Network::default() };
    let ((mut sub, sh), _) = subscribe_on(&mut ws, sid, json!([{"feed": feed}]), net).await;
    received_while_sending(&mut [&mut publisher], &mut sub, 3000).await;

    let publisher_events = drain(&mut pws).await;
    let (i, plugin) = find(&publisher_events, |m| m["plugindata"]["data"]["videoroom"] == "slow_link")
        .unwrap_or_else(|| panic!("publisher slow_link: {publisher_events:?}"));
    assert_eq!(plugin["sender"], ph);
    assert_eq!(plugin["plugindata"]["data"]["current-bitrate"], 128000, "the demo room's cap: {plugin}");
    let core = &publisher_events[i + 1];
    assert_eq!(core["janus"], "slowlink", "the core event follows: {publisher_events:?}");
    assert_eq!(core["sender"], ph);
    assert_eq!(core["uplink"], false, "{core}");
    assert!(core["lost"].as_u64().unwrap() >= 3, "{core}");
    assert!(core["media"] == "audio" || core["media"] == "video", "{core}");
    assert_eq!(core["mid"], if core["media"] == "audio" { "0" } else { "1" }, "{core}");

    let subscriber_events = drain(&mut ws).await;
    let (i, plugin) = find(&subscriber_events, |m| m["plugindata"]["data"]["videoroom"] == "slow_link")
        .unwrap_or_else(|| panic!("subscriber slow_link: {subscriber_events:?}"));
    assert_eq!(plugin["sender"], sh);
    assert_eq!(plugin["plugindata"]["data"], json!({"videoroom": "slow_link"}), "{plugin}");
    let core = &subscriber_events[i + 1];
    assert_eq!(core["janus"], "slowlink", "{subscriber_events:?}");
    assert_eq!(core["uplink"], true, "{core}");
    assert!(core["lost"].as_u64().unwrap() >= 3, "{core}");
    sub.close().await;
    publisher.close().await;
}

/// Everything received on `ws` until it has been quiet for a moment.
async fn drain(ws: &mut WsClient) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    while let Some(m) = ws.try_recv(Duration::from_millis(200)).await {
        out.push(m);
    }
    out
}

fn find(
    events: &[serde_json::Value],
    pred: impl Fn(&serde_json::Value) -> bool,
) -> Option<(usize, &serde_json::Value)> {
    events.iter().enumerate().find(|(_, m)| pred(m))
}
