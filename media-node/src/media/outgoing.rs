//! One subscriber stream's forwarding decisions, sans-IO: each packet of its source goes in
//! with the gate's verdict and the time, and out comes the packet rewritten for this
//! subscriber, or nothing. What the stream needs from around it (a keyframe asked for, another
//! simulcast layer received, a layer change reported) is queued as an [`Effect`] for its driver
//! (`forward`), which owns the channels, the timers and the track. Time is an input: the
//! clock is a function asked only where a decision needs it (a gap, a keyframe wait, a VP9 SVC
//! packet's layer), so the tests drive every timer without sleeping and a flowing stream of
//! any other kind reads no clock per packet.

use super::codec::VideoCodec;
use super::feed::{KeyframeAsk, Silence};
use super::preroll::Preroll;
use super::rewrite::Rewriter;
use super::simulcast::{LayerTarget, Layers};
use super::svc::{Moved, Step, SvcSelector};
use super::vp8::vp8_temporal_id;
use crate::metrics::{DropReason, METRICS};
use rtc::rtp;
use shared::media::ExtensionIds;
use std::collections::VecDeque;
use std::time::Instant;

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

/// Whether a subscriber stream may flow now (its driver reads the answer, DTLS, pause, hold
/// and mute into one verdict).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// No answer yet: nothing was sent, so there is no gap to mend; video is kept from a
    /// keyframe on.
    NoAnswer,
    /// Answered and otherwise open, its DTLS not up yet: video is kept from a keyframe on, one
    /// asked for if none is kept.
    Connecting,
    Closed,
    Open(Negotiated),
}

/// What the stream needs done around it, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Ask the publisher for a keyframe of this layer.
    Keyframe(u8),
    /// Receive this layer besides the current one (`None`: stop receiving the other one).
    Pending(Option<u8>),
    /// The pending layer took over (at its keyframe): its packets are the current ones now,
    /// and keyframe requests go to it.
    Promoted(u8),
    /// A simulcast layer is relayed (Janus's `substream` / `temporal`).
    Layer { substream: Option<u8>, temporal: Option<u8> },
    /// VP9 SVC layers are relayed (Janus's `spatial_layer` / `temporal_layer`).
    SvcLayer { spatial: Option<u8>, temporal: Option<u8> },
}

/// Where a packet given to [`Outgoing::packet`] came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum From {
    /// The current layer's feed.
    Current,
    /// The layer being moved to.
    Pending,
    /// What was kept while connecting ([`Outgoing::poll_kept`]).
    Kept,
}

/// What becomes of a packet.
#[derive(Debug)]
pub enum Decision {
    /// Write it to the track.
    Send(rtp::Packet),
    /// Nothing goes out.
    Hold,
    /// The stream opens again after a pause or a hold: [`Outgoing::seed`] it from the current
    /// layer's kept group, which holds this packet too; if that keeps nothing, give the packet
    /// back as [`From::Current`].
    Reseed(rtp::Packet),
}

/// What was kept while connecting, once the stream is open ([`Outgoing::poll_kept`]).
#[derive(Debug)]
pub enum Kept {
    /// Nothing to send.
    None,
    /// Not before this time (the subscriber's side of DTLS settles first).
    At(Instant),
    /// Send this next ([`Outgoing::packet`] with [`From::Kept`]).
    Packet(rtp::Packet),
}

/// The source as the decisions need it: how many simulcast layers it has, and whether it is a
/// VP9 SVC stream whose spatial target applies inside the stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Source {
    pub layers: usize,
    pub svc: bool,
}

/// A stream's fixed settings and first wishes.
pub struct Settings {
    /// The stream's SSRC (its own, towards the subscriber).
    pub ssrc: u32,
    pub clock_rate: u32,
    /// Video: start (and restart, and change simulcast layers) on a keyframe of this codec.
    pub codec: Option<VideoCodec>,
    pub target: LayerTarget,
    /// The subscriber's own playout delay, replacing the publisher's (the extension's bytes).
    pub delay: Option<[u8; 3]>,
}

