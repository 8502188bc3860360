//! What a subscriber stream sent in its last RTT + 100 ms, kept to be sent again when the
//! subscriber asks (`retransmit.rs` answers the NACKs from it).
//!
//! Janus keeps a subscriber's sent packets for its RTT + 100 ms, between 200 ms and 1 s (a
//! NACK comes back about one RTT after the loss; older packets would arrive too late to play).
//! webrtc-rs's responder keeps a fixed number of packets whatever the rate: 512 slots are 1 s of
//! a ~4 Mbit/s stream but 4 s of a 1.5 Mbit/s one, and each kept packet pins its payload (shared
//! with every other subscriber of the publisher, so the first subscriber pays for all of them:
//! measured 1,244 KiB for the first subscriber against ~300 for each next one). Here a stream
//! keeps what it sent in its window, at most [`MAX_KEPT`] packets, so memory follows the
//! stream's rate and its RTT, and a loss older than Janus would repair is not repaired either.
//! What it sends again is budgeted by what it sent ([`RESEND_BUDGET`]), so a receiver asking
//! for everything again and again cannot make it send much more than twice its rate.
//!
//! The RTT is the stream's own, from its receiver reports: a report names the sender report it
//! answers (LSR) and how long the receiver held it (DLSR), so the RTT is when the report came
//! less when that sender report left, less DLSR; no wall clock is read. Until the first RTT the
//! window is [`KEEP_MAX`].
//!
//! Sans-IO: every call takes the time.

