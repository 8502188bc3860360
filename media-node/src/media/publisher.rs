//! A publisher's PeerConnection: answers its offer and fans each incoming track out to
//! subscribers (one bounded broadcast per simulcast layer), keyframe requests coalesced, the
//! room's bitrate cap sent as REMB, silence, lost packets and data channel messages watched.

use super::forward::{strip_extensions, KeyframeRequester, Origin};
use super::peer::{
    add_candidates, build_pc, local_sdp_when_gathered, media_error, Direction, MediaSettings, PeerEvent, PeerHandler,
};
use crate::metrics::METRICS;
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::payload_feedbacks::receiver_estimated_maximum_bitrate::ReceiverEstimatedMaximumBitrate;
use rtc::rtp;
use shared::janus::request::Candidate;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, mpsc, watch};
use webrtc::data_channel::{DataChannel, DataChannelEvent};
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::PeerConnection;

/// Packets a publisher track fans out to its subscribers: a bounded broadcast, so a slow
/// subscriber drops (and counts as lagged) instead of stalling the publisher or the others.
pub type Feed = broadcast::Sender<rtp::Packet>;
const FEED_CAPACITY: usize = 512;
/// How often a publisher is reminded of the room's bitrate cap.
const REMB_INTERVAL: Duration = Duration::from_secs(5);
/// A track silent this long is reported as not receiving (Janus's default `no_media_timer`).
const NO_MEDIA_TIMER: Duration = Duration::from_secs(1);
/// At most one keyframe request per publisher track per this interval (Janus coalesces too).
const PLI_MIN_INTERVAL: Duration = Duration::from_millis(500);
/// How often a publisher track's packet counts are looked at (silence, simulcast layers).
const TICK: Duration = Duration::from_millis(50);
/// Empty ticks before a simulcast layer counts as silent: a low layer's frames can be more than
/// one tick apart.
const LAYER_QUIET_TICKS: u32 = 2;

/// A message on one of a publisher's data channels, for its subscribers: the channel's label
/// (a subscriber gets a channel of the same label, as Janus relays them) and the payload,
/// shared rather than copied per subscriber.
#[derive(Clone, Debug)]
pub struct DataMessage {
    pub label: Arc<str>,
    pub text: bool,
    pub data: bytes::Bytes,
}

/// A publisher's data channel messages, fanned out like its media ([`Feed`]).
pub type DataFeed = broadcast::Sender<DataMessage>;
pub(super) const DATA_FEED_CAPACITY: usize = 256;

/// A publisher's simulcast layers (up to 3, lowest first; one without simulcast).
pub const MAX_LAYERS: usize = 3;
/// Since when each simulcast layer has sent nothing (`None`: flowing), for subscribers' fallback.
pub type Silence = [Option<Instant>; MAX_LAYERS];

/// What becomes of a publisher's incoming tracks and data channels (its PeerConnection's
/// handler hands them over): each track pumped into its feeds, video keyframe requests and the
/// bitrate cap sent back, data channel messages fanned out.
pub(super) struct Incoming {
    /// Per kind, one feed per simulcast layer (lowest first).
    feeds: HashMap<String, Vec<Feed>>,
    /// The video's simulcast rids, lowest layer first (empty without simulcast).
    rids: Vec<String>,
    /// The SSRC of each video layer once it opened (0 before), for keyframe requests.
    layer_ssrcs: Arc<[AtomicU32; MAX_LAYERS]>,
    /// Simulcast: which layers went silent.
    silence: Option<watch::Sender<Silence>>,
    data: DataFeed,
    /// Keyframe requests (a layer each), taken by the video track when it opens.
    keyframes: std::sync::Mutex<Option<mpsc::UnboundedReceiver<u8>>>,
    /// Periodic keyframe requests (the room's `fir_freq`).
    fir_freq: Option<Duration>,
    /// Packets lost in a second that make a slow link (0: never).
    slowlink_threshold: u32,
    /// The bitrate cap (bit/s) sent as REMB (Janus's `bitrate`; 0: none).
    bitrate: watch::Receiver<u32>,
}

