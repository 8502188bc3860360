//! The forwarding hot path, as far as Portunus's own code goes, allocates nothing per packet
//! per subscriber: the publisher's packet (extensions stripped once) goes through the bounded
//! broadcast, and each subscriber clones it (payload shared) and rewrites SSRC, payload type,
//! sequence number and timestamp.
//! A counting global allocator checks it. (What webrtc-rs allocates below `write_rtp` is
//! measured in BENCHMARKS.md, not here.)

use media_node::media::forward::{rewrite_for_subscriber, strip_extensions};
use media_node::media::rewrite::Rewriter;
use rtc::rtp;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

struct Counting;

thread_local! {
    /// Only this test's thread counts: the test harness allocates on its own threads meanwhile.
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

fn counting() -> bool {
    COUNTING.try_with(Cell::get).unwrap_or(false)
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if counting() {
            ALLOCATIONS.fetch_add(1, Relaxed);
        }
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if counting() {
            ALLOCATIONS.fetch_add(1, Relaxed);
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// A packet as a browser publishes it: header extensions (audio level, abs-send-time, mid...).
fn browser_packet(seq: u16, payload: &bytes::Bytes) -> rtp::Packet {
    let mut header = rtp::header::Header {
        version: 2,
        payload_type: 96,
        sequence_number: seq,
        timestamp: u32::from(seq) * 3000,
        ssrc: 0x1234,
        ..Default::default()
    };
    header.set_extension(1, bytes::Bytes::from_static(&[0x30])).expect("extension");
    header.set_extension(3, bytes::Bytes::from_static(&[1, 2, 3])).expect("extension");
    rtp::Packet { header, payload: payload.clone() }
}

#[test]
fn forwarding_to_twenty_subscribers_allocates_nothing_per_packet() {
    const SUBSCRIBERS: usize = 20;
    const PACKETS: u16 = 1000;
    let (feed, _) = tokio::sync::broadcast::channel::<rtp::Packet>(2048);
    let mut subscribers: Vec<_> = (0..SUBSCRIBERS).map(|_| feed.subscribe()).collect();
    let mut sequences: Vec<Rewriter> = (0..SUBSCRIBERS).map(|_| Rewriter::new(90_000)).collect();
    let start = std::time::Instant::now();
    let payload = bytes::Bytes::from(vec![0x55u8; 1200]);
    // Built before counting: arriving packets are webrtc-rs's allocations, not ours.
    let arriving: Vec<rtp::Packet> = (0..PACKETS).map(|seq| browser_packet(seq, &payload)).collect();

    COUNTING.with(|c| c.set(true));
    let mut forwarded = 0u64;
    for mut packet in arriving {
        strip_extensions(&mut packet);
        feed.send(packet).expect("subscribers listen");
        for (i, rx) in subscribers.iter_mut().enumerate() {
            let mut p = rx.try_recv().expect("packet for each subscriber");
            rewrite_for_subscriber(&mut p, 0x5000 + i as u32, 100);
            assert!(sequences[i].rewrite(&mut p, || start), "in sequence");
            forwarded += 1;
            // What the track would send: the rewritten header over the shared payload.
            assert_eq!(p.payload.as_ptr(), payload.as_ptr(), "the payload is shared, not copied");
            drop(p);
        }
    }
    COUNTING.with(|c| c.set(false));
    let allocations = ALLOCATIONS.load(Relaxed);
    assert_eq!(forwarded, u64::from(PACKETS) * SUBSCRIBERS as u64);
    assert_eq!(allocations, 0, "{allocations} allocations for {forwarded} forwarded packets");
}
