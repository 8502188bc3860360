//! The RTP hot path from a publisher's track to each subscriber's: what happens to every
//! packet, kept apart from PeerConnection setup (`peer`). Nothing here crosses an actor mailbox
//! or the bus, copies a payload, or allocates per packet per subscriber, but for the extension
//! list of a packet carrying a relayed header extension (`tests/hot_path_allocations.rs`
//! counts both).

use super::codec::VideoCodec;
use super::feed::{silence_changed, Hold, KeyframeAsk, KeyframeRequester, Origin, Silence};
use super::peer::{PeerEvent, StreamAt};
use super::preroll::Preroll;
use super::rewrite::Rewriter;
use super::simulcast::{LayerTarget, Layers};
use super::svc::{Moved, Step, SvcSelector};
use super::vp8::vp8_temporal_id;
use crate::metrics::{DropReason, ForwardCount, METRICS};
use rtc::rtp;
use shared::media::{ExtensionIds, MediaKind};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{broadcast, mpsc, watch};
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};

/// What a subscriber's answer chose for one of its streams: the payload type, and the ids of
/// the relayed header extensions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Negotiated {
    pub payload_type: u8,
    pub extensions: ExtensionIds,
}

/// Per packet per subscriber: its own SSRC, the payload type its answer chose, and the header
/// extension ids it negotiated.
pub fn rewrite_for_subscriber(packet: &mut rtp::Packet, ssrc: u32, negotiated: &Negotiated) {
    packet.header.ssrc = ssrc;
    packet.header.payload_type = negotiated.payload_type;
    super::extensions::rename(packet, &negotiated.extensions);
}

/// Where a subscriber stream reports sustained loss (Janus's `slowlink`).
pub(super) struct LossWatch {
    /// Packets lost between two receiver reports that make a slow link (0: never).
    pub threshold: u32,
    pub mindex: usize,
    pub kind: MediaKind,
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
                let ev = PeerEvent::SlowLink { at: StreamAt::Subscribed(loss.mindex), kind: loss.kind, lost: recently };
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
    /// The playout delay to send this subscriber (`min_delay`/`max_delay`), or the publisher's.
    Delay(Option<[u8; 3]>),
}

/// When a subscriber stream may flow: once its answer chose a payload type and DTLS is up,
/// not while the subscription is paused, this stream held (`send: false`) or its source muted.
pub(super) struct Gate {
    pub negotiated: watch::Receiver<Option<Negotiated>>,
    pub connected: watch::Receiver<bool>,
    pub paused: watch::Receiver<bool>,
    pub send: watch::Receiver<bool>,
    /// The source publisher stream muted by a moderator or held by its publisher.
    pub muted: watch::Receiver<Hold>,
}

/// A gate's verdict for the next packet.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// No answer yet: nothing was sent, so there is no gap to mend; video is kept from a
    /// keyframe on.
    NoAnswer,
    /// Answered and otherwise open, its DTLS not up yet: video is kept from a keyframe on, one
    /// asked for if none is kept.
    Connecting,
    Closed,
    Open(Negotiated),
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
        let changed = [&g.connected, &g.paused, &g.send].iter().any(|w| w.has_changed().unwrap_or(false))
            || g.muted.has_changed().unwrap_or(false)
            || g.negotiated.has_changed().unwrap_or(false);
        match self.verdict {
            Some(v) if !changed => v,
            _ => {
                let g = &mut self.gate;
                let negotiated = *g.negotiated.borrow_and_update();
                let connected = *g.connected.borrow_and_update();
                let open = !*g.paused.borrow_and_update()
                    && *g.send.borrow_and_update()
                    && !g.muted.borrow_and_update().held();
                let v = match negotiated {
                    None => Verdict::NoAnswer,
                    Some(n) if open && connected => Verdict::Open(n),
                    Some(_) if open => Verdict::Connecting,
                    Some(_) => Verdict::Closed,
                };
                self.verdict = Some(v);
                v
            }
        }
    }

    /// Waits (if `wanted`) for the connection's state to change, which the next verdict then
    /// reads.
    async fn connects(&mut self, wanted: bool) {
        if wanted && self.gate.connected.changed().await.is_ok() {
            self.verdict = None;
            return;
        }
        std::future::pending().await
    }

    /// Another source's mute state (`switch`).
    fn follow(&mut self, muted: watch::Receiver<Hold>) {
        self.gate.muted = muted;
        self.verdict = None;
    }
}