impl Incoming {
    /// A data channel (janus.js opens `JanusDataChannel`; an application may open more): each
    /// message goes to the data feed with the channel's label.
    pub(super) fn data_channel(&self, channel: Arc<dyn DataChannel>) {
        let feed = self.data.clone();
        tokio::spawn(async move {
            let label: Arc<str> = channel.label().await.unwrap_or_default().into();
            tracing::debug!(label = %label, "publisher data channel");
            while let Some(ev) = channel.poll().await {
                match ev {
                    DataChannelEvent::OnMessage(m) => {
                        let msg = DataMessage { label: label.clone(), text: m.is_string, data: m.data.freeze() };
                        // No subscriber yet is fine: the message is dropped.
                        let _ = feed.send(msg);
                    }
                    DataChannelEvent::OnClose => break,
                    _ => {}
                }
            }
        });
    }

    pub(super) async fn track(&self, track: Arc<dyn TrackRemote>, events: mpsc::UnboundedSender<PeerEvent>) {
        let kind = track.kind().await.to_string().to_ascii_lowercase();
        let Some(feeds) = self.feeds.get(&kind).cloned() else { return };
        let video = kind == "video";
        if video {
            tokio::spawn(cap_bitrate(track.clone(), self.bitrate.clone()));
            let taken = self.keyframes.lock().ok().and_then(|mut k| k.take());
            if let Some(requests) = taken {
                let layers = feeds.len();
                tokio::spawn(request_keyframes(
                    track.clone(),
                    requests,
                    self.layer_ssrcs.clone(),
                    layers,
                    self.fir_freq,
                ));
            }
        }
        let pump = Pump {
            kind,
            feeds,
            rids: if video { self.rids.clone() } else { Vec::new() },
            layer_ssrcs: if video { self.layer_ssrcs.clone() } else { Arc::default() },
            silence: if video { self.silence.clone() } else { None },
            events,
            slowlink_threshold: self.slowlink_threshold,
        };
        tokio::spawn(pump.run(track));
    }
}