/// A video stream's wait for a keyframe: from its start and after every gap of ours, it lets
/// nothing out until one comes, asking the publisher for one now and then meanwhile.
struct KeyframeWait {
    /// The video codec whose keyframes it waits for (none: audio, never waits).
    codec: Option<VideoCodec>,
    waiting: bool,
    /// When a keyframe was last asked for in this wait.
    asked: KeyframeAsk,
}

/// A [`KeyframeWait`]'s verdict on a packet.
#[derive(PartialEq, Eq)]
enum Admission {
    Pass,
    Drop,
    /// Dropped, and the publisher is to be asked for a keyframe.
    DropAndAsk,
}

impl KeyframeWait {
    fn new(codec: Option<VideoCodec>) -> Self {
        Self { codec, waiting: codec.is_some(), asked: KeyframeAsk::default() }
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
    /// others ask again, as often as the publisher's coalescing lets one through (a request
    /// can be lost or ignored). The clock is read only while waiting.
    fn admits(&mut self, payload: &[u8], now: impl Fn() -> Instant) -> Admission {
        if !self.waiting {
            return Admission::Pass;
        }
        if self.codec.is_some_and(|c| c.is_keyframe(payload)) {
            self.end();
            return Admission::Pass;
        }
        match self.asked.due(now()) {
            true => Admission::DropAndAsk,
            false => Admission::Drop,
        }
    }
}

/// The packets a stream got twice: a source layer's kept group of pictures ends with packets
/// the stream's receiver (subscribed before asking for it) may also hold.
struct Overlap(Option<u16>);

impl Overlap {
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

/// One subscriber stream: rewrites each packet for this subscriber (SSRC, payload type,
/// sequence numbers and timestamps; its header extensions are renamed on the way out, by
/// `extensions`) and, for video, starts on a keyframe: from its offer until DTLS is up it keeps
/// the packets from the latest keyframe on (`preroll`), starting from what the publisher layer
/// kept (`gop`), sent first at connect. It asks the publisher for a keyframe as soon as the
/// answer is in if none is kept or what is kept is too long to go out whole (then its keyframe
/// goes alone, and the stream goes on at the next one). A `switch` replaces the source, the
/// sequence unbroken; the new source, and a stream open again after a pause or a hold, start
/// from what the layer kept the same way. A simulcast source is taken one layer at a time: the
/// target's, or a lower one while it is silent past `fallback`; temporal layers above the
/// target are left out. A VP9 SVC source's layers above the target (`substream` as the spatial
/// layer) are left out too (`svc`).
pub struct Outgoing {
    ssrc: u32,
    codec: Option<VideoCodec>,
    target: LayerTarget,
    /// Shared bytes: each packet's extension clones a reference, not the bytes.
    delay: Option<bytes::Bytes>,
    source: Source,
    silence: Silence,
    layers: Layers,
    wait: KeyframeWait,
    preroll: Preroll,
    overlap: Overlap,
    /// Closed since the last packet (paused, held): video starts again from a kept group.
    reopening: bool,
    svc: Option<SvcSelector>,
    sequence: Rewriter,
    effects: VecDeque<Effect>,
}

fn delay_bytes(d: Option<[u8; 3]>) -> Option<bytes::Bytes> {
    d.map(|d| bytes::Bytes::copy_from_slice(&d))
}

impl Outgoing {
    /// A stream on `source`, whose layers are silent as `silence` says; the driver receives
    /// [`Outgoing::current_layer`] and then [`Outgoing::seed`]s it.
    pub fn new(settings: Settings, source: Source, silence: Silence, now: Instant) -> Self {
        let Settings { ssrc, clock_rate, codec, target, delay } = settings;
        let mut out = Self {
            ssrc,
            codec,
            target,
            delay: delay_bytes(delay),
            source,
            silence,
            layers: Layers::start(0, &target, &silence, now),
            wait: KeyframeWait::new(codec),
            preroll: Preroll::new(codec, clock_rate),
            overlap: Overlap(None),
            reopening: false,
            svc: None,
            sequence: Rewriter::new(clock_rate),
            effects: VecDeque::new(),
        };
        out.take_source(source, now);
        out
    }

