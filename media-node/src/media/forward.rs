//! The RTP hot path from a publisher's track to each subscriber's: what happens to every
//! packet, kept apart from PeerConnection setup (`peer`). Nothing here crosses an actor mailbox
//! or the bus, copies a payload, or allocates per packet per subscriber
//! (`tests/hot_path_allocations.rs` counts).

use super::peer::{PeerEvent, Silence};
use rtc::rtp;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, mpsc, watch};
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};

/// Asks a publisher for a keyframe of one of its (simulcast) layers; requests are coalesced at
/// the publisher.
#[derive(Clone)]
pub struct KeyframeRequester {
    tx: mpsc::UnboundedSender<u8>,
    layer: u8,
}

impl KeyframeRequester {
    pub(super) fn new(tx: mpsc::UnboundedSender<u8>) -> Self {
        Self { tx, layer: 0 }
    }

    /// The same publisher, asked for `layer`.
    fn for_layer(&self, layer: u8) -> Self {
        Self { tx: self.tx.clone(), layer }
    }

    pub fn request(&self) {
        let _ = self.tx.send(self.layer);
    }
}

/// A publisher stream as a subscriber stream takes it: its packets (one feed per simulcast
/// layer, lowest first), where keyframe requests go, its moderation, and (simulcast) which
/// layers went silent. The feeds are weak: a subscriber must not keep a publisher's feed open
/// after the publisher left (its stream ends when the feed closes).
#[derive(Clone)]
pub struct Origin {
    pub layers: Vec<broadcast::WeakSender<rtp::Packet>>,
    pub keyframes: KeyframeRequester,
    pub muted: watch::Receiver<bool>,
    pub silence: Option<watch::Receiver<Silence>>,
}

impl Origin {
    fn subscribe(&self, layer: u8) -> Option<broadcast::Receiver<rtp::Packet>> {
        self.layers.get(usize::from(layer))?.upgrade().map(|f| f.subscribe())
    }

    fn simulcast(&self) -> bool {
        self.layers.len() > 1
    }
}

/// Which simulcast layers a subscriber stream wants (`configure` `substream`, `temporal`,
/// `fallback`; Janus's defaults: the highest, all, 250 ms).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LayerTarget {
    pub substream: u8,
    pub temporal: u8,
    pub fallback: Duration,
}

impl Default for LayerTarget {
    fn default() -> Self {
        Self { substream: 2, temporal: 2, fallback: Duration::from_millis(250) }
    }
}

