//! A subscriber stream's RTP sequence numbers and timestamps, made continuous across the gaps
//! Portunus makes, per packet per subscriber (no clock read, no allocation on the way).

use rtc::rtp;
use std::time::Instant;

/// A subscriber stream's sequence numbers and timestamps: continuous across the gaps Portunus
/// makes (a pause, a slow subscriber's dropped packets, the wait for a keyframe), so the
/// subscriber's jitter buffer sees one unbroken stream, while a gap the publisher's network
/// made stays a gap the subscriber can NACK. After a gap of ours the timestamp advances by the
/// time the gap lasted (Janus's switching context does the same). The clock is read only where
/// a gap starts and ends, never per forwarded packet.
pub struct Rewriter {
    clock_rate: u32,
    /// The least a gap of ours advances the timestamp (20 ms): a seamless switch has no gap in
    /// time, but the new source's first packet must not share the previous frame's timestamp.
    min_step: u32,
    seq_offset: u16,
    ts_offset: u32,
    /// The newest packet sent: (sequence number, timestamp).
    last: Option<(u16, u32)>,
    /// The source's sequence number that began the current run (after the last gap of ours):
    /// an older packet (a late retransmission from before the gap) would take a number already
    /// used, and precedes the keyframe this run started on, so it is not sent. It follows the
    /// run at `RESTART_BEHIND` behind its newest packet: a floor left at the run's start would be
    /// "ahead" in modulo-2^16 order once the run had gone half the sequence space past it, and
    /// every packet from then on would be refused.
    floor: Option<u16>,
    /// When the current gap of ours began, if one is open.
    gap_from: Option<Instant>,
    /// The source's SSRC: another one (a publisher's encoder restarted, say) numbers and clocks
    /// its packets afresh, so its first packet begins a run as after a gap of ours (Janus's
    /// switching context does the same on an SSRC change).
    source: Option<u32>,
    /// The newest source sequence number of the run. A packet more than `RESTART_BEHIND`
    /// behind it (or, the same in modulo-2^16 order, more than half the space ahead) is no late
    /// packet, since nothing is retransmitted seconds late, but a source that started over
    /// under the same SSRC (a remote publisher's sender recreated, numbering afresh): it begins
    /// a run too. One that starts over closer behind is refused until its numbers pass the old
    /// newest, as a late packet would be.
    newest: Option<u16>,
}

/// How far behind the run's newest source packet a packet must be to mean its source started
/// over (8 s of video at 1,000 packets a second), and so how far the floor trails: nothing
/// further behind is held to it.
const RESTART_BEHIND: u16 = 0x2000;

impl Rewriter {
    pub fn new(clock_rate: u32) -> Self {
        Self {
            clock_rate,
            min_step: (clock_rate / 50).max(1),
            seq_offset: 0,
            ts_offset: 0,
            last: None,
            floor: None,
            gap_from: None,
            source: None,
            newest: None,
        }
    }

    /// A packet of the source is left out on purpose (a temporal layer above the target): the
    /// next one takes its sequence number, so the subscriber sees no loss to NACK.
    pub fn skip(&mut self) {
        self.seq_offset = self.seq_offset.wrapping_sub(1);
    }

    /// A gap of ours begins now: `now` is asked for only if none is open already (a stream
    /// held closed calls this for every packet it drops).
    pub fn open_gap(&mut self, now: impl FnOnce() -> Instant) {
        if self.gap_from.is_none() {
            self.gap_from = Some(now());
        }
    }