/// Sends a publisher track's keyframe requests (PLI, to the SSRC of the layer asked for) as they
/// come, at most one round per [`PLI_MIN_INTERVAL`] (requests during the pause are answered by one
/// round after it, not dropped), plus one every `fir_freq` (the room's setting, as Janus) so late
/// decoders recover.
async fn request_keyframes(
    track: Arc<dyn TrackRemote>,
    mut requests: mpsc::UnboundedReceiver<u8>,
    layer_ssrcs: Arc<[AtomicU32; MAX_LAYERS]>,
    layers: usize,
    fir_freq: Option<Duration>,
) {
    let all = (1u8 << layers) - 1;
    // Layers asked for, one bit each.
    let mut pending = 0u8;
    loop {
        if pending == 0 {
            let periodic = async {
                match fir_freq {
                    Some(f) => tokio::time::sleep(f).await,
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                r = requests.recv() => match r {
                    Some(layer) => pending |= 1 << layer.min(MAX_LAYERS as u8 - 1),
                    None => break,
                },
                _ = periodic => pending = all,
            }
        }
        let first = track.ssrcs().await.first().copied().unwrap_or(0);
        let mut plis: Vec<Box<dyn rtc::rtcp::Packet>> = Vec::new();
        for layer in (0..layers).filter(|l| pending & (1 << l) != 0) {
            let ssrc = match layer_ssrcs[layer].load(Ordering::Relaxed) {
                0 => first,
                s => s,
            };
            tracing::debug!(ssrc, layer, "PLI to the publisher");
            plis.push(Box::new(PictureLossIndication { sender_ssrc: 0, media_ssrc: ssrc }));
        }
        let n = plis.len() as u64;
        if track.write_rtcp(plis).await.is_err() {
            break;
        }
        METRICS.plis_sent(n);
        tokio::time::sleep(PLI_MIN_INTERVAL).await;
        pending = 0;
        while let Ok(layer) = requests.try_recv() {
            pending |= 1 << layer.min(MAX_LAYERS as u8 - 1);
        }
    }
}

/// Reads one publisher track: each packet goes to its layer's feed (once, whatever the number of
/// subscribers); every [`TICK`] the counts tell which layers went silent and whether the track
/// stopped (Janus's `media` event after [`NO_MEDIA_TIMER`]).
struct Pump {
    kind: String,
    feeds: Vec<Feed>,
    rids: Vec<String>,
    layer_ssrcs: Arc<[AtomicU32; MAX_LAYERS]>,
    silence: Option<watch::Sender<Silence>>,
    events: mpsc::UnboundedSender<PeerEvent>,
    slowlink_threshold: u32,
}

/// Packets one incoming stream lost: sequence numbers skipped, less those that came late
/// (repaired by a retransmission), as Janus counts expected minus received.
#[derive(Clone, Copy, Default)]
struct LossCount {
    highest: Option<u16>,
    lost: i64,
}

impl LossCount {
    fn packet(&mut self, seq: u16) {
        let Some(highest) = self.highest else {
            self.highest = Some(seq);
            return;
        };
        match seq.wrapping_sub(highest) as i16 {
            d if d > 0 => {
                self.lost += i64::from(d) - 1;
                self.highest = Some(seq);
            }
            d if d < 0 => self.lost -= 1,
            _ => {}
        }
    }

    /// The count since the last call.
    fn take(&mut self) -> u32 {
        u32::try_from(std::mem::take(&mut self.lost).max(0)).unwrap_or(u32::MAX)
    }
}

impl Pump {
    async fn run(self, track: Arc<dyn TrackRemote>) {
        let Pump { kind, feeds, rids, layer_ssrcs, silence, events, slowlink_threshold } = self;
        let mut losses = [LossCount::default(); MAX_LAYERS];
        let mut ticks = 0u32;
        // Layer of each SSRC seen (a simulcast track's layers share the track).
        let mut ssrc_layer: Vec<(u32, usize)> = Vec::new();
        let mut counts = [0u32; MAX_LAYERS];
        let mut quiet = [0u32; MAX_LAYERS];
        // Per layer, as Janus reports a simulcast publisher's substreams one by one.
        let mut receiving = [false; MAX_LAYERS];
        let simulcast = feeds.len() > 1;
        let substream = |layer: usize| simulcast.then_some(layer as u8);
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let ev = tokio::select! {
                ev = track.poll() => match ev {
                    Some(ev) => ev,
                    None => break,
                },
                _ = tick.tick() => {
                    for layer in 0..feeds.len() {
                        quiet[layer] = if counts[layer] > 0 { 0 } else { quiet[layer] + 1 };
                        if receiving[layer] && TICK * quiet[layer] >= NO_MEDIA_TIMER {
                            receiving[layer] = false;
                            let _ = events.send(PeerEvent::Receiving(kind.clone(), false, substream(layer)));
                        }
                    }
                    if let Some(silence) = &silence {
                        let now = Instant::now();
                        for layer in 0..feeds.len() {
                            let since = (quiet[layer] >= LAYER_QUIET_TICKS).then(|| now - TICK * quiet[layer]);
                            if since.is_some() != silence.borrow()[layer].is_some() {
                                silence.send_modify(|s| s[layer] = since);
                            }
                        }
                    }
                    counts = [0; MAX_LAYERS];
                    ticks += 1;
                    if TICK * ticks >= Duration::from_secs(1) {
                        ticks = 0;
                        let lost: u32 = losses.iter_mut().map(LossCount::take).sum();
                        METRICS.incoming_lost(u64::from(lost));
                        if slowlink_threshold > 0 && lost >= slowlink_threshold {
                            let _ = events.send(PeerEvent::SlowLink { mindex: None, kind: kind.clone(), uplink: false, lost });
                        }
                    }
                    continue;
                }
            };
            match ev {
                TrackRemoteEvent::OnOpen(init) => {
                    let layer = init.rid.as_deref().and_then(|r| rids.iter().position(|x| x == r)).unwrap_or(0);
                    tracing::debug!(kind = %kind, ssrc = init.ssrc, rid = ?init.rid, layer, "track open");
                    ssrc_layer.retain(|(s, _)| *s != init.ssrc);
                    ssrc_layer.push((init.ssrc, layer));
                    layer_ssrcs[layer].store(init.ssrc, Ordering::Relaxed);
                }
                TrackRemoteEvent::OnRtpPacket(mut packet) => {
                    let ssrc = packet.header.ssrc;
                    let layer = ssrc_layer.iter().find(|(s, _)| *s == ssrc).map_or(0, |(_, l)| *l);
                    counts[layer] += 1;
                    losses[layer].packet(packet.header.sequence_number);
                    strip_extensions(&mut packet);
                    if !receiving[layer] {
                        receiving[layer] = true;
                        tracing::debug!(kind = %kind, layer, pt = packet.header.payload_type, "media arriving");
                        let _ = events.send(PeerEvent::Receiving(kind.clone(), true, substream(layer)));
                    }
                    // No subscriber yet is fine: the packet is dropped.
                    let _ = feeds[layer.min(feeds.len() - 1)].send(packet);
                }
                _ => {}
            }
        }
    }
}

