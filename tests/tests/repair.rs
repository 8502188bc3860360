//! Loss repair and RTCP through the SFU, with real webrtc-rs peers over DTLS-SRTP: the
//! publisher's network loses packets on the way in (the media node NACKs them and the
//! publisher retransmits), the subscriber's loses others on the way out (the subscriber NACKs
//! and the media node retransmits from its own buffer); the subscriber still gets every packet.
//! It also hears RTCP sender reports for its streams.

use portunus_tests::peer::{
    join_as_publisher, publish_offer_from, received_while_sending, subscribe_losing, Offering, TestPublisher,
};
use portunus_tests::{TestServer, WsClient};
use serde_json::json;
use std::collections::BTreeSet;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

#[actix_web::test]
async fn packets_lost_on_either_side_of_the_sfu_are_repaired_and_sender_reports_arrive() {
    let server = TestServer::start();
    let mut pws = WsClient::connect(&server.ws_url).await;
    let psid = pws.create_session().await;
    let (h, feed) = join_as_publisher(&mut pws, psid, "lossy").await;
    let offer = TestPublisher::offer_with(Offering { lose_every: Some(23), ..Offering::default() }).await;
    let (mut publisher, answer) = publish_offer_from(&mut pws, psid, h, offer).await;
    publisher.accept(&answer).await;
    assert!(publisher.connected(Duration::from_secs(10)).await, "publisher connected");

    let mut ws = WsClient::connect(&server.ws_url).await;
    let sid = ws.create_session().await;
    let ((mut sub, _), _) = subscribe_losing(&mut ws, sid, json!([{"feed": feed}]), Some(19)).await;

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
