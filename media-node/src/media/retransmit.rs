//! Answers a subscriber's NACKs from what each of its streams sent in its last RTT + 100 ms
//! (`send_history.rs`), on RTX when negotiated.
//!
//! The sender reports going out pass this interceptor (it sits nearer the wire than the one that
//! makes them) and the receiver reports answering them come back through it: each stream's
//! history times its own RTT from the two. The `min_nack_queue` knob is the shortest window, read
//! at each report; with `nack_optimizations` a keyframe sent empties its stream's history.
//!
//! Sans-IO: every call takes the time; [`super::tap::Tap`] does the interceptor's queueing.

use super::codec::VideoCodec;
use super::send_history::History;
use super::tap::PacketTap;
use super::tuning::LiveTuning;
use rtc::interceptor::{Attribute, AttributedPacket, Packet, StreamInfo, TaggedPacket};
use rtc::rtcp::receiver_report::ReceiverReport;
use rtc::rtcp::reception_report::ReceptionReport;
use rtc::rtcp::sender_report::SenderReport;
use rtc::rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

/// Every sequence number a NACK names (each entry's packet id and its bitmask of the 16 after).
fn nacked(nack: &TransportLayerNack) -> impl Iterator<Item = u16> + '_ {
    nack.nacks.iter().flat_map(|pair| {
        std::iter::once(pair.packet_id)
            .chain((0..16u16).filter(|i| pair.lost_packets & (1 << i) != 0).map(|i| pair.packet_id.wrapping_add(i + 1)))
    })
}

/// The stream sent with `ssrc` (a PeerConnection sends few streams, so a list).
fn stream(streams: &mut [History], ssrc: u32) -> Option<&mut History> {
    streams.iter_mut().find(|h| h.ssrc() == ssrc)
}

/// The tap ([`super::tap::Tap`] makes it the interceptor): keeps what each NACK-negotiated stream sends,
/// answers NACKs for them.
#[derive(Default)]
pub struct Retransmitter {
    /// Each NACK-negotiated stream's (found by its SSRC; a PeerConnection sends few streams, so
    /// a list).
    streams: Vec<History>,
    /// Retransmissions waiting to go out.
    again: VecDeque<TaggedPacket>,
    /// `min_nack_queue` and `nack_optimizations`, read at each report and packet.
    tuning: Arc<LiveTuning>,
}

impl Retransmitter {
    pub fn new(tuning: Arc<LiveTuning>) -> Self {
        Self { tuning, ..Self::default() }
    }

    fn stream(&mut self, ssrc: u32) -> Option<&mut History> {
        stream(&mut self.streams, ssrc)
    }

    /// Reception reports about the streams sent: each one's RTT sets its window.
    fn reported(&mut self, reports: &[ReceptionReport], now: Instant) {
        let floor = self.tuning.min_nack_queue();
        for r in reports {
            if let Some(history) = self.stream(r.ssrc) {
                history.receiver_report(r.last_sender_report, r.delay, now, floor);
            }
        }
    }

    fn answer(&mut self, nack: &TransportLayerNack, now: Instant) {
        // The streams alone are borrowed: the answers go to `again` meanwhile.
        let Some(history) = stream(&mut self.streams, nack.media_ssrc) else { return };
        for seq in nacked(nack) {
            if let Some(packet) = history.retransmission(seq, now) {
                self.again.push_back(TaggedPacket {
                    now,
                    transport: Default::default(),
                    message: AttributedPacket::new(Packet::Rtp(packet)).with(Attribute::Retransmission),
                });
            }
        }
    }
}

impl PacketTap for Retransmitter {
    fn read(&mut self, msg: &mut TaggedPacket) -> bool {
        if let Packet::Rtcp(packets) = &msg.message.packet {
            for p in packets {
                let any = p.as_any();
                if let Some(nack) = any.downcast_ref::<TransportLayerNack>() {
                    self.answer(nack, msg.now);
                } else if let Some(rr) = any.downcast_ref::<ReceiverReport>() {
                    self.reported(&rr.reports, msg.now);
                } else if let Some(sr) = any.downcast_ref::<SenderReport>() {
                    self.reported(&sr.reports, msg.now);
                }
            }
        }
        true
    }