    /// Rewrites `packet`, still carrying its source's SSRC; `now` is asked for only when the
    /// packet ends a gap. `false`: the packet predates the current run and must not be sent.
    #[must_use]
    pub fn rewrite(&mut self, packet: &mut rtp::Packet, now: impl FnOnce() -> Instant) -> bool {
        let h = &mut packet.header;
        let seq = h.sequence_number;
        let started_over = self.newest.is_some_and(|n| (RESTART_BEHIND + 1..0x8000).contains(&n.wrapping_sub(seq)));
        let new_source = self.source.replace(h.ssrc).is_some_and(|s| s != h.ssrc) || started_over;
        if new_source || self.newest.is_none_or(|n| (seq.wrapping_sub(n) as i16) > 0) {
            self.newest = Some(seq);
        }
        match self.floor {
            // Within a run: older than its first packet is from before it.
            Some(f) if self.gap_from.is_none() && !new_source => {
                let ahead = h.sequence_number.wrapping_sub(f);
                if (ahead as i16) < 0 {
                    return false;
                }
                if ahead > RESTART_BEHIND {
                    self.floor = Some(h.sequence_number.wrapping_sub(RESTART_BEHIND));
                }
            }
            // The first packet, or the one ending a gap, begins a run.
            _ => self.floor = Some(h.sequence_number),
        }
        // The time a gap of ours lasted; a new source without one continues at once (the clock
        // is not read per packet, so the least step stands for the time since the last).
        let gap = match self.gap_from.take() {
            Some(from) => Some(now().saturating_duration_since(from)),
            None => new_source.then_some(std::time::Duration::ZERO),
        };
        if let (Some(gap), Some((seq, ts))) = (gap, self.last) {
            let ticks = (gap.as_secs_f64() * f64::from(self.clock_rate)) as u32;
            self.seq_offset = seq.wrapping_add(1).wrapping_sub(h.sequence_number);
            self.ts_offset = ts.wrapping_add(ticks.max(self.min_step)).wrapping_sub(h.timestamp);
        }
        h.sequence_number = h.sequence_number.wrapping_add(self.seq_offset);
        h.timestamp = h.timestamp.wrapping_add(self.ts_offset);
        // A reordered (older) packet does not move the sequence back.
        let newer = self.last.is_none_or(|(seq, _)| (h.sequence_number.wrapping_sub(seq) as i16) > 0);
        if newer {
            self.last = Some((h.sequence_number, h.timestamp));
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn packet(seq: u16, ts: u32) -> rtp::Packet {
        rtp::Packet {
            header: rtp::header::Header { sequence_number: seq, timestamp: ts, ..Default::default() },
            ..Default::default()
        }
    }

    fn out(r: &mut Rewriter, seq: u16, ts: u32, at: Instant) -> (u16, u32) {
        out_of(r, 0, seq, ts, at)
    }

    /// [`out`] for a packet of source `ssrc`.
    fn out_of(r: &mut Rewriter, ssrc: u32, seq: u16, ts: u32, at: Instant) -> (u16, u32) {
        let mut p = packet(seq, ts);
        p.header.ssrc = ssrc;
        assert!(r.rewrite(&mut p, || at), "{ssrc:x}/{seq} sent");
        (p.header.sequence_number, p.header.timestamp)
    }

    #[test]
    fn a_late_packet_from_before_the_run_is_not_sent() {
        let t = Instant::now();
        let mut r = Rewriter::new(90_000);
        // The stream starts at 26 (a keyframe); the publisher's repaired 23 comes in late.
        out(&mut r, 26, 0, t);
        out(&mut r, 27, 3000, t);
        assert!(!r.rewrite(&mut packet(23, 0), || t), "from before the stream began");
        // After a gap of ours (a switch) the run begins again, and so does the floor.
        r.open_gap(|| t);
        assert_eq!(out(&mut r, 900, 50_000, t).0, 28);
        assert!(!r.rewrite(&mut packet(27, 6000), || t), "from before the switch: 28 is taken");
        assert_eq!(out(&mut r, 901, 53_000, t).0, 29);
    }

    #[test]
    fn an_unbroken_stream_passes_unchanged_and_keeps_the_publishers_own_gaps() {
        let t = Instant::now();
        let mut r = Rewriter::new(90_000);
        assert_eq!(out(&mut r, 100, 9000, t), (100, 9000));
        assert_eq!(out(&mut r, 101, 12000, t), (101, 12000));
        // Lost on the publisher's side: the subscriber must see the hole to NACK it.
        assert_eq!(out(&mut r, 104, 21000, t), (104, 21000));
    }

    #[test]
    fn after_a_gap_of_ours_the_sequence_continues_and_time_advances() {
        let t = Instant::now();
        let mut r = Rewriter::new(90_000);
        assert_eq!(out(&mut r, 65535, 1000, t), (65535, 1000));
        // Paused for 2 s while the publisher went on to 500 / 181000.
        r.open_gap(|| t);
        assert_eq!(out(&mut r, 500, 181_000, t + Duration::from_secs(2)), (0, 1000 + 180_000));
        assert_eq!(out(&mut r, 501, 184_000, t + Duration::from_secs(2)), (1, 184_000));
    }

    #[test]
    fn a_late_packet_does_not_pull_the_sequence_back() {
        let t = Instant::now();
        let mut r = Rewriter::new(48_000);
        out(&mut r, 10, 0, t);
        out(&mut r, 12, 1920, t);
        assert_eq!(out(&mut r, 11, 960, t), (11, 960), "reordered: passed through");
        r.open_gap(|| t);
        assert_eq!(out(&mut r, 40, 99_999, t).0, 13, "continues after the newest, not the late one");
    }

    #[test]
    fn a_dropped_temporal_layer_leaves_no_hole_in_the_sequence() {
        let t = Instant::now();
        let mut r = Rewriter::new(90_000);
        assert_eq!(out(&mut r, 10, 0, t).0, 10);
        r.skip(); // 11 left out on purpose
        assert_eq!(out(&mut r, 12, 6000, t).0, 11);
        assert_eq!(out(&mut r, 13, 9000, t).0, 12);
    }

    #[test]
    fn an_unbroken_stream_runs_past_the_whole_sequence_space() {
        let t = Instant::now();
        let mut r = Rewriter::new(90_000);
        // Three times round the sequence space (3 hours of audio, 4 minutes of video each time
        // round): every packet goes out, numbered as it came.
        for i in 0..3 * 65_536u32 {
            let seq = (1000 + i) as u16;
            assert_eq!(out(&mut r, seq, i * 3000, t).0, seq, "packet {i} of the run");
        }
        // A late one from well inside the run still passes.
        let newest = (1000 + 3 * 65_536u32 - 1) as u16;
        assert!(r.rewrite(&mut packet(newest.wrapping_sub(500), 0), || t));
    }

    #[test]
    fn another_source_ssrc_continues_the_sequence_whatever_its_numbers() {
        let t = Instant::now();
        let mut r = Rewriter::new(90_000);
        let mut from = |ssrc: u32, seq: u16, ts: u32| out_of(&mut r, ssrc, seq, ts, t);
        assert_eq!(from(0xA, 100, 9000), (100, 9000));
        assert_eq!(from(0xA, 101, 12_000), (101, 12_000));
        // The publisher's encoder starts over under a new SSRC, numbered half the sequence
        // space away (before the run's floor in modulo-2^16 order): it goes on from 102, one
        // least step (20 ms) later.
        assert_eq!(from(0xB, 101u16.wrapping_add(40_000), 777), (102, 12_000 + 1800));
        assert_eq!(from(0xB, 101u16.wrapping_add(40_001), 3777), (103, 12_000 + 1800 + 3000));
    }

    #[test]
    fn a_source_that_starts_over_under_its_ssrc_continues_the_sequence() {
        let t = Instant::now();
        let mut r = Rewriter::new(90_000);
        assert_eq!(out(&mut r, 5000, 0, t), (5000, 0));
        assert_eq!(out(&mut r, 5001, 3000, t), (5001, 3000));
        // A late packet stays refused; one far behind is the source starting over.
        assert!(!r.rewrite(&mut packet(4990, 0), || t), "late, from before the run");
        assert_eq!(out(&mut r, 5001u16.wrapping_sub(9000), 50, t), (5002, 3000 + 1800));
        assert_eq!(out(&mut r, 5002u16.wrapping_sub(9000), 3050, t), (5003, 3000 + 1800 + 3000));
        // Forward by more than half the sequence space is the same as behind.
        assert_eq!(out(&mut r, 5002u16.wrapping_sub(9000).wrapping_add(40_000), 99, t), (5004, 7800 + 1800));
    }
}
