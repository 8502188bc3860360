//! What a subscriber costs the server's heap. A standalone Portunus process (its own binary, on
//! jemalloc) serves a publisher sending video frames of several packets; its `/metrics` heap
//! gauge is read with the publisher alone and again with twenty subscribers receiving, each
//! time after three seconds of frames. The difference over the subscribers' number stays within
//! a bound: most of a subscriber's memory is queues and buffers sized by the bursts they carried.

use portunus_tests::procs::spawn_standalone;
use portunus_tests::videoroom::{publishing, subscribe_via, Publishing};
use portunus_tests::*;
use std::time::Duration;

const SUBSCRIBERS: usize = 20;
/// Bytes of heap per subscriber, in the debug build the tests run. Measured 221-231 KiB (ten
/// runs); with the handlers' write queues each filled to a whole frame, the driver's queue slots
/// sized for an ICE candidate and a GSO buffer kept per peer connection, 255-258. The first of
/// those alone (about 23 KiB) fails this bound; the other two (7 and 10 KiB) are within the
/// runs' spread and are measured in `BENCHMARKS.md`, not here.
const BOUND: f64 = 240.0 * 1024.0;

/// The least of five readings of the heap gauge 100 ms apart: what is kept, without the packets
/// that happen to be on their way.
async fn heap(admin_url: &str) -> f64 {
    let mut least = f64::MAX;
    for _ in 0..5 {
        let (_, text) = get_text(&format!("{admin_url}/metrics")).await;
        assert_heap_is_jemalloc(&text);
        least = least.min(metric(&text, "portunus_heap_allocated_bytes").expect("the heap gauge"));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    least
}

/// Three seconds of 30 video frames a second, eight packets each, then a moment for the server's
/// queues to empty.
async fn frames(publisher: &mut portunus_tests::peer::TestPublisher) {
    for _ in 0..90 {
        publisher.send().await;
        tokio::time::sleep(Duration::from_millis(33)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
}

#[actix_web::test]
async fn a_subscriber_costs_the_heap_at_most_its_bound() {
    let server = spawn_standalone(&[], &[("PORTUNUS_RATE_LIMIT_PER_CONNECTION", "0"), ("PORTUNUS_LOG", "warn")]);
    let Publishing { ws: _publisher_ws, feed, peer: mut publisher, .. } = publishing(&server.ws_url).await;
    publisher.packets_per_frame(8);
    frames(&mut publisher).await;
    let alone = heap(&server.admin_url).await;

    let mut ws = WsClient::connect(&server.ws_url).await;
    let sid = ws.create_session().await;
    let mut subscribers = Vec::new();
    for _ in 0..SUBSCRIBERS {
        subscribers.push(subscribe_via(&mut ws, sid, feed).await.0);
    }
    frames(&mut publisher).await;
    let with = heap(&server.admin_url).await;
    for s in &mut subscribers {
        let mut video = 0;
        while let Ok((kind, _)) = s.packets.try_recv() {
            video += usize::from(kind == "video");
        }
        assert!(video > 300, "a subscriber received {video} video packets of 720");
    }
    let each = (with - alone) / SUBSCRIBERS as f64;
    eprintln!("heap: {alone} bytes with the publisher alone, {with} with {SUBSCRIBERS} subscribers: {each:.0} each");
    assert!(each <= BOUND, "a subscriber costs {:.1} KiB of heap, more than {:.0}", each / 1024.0, BOUND / 1024.0);
    assert!(each > 20.0 * 1024.0, "a subscriber costs {each:.0} bytes: were the subscribers served?");
}