/// Tells a publisher the room's bitrate cap (REMB) when its video starts and every
/// [`REMB_INTERVAL`] after, as Janus does with the room's `bitrate`; ends with the track.
/// A new cap (the publisher's `configure` `bitrate`) is sent at once; 0 sends none.
async fn cap_bitrate(track: Arc<dyn TrackRemote>, mut bitrate: watch::Receiver<u32>) {
    loop {
        let cap = *bitrate.borrow_and_update();
        if cap > 0 {
            let ssrc = track.ssrcs().await.first().copied().unwrap_or(0);
            let remb = ReceiverEstimatedMaximumBitrate { sender_ssrc: 0, bitrate: cap as f32, ssrcs: vec![ssrc] };
            if track.write_rtcp(vec![Box::new(remb)]).await.is_err() {
                return;
            }
            METRICS.remb_sent();
        }
        tokio::select! {
            _ = tokio::time::sleep(REMB_INTERVAL) => {}
            changed = bitrate.changed() => if changed.is_err() { return },
        }
    }
}

/// Why a publisher stream is not relayed: muted by a moderator (`moderate`), or not sent by its
/// publisher (`configure` with `send: false`); subscribers' streams hold while either is set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Hold {
    pub moderated: bool,
    pub unsent: bool,
}

impl Hold {
    pub fn held(&self) -> bool {
        self.moderated || self.unsent
    }
}

/// A publisher's PeerConnection.
pub struct PublisherPeer {
    pc: Arc<dyn PeerConnection>,
    /// Per kind, one feed per simulcast layer (lowest first).
    feeds: HashMap<String, Vec<Feed>>,
    keyframes: mpsc::UnboundedSender<u8>,
    /// Per kind: held by a moderator or by the publisher; its subscribers' streams hold meanwhile.
    holds: HashMap<String, watch::Sender<Hold>>,
    /// Its bitrate cap (REMB), the room's until the publisher configures its own.
    bitrate: watch::Sender<u32>,
    /// Simulcast video: which layers went silent.
    silence: Option<watch::Receiver<Silence>>,
    data: DataFeed,
}

impl PublisherPeer {
    /// Its PeerConnection (for statistics).
    pub fn pc(&self) -> &Arc<dyn PeerConnection> {
        &self.pc
    }

