//! The forwarding hot path, as far as Portunus's own code goes, allocates nothing per packet
//! per subscriber: the publisher's packet (its extensions reduced to the relayed ones once) goes
//! through the bounded broadcast, and each subscriber stream clones it (payload shared) and
//! decides on it (`outgoing`: gate, keyframe wait, layers, SSRC, payload type, sequence number
//! and timestamp). The one exception is counted: a packet
//! carrying a relayed header extension (audio level; video orientation and playout delay, which
//! browsers send rarely) costs each subscriber its extension list.
//! A counting global allocator checks it. (What webrtc-rs allocates below `write_rtp` is
//! measured in BENCHMARKS.md, not here.)

use media_node::media::codec::VideoCodec;
use media_node::media::extensions::relay;
use media_node::media::outgoing::{Decision, From, Negotiated, Outgoing, Settings, Source, Verdict};
use media_node::media::simulcast::LayerTarget;
use rtc::rtp;
use shared::media::ExtensionIds;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    /// Only this test's thread counts: the test harness allocates on its own threads meanwhile.
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    /// Per thread, so that the tests may run side by side.
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn count_one() {
    let _ = ALLOCATIONS.try_with(|a| a.set(a.get() + 1));
}

fn counting() -> bool {
    COUNTING.try_with(Cell::get).unwrap_or(false)
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if counting() {
            count_one();
        }
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if counting() {
            count_one();
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

/// Forwards `PACKETS` packets from `sender` (whose extension ids are `ids`) to twenty subscribers
/// the way the forwarding tasks do; returns the allocations counted per forwarded packet.
fn allocations_per_forwarded_packet(ids: ExtensionIds) -> f64 {
    // Each subscriber's answer gave the audio level id 4.
    let negotiated =
        Negotiated { payload_type: 100, extensions: ExtensionIds { audio_level: Some(4), ..Default::default() } };
    const SUBSCRIBERS: usize = 20;
    const PACKETS: u16 = 1000;
    let (feed, _) = tokio::sync::broadcast::channel::<rtp::Packet>(2048);
    let mut subscribers: Vec<_> = (0..SUBSCRIBERS).map(|_| feed.subscribe()).collect();
    let start = std::time::Instant::now();
    let mut streams: Vec<Outgoing> = (0..SUBSCRIBERS)
        .map(|i| {
            let settings = Settings {
                ssrc: 0x5000 + i as u32,
                clock_rate: 90_000,
                codec: Some(VideoCodec::Vp8),
                target: LayerTarget::default(),
                delay: None,
            };
            Outgoing::new(settings, Source { layers: 1, svc: false }, [None; 3], start)
        })
        .collect();
    // A VP8 keyframe's payload descriptor and frame header, so the streams start at once.
    let mut bytes = vec![0x55u8; 1200];
    bytes[..2].copy_from_slice(&[0x10, 0x00]);
    let payload = bytes::Bytes::from(bytes);
    // Built before counting: arriving packets are webrtc-rs's allocations, not ours.
    let arriving: Vec<rtp::Packet> = (0..PACKETS).map(|seq| browser_packet(seq, &payload)).collect();

    ALLOCATIONS.with(|a| a.set(0));
    COUNTING.with(|c| c.set(true));
    let mut forwarded = 0u64;
    for mut packet in arriving {
        relay(&mut packet, &ids);
        feed.send(packet).expect("subscribers listen");
        for (i, rx) in subscribers.iter_mut().enumerate() {
            let p = rx.try_recv().expect("packet for each subscriber");
            let Decision::Send(p) = streams[i].packet(From::Current, p, Verdict::Open(negotiated), || start) else {
                panic!("an open stream sends every packet");
            };
            assert_eq!(p.header.ssrc, 0x5000 + i as u32, "rewritten for the subscriber");
            if ids.audio_level.is_some() {
                assert_eq!(
                    p.header.get_extension(4).as_deref(),
                    Some(&[0x30][..]),
                    "the level under the subscriber's id"
                );
            }
            forwarded += 1;
            // What the track would send: the rewritten header over the shared payload.
            assert_eq!(p.payload.as_ptr(), payload.as_ptr(), "the payload is shared, not copied");
            drop(p);
        }
    }
    COUNTING.with(|c| c.set(false));
    assert_eq!(forwarded, u64::from(PACKETS) * SUBSCRIBERS as u64);
    ALLOCATIONS.with(Cell::get) as f64 / forwarded as f64
}

#[test]
fn forwarding_to_twenty_subscribers_allocates_nothing_per_packet() {
    // The browser's extensions at 1 and 3 are none the room relays (say, abs-send-time and
    // transport-wide CC): they are dropped at the publisher, once.
    let per_packet = allocations_per_forwarded_packet(ExtensionIds::default());
    assert_eq!(per_packet, 0.0, "{per_packet} allocations per forwarded packet");
}

#[test]
fn a_relayed_audio_level_costs_one_allocation_per_packet_per_subscriber() {
    // The extension at 1 is the audio level: each subscriber's copy of the packet carries it,
    // and webrtc-rs's packet type holds extensions in a Vec (the other one is still dropped).
    let per_packet = allocations_per_forwarded_packet(ExtensionIds { audio_level: Some(1), ..Default::default() });
    assert_eq!(per_packet, 1.0, "{per_packet} allocations per forwarded packet");
}

#[test]
fn stamping_abs_send_time_shares_one_allocation_among_thousands_of_packets() {
    use media_node::media::extensions::SendTime;
    const PACKETS: u16 = 10_000;
    let epoch = std::time::Instant::now();
    let mut stamp = SendTime::new(epoch);
    stamp.bind(0x5000, 3);
    let payload = bytes::Bytes::from(vec![0x55u8; 1200]);
    // As the TWCC sender would have them after it: room in the extension list.
    let mut packets: Vec<rtp::Packet> = (0..PACKETS)
        .map(|seq| {
            let mut p = browser_packet(seq, &payload);
            p.header.ssrc = 0x5000;
            relay(&mut p, &ExtensionIds::default());
            p.header.extensions.reserve(4);
            p
        })
        .collect();
    ALLOCATIONS.with(|a| a.set(0));
    COUNTING.with(|c| c.set(true));
    for (i, p) in packets.iter_mut().enumerate() {
        stamp.outgoing(p, epoch + std::time::Duration::from_millis(i as u64));
    }
    COUNTING.with(|c| c.set(false));
    let per_packet = ALLOCATIONS.with(Cell::get) as f64 / f64::from(PACKETS);
    assert!(packets.iter().all(|p| p.header.get_extension(3).is_some_and(|b| b.len() == 3)), "every packet stamped");
    // One slab per 4096 stamps.
    assert!(per_packet <= 0.001, "{per_packet} allocations per stamped packet");
}
