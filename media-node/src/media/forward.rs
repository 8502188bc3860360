//! The RTP hot path from a publisher's track to each subscriber's: the task that drives one
//! subscriber stream's decisions (`outgoing`) with its source's feeds, the room's controls,
//! its gate and timers, and writes what goes out to its track; and the task that relays the
//! subscriber's RTCP about it. Nothing here crosses an actor mailbox or the bus, copies a
//! payload, or allocates per packet per subscriber, but for the extension list of a packet
//! carrying a relayed header extension (`tests/hot_path_allocations.rs` counts both).

use super::codec::VideoCodec;
use super::feed::{silence_changed, Hold, KeyframeRequester, Origin, Silence};
use super::outgoing::{Decision, Effect, From, Kept, Negotiated, Outgoing, Settings, Source, Verdict};
use super::peer::{PeerEvent, StreamAt};
use super::simulcast::LayerTarget;
use crate::metrics::{ForwardCount, WritePath};
use rtc::rtp;
use shared::media::MediaKind;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{broadcast, mpsc, watch};
use webrtc::media_stream::track_local::static_rtp::{TrackLocalStaticRTP, TryWriteRtp};
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};

/// Where a subscriber stream reports sustained loss (Janus's `slowlink`).
pub(super) struct LossWatch {
    /// The packets lost between two receiver reports that make a slow link (0: never), read
    /// at each report.
    pub tuning: Arc<super::tuning::LiveTuning>,
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
    let mut reported = super::feedback::ReportedLoss::default();
    while let Some(ev) = track.poll().await {
        let TrackLocalEvent::OnRtcpPacket(packets) = ev else { continue };
        if packets.iter().any(|p| super::feedback::is_keyframe_request(p.as_ref())) {
            publisher.borrow().request();
        }
        for total in packets.iter().filter_map(|p| super::feedback::total_lost(p.as_ref(), loss.ssrc)) {
            if let Some(lost) = reported.report(total, loss.tuning.slowlink_threshold()) {
                let ev = PeerEvent::SlowLink { at: StreamAt::Subscribed(loss.mindex), kind: loss.kind, lost };
                let _ = loss.events.send(ev);
            }
        }
    }
}

/// What the room tells a running subscriber stream.
pub enum Control {
    /// Take packets from another publisher stream (`switch`). Boxed: the channel's blocks hold
    /// 32 messages each from the start, and the other messages are a few bytes.
    Switch(Box<Origin>),
    /// Other simulcast layers (`configure` `substream` / `temporal` / `fallback`).
    Target(LayerTarget),
    /// The m-line went inactive (`unsubscribe`): send nothing until a `Switch` gives it a new
    /// source (a later `subscribe` reuses it, as Janus does), its sequence still continuing.
    Detach,
    /// The playout delay to send this subscriber (`min_delay`/`max_delay`), or the publisher's.
    Delay(Option<[u8; 3]>),
}

// A channel's first block of 32 messages is allocated with it, one per subscriber stream.
const _: () = assert!(std::mem::size_of::<Control>() <= 32);

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

/// What a subscriber stream's driver is given: its track, its decisions' settings, and where
/// keyframe requests and layer changes go.
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

/// Packets a subscriber stream takes in a row before it looks at its controls and timers again.
const MAX_IN_A_ROW: u32 = 64;

/// The current source's next packet when one is waiting: `None` when none is, or there is no source.
fn waiting(
    packets: &mut Option<broadcast::Receiver<rtp::Packet>>,
) -> Option<Result<rtp::Packet, broadcast::error::RecvError>> {
    use broadcast::error::{RecvError, TryRecvError};
    match packets.as_mut()?.try_recv() {
        Ok(p) => Some(Ok(p)),
        Err(TryRecvError::Empty) => None,
        Err(TryRecvError::Lagged(n)) => Some(Err(RecvError::Lagged(n))),
        Err(TryRecvError::Closed) => Some(Err(RecvError::Closed)),
    }
}

fn source_of(origin: &Origin) -> Source {
    Source { layers: origin.layers.len(), svc: origin.svc }
}

fn now_silent(s: &Option<watch::Receiver<Silence>>) -> Silence {
    s.as_ref().map_or([None; 3], |s| *s.borrow())
}