    /// Answers `offer_sdp`; returns the peer and the answer SDP (with candidates). A simulcast
    /// video's rids are read from the offer in `rid_order` (Janus's `hml` unless `lmh`).
    pub async fn answer(
        settings: &MediaSettings,
        offer_sdp: String,
        rid_order: Option<&str>,
        fir_freq: Option<Duration>,
        bitrate: u32,
        events: mpsc::UnboundedSender<PeerEvent>,
    ) -> Result<(Self, String), String> {
        let (gathered, mut gather_done) = mpsc::channel(1);
        let rids = super::sdp::simulcast_layers(&offer_sdp, rid_order);
        let feed = || broadcast::channel(FEED_CAPACITY).0;
        let mut feeds: HashMap<String, Vec<Feed>> = HashMap::new();
        feeds.insert("audio".into(), vec![feed()]);
        feeds.insert("video".into(), (0..rids.len().max(1)).map(|_| feed()).collect());
        let silence = (!rids.is_empty()).then(|| watch::channel([None; MAX_LAYERS]).0);
        let (keyframes, keyframe_rx) = mpsc::unbounded_channel();
        let data = broadcast::channel(DATA_FEED_CAPACITY).0;
        let cap = watch::channel(bitrate).0;
        let incoming = Incoming {
            feeds: feeds.clone(),
            rids,
            layer_ssrcs: Arc::default(),
            silence: silence.clone(),
            data: data.clone(),
            keyframes: std::sync::Mutex::new(Some(keyframe_rx)),
            fir_freq,
            slowlink_threshold: settings.slowlink_threshold,
            bitrate: cap.subscribe(),
        };
        let connected = watch::channel(false).0;
        let handler = Arc::new(PeerHandler::new(gathered, events, connected, Some(incoming)));
        let pc = build_pc(settings, Direction::Receive, handler).await?;
        let offer = RTCSessionDescription::offer(offer_sdp).map_err(|e| media_error("offer", e))?;
        pc.set_remote_description(offer).await.map_err(|e| media_error("remote description", e))?;
        let answer = pc.create_answer(None).await.map_err(|e| media_error("answer", e))?;
        pc.set_local_description(answer).await.map_err(|e| media_error("local description", e))?;
        let sdp = local_sdp_when_gathered(settings, &pc, &mut gather_done).await?;
        let holds = ["audio", "video"].into_iter().map(|k| (k.to_owned(), watch::channel(Hold::default()).0)).collect();
        let silence = silence.map(|s| s.subscribe());
        Ok((Self { pc, feeds, keyframes, holds, bitrate: cap, silence, data }, sdp))
    }

    pub async fn add_candidates(&self, candidates: Vec<Candidate>) {
        add_candidates(&self.pc, candidates).await
    }

    /// This publisher's stream of `kind` as a subscriber stream takes it.
    pub fn origin(&self, kind: &str) -> Option<Origin> {
        let feeds = self.feeds.get(kind)?;
        Some(Origin {
            layers: feeds.iter().map(broadcast::Sender::downgrade).collect(),
            keyframes: KeyframeRequester::new(self.keyframes.clone()),
            muted: self
                .holds
                .get(kind)
                .map(watch::Sender::subscribe)
                .unwrap_or_else(|| watch::channel(Hold::default()).1),
            silence: if kind == "video" { self.silence.clone() } else { None },
        })
    }

    /// Mutes (`moderate`) or unmutes this publisher's `kind` for every subscriber.
    pub fn set_muted(&self, kind: &str, muted: bool) {
        if let Some(h) = self.holds.get(kind) {
            h.send_modify(|h| h.moderated = muted);
        }
    }

    /// Relays (`true`) or holds this publisher's `kind` (its `configure` `send`).
    pub fn set_sending(&self, kind: &str, send: bool) {
        if let Some(h) = self.holds.get(kind) {
            h.send_modify(|h| h.unsent = !send);
        }
    }

    /// A new bitrate cap for this publisher (its `configure` `bitrate`), sent at once.
    pub fn set_bitrate(&self, bitrate: u32) {
        self.bitrate.send_replace(bitrate);
    }

    /// Asks this publisher for a keyframe on every layer (its `configure` `keyframe`).
    pub fn request_keyframe(&self) {
        let layers = self.feeds.get("video").map_or(1, Vec::len);
        for layer in 0..layers {
            let _ = self.keyframes.send(layer as u8);
        }
    }

    /// A second handle on the same PeerConnection, for work done off the room's thread.
    pub fn clone_handle(&self) -> Self {
        Self {
            pc: self.pc.clone(),
            feeds: self.feeds.clone(),
            keyframes: self.keyframes.clone(),
            holds: self.holds.clone(),
            bitrate: self.bitrate.clone(),
            silence: self.silence.clone(),
            data: self.data.clone(),
        }
    }

    /// This publisher's data channel messages, for a subscriber's data channel (weak, as
    /// [`Origin`]'s feeds).
    pub fn data_origin(&self) -> broadcast::WeakSender<DataMessage> {
        self.data.downgrade()
    }

    pub async fn close(&self) {
        let _ = self.pc.close().await;
    }
}