    fn write(&mut self, msg: &mut TaggedPacket) -> bool {
        match &msg.message.packet {
            Packet::Rtp(p) => {
                let optimized = self.tuning.nack_optimizations();
                if let Some(history) = self.stream(p.header.ssrc) {
                    if optimized {
                        history.sent_optimized(p, msg.now);
                    } else {
                        history.sent(p, msg.now);
                    }
                }
            }
            Packet::Rtcp(packets) => {
                for sr in packets.iter().filter_map(|p| p.as_any().downcast_ref::<SenderReport>()) {
                    if let Some(history) = self.stream(sr.ssrc) {
                        history.sender_report(sr.ntp_time, msg.now);
                    }
                }
            }
            _ => {}
        }
        true
    }

    fn poll_own(&mut self) -> Option<TaggedPacket> {
        self.again.pop_front()
    }

    fn bind_local(&mut self, info: &StreamInfo) {
        let nack = info.rtcp_feedback.iter().any(|fb| fb.typ == "nack" && fb.parameter.is_empty());
        if nack {
            self.streams.retain(|h| h.ssrc() != info.ssrc);
            let rtx = info.ssrc_rtx.zip(info.payload_type_rtx);
            let codec =
                info.mime_type.strip_prefix("video/").and_then(|c| VideoCodec::from_name(&c.to_ascii_lowercase()));
            self.streams.push(History::new(info.ssrc, rtx).of_codec(codec));
        }
    }

    fn unbind_local(&mut self, info: &StreamInfo) {
        self.streams.retain(|h| h.ssrc() != info.ssrc);
    }
}

#[cfg(test)]
mod tests {
    use super::super::send_history::test_packets::{packet, FLOOR};
    use super::*;
    use rtc::rtcp::transport_feedbacks::transport_layer_nack::NackPair;
    use std::time::Duration;

    /// The interceptor with one NACK-negotiated VP8 stream sent, SSRC 7, under `tuning`.
    fn interceptor_with(tuning: Arc<LiveTuning>) -> super::super::tap::Tap<Retransmitter> {
        use rtc::interceptor::{Interceptor, RTCPFeedback};
        let mut r = super::super::tap::Tap::new(Retransmitter::new(tuning));
        let info = StreamInfo {
            ssrc: 7,
            mime_type: "video/VP8".into(),
            rtcp_feedback: vec![RTCPFeedback { typ: "nack".into(), parameter: String::new() }],
            ..Default::default()
        };
        r.bind_local_stream(&info);
        r
    }

    fn interceptor() -> super::super::tap::Tap<Retransmitter> {
        interceptor_with(Arc::default())
    }

    /// The interceptor's stream's RTT measured as 30 ms, on a sender report whose NTP time's
    /// middle bits are `lsr`.
    fn thirty_ms_of_rtt(r: &mut super::super::tap::Tap<Retransmitter>, t: Instant, lsr: u32) {
        use rtc::sansio::Protocol;
        let sr = SenderReport { ssrc: 7, ntp_time: u64::from(lsr) << 16, ..Default::default() };
        r.handle_write(tagged(Packet::Rtcp(vec![Box::new(sr)]), t)).unwrap();
        let report = ReceptionReport { ssrc: 7, last_sender_report: lsr, delay: 0, ..Default::default() };
        let rr = ReceiverReport { ssrc: 1, reports: vec![report], ..Default::default() };
        r.handle_read(tagged(Packet::Rtcp(vec![Box::new(rr)]), t + Duration::from_millis(30))).unwrap();
    }

    #[test]
    fn the_shortest_window_is_the_min_nack_queue_knob_as_it_is_at_each_report() {
        let t = Instant::now();
        let tuning = LiveTuning::new(shared::tuning::Tuning::default());
        let mut r = interceptor_with(tuning.clone());
        tuning.turn(shared::tuning::Knob::MinNackQueue(200));
        thirty_ms_of_rtt(&mut r, t, 0xBBBB_CCCC);
        assert_eq!(r.tap.streams[0].keep(), Duration::from_millis(200), "30 + 100 ms, below the floor of 200");
        tuning.turn(shared::tuning::Knob::MinNackQueue(0));
        thirty_ms_of_rtt(&mut r, t + Duration::from_secs(1), 0xBBBB_DDDD);
        // Smoothed: (7 × 200 + 130) / 8 ms.
        assert_eq!(r.tap.streams[0].keep(), Duration::from_micros(191_250));
    }