/// Drives one subscriber stream ([`Outgoing`]): receives its source's current layer (and the
/// one it moves to), hands each packet to its decisions with the gate's verdict, writes what
/// goes out, and does what the decisions ask (keyframe requests, layers received, events).
pub(super) async fn forward(
    mut origin: Origin,
    mut control: mpsc::UnboundedReceiver<Control>,
    stream: Stream,
    gate: Gate,
) {
    let mut gate = CachedGate { gate, verdict: None };
    let Stream { track, ssrc, clock_rate, codec, keyframes, mindex, events, target, delay } = stream;
    let mut silence = origin.silence.clone();
    let settings = Settings { ssrc, clock_rate, codec, target, delay };
    let mut out = Outgoing::new(settings, source_of(&origin), now_silent(&silence), Instant::now());
    // None while detached (an inactive m-line, or its publisher gone).
    let mut packets = origin.subscribe(out.current_layer());
    // The layer being moved to.
    let mut pending: Option<broadcast::Receiver<rtp::Packet>> = None;
    keyframes.send_replace(origin.keyframes.for_layer(out.current_layer()));
    out.seed(origin.kept(out.current_layer()).await);
    let mut count = ForwardCount::default();
    // Packets taken in a row without the select below.
    let mut in_a_row = 0;
    loop {
        while let Some(effect) = out.poll_effect() {
            match effect {
                Effect::Keyframe(layer) => origin.keyframes.for_layer(layer).request(),
                Effect::Pending(layer) => pending = layer.and_then(|l| origin.subscribe(l)),
                Effect::Promoted(layer) => {
                    packets = pending.take();
                    keyframes.send_replace(origin.keyframes.for_layer(layer));
                }
                Effect::Layer { substream, temporal } => {
                    let _ = events.send(PeerEvent::Layer { mindex, substream, temporal });
                }
                Effect::SvcLayer { spatial, temporal } => {
                    let _ = events.send(PeerEvent::SvcLayer { mindex, spatial, temporal });
                }
            }
        }
        let kept = out.poll_kept(|| gate.verdict(), Instant::now);
        // A packet already waiting (the rest of a frame) is taken without the select, whose
        // other arms (controls, the gate, silence, the recheck timer) were polled, and their
        // wakers registered again, for every packet. They are looked at once the burst is taken,
        // or after `MAX_IN_A_ROW`; not while a layer switch is pending (its packets come first).
        let burst = match kept {
            Kept::None if in_a_row < MAX_IN_A_ROW && pending.is_none() => waiting(&mut packets),
            _ => None,
        };
        let (from, received) = match (kept, burst) {
            (Kept::At(at), _) => {
                tokio::time::sleep_until(at.into()).await;
                continue;
            }
            (Kept::Packet(p), _) => (From::Kept, Ok(p)),
            (Kept::None, Some(r)) => {
                in_a_row += 1;
                (From::Current, r)
            }
            (Kept::None, None) => {
                in_a_row = 0;
                let recheck = out.recheck_at();
                tokio::select! {
                biased;
                c = control.recv() => {
                    // The subscriber is gone when its controls are.
                    let Some(c) = c else { return };
                    match c {
                        Control::Delay(d) => out.set_delay(d),
                        Control::Detach => {
                            packets = None;
                            pending = None;
                            silence = None;
                            out.detach(Instant::now);
                        }
                        Control::Target(t) => out.set_target(t, Instant::now()),
                        Control::Switch(o) => {
                            origin = *o;
                            silence = origin.silence.clone();
                            gate.follow(origin.muted.clone());
                            pending = None;
                            out.switch(source_of(&origin), now_silent(&silence), Instant::now);
                            packets = origin.subscribe(out.current_layer());
                            keyframes.send_replace(origin.keyframes.for_layer(out.current_layer()));
                            out.seed(origin.kept(out.current_layer()).await);
                        }
                    }
                    continue;
                }
                // What was kept goes out once DTLS is up, not at the next packet.
                _ = gate.connects(out.has_kept()) => continue,
                changed = silence_changed(&mut silence) => {
                    if !changed {
                        silence = None;
                    }
                    out.set_silence(now_silent(&silence), Instant::now());
                    continue;
                }
                _ = async {
                    match recheck {
                        Some(at) => tokio::time::sleep_until(at.into()).await,
                        None => std::future::pending().await,
                    }
                } => {
                    out.reconsider(Instant::now());
                    continue;
                }
                r = async {
                    match pending.as_mut() {
                        Some(rx) => rx.recv().await,
                        None => std::future::pending().await,
                    }
                } => (From::Pending, r),
                r = async {
                    match packets.as_mut() {
                        Some(p) => p.recv().await,
                        None => std::future::pending().await,
                    }
                } => (From::Current, r),
                }
            }
        };
        let p = match (from, received) {
            (_, Ok(p)) => p,
            (From::Pending, Err(broadcast::error::RecvError::Lagged(_))) => continue,
            (From::Pending, Err(broadcast::error::RecvError::Closed)) => {
                pending = None;
                out.pending_closed();
                continue;
            }
            (_, Err(broadcast::error::RecvError::Lagged(n))) => {
                out.lagged(n, Instant::now);
                continue;
            }
            (_, Err(broadcast::error::RecvError::Closed)) => {
                packets = None;
                pending = None;
                out.source_closed(Instant::now);
                continue;
            }
        };
        let verdict = gate.verdict();
        let decision = match out.packet(from, p, verdict, Instant::now) {
            Decision::Reseed(p) => {
                out.seed(origin.kept(out.current_layer()).await);
                if out.has_kept() {
                    continue;
                }
                out.packet(From::Current, p, verdict, Instant::now)
            }
            d => d,
        };
        let Decision::Send(p) = decision else { continue };
        let bytes = p.payload.len();
        let path = match track.try_write_rtp(p) {
            TryWriteRtp::Sent { woke_driver } => WritePath::Direct { woke_driver },
            TryWriteRtp::Queued => WritePath::Driver,
            TryWriteRtp::Busy(p) => match track.write_rtp(p).await {
                Ok(()) => WritePath::Driver,
                Err(_) => return,
            },
            TryWriteRtp::Failed(_) => return,
        };
        count.written(path);
        count.packet(bytes);
    }
}