/// A video stream's wait for a keyframe: from its start and after every gap of ours, it lets
/// nothing out until one comes, asking the publisher for one now and then meanwhile.
struct KeyframeWait {
    /// The stream's SSRC, for the logs.
    ssrc: u32,
    /// The video codec whose keyframes it waits for (none: audio, never waits).
    codec: Option<VideoCodec>,
    waiting: bool,
    /// When a keyframe was last asked for in this wait.
    asked: KeyframeAsk,
}

impl KeyframeWait {
    fn new(ssrc: u32, codec: Option<VideoCodec>) -> Self {
        Self { ssrc, codec, waiting: codec.is_some(), asked: KeyframeAsk::default() }
    }

    /// The stream starts over (a gap of ours): video waits for a keyframe again.
    fn restart(&mut self) {
        self.waiting = self.codec.is_some();
        self.asked.reset();
    }

    /// The stream flows from here (a new layer taken over at its keyframe).
    fn end(&mut self) {
        self.waiting = false;
        self.asked.reset();
    }

    /// Whether `payload` may go out: while waiting, only a keyframe (which ends the wait); the
    /// others make it ask `keyframes` again, as often as the publisher's coalescing lets one
    /// through (a request can be lost or ignored). The clock is read only while waiting.
    fn admits(&mut self, payload: &[u8], keyframes: &watch::Sender<KeyframeRequester>) -> bool {
        if !self.waiting {
            return true;
        }
        if self.codec.is_some_and(|c| c.is_keyframe(payload)) {
            tracing::debug!(ssrc = self.ssrc, "keyframe: video starts");
            self.end();
            return true;
        }
        if self.asked.due(Instant::now()) {
            tracing::debug!(ssrc = self.ssrc, "waiting for a keyframe: asking the publisher");
            keyframes.borrow().request();
        }
        false
    }
}

/// One subscriber stream's forwarding state, apart from the packets.
pub(super) struct Stream {
    pub track: Arc<TrackLocalStaticRTP>,
    pub ssrc: u32,
    pub clock_rate: u32,
    /// Video: start (and restart, and change simulcast layers) on a keyframe of this codec,
    /// asking the publisher for one.
    pub codec: Option<VideoCodec>,
    /// The current publisher layer's keyframe requests (shared with the PLI/FIR relay).
    pub keyframes: watch::Sender<KeyframeRequester>,
    /// Its m-line, and where layer changes are reported (Janus's `substream` / `temporal`).
    pub mindex: usize,
    pub events: mpsc::UnboundedSender<PeerEvent>,
    pub target: LayerTarget,
    /// The subscriber's own playout delay, replacing the publisher's (the extension's bytes).
    pub delay: Option<[u8; 3]>,
}

/// The packets a stream got twice: a source layer's kept group of pictures ends with packets
/// the stream's receiver (subscribed before asking for it) may also hold.
struct Overlap(Option<u16>);

impl Overlap {
    /// Starts `preroll` on what `origin`'s `layer` keeps.
    async fn seed(preroll: &mut Preroll, origin: &Origin, layer: u8) -> Self {
        let kept = origin.kept(layer).await;
        let last = kept.last().map(|p| p.header.sequence_number);
        preroll.seed(kept);
        Self(last.filter(|_| !preroll.is_empty()))
    }

