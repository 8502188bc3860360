//! The RTP hot path from a publisher's track to each subscriber's: what happens to every
//! packet, kept apart from PeerConnection setup (`peer`). Nothing here crosses an actor mailbox
//! or the bus, copies a payload, or allocates per packet per subscriber
//! (`tests/hot_path_allocations.rs` counts).

use rtc::rtp;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{broadcast, mpsc, watch};
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};

/// Asks a publisher for a keyframe; requests are coalesced at the publisher.
#[derive(Clone)]
pub struct KeyframeRequester(mpsc::UnboundedSender<()>);

impl KeyframeRequester {
    pub(super) fn new(tx: mpsc::UnboundedSender<()>) -> Self {
        Self(tx)
    }

    pub fn request(&self) {
        let _ = self.0.send(());
    }
}

/// Once per packet at the publisher: subscribers negotiate none of the publisher's header
/// extensions, and without them each subscriber's clone of the packet allocates nothing (an
/// empty Vec clones without allocating; the payload is shared `Bytes`).
pub fn strip_extensions(packet: &mut rtp::Packet) {
    packet.header.extension = false;
    packet.header.extensions.clear();
}

/// Per packet per subscriber: its own SSRC and the payload type its answer chose.
pub fn rewrite_for_subscriber(packet: &mut rtp::Packet, ssrc: u32, payload_type: u8) {
    packet.header.ssrc = ssrc;
    packet.header.payload_type = payload_type;
}

/// A subscriber stream's sequence numbers and timestamps: continuous across the gaps Portunus
/// makes (a pause, a slow subscriber's dropped packets, the wait for a keyframe), so the
/// subscriber's jitter buffer sees one unbroken stream, while a gap the publisher's network
/// made stays a gap the subscriber can NACK. After a gap of ours the timestamp advances by the
/// time the gap lasted (Janus's switching context does the same). The clock is read only where
/// a gap starts and ends, never per forwarded packet.
pub struct Rewriter {
    clock_rate: u32,
    seq_offset: u16,
    ts_offset: u32,
    /// The newest packet sent: (sequence number, timestamp).
    last: Option<(u16, u32)>,
    /// When the current gap of ours began, if one is open.
    gap_from: Option<Instant>,
}

impl Rewriter {
    pub fn new(clock_rate: u32) -> Self {
        Self { clock_rate, seq_offset: 0, ts_offset: 0, last: None, gap_from: None }
    }

    /// Whether a gap of ours is open (the next packet continues the sequence).
    pub fn in_gap(&self) -> bool {
        self.gap_from.is_some()
    }

    /// A gap of ours begins at `at` (a later call while it is open changes nothing).
    pub fn rebase(&mut self, at: Instant) {
        self.gap_from.get_or_insert(at);
    }

    /// Rewrites `packet`; `now` is asked for only when the packet ends a gap.
    pub fn rewrite(&mut self, packet: &mut rtp::Packet, now: impl FnOnce() -> Instant) {
        let h = &mut packet.header;
        if let Some(from) = self.gap_from.take() {
            if let Some((seq, ts)) = self.last {
                let ticks = (now().saturating_duration_since(from).as_secs_f64() * f64::from(self.clock_rate)) as u32;
                self.seq_offset = seq.wrapping_add(1).wrapping_sub(h.sequence_number);
                self.ts_offset = ts.wrapping_add(ticks.max(1)).wrapping_sub(h.timestamp);
            }
        }
        h.sequence_number = h.sequence_number.wrapping_add(self.seq_offset);
        h.timestamp = h.timestamp.wrapping_add(self.ts_offset);
        // A reordered (older) packet does not move the sequence back.
        let newer = self.last.is_none_or(|(seq, _)| (h.sequence_number.wrapping_sub(seq) as i16) > 0);
        if newer {
            self.last = Some((h.sequence_number, h.timestamp));
        }
    }
}