    fn svc_source(&self) -> bool {
        self.source.svc && self.codec == Some(VideoCodec::Vp9)
    }

    /// The target the rid layers are chosen by: a VP9 SVC source's spatial target applies
    /// inside its stream, so of its rid layers (a browser asked for simulcast in VP9 sends its
    /// spatial layers on the first rid) the best flowing one is taken.
    fn rid_target(&self) -> LayerTarget {
        match self.svc_source() {
            true => LayerTarget { substream: u8::MAX, ..self.target },
            false => self.target,
        }
    }

    fn take_source(&mut self, source: Source, now: Instant) {
        self.source = source;
        self.layers = Layers::start(source.layers, &self.rid_target(), &self.silence, now);
        self.svc = self.svc_source().then(|| SvcSelector::new(self.target.substream, self.target.temporal));
    }

    /// The layer whose packets are the current ones.
    pub fn current_layer(&self) -> u8 {
        self.layers.current
    }

    /// When a silent layer's fallback deadline passes: then [`Outgoing::reconsider`].
    pub fn recheck_at(&self) -> Option<Instant> {
        self.layers.recheck
    }

    /// What the stream needs done, oldest first.
    pub fn poll_effect(&mut self) -> Option<Effect> {
        self.effects.pop_front()
    }

    /// Starts what is kept from the current layer's kept group of pictures (`gop`); packets the
    /// current feed also holds are then dropped up to the first newer one.
    pub fn seed(&mut self, kept: Vec<rtp::Packet>) {
        let last = kept.last().map(|p| p.header.sequence_number);
        self.preroll.seed(kept);
        self.overlap = Overlap(last.filter(|_| !self.preroll.is_empty()));
    }

    /// Whether something kept is still to go out (the driver then wakes when DTLS comes up,
    /// not at the next packet: after a keyframe an encoder under a bitrate cap may send
    /// nothing for a few hundred milliseconds).
    pub fn has_kept(&self) -> bool {
        !self.preroll.is_empty()
    }

    /// The next thing kept to send, once the stream is open; asked first on every turn of the
    /// driver's loop.
    /// `verdict` is asked for only when something is kept.
    pub fn poll_kept(&mut self, verdict: impl FnOnce() -> Verdict, now: impl Fn() -> Instant + Copy) -> Kept {
        // After a publisher's last picture alone, its live ones start at their next keyframe.
        if self.preroll.cut_sent() {
            self.wait.restart();
            self.sequence.open_gap(now);
        }
        if self.preroll.is_empty() || !matches!(verdict(), Verdict::Open(_)) {
            return Kept::None;
        }
        // Once per connection: the subscriber's side of DTLS settles first.
        if let Some(at) = self.preroll.hold_until(now()) {
            tracing::debug!(ssrc = self.ssrc, kept = self.preroll.len(), "connected: what was kept goes first");
            return Kept::At(at);
        }
        self.preroll.pop().map_or(Kept::None, Kept::Packet)
    }

    /// Moves towards the simulcast layer the target and the silent layers call for (after any
    /// change of either, and at [`Outgoing::recheck_at`]).
    pub fn reconsider(&mut self, now: Instant) {
        let target = self.rid_target();
        if let Some(pending) = self.layers.reconsider(self.source.layers, &target, &self.silence, now) {
            self.effects.push_back(Effect::Pending(pending));
            if let Some(layer) = pending {
                self.effects.push_back(Effect::Keyframe(layer));
            }
        }
    }