/// The substream a stream should relay: the highest at or below the target that is flowing or
/// has been silent for less than `fallback`; with it, when to look again (a silent layer's
/// fallback deadline). `None` when every candidate is past its fallback (keep what there is).
fn choose_layer(target: &LayerTarget, layers: usize, silence: &Silence, now: Instant) -> (Option<u8>, Option<Instant>) {
    let top = usize::from(target.substream).min(layers.saturating_sub(1));
    for layer in (0..=top).rev() {
        match silence[layer] {
            None => return (Some(layer as u8), None),
            Some(since) if now < since + target.fallback => return (Some(layer as u8), Some(since + target.fallback)),
            Some(_) => {}
        }
    }
    (None, None)
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
    /// The least a gap of ours advances the timestamp (20 ms): a seamless switch has no gap in
    /// time, but the new source's first packet must not share the previous frame's timestamp.
    min_step: u32,
    seq_offset: u16,
    ts_offset: u32,
    /// The newest packet sent: (sequence number, timestamp).
    last: Option<(u16, u32)>,
    /// The source's sequence number that began the current run (after the last gap of ours):
    /// an older packet (a late retransmission from before the gap) would take a number already
    /// used, and precedes the keyframe this run started on, so it is not sent.
    floor: Option<u16>,
    /// When the current gap of ours began, if one is open.
    gap_from: Option<Instant>,
}

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
        }
    }

    /// A packet of the source is left out on purpose (a temporal layer above the target): the
    /// next one takes its sequence number, so the subscriber sees no loss to NACK.
    pub fn skip(&mut self) {
        self.seq_offset = self.seq_offset.wrapping_sub(1);
    }

    /// Whether a gap of ours is open (the next packet continues the sequence).
    pub fn in_gap(&self) -> bool {
        self.gap_from.is_some()
    }

    /// A gap of ours begins at `at` (a later call while it is open changes nothing).
    pub fn rebase(&mut self, at: Instant) {
        self.gap_from.get_or_insert(at);
    }

    /// Rewrites `packet`; `now` is asked for only when the packet ends a gap. `false`: the
    /// packet predates the current run and must not be sent.
    #[must_use]
    pub fn rewrite(&mut self, packet: &mut rtp::Packet, now: impl FnOnce() -> Instant) -> bool {
        let h = &mut packet.header;
        let ends_gap = self.gap_from.is_some() || self.floor.is_none();
        if !ends_gap && self.floor.is_some_and(|f| (h.sequence_number.wrapping_sub(f) as i16) < 0) {
            return false;
        }
        if ends_gap {
            self.floor = Some(h.sequence_number);
        }
        if let Some(from) = self.gap_from.take() {
            if let Some((seq, ts)) = self.last {
                let ticks = (now().saturating_duration_since(from).as_secs_f64() * f64::from(self.clock_rate)) as u32;
                self.seq_offset = seq.wrapping_add(1).wrapping_sub(h.sequence_number);
                self.ts_offset = ts.wrapping_add(ticks.max(self.min_step)).wrapping_sub(h.timestamp);
            }
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

/// The temporal layer (TID) of a VP8 packet whose payload descriptor carries one (Janus's
/// `janus_vp8_parse_descriptor`); `None` without temporal scalability.
pub fn vp8_temporal_id(payload: &[u8]) -> Option<u8> {
    let first = *payload.first()?;
    if first & 0x80 == 0 {
        return None;
    }
    let x = *payload.get(1)?;
    let mut i = 2;
    if x & 0x80 != 0 {
        i += if payload.get(i)? & 0x80 != 0 { 2 } else { 1 };
    }
    if x & 0x40 != 0 {
        i += 1;
    }
    if x & 0x20 == 0 {
        return None;
    }
    Some(payload.get(i)? >> 6)
}

/// Where a subscriber stream reports sustained loss (Janus's `slowlink`).
pub(super) struct LossWatch {
    /// Packets lost between two receiver reports that make a slow link (0: never).
    pub threshold: u32,
    pub mindex: usize,
    pub kind: String,
    /// The stream's SSRC, as the subscriber's reports name it.
    pub ssrc: u32,
    pub events: mpsc::UnboundedSender<PeerEvent>,
}

/// Acts on a subscriber's RTCP about one stream until the track is unbound: PLI/FIR go to its
/// (current) publisher; receiver reports whose cumulative loss grew by the threshold or more
/// since the previous one (browsers report about every second) make a slow link, as Janus
/// counts it.
pub(super) async fn relay_feedback(
    track: Arc<TrackLocalStaticRTP>,
    publisher: watch::Receiver<KeyframeRequester>,
    loss: LossWatch,
) {
    let mut last_lost: Option<u32> = None;
    while let Some(ev) = track.poll().await {
        let TrackLocalEvent::OnRtcpPacket(packets) = ev else { continue };
        if packets.iter().any(|p| super::feedback::is_keyframe_request(p.as_ref())) {
            publisher.borrow().request();
        }
        for total in packets.iter().filter_map(|p| super::feedback::total_lost(p.as_ref(), loss.ssrc)) {
            let recently = last_lost.map_or(0, |before| total.saturating_sub(before));
            last_lost = Some(total);
            if loss.threshold > 0 && recently >= loss.threshold {
                let ev = PeerEvent::SlowLink {
                    mindex: Some(loss.mindex),
                    kind: loss.kind.clone(),
                    uplink: true,
                    lost: recently,
                };
                let _ = loss.events.send(ev);
            }
        }
    }
}

/// What the room tells a running subscriber stream.
pub enum Control {
    /// Take packets from another publisher stream (`switch`).
    Switch(Origin),
    /// Other simulcast layers (`configure` `substream` / `temporal` / `fallback`).
    Target(LayerTarget),
    /// The m-line went inactive (`unsubscribe`): send nothing until a `Switch` gives it a new
    /// source (a later `subscribe` reuses it, as Janus does), its sequence still continuing.
    Detach,
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

/// How long a stream waiting for a keyframe waits before asking again (the publisher sends at
/// most one PLI per 500 ms per track anyway).
const KEYFRAME_REASK: Duration = Duration::from_millis(500);

/// One subscriber stream's forwarding state, apart from the packets.
pub(super) struct Stream {
    pub track: Arc<TrackLocalStaticRTP>,
    pub ssrc: u32,
    pub clock_rate: u32,
    /// VP8: start (and restart, and change simulcast layers) on a keyframe, asking the
    /// publisher for one.
    pub vp8: bool,
    /// The current publisher layer's keyframe requests (shared with the PLI/FIR relay).
    pub keyframes: watch::Sender<KeyframeRequester>,
    /// Its m-line, and where layer changes are reported (Janus's `substream` / `temporal`).
    pub mindex: usize,
    pub events: mpsc::UnboundedSender<PeerEvent>,
    pub target: LayerTarget,
}

/// The simulcast state of one subscriber stream: the layer relayed, the one it is moving to
/// (relayed from its first keyframe on, so the switch is seamless, as Janus's), and what was
/// last announced.
struct Layers {
    current: u8,
    pending: Option<(u8, broadcast::Receiver<rtp::Packet>)>,
    /// When a silent layer's fallback deadline passes.
    recheck: Option<Instant>,
    announced: Option<u8>,
    temporal: Option<u8>,
}

impl Layers {
    /// Moves towards the layer the target and the publisher's silent layers call for.
    fn reconsider(&mut self, origin: &Origin, target: &LayerTarget, silence: &Silence) {
        if !origin.simulcast() {
            return;
        }
        let (want, recheck) = choose_layer(target, origin.layers.len(), silence, Instant::now());
        self.recheck = recheck;
        let Some(want) = want else { return };
        if want == self.current {
            self.pending = None;
        } else if self.pending.as_ref().is_none_or(|(l, _)| *l != want) {
            tracing::debug!(from = self.current, to = want, "simulcast: changing layer");
            self.pending = origin.subscribe(want).map(|rx| (want, rx));
            origin.keyframes.for_layer(want).request();
        }
    }
}

/// Where the next packet came from.
enum Next {
    Current(Result<rtp::Packet, broadcast::error::RecvError>),
    /// The layer being moved to.
    Pending(Result<rtp::Packet, broadcast::error::RecvError>),
    /// Nothing to send: the target, the silent layers or the clock changed.
    Reconsider,
}

/// One subscriber stream: rewrites each packet for this subscriber (SSRC, payload type,
/// sequence numbers and timestamps; header extensions are already gone) and, for VP8, starts on
/// a keyframe, asking the publisher for one as soon as the stream could flow (DTLS up, answer
/// applied): one asked for earlier may have arrived before the subscriber could receive it. A
/// `switch` replaces the source; the new one starts on a keyframe too, the sequence unbroken.
/// A simulcast source is taken one layer at a time: the target's, or a lower one while it is
/// silent past `fallback`; temporal layers above the target are left out.
pub(super) async fn forward(
    mut origin: Origin,
    mut control: mpsc::UnboundedReceiver<Control>,
    stream: Stream,
    gate: Gate,
) {
    let mut gate = CachedGate { gate, verdict: None };
    let Stream { track, ssrc, clock_rate, vp8, keyframes, mindex, events, mut target } = stream;
    let mut silence = origin.silence.clone();
    let now_silent = |s: &Option<watch::Receiver<Silence>>| s.as_ref().map_or([None; 3], |s| *s.borrow());
    let first = choose_layer(&target, origin.layers.len(), &now_silent(&silence), Instant::now()).0;
    let mut layers =
        Layers { current: first.unwrap_or(0), pending: None, recheck: None, announced: None, temporal: None };
    // None while detached (an inactive m-line, or its publisher gone).
    let mut packets = origin.subscribe(layers.current);
    keyframes.send_replace(origin.keyframes.for_layer(layers.current));
    let mut waiting = vp8;
    // When the keyframe this stream waits for was last asked for.
    let mut asked: Option<Instant> = None;
    let mut sequence = Rewriter::new(clock_rate);
    loop {
        let recheck = layers.recheck;
        let pending = layers.pending.as_mut().map(|(_, rx)| rx);
        let next = tokio::select! {
            biased;
            c = control.recv() => {
                // The subscriber is gone when its controls are.
                let Some(c) = c else { return };
                match c {
                    Control::Detach => {
                        packets = None;
                        layers.pending = None;
                        silence = None;
                        if !sequence.in_gap() {
                            sequence.rebase(Instant::now());
                        }
                    }
                    Control::Target(t) => {
                        // A target already met is announced again (Janus confirms it at once).
                        if t.substream == layers.current {
                            layers.announced = None;
                        }
                        target = t;
                    }
                    Control::Switch(o) => {
                        origin = o;
                        silence = origin.silence.clone();
                        gate.follow(origin.muted.clone());
                        let first = choose_layer(&target, origin.layers.len(), &now_silent(&silence), Instant::now()).0;
                        layers = Layers { current: first.unwrap_or(0), pending: None, recheck: None, announced: None, temporal: None };
                        packets = origin.subscribe(layers.current);
                        keyframes.send_replace(origin.keyframes.for_layer(layers.current));
                        waiting = vp8;
                        asked = None;
                        sequence.rebase(Instant::now());
                    }
                }
                Next::Reconsider
            }
            changed = async {
                match silence.as_mut() {
                    Some(s) => s.changed().await.is_ok(),
                    None => std::future::pending().await,
                }
            } => {
                if !changed {
                    silence = None;
                }
                Next::Reconsider
            }
            _ = async {
                match recheck {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            } => Next::Reconsider,
            r = async {
                match pending {
                    Some(rx) => rx.recv().await,
                    None => std::future::pending().await,
                }
            } => Next::Pending(r),
            r = async {
                match packets.as_mut() {
                    Some(p) => p.recv().await,
                    None => std::future::pending().await,
                }
            } => Next::Current(r),
        };
        let received = match next {
            Next::Reconsider => {
                layers.reconsider(&origin, &target, &now_silent(&silence));
                continue;
            }
            Next::Pending(Ok(p)) => {
                // The new layer takes over at its first keyframe the gate lets through.
                let open = matches!(gate.verdict(), Verdict::Open(_));
                if !open || (vp8 && !vp8_is_keyframe(&p.payload)) {
                    continue;
                }
                let Some((layer, rx)) = layers.pending.take() else { continue };
                packets = Some(rx);
                layers.current = layer;
                keyframes.send_replace(origin.keyframes.for_layer(layer));
                waiting = false;
                asked = None;
                if !sequence.in_gap() {
                    sequence.rebase(Instant::now());
                }
                Ok(p)
            }
            Next::Pending(Err(broadcast::error::RecvError::Lagged(_))) => continue,
            Next::Pending(Err(broadcast::error::RecvError::Closed)) => {
                layers.pending = None;
                continue;
            }
            Next::Current(r) => r,
        };
        let mut p = match received {
            Ok(p) => p,
            Err(broadcast::error::RecvError::Lagged(n)) => {
                tracing::debug!(dropped = n, "slow subscriber dropped packets");
                waiting = vp8;
                asked = None;
                sequence.rebase(Instant::now());
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => {
                // The publisher left: idle until the room makes this m-line inactive or reuses it.
                packets = None;
                layers.pending = None;
                if !sequence.in_gap() {
                    sequence.rebase(Instant::now());
                }
                continue;
            }
        };
        let payload_type = match gate.verdict() {
            Verdict::NoAnswer => continue,
            Verdict::Closed => {
                waiting = vp8;
                asked = None;
                if !sequence.in_gap() {
                    sequence.rebase(Instant::now());
                }
                continue;
            }
            Verdict::Open(pt) => pt,
        };
        if waiting {
            if !vp8_is_keyframe(&p.payload) {
                // Asked again while none comes (a request can be lost or ignored), as often as the
                // publisher's coalescing lets one through; the clock is read only while waiting.
                let now = Instant::now();
                if asked.is_none_or(|at| now.duration_since(at) >= KEYFRAME_REASK) {
                    tracing::debug!(ssrc, "waiting for a keyframe: asking the publisher");
                    keyframes.borrow().request();
                    asked = Some(now);
                }
                if !sequence.in_gap() {
                    sequence.rebase(Instant::now());
                }
                continue;
            }
            tracing::debug!(ssrc, pt = p.header.payload_type, "keyframe: video starts");
            waiting = false;
            asked = None;
        }
        if origin.simulcast() {
            if layers.announced != Some(layers.current) {
                layers.announced = Some(layers.current);
                let _ = events.send(PeerEvent::Layer { mindex, substream: Some(layers.current), temporal: None });
            }
            if let Some(tid) = vp8.then(|| vp8_temporal_id(&p.payload)).flatten() {
                if layers.temporal != Some(target.temporal) && tid == target.temporal {
                    layers.temporal = Some(tid);
                    let _ = events.send(PeerEvent::Layer { mindex, substream: None, temporal: Some(tid) });
                }
                if layers.temporal.is_some_and(|t| tid > t) {
                    sequence.skip();
                    continue;
                }
            }
        }
        rewrite_for_subscriber(&mut p, ssrc, payload_type);
        if !sequence.rewrite(&mut p, Instant::now) {
            continue;
        }
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
        assert!(r.rewrite(&mut p, || at), "packet {seq} sent");
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
        r.rebase(t);
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
    fn a_dropped_temporal_layer_leaves_no_hole_in_the_sequence() {
        let t = Instant::now();
        let mut r = Rewriter::new(90_000);
        assert_eq!(out(&mut r, 10, 0, t).0, 10);
        r.skip(); // 11 left out on purpose
        assert_eq!(out(&mut r, 12, 6000, t).0, 11);
        assert_eq!(out(&mut r, 13, 9000, t).0, 12);
    }

    #[test]
    fn the_layer_chosen_is_the_target_or_the_highest_below_it_not_silent_past_fallback() {
        let now = Instant::now();
        let target = LayerTarget::default();
        let ago = |ms| Some(now - Duration::from_millis(ms));
        assert_eq!(choose_layer(&target, 3, &[None; 3], now), (Some(2), None));
        // Silent for 100 ms of the 250 allowed: stay, and look again when it runs out.
        assert_eq!(
            choose_layer(&target, 3, &[None, None, ago(100)], now),
            (Some(2), Some(now + Duration::from_millis(150)))
        );
        assert_eq!(choose_layer(&target, 3, &[None, None, ago(300)], now), (Some(1), None));
        assert_eq!(choose_layer(&target, 3, &[None, ago(400), ago(300)], now), (Some(0), None));
        assert_eq!(choose_layer(&target, 3, &[ago(999), ago(400), ago(300)], now), (None, None), "nothing flows");
        let low = LayerTarget { substream: 0, ..target };
        assert_eq!(choose_layer(&low, 3, &[None; 3], now), (Some(0), None));
        assert_eq!(choose_layer(&target, 2, &[None; 3], now), (Some(1), None), "only two layers offered");
    }

    #[test]
    fn vp8_temporal_layers_are_read_from_the_payload_descriptor() {
        assert_eq!(vp8_temporal_id(&[0x90, 0x20, 0x80, 0x00]), Some(2));
        // With a 15-bit picture id and TL0PICIDX before the TID byte.
        assert_eq!(vp8_temporal_id(&[0x90, 0xE0, 0x81, 0x23, 0x07, 0x40, 0x00]), Some(1));
        assert_eq!(vp8_temporal_id(&[0x10, 0x00]), None, "no extension: no temporal layers");
        assert_eq!(vp8_temporal_id(&[0x90, 0x80, 0x01]), None, "picture id only");
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