/// VP8 keyframe check on an RTP payload (Janus's `janus_vp8_is_keyframe`): the payload
/// descriptor, then the frame header whose lowest bit is 0 on keyframes.
pub fn vp8_is_keyframe(payload: &[u8]) -> bool {
    let Some(&first) = payload.first() else { return false };
    let start_of_partition = first & 0x10 != 0;
    let partition_id = first & 0x07;
    if !start_of_partition || partition_id != 0 {
        return false;
    }
    let mut i = 1;
    if first & 0x80 != 0 {
        // X: extension byte with I, L, T, K flags.
        let Some(&x) = payload.get(i) else { return false };
        i += 1;
        if x & 0x80 != 0 {
            let Some(&pid) = payload.get(i) else { return false };
            i += if pid & 0x80 != 0 { 2 } else { 1 };
        }
        if x & 0x40 != 0 {
            i += 1;
        }
        if x & 0x30 != 0 {
            i += 1;
        }
    }
    payload.get(i).is_some_and(|b| b & 0x01 == 0)
}

/// Relays a subscriber's PLI/FIR on one stream to its (current) publisher, until the track is
/// unbound.
pub(super) async fn relay_keyframe_requests(
    track: Arc<TrackLocalStaticRTP>,
    publisher: watch::Receiver<KeyframeRequester>,
) {
    while let Some(ev) = track.poll().await {
        let TrackLocalEvent::OnRtcpPacket(packets) = ev else { continue };
        if packets.iter().any(|p| super::feedback::is_keyframe_request(p.as_ref())) {
            publisher.borrow().request();
        }
    }
}

/// What the room tells a running subscriber stream.
pub enum Control {
    /// Take packets from another source (`switch`).
    Switch(NewSource),
    /// The m-line went inactive (`unsubscribe`): stop.
    Stop,
}

/// A subscriber stream's new source (`switch`): another publisher's packets of the same kind
/// and codec, and where its keyframe requests go.
pub struct NewSource {
    pub packets: broadcast::Receiver<rtp::Packet>,
    pub keyframes: KeyframeRequester,
    pub muted: watch::Receiver<bool>,
}

/// When a subscriber stream may flow: once its answer chose a payload type and DTLS is up,
/// not while the subscription is paused, this stream held (`send: false`) or its source muted.
pub(super) struct Gate {
    pub payload_type: watch::Receiver<Option<u8>>,
    pub connected: watch::Receiver<bool>,
    pub paused: watch::Receiver<bool>,
    pub send: watch::Receiver<bool>,
    /// The source publisher stream muted by a moderator.
    pub muted: watch::Receiver<bool>,
}

/// A gate's verdict for the next packet.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// No answer yet: nothing was sent, so there is no gap to mend.
    NoAnswer,
    Closed,
    Open(u8),
}

/// A [`Gate`] read once per change rather than once per packet: checking that no watch changed
/// is an atomic load each, where reading one takes its lock.
struct CachedGate {
    gate: Gate,
    verdict: Option<Verdict>,
}

impl CachedGate {
    fn verdict(&mut self) -> Verdict {
        let g = &self.gate;
        let changed = [&g.connected, &g.paused, &g.send, &g.muted].iter().any(|w| w.has_changed().unwrap_or(false))
            || g.payload_type.has_changed().unwrap_or(false);
        match self.verdict {
            Some(v) if !changed => v,
            _ => {
                let g = &mut self.gate;
                let pt = *g.payload_type.borrow_and_update();
                let open = *g.connected.borrow_and_update()
                    && !*g.paused.borrow_and_update()
                    && *g.send.borrow_and_update()
                    && !*g.muted.borrow_and_update();
                let v = match pt {
                    None => Verdict::NoAnswer,
                    Some(pt) if open => Verdict::Open(pt),
                    Some(_) => Verdict::Closed,
                };
                self.verdict = Some(v);
                v
            }
        }
    }

    /// Another source's mute state (`switch`).
    fn follow(&mut self, muted: watch::Receiver<bool>) {
        self.gate.muted = muted;
        self.verdict = None;
    }
}

