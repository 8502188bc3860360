//! A stream longer than half the RTP sequence space (32,768 packets: 4 minutes of 1.5 Mbit/s
//! video, 11 of audio) and past its wrap (SRTP's rollover counter on both ends) keeps flowing
//! to its subscriber: standalone, in a cluster
//! (`PORTUNUS_TEST_BACKEND=redis`) and on one UDP port (`PORTUNUS_TEST_SINGLE_PORT=1`).

use portunus_tests::lossy::Network;
use portunus_tests::peer::Offering;
use portunus_tests::videoroom::{publishing_in, received_while_sending, subscribe_in};
use portunus_tests::*;
use serde_json::json;
use std::time::Duration;

/// Packets per video frame: a large frame, so the stream gets round the sequence space fast.
const FRAME_PACKETS: u16 = 64;
/// Video packets past the subscriber's first: beyond half the sequence space, and round it
/// (the test publisher's numbers start near 0).
const STREAMED: u32 = 70_000;

#[actix_web::test]
async fn video_keeps_flowing_past_half_the_sequence_space() {
    let server = TestServer::start();
    let (mut p, _) = publishing_in(&server.ws_url, 1234, "publisher", Offering::default()).await;
    let mut ws = WsClient::connect(&server.ws_url).await;
    let sid = ws.create_session().await;
    let ((mut sub, _), _) = subscribe_in(&mut ws, sid, 1234, json!([{"feed": p.feed}]), Network::default()).await;
    // The subscriber's stream starts on a keyframe; from its first packet on it is one run.
    let warm = received_while_sending(&mut [&mut p.peer], &mut sub, 500).await;
    assert!(warm.iter().any(|(k, _)| k == "video"), "no video before the long run");

    p.peer.packets_per_frame(FRAME_PACKETS);
    let frames = STREAMED / u32::from(FRAME_PACKETS);
    let (mut received, mut last_tenth) = (0u32, 0u32);
    for f in 0..frames {
        p.peer.send().await;
        // ~6,400 packets a second: paced so that no socket buffer on the way overflows.
        tokio::time::sleep(Duration::from_millis(10)).await;
        while let Ok((kind, _)) = sub.packets.try_recv() {
            if kind == "video" {
                received += 1;
                if f >= frames * 9 / 10 {
                    last_tenth += 1;
                }
            }
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    while let Ok((kind, _)) = sub.packets.try_recv() {
        if kind == "video" {
            received += 1;
            last_tenth += 1;
        }
    }
    // The last tenth of the run lies between 63,000 and 70,000 packets past its start, across
    // the wrap of the sequence number.
    let sent_last_tenth = (frames - frames * 9 / 10) * u32::from(FRAME_PACKETS);
    assert!(
        last_tenth >= sent_last_tenth * 9 / 10,
        "{last_tenth} of the last {sent_last_tenth} video packets arrived ({received} of {STREAMED} in all)"
    );
}
