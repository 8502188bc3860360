//! A subscriber stream's decisions, driven by hand: packets, verdicts and time in, nothing
//! slept.

use super::*;
use crate::media::feed::KEYFRAME_REQUEST_INTERVAL;
use crate::media::gop::tests::vp8;
use crate::media::preroll::SETTLE;
use std::time::Duration;

const SSRC: u32 = 0xAB;

fn open() -> Verdict {
    Verdict::Open(Negotiated { payload_type: 100, extensions: ExtensionIds::default() })
}

fn stream(codec: Option<VideoCodec>, layers: usize, target: LayerTarget, t0: Instant) -> Outgoing {
    let settings = Settings { ssrc: SSRC, clock_rate: 90_000, codec, target, delay: None };
    Outgoing::new(settings, Source { layers, svc: false }, [None; 3], t0)
}

fn video(layers: usize, t0: Instant) -> Outgoing {
    stream(Some(VideoCodec::Vp8), layers, LayerTarget::default(), t0)
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A one-packet VP8 frame of temporal layer `tid`.
fn vp8_tid(seq: u16, ts: u32, key: bool, tid: u8) -> rtp::Packet {
    let mut p = vp8(seq, ts, key);
    p.payload = bytes::Bytes::from(vec![0x90, 0x20, tid << 6, if key { 0x00 } else { 0x01 }, 0, 0]);
    p
}

fn effects(o: &mut Outgoing) -> Vec<Effect> {
    std::iter::from_fn(|| o.poll_effect()).collect()
}

/// The sequence number and timestamp sent, or `None` if nothing was.
#[track_caller]
fn sent(d: Decision) -> Option<(u16, u32)> {
    match d {
        Decision::Send(p) => {
            assert_eq!((p.header.ssrc, p.header.payload_type), (SSRC, 100), "rewritten for the subscriber");
            Some((p.header.sequence_number, p.header.timestamp))
        }
        Decision::Hold => None,
        Decision::Reseed(_) => panic!("unexpected reseed"),
    }
}

#[test]
fn video_waits_for_a_keyframe_asking_once_per_request_interval() {
    let t0 = Instant::now();
    let mut o = video(1, t0);
    assert_eq!(sent(o.packet(From::Current, vp8(1, 0, false), open(), || t0)), None);
    assert_eq!(effects(&mut o), [Effect::Keyframe(0)]);
    assert_eq!(sent(o.packet(From::Current, vp8(2, 3000, false), open(), || t0 + ms(100))), None);
    assert_eq!(effects(&mut o), [], "asked again only after the interval");
    let later = t0 + KEYFRAME_REQUEST_INTERVAL;
    assert_eq!(sent(o.packet(From::Current, vp8(3, 6000, false), open(), || later)), None);
    assert_eq!(effects(&mut o), [Effect::Keyframe(0)]);
    assert_eq!(sent(o.packet(From::Current, vp8(4, 9000, true), open(), || later)), Some((4, 9000)));
    assert_eq!(sent(o.packet(From::Current, vp8(5, 12000, false), open(), || later)), Some((5, 12000)));
    assert_eq!(effects(&mut o), []);
}

#[test]
fn audio_neither_waits_nor_keeps() {
    let t0 = Instant::now();
    let mut o = stream(None, 1, LayerTarget::default(), t0);
    assert_eq!(sent(o.packet(From::Current, vp8(1, 0, false), Verdict::NoAnswer, || t0)), None);
    assert!(!o.has_kept());
    assert_eq!(sent(o.packet(From::Current, vp8(2, 960, false), open(), || t0)), Some((2, 960)));
    assert_eq!(effects(&mut o), []);
}

#[test]
fn what_was_kept_while_connecting_goes_out_after_the_settle_time_then_the_live_stream_goes_on() {
    let t0 = Instant::now();
    let mut o = video(1, t0);
    assert_eq!(sent(o.packet(From::Current, vp8(0, 0, false), Verdict::Connecting, || t0)), None);
    assert_eq!(effects(&mut o), [Effect::Keyframe(0)], "nothing kept: a keyframe is asked for at once");
    assert_eq!(sent(o.packet(From::Current, vp8(1, 3000, true), Verdict::Connecting, || t0)), None);
    assert_eq!(sent(o.packet(From::Current, vp8(2, 6000, false), Verdict::Connecting, || t0)), None);
    assert_eq!(effects(&mut o), [], "a keyframe kept: nothing more to ask");
    assert!(o.has_kept());
    assert!(matches!(o.poll_kept(|| Verdict::Connecting, || t0), Kept::None), "not before DTLS is up");
    let up = t0 + ms(50);
    assert!(matches!(o.poll_kept(open, || up), Kept::At(at) if at == up + SETTLE));
    assert!(matches!(o.poll_kept(open, || up + ms(10)), Kept::At(at) if at == up + SETTLE));
    let mut out = Vec::new();
    while let Kept::Packet(p) = o.poll_kept(open, || up + SETTLE) {
        out.push(sent(o.packet(From::Kept, p, open(), || up + SETTLE)));
    }
    assert_eq!(out, [Some((1, 3000)), Some((2, 6000))], "the kept group, with its own timestamps");
    assert!(!o.has_kept());
    assert_eq!(sent(o.packet(From::Current, vp8(3, 9000, false), open(), || up + SETTLE)), Some((3, 9000)));
}

#[test]
fn a_stream_open_again_after_a_pause_starts_from_the_kept_group_its_time_advanced_by_the_pause() {
    let t0 = Instant::now();
    let mut o = video(1, t0);
    assert_eq!(sent(o.packet(From::Current, vp8(10, 0, true), open(), || t0)), Some((10, 0)));
    assert_eq!(sent(o.packet(From::Current, vp8(11, 3000, false), open(), || t0)), Some((11, 3000)));
    let paused = t0 + Duration::from_secs(1);
    assert_eq!(sent(o.packet(From::Current, vp8(12, 6000, false), Verdict::Closed, || paused)), None);
    // Open again 2 s later, on a packet the layer's kept group also holds.
    let resumed = paused + Duration::from_secs(2);
    let Decision::Reseed(p) = o.packet(From::Current, vp8(70, 183_000, false), open(), || resumed) else {
        panic!("open again: the stream asks to be seeded");
    };
    o.seed(vec![vp8(69, 180_000, true), p]);
    assert!(matches!(o.poll_kept(open, || resumed), Kept::At(_)));
    let go = resumed + SETTLE;
    let mut out = Vec::new();
    while let Kept::Packet(p) = o.poll_kept(open, || go) {
        out.push(sent(o.packet(From::Kept, p, open(), || go)));
    }
    // 3000 + 2.02 s at 90 kHz: the pause's time, counted from its first dropped packet.
    let ts = 3000 + 181_800;
    assert_eq!(out, [Some((12, ts)), Some((13, ts + 3000))], "sequence unbroken, time advanced");
    assert_eq!(sent(o.packet(From::Current, vp8(70, 183_000, false), open(), || go)), None, "already sent");
    assert_eq!(sent(o.packet(From::Current, vp8(71, 186_000, false), open(), || go)), Some((14, ts + 6000)));
}

#[test]
fn a_simulcast_stream_falls_back_at_the_lower_layers_keyframe_without_a_hole() {
    let t0 = Instant::now();
    let mut o = video(3, t0);
    assert_eq!(o.current_layer(), 2, "the target: the highest layer");
    assert_eq!(sent(o.packet(From::Current, vp8(100, 0, true), open(), || t0)), Some((100, 0)));
    assert_eq!(effects(&mut o), [Effect::Layer { substream: Some(2), temporal: None }]);
    // The top layer goes silent: within its 250 ms fallback, nothing moves yet.
    o.set_silence([None, None, Some(t0)], t0 + ms(100));
    assert_eq!(effects(&mut o), []);
    assert_eq!(o.recheck_at(), Some(t0 + ms(250)));
    o.reconsider(t0 + ms(250));
    assert_eq!(effects(&mut o), [Effect::Pending(Some(1)), Effect::Keyframe(1)]);
    let at = t0 + ms(300);
    assert_eq!(sent(o.packet(From::Pending, vp8(500, 5000, false), open(), || at)), None, "not at a delta frame");
    assert_eq!(effects(&mut o), []);
    // The lower layer's keyframe takes over: its own numbering, rewritten to follow on.
    assert_eq!(sent(o.packet(From::Pending, vp8(501, 30_000, true), open(), || at)), Some((101, 1800)));
    assert_eq!(o.current_layer(), 1);
    assert_eq!(effects(&mut o), [Effect::Promoted(1), Effect::Layer { substream: Some(1), temporal: None }]);
    assert_eq!(sent(o.packet(From::Current, vp8(502, 33_000, false), open(), || at)), Some((102, 4800)));
    // The top layer flows again: back up, at its keyframe.
    o.set_silence([None; 3], at);
    assert_eq!(effects(&mut o), [Effect::Pending(Some(2)), Effect::Keyframe(2)]);
}

#[test]
fn temporal_layers_above_the_target_are_left_out_without_a_hole() {
    let t0 = Instant::now();
    let target = LayerTarget { temporal: 0, ..LayerTarget::default() };
    let mut o = stream(Some(VideoCodec::Vp8), 3, target, t0);
    assert_eq!(sent(o.packet(From::Current, vp8_tid(1, 0, true, 0), open(), || t0)), Some((1, 0)));
    assert_eq!(
        effects(&mut o),
        [Effect::Layer { substream: Some(2), temporal: None }, Effect::Layer { substream: None, temporal: Some(0) }]
    );
    assert_eq!(sent(o.packet(From::Current, vp8_tid(2, 3000, false, 1), open(), || t0)), None);
    assert_eq!(sent(o.packet(From::Current, vp8_tid(3, 6000, false, 0), open(), || t0)), Some((2, 6000)));
    // Asked for all temporal layers: from the first packet of the top one on, all go out.
    o.set_target(LayerTarget::default(), t0);
    assert_eq!(sent(o.packet(From::Current, vp8_tid(4, 9000, false, 2), open(), || t0)), Some((3, 9000)));
    assert_eq!(effects(&mut o)[1..], [Effect::Layer { substream: None, temporal: Some(2) }]);
    assert_eq!(sent(o.packet(From::Current, vp8_tid(5, 12000, false, 1), open(), || t0)), Some((4, 12000)));
}

#[test]
fn a_slow_stream_starts_over_at_a_keyframe_its_sequence_unbroken() {
    let t0 = Instant::now();
    let mut o = video(1, t0);
    assert_eq!(sent(o.packet(From::Current, vp8(1, 0, true), open(), || t0)), Some((1, 0)));
    o.lagged(40, || t0 + ms(10));
    assert_eq!(sent(o.packet(From::Current, vp8(42, 120_000, false), open(), || t0 + ms(10))), None);
    assert_eq!(effects(&mut o), [Effect::Keyframe(0)]);
    let t1 = t0 + ms(500);
    assert_eq!(sent(o.packet(From::Current, vp8(43, 123_000, true), open(), || t1)), Some((2, 44_100)));
}

#[test]
fn a_switch_starts_the_new_source_from_its_kept_keyframe_the_sequence_going_on() {
    let t0 = Instant::now();
    let mut o = video(1, t0);
    assert_eq!(sent(o.packet(From::Current, vp8(1, 0, true), open(), || t0)), Some((1, 0)));
    let t1 = t0 + ms(40);
    o.switch(Source { layers: 1, svc: false }, [None; 3], || t1);
    o.seed(vec![vp8(900, 50_000, true)]);
    assert_eq!(sent(o.packet(From::Current, vp8(900, 50_000, true), open(), || t1)), None, "kept first");
    assert!(matches!(o.poll_kept(open, || t1), Kept::At(at) if at == t1 + SETTLE));
    let go = t1 + SETTLE;
    let Kept::Packet(p) = o.poll_kept(open, || go) else { panic!("the kept keyframe goes out") };
    assert_eq!(sent(o.packet(From::Kept, p, open(), || go)), Some((2, 1800)));
    assert_eq!(sent(o.packet(From::Current, vp8(901, 53_000, false), open(), || go)), Some((3, 4800)));
}

#[test]
fn a_detached_stream_takes_no_layer_of_its_old_source_again() {
    let t0 = Instant::now();
    let mut o = video(3, t0);
    o.set_silence([None, None, Some(t0)], t0 + ms(300));
    assert_eq!(effects(&mut o), [Effect::Pending(Some(1)), Effect::Keyframe(1)]);
    assert_eq!(sent(o.packet(From::Pending, vp8(1, 0, true), open(), || t0 + ms(300))), Some((1, 0)));
    assert_eq!(o.current_layer(), 1);
    effects(&mut o);
    o.detach(|| t0 + ms(300));
    o.set_silence([None; 3], t0 + ms(400));
    o.reconsider(t0 + ms(400));
    assert_eq!(effects(&mut o), []);
}

#[test]
fn an_overlap_drops_what_the_kept_group_had_until_the_first_newer_packet() {
    let mut o = Overlap(Some(10));
    assert!(o.repeats(9) && o.repeats(10), "in the kept group");
    assert!(!o.repeats(11), "newer: sent");
    assert!(!o.repeats(10), "a late retransmission after the overlap ended is not ours to drop");
    let mut o = Overlap(Some(65_535));
    assert!(o.repeats(65_530));
    assert!(!o.repeats(0), "newer across the wrap");
    assert!(!Overlap(None).repeats(1), "nothing kept, nothing repeated");
}

#[test]
fn a_kept_group_too_long_to_go_out_whole_goes_as_its_keyframe_then_the_stream_waits_for_a_fresh_one() {
    let t0 = Instant::now();
    let mut o = video(1, t0);
    // 133 ms of pictures kept, longer than a kept group may go out whole.
    o.seed(vec![vp8(1, 0, true), vp8(2, 6000, false), vp8(3, 12_000, false)]);
    assert_eq!(sent(o.packet(From::Current, vp8(4, 15_000, false), Verdict::Connecting, || t0)), None);
    assert_eq!(effects(&mut o), [Effect::Keyframe(0)], "too long: a fresh keyframe is asked for");
    assert!(matches!(o.poll_kept(open, || t0), Kept::At(_)));
    let go = t0 + SETTLE;
    let mut out = Vec::new();
    while let Kept::Packet(p) = o.poll_kept(open, || go) {
        out.push(sent(o.packet(From::Kept, p, open(), || go)));
    }
    assert_eq!(out, [Some((1, 0))], "the keyframe alone");
    assert_eq!(sent(o.packet(From::Current, vp8(5, 18_000, false), open(), || go + ms(10))), None, "waits");
    assert_eq!(effects(&mut o), [Effect::Keyframe(0)]);
    // The fresh keyframe follows on, its time advanced by the time since the kept one went.
    let fresh = go + ms(400);
    assert_eq!(sent(o.packet(From::Current, vp8(6, 21_000, true), open(), || fresh)), Some((2, 36_000)));
}