    /// Whether the receiver's packet `seq` was in the kept group; the first one that was not
    /// ends the overlap.
    fn repeats(&mut self, seq: u16) -> bool {
        let Some(last) = self.0 else { return false };
        if (seq.wrapping_sub(last) as i16) <= 0 {
            return true;
        }
        self.0 = None;
        false
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
/// sequence numbers and timestamps; its header extensions are renamed on the way out, by
/// `extensions`) and, for video, starts on a keyframe: from its offer until DTLS is up it keeps
/// the packets from the latest keyframe on (`preroll`), starting from what the publisher layer
/// kept (`gop`), sent first at connect. It asks the publisher for a keyframe as soon as the
/// answer is in if none is kept or what is kept is too long to go out whole (then its keyframe
/// goes alone, and the stream goes on at the next one); with none kept at connect, it asks
/// again. A `switch` replaces the source, the sequence unbroken; the new source, and a stream
/// open again after a pause or a hold, start from what the layer kept the same way.
/// A simulcast source is taken one layer at a time: the target's, or a lower one while it is
/// silent past `fallback`; temporal layers above the target are left out. A VP9 SVC source's
/// layers above the target (`substream` as the spatial layer) are left out too (`svc`).
pub(super) async fn forward(
    mut origin: Origin,
    mut control: mpsc::UnboundedReceiver<Control>,
    stream: Stream,
    gate: Gate,
) {
    let mut gate = CachedGate { gate, verdict: None };
    let Stream { track, ssrc, clock_rate, codec, keyframes, mindex, events, mut target, delay } = stream;
    // Shared bytes: each packet's extension clones a reference, not the bytes.
    let as_bytes = |d: Option<[u8; 3]>| d.map(|d| bytes::Bytes::copy_from_slice(&d));
    let mut delay = as_bytes(delay);
    let vp8 = codec == Some(VideoCodec::Vp8);
    let mut silence = origin.silence.clone();
    let now_silent = |s: &Option<watch::Receiver<Silence>>| s.as_ref().map_or([None; 3], |s| *s.borrow());
    // A VP9 SVC source's spatial target applies inside its stream: of its rid layers (a browser
    // asked for simulcast in VP9 sends its spatial layers on the first rid) the best flowing one
    // is taken.
    let svc_source = |o: &Origin| o.svc && codec == Some(VideoCodec::Vp9);
    let rid_target = |o: &Origin, t: &LayerTarget| match svc_source(o) {
        true => LayerTarget { substream: u8::MAX, ..*t },
        false => *t,
    };
    let mut layers = Layers::start(&origin, &rid_target(&origin, &target), &now_silent(&silence));
    // None while detached (an inactive m-line, or its publisher gone).
    let mut packets = origin.subscribe(layers.current);
    keyframes.send_replace(origin.keyframes.for_layer(layers.current));
    let mut wait = KeyframeWait::new(ssrc, codec);
    let mut preroll = Preroll::new(codec, clock_rate);
    let mut overlap = Overlap::seed(&mut preroll, &origin, layers.current).await;
    // Closed since the last packet (paused, held): video starts again from a kept group.
    let mut reopening = false;
    let svc_for = |o: &Origin, t: &LayerTarget| svc_source(o).then(|| SvcSelector::new(t.substream, t.temporal));
    let mut svc = svc_for(&origin, &target);
    let mut sequence = Rewriter::new(clock_rate);
    let mut count = ForwardCount::default();
    loop {
        // After a publisher's last picture alone, its live ones start at their next keyframe.
        if preroll.cut_sent() {
            wait.restart();
            sequence.open_gap();
        }
        let recheck = layers.recheck;
        let pending = layers.pending.as_mut().map(|(_, rx)| rx);
        // What was kept while connecting goes first, once the gate opens.
        let kept = match preroll.is_empty() || !matches!(gate.verdict(), Verdict::Open(_)) {
            true => None,
            false => {
                // Once per connection: the subscriber's side of DTLS settles first.
                if let Some(at) = preroll.hold_until(Instant::now()) {
                    tracing::debug!(ssrc, kept = preroll.len(), "connected: what was kept goes first");
                    tokio::time::sleep_until(at.into()).await;
                    continue;
                }
                preroll.pop()
            }
        };
        let from_preroll = kept.is_some();
        // What was kept goes out once DTLS is up, not at the next packet: after a keyframe an
        // encoder under a bitrate cap may send nothing for a few hundred milliseconds.
        let kept_waits = !preroll.is_empty();
        let next = if let Some(p) = kept {
            Next::Current(Ok(p))
        } else {
            tokio::select! {
            biased;
            c = control.recv() => {
                // The subscriber is gone when its controls are.
                let Some(c) = c else { return };
                match c {
                    Control::Delay(d) => delay = as_bytes(d),
                    Control::Detach => {
                        packets = None;
                        preroll.clear();
                        layers.pending = None;
                        silence = None;
                        sequence.open_gap();
                    }
                    Control::Target(t) => {
                        // A target already met is announced again (Janus confirms it at once).
                        if t.substream == layers.current {
                            layers.announced = None;
                        }
                        if let Some(s) = svc.as_mut() {
                            // Another spatial layer is taken at a keyframe: ask for one now.
                            if s.target_spatial != t.substream {
                                keyframes.borrow().request();
                            }
                            s.target_spatial = t.substream;
                            s.target_temporal = t.temporal;
                        }
                        target = t;
                    }
                    Control::Switch(o) => {
                        origin = o;
                        silence = origin.silence.clone();
                        gate.follow(origin.muted.clone());
                        layers = Layers::start(&origin, &rid_target(&origin, &target), &now_silent(&silence));
                        packets = origin.subscribe(layers.current);
                        keyframes.send_replace(origin.keyframes.for_layer(layers.current));
                        svc = svc_for(&origin, &target);
                        wait.restart();
                        preroll.clear();
                        overlap = Overlap::seed(&mut preroll, &origin, layers.current).await;
                        sequence.open_gap();
                    }
                }
                Next::Reconsider
            }
            _ = gate.connects(kept_waits) => Next::Reconsider,
            changed = silence_changed(&mut silence) => {
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
            }
        };
        let received = match next {
            Next::Reconsider => {
                layers.reconsider(&origin, &rid_target(&origin, &target), &now_silent(&silence));
                continue;
            }
            Next::Pending(Ok(p)) => {
                // The new layer takes over at its first keyframe the gate lets through.
                let open = matches!(gate.verdict(), Verdict::Open(_));
                if !open || codec.is_some_and(|c| !c.is_keyframe(&p.payload)) {
                    continue;
                }
                let Some((layer, rx)) = layers.pending.take() else { continue };
                packets = Some(rx);
                layers.current = layer;
                // Another layer's sequence numbers: nothing of it was kept.
                overlap = Overlap(None);
                keyframes.send_replace(origin.keyframes.for_layer(layer));
                wait.end();
                sequence.open_gap();
                Ok(p)
            }
            Next::Pending(Err(broadcast::error::RecvError::Lagged(_))) => continue,
            Next::Pending(Err(broadcast::error::RecvError::Closed)) => {
                layers.pending = None;
                continue;
            }
            Next::Current(Ok(p)) if !from_preroll && overlap.repeats(p.header.sequence_number) => continue,
            Next::Current(r) => r,
        };
        let mut p = match received {
            Ok(p) => p,
            Err(broadcast::error::RecvError::Lagged(n)) => {
                tracing::debug!(dropped = n, "slow subscriber dropped packets");
                METRICS.dropped(DropReason::SlowSubscriber, n);
                wait.restart();
                preroll.clear();
                sequence.open_gap();
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => {
                // The publisher left: idle until the room makes this m-line inactive or reuses it.
                packets = None;
                layers.pending = None;
                sequence.open_gap();
                continue;
            }
        };
        let verdict = gate.verdict();
        // Open again after a pause or a hold: from the source layer's kept group if it has one,
        // which holds this packet too.
        if matches!(verdict, Verdict::Open(_)) && !from_preroll && std::mem::take(&mut reopening) {
            overlap = Overlap::seed(&mut preroll, &origin, layers.current).await;
            if !preroll.is_empty() {
                continue;
            }
        }
        let negotiated = match verdict {
            Verdict::NoAnswer => {
                preroll.keep(p);
                continue;
            }
            Verdict::Connecting => {
                if preroll.hold(p, Instant::now()) {
                    tracing::debug!(ssrc, "connecting: asking the publisher for a keyframe");
                    keyframes.borrow().request();
                }
                continue;
            }
            Verdict::Closed => {
                wait.restart();
                // Kept packets would leave a hole before this one's successors.
                preroll.clear();
                sequence.open_gap();
                reopening = codec.is_some();
                continue;
            }
            // Opened between this packet's read and now: it goes after what was kept.
            Verdict::Open(_) if !from_preroll && !preroll.is_empty() => {
                preroll.push(p);
                continue;
            }
            Verdict::Open(n) => n,
        };
        if !wait.admits(&p.payload, &keyframes) {
            METRICS.dropped(DropReason::KeyframeWait, 1);
            sequence.open_gap();
            continue;
        }
        if let Some(sel) = svc.as_mut() {
            if let Some(info) = super::svc::parse(&p.payload) {
                let key = VideoCodec::Vp9.is_keyframe(&p.payload);
                let (step, moved) = sel.packet(info, key, Instant::now());
                let Moved { spatial, temporal } = moved;
                if let Some((spatial, temporal)) = spatial {
                    let _ = events.send(PeerEvent::SvcLayer { mindex, spatial: Some(spatial), temporal });
                }
                if temporal.is_some() {
                    let _ = events.send(PeerEvent::SvcLayer { mindex, spatial: None, temporal });
                }
                match step {
                    Step::Drop => {
                        sequence.skip();
                        continue;
                    }
                    Step::Send { marker } => p.header.marker |= marker,
                }
            }
        }
        if origin.simulcast() && svc.is_none() {
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
        rewrite_for_subscriber(&mut p, ssrc, &negotiated);
        if let (Some(d), Some(id)) = (&delay, negotiated.extensions.playout_delay) {
            let _ = p.header.set_extension(id, d.clone());
        }
        if !sequence.rewrite(&mut p, Instant::now) {
            continue;
        }
        let bytes = p.payload.len();
        if track.write_rtp(p).await.is_err() {
            return;
        }
        count.packet(bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::Overlap;

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
}