    #[test]
    fn with_nack_optimizations_a_keyframe_sent_empties_the_history() {
        use rtc::sansio::Protocol;
        let t = Instant::now();
        let vp8 = |seq: u16, keyframe: bool| {
            let mut p = packet(seq);
            p.payload = bytes::Bytes::from(vec![0x10, u8::from(!keyframe), 0, 0]);
            Packet::Rtp(p)
        };
        let nack = |seq: u16| {
            let pair =
                rtc::rtcp::transport_feedbacks::transport_layer_nack::NackPair { packet_id: seq, lost_packets: 0 };
            Packet::Rtcp(vec![Box::new(TransportLayerNack { media_ssrc: 7, nacks: vec![pair], ..Default::default() })])
        };
        let tuning = LiveTuning::new(shared::tuning::Tuning::default());
        let mut r = interceptor_with(tuning.clone());
        let answered = |r: &mut super::super::tap::Tap<Retransmitter>, seq: u16| {
            r.handle_read(tagged(nack(seq), t)).unwrap();
            std::iter::from_fn(|| r.poll_write()).count()
        };
        for (seq, keyframe) in [(1, false), (2, true), (3, false)] {
            r.handle_write(tagged(vp8(seq, keyframe), t)).unwrap();
        }
        while r.poll_write().is_some() {}
        assert_eq!(answered(&mut r, 1), 1, "off (the default): what came before a keyframe is kept");
        tuning.turn(shared::tuning::Knob::NackOptimizations(true));
        r.handle_write(tagged(vp8(4, true), t)).unwrap();
        r.handle_write(tagged(vp8(5, false), t)).unwrap();
        while r.poll_write().is_some() {}
        assert_eq!((answered(&mut r, 3), answered(&mut r, 4), answered(&mut r, 5)), (0, 1, 1));
    }

    fn tagged(p: Packet, now: Instant) -> TaggedPacket {
        TaggedPacket { now, transport: Default::default(), message: AttributedPacket::new(p) }
    }

    #[test]
    fn the_interceptor_times_the_round_trip_of_its_own_sender_reports() {
        let t = Instant::now();
        let mut r = interceptor();
        thirty_ms_of_rtt(&mut r, t, 0xBBBB_CCCC);
        assert_eq!(r.tap.streams[0].keep(), FLOOR);
    }

    #[test]
    fn a_nack_names_its_packet_and_the_ones_its_bitmask_marks() {
        let nack = TransportLayerNack {
            sender_ssrc: 1,
            media_ssrc: 7,
            nacks: vec![NackPair { packet_id: 65535, lost_packets: 0b101 }],
        };
        assert_eq!(nacked(&nack).collect::<Vec<_>>(), [65535, 0, 2]);
    }

    #[test]
    fn the_interceptor_answers_a_nack_for_its_stream_only() {
        use rtc::sansio::Protocol;
        let t = Instant::now();
        let mut r = interceptor();
        for seq in 0..5 {
            r.handle_write(tagged(Packet::Rtp(packet(seq)), t)).unwrap();
        }
        assert_eq!(std::iter::from_fn(|| r.poll_write()).count(), 5, "what is written goes on");
        let nack = |ssrc| {
            let n = TransportLayerNack {
                sender_ssrc: 1,
                media_ssrc: ssrc,
                nacks: vec![NackPair { packet_id: 1, lost_packets: 0b10 }],
            };
            tagged(Packet::Rtcp(vec![Box::new(n)]), t + Duration::from_millis(50))
        };
        r.handle_read(nack(8)).unwrap();
        assert!(r.poll_write().is_none(), "another stream's NACK");
        r.handle_read(nack(7)).unwrap();
        assert!(r.poll_read().is_some() && r.poll_read().is_some(), "the NACKs go on to the application");
        let again: Vec<_> = std::iter::from_fn(|| r.poll_write()).collect();
        let seqs: Vec<u16> = again
            .iter()
            .map(|m| match &m.message.packet {
                Packet::Rtp(p) => p.header.sequence_number,
                _ => panic!("RTP expected"),
            })
            .collect();
        assert_eq!(seqs, [1, 3]);
        assert!(again.iter().all(|m| m.message.attributes.iter().any(|a| matches!(a, Attribute::Retransmission))));
    }
}