    /// The source's layers that went silent changed (all flowing once the source is gone).
    pub fn set_silence(&mut self, silence: Silence, now: Instant) {
        self.silence = silence;
        self.reconsider(now);
    }

    /// Other simulcast or SVC layers (`configure` `substream` / `temporal` / `fallback`).
    pub fn set_target(&mut self, target: LayerTarget, now: Instant) {
        // A target already met is announced again (Janus confirms it at once).
        if target.substream == self.layers.current {
            self.layers.announced = None;
        }
        if let Some(s) = self.svc.as_mut() {
            // Another spatial layer is taken at a keyframe: ask for one now.
            if s.target_spatial != target.substream {
                self.effects.push_back(Effect::Keyframe(self.layers.current));
            }
            s.target_spatial = target.substream;
            s.target_temporal = target.temporal;
        }
        self.target = target;
        self.reconsider(now);
    }

    /// The playout delay to send this subscriber (`min_delay`/`max_delay`), or the publisher's.
    pub fn set_delay(&mut self, delay: Option<[u8; 3]>) {
        self.delay = delay_bytes(delay);
    }

    /// Another publisher stream (`switch`): the sequence goes on unbroken from a keyframe of
    /// the new source; the driver receives [`Outgoing::current_layer`] and seeds it.
    pub fn switch(&mut self, source: Source, silence: Silence, now: impl Fn() -> Instant + Copy) {
        self.silence = silence;
        self.take_source(source, now());
        self.wait.restart();
        self.preroll.clear();
        self.sequence.open_gap(now);
        self.reconsider(now());
    }

    /// The m-line went inactive (`unsubscribe`): nothing until a [`Outgoing::switch`] gives it
    /// a new source, its sequence still continuing.
    pub fn detach(&mut self, now: impl Fn() -> Instant + Copy) {
        self.preroll.clear();
        self.layers.pending = None;
        // No layer of the old source is taken up again.
        self.source.layers = self.source.layers.min(1);
        self.silence = Silence::default();
        self.sequence.open_gap(now);
    }

    /// The current feed dropped `n` packets for this slow stream: video starts over at a
    /// keyframe.
    pub fn lagged(&mut self, n: u64, now: impl Fn() -> Instant + Copy) {
        tracing::debug!(ssrc = self.ssrc, dropped = n, "slow subscriber dropped packets");
        METRICS.dropped(DropReason::SlowSubscriber, n);
        self.wait.restart();
        self.preroll.clear();
        self.sequence.open_gap(now);
    }

    /// The publisher left: idle until the room makes this m-line inactive or reuses it.
    pub fn source_closed(&mut self, now: impl Fn() -> Instant + Copy) {
        self.layers.pending = None;
        self.sequence.open_gap(now);
    }

    /// The layer being moved to is gone.
    pub fn pending_closed(&mut self) {
        self.layers.pending = None;
    }