/// One subscriber stream's forwarding state, apart from the packets.
pub(super) struct Stream {
    pub track: Arc<TrackLocalStaticRTP>,
    pub ssrc: u32,
    pub clock_rate: u32,
    /// VP8: start (and restart) on a keyframe, asking the publisher for one.
    pub wait_keyframe: bool,
    /// The current publisher's keyframe requests (shared with the PLI/FIR relay).
    pub keyframes: watch::Sender<KeyframeRequester>,
}

/// One subscriber stream: rewrites each packet for this subscriber (SSRC, payload type,
/// sequence numbers and timestamps; header extensions are already gone) and, for VP8, starts on
/// a keyframe, asking the publisher for one as soon as the stream could flow (DTLS up, answer
/// applied): one asked for earlier may have arrived before the subscriber could receive it. A
/// `switch` replaces the source; the new one starts on a keyframe too, the sequence unbroken.
pub(super) async fn forward(
    mut packets: broadcast::Receiver<rtp::Packet>,
    mut control: mpsc::UnboundedReceiver<Control>,
    stream: Stream,
    gate: Gate,
) {
    let mut gate = CachedGate { gate, verdict: None };
    let Stream { track, ssrc, clock_rate, wait_keyframe, keyframes } = stream;
    let mut waiting = wait_keyframe;
    let mut asked = false;
    let mut sequence = Rewriter::new(clock_rate);
    loop {
        let received = tokio::select! {
            biased;
            Some(c) = control.recv() => {
                let Control::Switch(source) = c else { return };
                packets = source.packets;
                gate.follow(source.muted);
                keyframes.send_replace(source.keyframes);
                waiting = wait_keyframe;
                asked = false;
                sequence.rebase(Instant::now());
                continue;
            }
            r = packets.recv() => r,
        };
        let mut p = match received {
            Ok(p) => p,
            Err(broadcast::error::RecvError::Lagged(n)) => {
                tracing::debug!(dropped = n, "slow subscriber dropped packets");
                waiting = wait_keyframe;
                asked = false;
                sequence.rebase(Instant::now());
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        let payload_type = match gate.verdict() {
            Verdict::NoAnswer => continue,
            Verdict::Closed => {
                waiting = wait_keyframe;
                asked = false;
                if !sequence.in_gap() {
                    sequence.rebase(Instant::now());
                }
                continue;
            }
            Verdict::Open(pt) => pt,
        };
        if waiting {
            if !vp8_is_keyframe(&p.payload) {
                if !asked {
                    tracing::debug!(ssrc, "waiting for a keyframe: asking the publisher");
                    keyframes.borrow().request();
                    asked = true;
                }
                if !sequence.in_gap() {
                    sequence.rebase(Instant::now());
                }
                continue;
            }
            tracing::debug!(ssrc, pt = p.header.payload_type, "keyframe: video starts");
            waiting = false;
            asked = false;
        }
        rewrite_for_subscriber(&mut p, ssrc, payload_type);
        sequence.rewrite(&mut p, Instant::now);
        if track.write_rtp(p).await.is_err() {
            return;
        }
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
        let mut p = packet(seq, ts);
        r.rewrite(&mut p, || at);
        (p.header.sequence_number, p.header.timestamp)
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
        r.rebase(t);
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
        r.rebase(t);
        assert_eq!(out(&mut r, 40, 99_999, t).0, 13, "continues after the newest, not the late one");
    }

    #[test]
    fn vp8_keyframes_are_recognised() {
        assert!(vp8_is_keyframe(&[0x10, 0x00, 0x00]));
        assert!(!vp8_is_keyframe(&[0x10, 0x01, 0x00]), "inter frame");
        assert!(!vp8_is_keyframe(&[0x00, 0x00]), "not the start of a partition");
        // Extended descriptor with a 15-bit picture id.
        assert!(vp8_is_keyframe(&[0x90, 0x80, 0x81, 0x23, 0x00]));
        assert!(!vp8_is_keyframe(&[]));
    }
}