use super::codec::VideoCodec;
use rtc::rtp;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The longest a sent packet can be asked for again (Janus's longest NACK queue), and the
/// window before a stream's RTT is known.
pub const KEEP_MAX: Duration = Duration::from_secs(1);
/// Added to the RTT: a NACK leaves the receiver some time after the loss it reports.
const KEEP_BEYOND_RTT: Duration = Duration::from_millis(100);
/// Sender reports remembered to match receiver reports against (one goes out every second).
const REMEMBERED_REPORTS: usize = 4;

/// Room kept beyond a quarter more than the packets kept, for a frame's burst.
const ROOM_SLACK: usize = 8;

/// The most packets a stream keeps whatever its rate (~12 Mbit/s of full packets in [`KEEP_MAX`]).
pub const MAX_KEPT: usize = 1024;

/// Header extensions a kept packet carries inline: the relayed ones (audio level, video
/// orientation, playout delay) are 1-3 bytes each.
const INLINE_EXTENSIONS: usize = 3;
const INLINE_EXTENSION_BYTES: usize = 3;

/// After a packet is sent again, a NACK for it is ignored for this long (Janus's
/// `MIN_NACK_IGNORE`): a receiver that asks again before the copy could arrive, or floods
/// NACKs, gets a packet at most 25 times in a second, not once per NACK. Janus also doubles
/// the pause at each copy (up to a second); that left a packet unrepaired in 2 of 40 runs of
/// the repair test (its receiver asks every 100 ms, and a loss every 19th datagram can take
/// the copies of one packet several times in a row); with the fixed pause, none in 30.
const RESEND_PAUSE_MS: u32 = 40;

/// Retransmissions a stream may owe: it starts with [`RESEND_BUDGET_START`], earns one per
/// packet it sends, up to this many, and spends one per packet it sends again. So a receiver
/// that asks for everything over and over (the pause alone allows 25 copies of each kept packet
/// a second) gets at most as many copies as there were packets, doubling the stream's rate at
/// worst; a loss burst as long as the whole history is still repaired at once.
const RESEND_BUDGET: u32 = MAX_KEPT as u32;
/// What a stream may resend before it has earned any: a few copies of its first packets.
const RESEND_BUDGET_START: u32 = 64;

/// A packet as it went out, and when: the header's fields and the shared payload, not a clone
/// of the packet, whose extension list would be an allocation per packet per subscriber (and
/// an entry twice this size).
struct Sent {
    /// Milliseconds from the stream's first packet ([`History::epoch`]), wrapping (a window is
    /// at most a second): 4 bytes where an `Instant` is 16.
    at: Millis,
    payload: bytes::Bytes,
    timestamp: u32,
    sequence: u16,
    payload_type: u8,
    marker: bool,
    /// (id << 2 | length, bytes) of each extension, `extension_count` of them: ids below 64
    /// are kept inline (a one-byte header's are below 15), and lengths below 4.
    extensions: [(u8, [u8; INLINE_EXTENSION_BYTES]); INLINE_EXTENSIONS],
    extension_count: u8,
    /// Whether it was sent again, and when last ([`RESEND_PAUSE_MS`]).
    resent: bool,
    resent_at: Millis,
    /// A packet whose header does not fit the fields above (CSRCs, padding, more or longer
    /// extensions), kept whole; none of the node's own does.
    whole: Option<Box<rtp::Packet>>,
}

/// A time as milliseconds from a stream's first packet, wrapping after 49 days.
type Millis = u32;

/// Whether a packet sent at `at` is past a window of `keep` at `now` (both in kept time).
fn expired(keep: Duration, at: Millis, now: Millis) -> bool {
    Duration::from_millis(u64::from(now.wrapping_sub(at))) > keep
}

impl Sent {
    fn new(p: &rtp::Packet, at: Millis) -> Self {
        let h = &p.header;
        let mut sent = Sent {
            at,
            payload: p.payload.clone(),
            timestamp: h.timestamp,
            sequence: h.sequence_number,
            payload_type: h.payload_type,
            marker: h.marker,
            extensions: [(0, [0; INLINE_EXTENSION_BYTES]); INLINE_EXTENSIONS],
            extension_count: 0,
            resent: false,
            resent_at: 0,
            whole: None,
        };
        let fits = h.csrc.is_empty()
            && !h.padding
            && h.extensions.len() <= INLINE_EXTENSIONS
            && h.extensions.iter().all(|e| e.payload.len() <= INLINE_EXTENSION_BYTES && e.id < 64)
            && (h.extensions.is_empty() || h.extension_profile == rtp::header::EXTENSION_PROFILE_ONE_BYTE);
        if !fits {
            sent.whole = Some(Box::new(p.clone()));
            return sent;
        }
        for (slot, e) in sent.extensions.iter_mut().zip(&h.extensions) {
            slot.0 = e.id << 2 | e.payload.len() as u8;
            slot.1[..e.payload.len()].copy_from_slice(&e.payload);
        }
        sent.extension_count = h.extensions.len() as u8;
        sent
    }

    /// Whether a NACK at `now` may have it sent again (then counted as sent again at `now`),
    /// or it went out again too recently.
    fn may_resend(&mut self, now: Millis) -> bool {
        if self.resent && now.wrapping_sub(self.resent_at) < RESEND_PAUSE_MS {
            return false;
        }
        (self.resent, self.resent_at) = (true, now);
        true
    }

    /// The packet as it was sent, with `ssrc`.
    fn packet(&self, ssrc: u32) -> rtp::Packet {
        if let Some(p) = &self.whole {
            return (**p).clone();
        }
        let mut header = rtp::header::Header {
            version: 2,
            ssrc,
            payload_type: self.payload_type,
            sequence_number: self.sequence,
            timestamp: self.timestamp,
            marker: self.marker,
            ..Default::default()
        };
        for (id_len, bytes) in &self.extensions[..usize::from(self.extension_count)] {
            let len = usize::from(id_len & 0b11);
            let _ = header.set_extension(id_len >> 2, bytes::Bytes::copy_from_slice(&bytes[..len]));
        }
        rtp::Packet { header, payload: self.payload.clone() }
    }
}

/// How long a stream keeps what it sent for a round-trip time of `rtt`: RTT + 100 ms within
/// [`floor`, `KEEP_MAX`] (`floor`: the `min_nack_queue` knob, whose default of 500 ms rather
/// than Janus's 200 is measured: a retransmission lost too is asked for again a NACK interval or
/// two later, and with 200 ms the repair test, 12 % loss each way, left a twice-lost packet
/// unrepaired in 2 of 8 runs, with 500 ms in none of 12); [`KEEP_MAX`] while the RTT is not
/// known.
pub fn window_for(rtt: Option<Duration>, floor: Duration) -> Duration {
    rtt.map_or(KEEP_MAX, |rtt| (rtt + KEEP_BEYOND_RTT).clamp(floor.min(KEEP_MAX), KEEP_MAX))
}

/// What one sent stream keeps, oldest first, and how it retransmits.
pub struct History {
    /// The stream's SSRC (every packet kept has it).
    ssrc: u32,
    kept: VecDeque<Sent>,
    /// When the first packet was sent: what a kept packet's time counts from.
    epoch: Option<Instant>,
    /// RTX (RFC 4588): its SSRC and payload type, when negotiated; its own sequence.
    rtx: Option<(u32, u8)>,
    rtx_sequence: u16,
    /// Retransmissions it may still make ([`RESEND_BUDGET`]).
    resend_budget: u32,
    /// How long a packet is kept: RTT + 100 ms within [`window_for`]'s bounds, smoothed.
    keep: Duration,
    rtt_known: bool,
    /// The last sender reports sent: the middle 32 bits of each one's NTP time, and when it left.
    reports: [Option<(u32, Instant)>; REMEMBERED_REPORTS],
    next_report: usize,
    /// The video codec whose keyframes empty the history (`nack_optimizations`), if video.
    codec: Option<VideoCodec>,
}

impl History {
    pub fn new(ssrc: u32, rtx: Option<(u32, u8)>) -> Self {
        Self {
            ssrc,
            kept: VecDeque::new(),
            epoch: None,
            rtx,
            rtx_sequence: 0,
            resend_budget: RESEND_BUDGET_START,
            keep: window_for(None, KEEP_MAX),
            rtt_known: false,
            reports: [None; REMEMBERED_REPORTS],
            next_report: 0,
            codec: None,
        }
    }

    /// The same, for a stream of `codec` (whose keyframes `nack_optimizations` looks for).
    pub fn of_codec(self, codec: Option<VideoCodec>) -> Self {
        Self { codec, ..self }
    }

    /// Keeps `packet`, sent at `now`, after forgetting everything kept before it if it starts a
    /// keyframe (Janus's `nack_optimizations`: no packet before a keyframe is worth repairing once
    /// it is out).
    pub fn sent_optimized(&mut self, packet: &rtp::Packet, now: Instant) {
        if self.codec.is_some_and(|c| c.is_keyframe(&packet.payload)) {
            self.kept.clear();
        }
        self.sent(packet, now);
    }

    /// Keeps `packet`, sent at `now`; forgets what is older than the window or beyond [`MAX_KEPT`].
    pub fn sent(&mut self, packet: &rtp::Packet, now: Instant) {
        self.epoch.get_or_insert(now);
        self.forget(now);
        if self.kept.len() == MAX_KEPT {
            self.kept.pop_front();
        }
        let at = self.millis(now);
        self.kept.push_back(Sent::new(packet, at));
        self.resend_budget = (self.resend_budget + 1).min(RESEND_BUDGET);
    }

    /// `now` in the kept packets' time (0 before the first packet, when none is kept).
    fn millis(&self, now: Instant) -> Millis {
        self.epoch.map_or(0, |e| now.saturating_duration_since(e).as_millis() as Millis)
    }

    fn forget(&mut self, now: Instant) {
        let now = self.millis(now);
        while self.kept.front().is_some_and(|s| expired(self.keep, s.at, now)) {
            self.kept.pop_front();
        }
    }

    /// A sender report for this stream left at `now` with `ntp_time`.
    pub fn sender_report(&mut self, ntp_time: u64, now: Instant) {
        self.reports[self.next_report] = Some(((ntp_time >> 16) as u32, now));
        self.next_report = (self.next_report + 1) % REMEMBERED_REPORTS;
    }

    /// A receiver report on this stream came at `now`, answering the sender report whose NTP
    /// time's middle bits are `lsr`, held `dlsr` (1/65,536 s) by the receiver: the window
    /// becomes RTT + 100 ms (Janus: the first RTT taken as it is, then smoothed by 7/8).
    /// `floor` is the shortest window (`min_nack_queue`).
    pub fn receiver_report(&mut self, lsr: u32, dlsr: u32, now: Instant, floor: Duration) {
        if lsr == 0 {
            return; // The receiver has had no sender report yet.
        }
        let Some((_, left)) = self.reports.iter().flatten().find(|(mid, _)| *mid == lsr).copied() else { return };
        let held = Duration::from_micros(u64::from(dlsr) * 1_000_000 / 65_536);
        let rtt = now.saturating_duration_since(left).saturating_sub(held);
        let target = window_for(Some(rtt), floor);
        self.keep = if self.rtt_known { (self.keep * 7 + target) / 8 } else { target };
        self.rtt_known = true;
        self.forget(now);
        self.fit();
    }

    /// Gives back room the queue does not use: a window that shrank leaves the room of the
    /// longer one, and a queue grows by doubling. Called once per receiver report (about a
    /// second), so a burst past the room costs one reallocation per report at most.
    fn fit(&mut self) {
        let (len, room) = (self.kept.len(), self.kept.capacity());
        if room > len + len / 2 + ROOM_SLACK {
            self.kept.shrink_to(len + len / 4 + ROOM_SLACK);
        }
    }

    /// The packet sent with sequence number `seq`, if it is still kept at `now` (in kept time).
    fn find(&mut self, seq: u16, now: Millis) -> Option<&mut Sent> {
        let first = self.kept.front()?.sequence;
        // Sequence numbers go up by one per packet sent, so the offset finds it at once; a gap
        // (a stream that skipped numbers) falls back to a search.
        let guess = usize::from(seq.wrapping_sub(first));
        let i = if self.kept.get(guess).is_some_and(|s| s.sequence == seq) {
            guess
        } else {
            self.kept.iter().rposition(|s| s.sequence == seq)?
        };
        let keep = self.keep;
        self.kept.get_mut(i).filter(|s| !expired(keep, s.at, now))
    }

    /// What goes out again for a NACK of `seq` at `now`: the packet itself, or with RTX
    /// negotiated, the packet on the RTX stream (its original sequence number first); nothing
    /// when it is no longer kept, went out again too recently ([`RESEND_PAUSE_MS`]) or the
    /// stream's budget is spent ([`RESEND_BUDGET`]).
    pub fn retransmission(&mut self, seq: u16, now: Instant) -> Option<rtp::Packet> {
        if self.resend_budget == 0 {
            return None;
        }
        let packet = self.resend(seq, now)?;
        self.resend_budget -= 1;
        Some(packet)
    }

    /// [`History::retransmission`] but for the budget.
    fn resend(&mut self, seq: u16, now: Instant) -> Option<rtp::Packet> {
        let now = self.millis(now);
        let (own_ssrc, rtx, rtx_sequence) = (self.ssrc, self.rtx, self.rtx_sequence);
        let original = self.find(seq, now)?;
        if !original.may_resend(now) {
            return None;
        }
        let Some((ssrc, payload_type)) = rtx else { return Some(original.packet(own_ssrc)) };
        let mut payload = Vec::with_capacity(2 + original.payload.len());
        payload.extend_from_slice(&seq.to_be_bytes());
        payload.extend_from_slice(&original.payload);
        let header = rtp::header::Header {
            version: 2,
            ssrc,
            payload_type,
            sequence_number: rtx_sequence,
            timestamp: original.timestamp,
            marker: original.marker,
            ..Default::default()
        };
        self.rtx_sequence = rtx_sequence.wrapping_add(1);
        Some(rtp::Packet { header, payload: payload.into() })
    }

    /// The SSRC of the stream it keeps.
    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// How long a packet is kept now.
    #[cfg(test)]
    pub fn keep(&self) -> Duration {
        self.keep
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.kept.len()
    }
}

/// What these tests and the NACK responder's send.
#[cfg(test)]
pub(super) mod test_packets {
    use super::*;

    /// The default `min_nack_queue`.
    pub const FLOOR: Duration = Duration::from_millis(500);

    /// A packet of 10 bytes on SSRC 7 with sequence number `seq`.
    pub fn packet(seq: u16) -> rtp::Packet {
        let header =
            rtp::header::Header { version: 2, ssrc: 7, payload_type: 96, sequence_number: seq, ..Default::default() };
        rtp::Packet { header, payload: bytes::Bytes::from(vec![seq as u8; 10]) }
    }
}

#[cfg(test)]
mod tests {
    use super::test_packets::{packet, FLOOR};
    use super::*;

    #[test]
    fn a_packet_is_sent_again_for_a_second_and_no_longer() {
        let t = Instant::now();
        let mut h = History::new(7, None);
        h.sent(&packet(10), t);
        h.sent(&packet(11), t + Duration::from_millis(10));
        assert_eq!(h.retransmission(10, t + KEEP_MAX).map(|p| p.header.sequence_number), Some(10));
        let eleven = t + Duration::from_millis(10);
        assert!(h.retransmission(11, eleven + KEEP_MAX + Duration::from_millis(1)).is_none(), "older than the window");
        assert!(h.retransmission(12, t).is_none(), "never sent");
        // What is sent later forgets what has grown too old.
        h.sent(&packet(12), t + KEEP_MAX + Duration::from_millis(5));
        assert_eq!(h.len(), 2);
    }

    /// Packets `seqs` sent at 130 a second (1.5 Mbit/s video), the first at `from`.
    fn video(h: &mut History, seqs: std::ops::Range<u16>, from: Instant) {
        let first = seqs.start;
        for i in seqs {
            h.sent(&packet(i), from + Duration::from_micros(u64::from(i - first) * 7_692));
        }
    }

    #[test]
    fn memory_follows_the_rate_up_to_a_bound() {
        let t = Instant::now();
        let mut slow = History::new(7, None);
        // 130 packets a second (1.5 Mbit/s) for 4 s: the last second's are kept.
        video(&mut slow, 0..520, t);
        assert!((130..=132).contains(&slow.len()), "{}", slow.len());
        let mut fast = History::new(7, None);
        for i in 0..3000u16 {
            fast.sent(&packet(i), t + Duration::from_micros(u64::from(i) * 100));
        }
        assert_eq!(fast.len(), MAX_KEPT);
        assert_eq!(
            fast.retransmission(3000 - MAX_KEPT as u16, t + Duration::from_millis(300)).unwrap().header.sequence_number,
            3000 - MAX_KEPT as u16
        );
        assert!(fast.retransmission(3000 - MAX_KEPT as u16 - 1, t + Duration::from_millis(300)).is_none());
    }

    #[test]
    fn a_receiver_asking_for_everything_again_and_again_gets_as_many_copies_as_packets_sent() {
        let t = Instant::now();
        let mut h = History::new(7, None);
        // 100 packets in 0.77 s, then every one asked for every 50 ms for a second: the pause
        // alone would send each 20 times.
        video(&mut h, 0..100, t);
        let end = t + Duration::from_millis(770);
        let mut copies = 0;
        for round in 0..20u64 {
            let at = end + Duration::from_millis(50 * round);
            copies += (0..100).filter(|&seq| h.retransmission(seq, at).is_some()).count();
        }
        assert_eq!(copies, RESEND_BUDGET_START as usize + 100, "one copy per packet sent, and the start");
        // Sending earns it again.
        video(&mut h, 100..110, end + Duration::from_secs(1));
        let later = end + Duration::from_secs(2);
        assert_eq!((100..110).filter(|&seq| h.retransmission(seq, later).is_some()).count(), 10);
        assert!(h.retransmission(105, later + Duration::from_millis(100)).is_none(), "spent");
    }

    /// A sender report leaving at `at` and its receiver report coming back `rtt` later, held
    /// `held` by the receiver (each report's NTP time told apart by the RTT).
    fn round_trip(h: &mut History, at: Instant, rtt: Duration, held: Duration) {
        let ntp = 0x0000_1234_0000_0000u64 + (rtt.as_millis() as u64) * 0x1_0000;
        h.sender_report(ntp, at);
        let dlsr = (held.as_micros() * 65_536 / 1_000_000) as u32;
        h.receiver_report((ntp >> 16) as u32, dlsr, at + rtt + held, FLOOR);
    }

    #[test]
    fn the_window_is_the_rtt_and_100_ms_between_half_a_second_and_a_second() {
        let t = Instant::now();
        let mut h = History::new(7, None);
        round_trip(&mut h, t, Duration::from_millis(20), Duration::from_millis(300));
        assert_eq!(h.keep, FLOOR, "20 ms of RTT (the receiver's 300 ms of holding taken out)");
        let now = t + Duration::from_secs(1);
        h.sent(&packet(1), now);
        h.sent(&packet(2), now + Duration::from_millis(150));
        assert!(h.retransmission(1, now + FLOOR).is_some());
        assert!(h.retransmission(1, now + FLOOR + Duration::from_millis(1)).is_none(), "past the window");
        // A longer RTT widens it, smoothed by 7/8 as Janus does: 500 + (800 - 500) / 8 ms.
        round_trip(&mut h, now, Duration::from_millis(700), Duration::ZERO);
        assert_eq!(h.keep, Duration::from_micros(537_500));
        // The first RTT is taken as it is, and the window never passes a second.
        let mut far = History::new(7, None);
        round_trip(&mut far, t, Duration::from_millis(450), Duration::ZERO);
        assert_eq!(far.keep, Duration::from_millis(550));
        // 3 s of RTT counts as the 1 s ceiling: (7 × 550 + 1000) / 8 ms.
        round_trip(&mut far, t, Duration::from_secs(3), Duration::ZERO);
        assert_eq!(far.keep, Duration::from_micros(606_250));
    }

    #[test]
    fn a_report_on_an_unknown_sender_report_changes_nothing() {
        let t = Instant::now();
        let mut h = History::new(7, None);
        h.sender_report(0x0000_1234_5678_0000, t);
        h.receiver_report(0x1111_2222, 0, t + Duration::from_millis(10), FLOOR);
        h.receiver_report(0, 0, t + Duration::from_millis(10), FLOOR);
        assert_eq!(h.keep, KEEP_MAX);
    }

    #[test]
    fn a_shorter_window_gives_back_the_room_of_the_longer_one() {
        let t = Instant::now();
        let mut h = History::new(7, None);
        // A second of 1.5 Mbit/s video (130 packets a second) kept before the RTT was known.
        video(&mut h, 0..260, t);
        assert!(h.kept.capacity() >= 130);
        let now = t + Duration::from_secs(2);
        round_trip(&mut h, now - Duration::from_millis(5), Duration::from_millis(5), Duration::ZERO);
        video(&mut h, 260..520, now);
        assert!((65..=67).contains(&h.len()), "{}", h.len());
        // Room for a quarter more and a frame's burst, not the doubling's spare half.
        assert!(h.kept.capacity() <= 90, "{}", h.kept.capacity());
    }

    #[test]
    fn a_packet_goes_out_again_as_it_was_sent_extensions_and_all() {
        let t = Instant::now();
        let mut h = History::new(7, None);
        let mut relayed = packet(40);
        relayed.header.marker = true;
        relayed.header.timestamp = 123_456;
        let _ = relayed.header.set_extension(3, bytes::Bytes::from_static(&[0x81]));
        let _ = relayed.header.set_extension(6, bytes::Bytes::from_static(&[1, 2, 3]));
        // A header the inline form cannot carry: a CSRC and a long extension.
        let mut odd = packet(41);
        odd.header.csrc = vec![5];
        let _ = odd.header.set_extension(4, bytes::Bytes::from_static(&[9; 8]));
        h.sent(&relayed, t);
        h.sent(&odd, t);
        assert!(h.kept[0].whole.is_none(), "the relayed extensions are kept inline");
        let marshal = |p: &rtp::Packet| rtc::shared::marshal::Marshal::marshal(p).unwrap();
        assert_eq!(marshal(&h.retransmission(40, t).unwrap()), marshal(&relayed));
        assert_eq!(marshal(&h.retransmission(41, t).unwrap()), marshal(&odd));
    }

    #[test]
    fn a_kept_packet_costs_its_header_fields_not_a_packet() {
        // 72 bytes on x86-64: half a second of 1.5 Mbit/s video (65 packets in 89 slots) is
        // 6.3 KiB per subscriber stream; a whole packet per slot made a second of it 32 KiB.
        assert!(std::mem::size_of::<Sent>() <= 72, "{}", std::mem::size_of::<Sent>());
    }

    #[test]
    fn found_across_a_wrap_and_a_gap() {
        let t = Instant::now();
        let mut h = History::new(7, None);
        for seq in [65534u16, 65535, 0, 1, 5, 6] {
            h.sent(&packet(seq), t);
        }
        for seq in [65534u16, 0, 1, 5, 6] {
            assert_eq!(h.retransmission(seq, t).map(|p| p.header.sequence_number), Some(seq));
        }
        assert!(h.retransmission(3, t).is_none());
    }

    #[test]
    fn with_rtx_the_packet_goes_on_the_rtx_stream_with_its_sequence_number_first() {
        let t = Instant::now();
        let mut h = History::new(7, Some((99, 97)));
        h.sent(&packet(300), t);
        let first = h.retransmission(300, t).unwrap();
        let second = h.retransmission(300, t + Duration::from_millis(u64::from(RESEND_PAUSE_MS))).unwrap();
        assert_eq!((first.header.ssrc, first.header.payload_type), (99, 97));
        assert_eq!(&first.payload[..2], &300u16.to_be_bytes());
        assert_eq!(&first.payload[2..], &packet(300).payload[..]);
        assert_eq!(second.header.sequence_number, first.header.sequence_number.wrapping_add(1));
    }

    #[test]
    fn a_packet_sent_again_is_not_sent_again_within_40_ms() {
        let t = Instant::now();
        let mut h = History::new(7, None);
        h.sent(&packet(1), t);
        let again = |h: &mut History, ms: u64| h.retransmission(1, t + Duration::from_millis(ms)).is_some();
        assert!(again(&mut h, 0));
        assert!(!again(&mut h, 39), "within 40 ms of the last copy");
        assert!(again(&mut h, 40));
        assert!(again(&mut h, 140), "a receiver asking every 100 ms is answered every time");
        // A receiver NACKing every 10 ms for the whole window gets a copy every 40 ms.
        let mut flood = History::new(7, None);
        flood.sent(&packet(1), t);
        let copies = (0..100).filter(|i| again(&mut flood, i * 10)).count();
        assert_eq!(copies, 25, "at 0, 40, ..., 960 ms");
        // Each packet has its own pause.
        h.sent(&packet(2), t);
        assert!(h.retransmission(2, t + Duration::from_millis(141)).is_some());
    }
}