    /// Decides on one packet of the source.
    pub fn packet(
        &mut self,
        from: From,
        mut p: rtp::Packet,
        verdict: Verdict,
        now: impl Fn() -> Instant + Copy,
    ) -> Decision {
        match from {
            From::Pending => {
                // The new layer takes over at its first keyframe the gate lets through.
                let open = matches!(verdict, Verdict::Open(_));
                if !open || self.codec.is_some_and(|c| !c.is_keyframe(&p.payload)) {
                    return Decision::Hold;
                }
                let Some(layer) = self.layers.pending.take() else { return Decision::Hold };
                self.layers.current = layer;
                // Another layer's sequence numbers: nothing of it was kept.
                self.overlap = Overlap(None);
                self.effects.push_back(Effect::Promoted(layer));
                self.wait.end();
                self.sequence.open_gap(now);
            }
            From::Current if self.overlap.repeats(p.header.sequence_number) => return Decision::Hold,
            From::Current | From::Kept => {}
        }
        let from_kept = from == From::Kept;
        if matches!(verdict, Verdict::Open(_)) && !from_kept && std::mem::take(&mut self.reopening) {
            return Decision::Reseed(p);
        }
        let negotiated = match verdict {
            Verdict::NoAnswer => {
                self.preroll.keep(p);
                return Decision::Hold;
            }
            Verdict::Connecting => {
                if self.preroll.hold(p, now()) {
                    tracing::debug!(ssrc = self.ssrc, "connecting: asking the publisher for a keyframe");
                    self.effects.push_back(Effect::Keyframe(self.layers.current));
                }
                return Decision::Hold;
            }
            Verdict::Closed => {
                self.wait.restart();
                // Kept packets would leave a hole before this one's successors.
                self.preroll.clear();
                self.sequence.open_gap(now);
                self.reopening = self.codec.is_some();
                return Decision::Hold;
            }
            // Opened between this packet's read and now: it goes after what was kept.
            Verdict::Open(_) if !from_kept && !self.preroll.is_empty() => {
                self.preroll.push(p);
                return Decision::Hold;
            }
            Verdict::Open(n) => n,
        };
        match self.wait.admits(&p.payload, now) {
            Admission::Pass => {}
            drop => {
                if drop == Admission::DropAndAsk {
                    tracing::debug!(ssrc = self.ssrc, "waiting for a keyframe: asking the publisher");
                    self.effects.push_back(Effect::Keyframe(self.layers.current));
                }
                METRICS.dropped(DropReason::KeyframeWait, 1);
                self.sequence.open_gap(now);
                return Decision::Hold;
            }
        }
        if !self.select_layers(&mut p, now) {
            self.sequence.skip();
            return Decision::Hold;
        }
        // Numbered before it takes the subscriber's SSRC: the rewriter follows the source's.
        if !self.sequence.rewrite(&mut p, now) {
            return Decision::Hold;
        }
        rewrite_for_subscriber(&mut p, self.ssrc, &negotiated);
        if let (Some(d), Some(id)) = (&self.delay, negotiated.extensions.playout_delay) {
            let _ = p.header.set_extension(id, d.clone());
        }
        Decision::Send(p)
    }

    /// Whether `p` is within the SVC or simulcast temporal layers relayed (announcing a move).
    fn select_layers(&mut self, p: &mut rtp::Packet, now: impl Fn() -> Instant) -> bool {
        if let Some(sel) = self.svc.as_mut() {
            if let Some(info) = super::svc::parse(&p.payload) {
                let key = VideoCodec::Vp9.is_keyframe(&p.payload);
                let (step, moved) = sel.packet(info, key, now());
                let Moved { spatial, temporal } = moved;
                if let Some((spatial, temporal)) = spatial {
                    self.effects.push_back(Effect::SvcLayer { spatial: Some(spatial), temporal });
                }
                if temporal.is_some() {
                    self.effects.push_back(Effect::SvcLayer { spatial: None, temporal });
                }
                match step {
                    Step::Drop => return false,
                    Step::Send { marker } => p.header.marker |= marker,
                }
            }
            return true;
        }
        if self.source.layers <= 1 {
            return true;
        }
        let layers = &mut self.layers;
        if layers.announced != Some(layers.current) {
            layers.announced = Some(layers.current);
            self.effects.push_back(Effect::Layer { substream: Some(layers.current), temporal: None });
        }
        let vp8 = self.codec == Some(VideoCodec::Vp8);
        if let Some(tid) = vp8.then(|| vp8_temporal_id(&p.payload)).flatten() {
            if layers.temporal != Some(self.target.temporal) && tid == self.target.temporal {
                layers.temporal = Some(tid);
                self.effects.push_back(Effect::Layer { substream: None, temporal: Some(tid) });
            }
            if layers.temporal.is_some_and(|t| tid > t) {
                return false;
            }
        }
        true
    }
}

#[cfg(test)]
mod tests;
