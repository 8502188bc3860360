//! WebRTC PeerConnections on webrtc-rs 0.21 — the only module that imports it.
//!
//! A publisher's PeerConnection answers the client's offer with its ICE candidates included
//! (half-trickle, as Janus: the answer waits for gathering to complete, so clients need not
//! receive trickled server candidates), reports its state as [`PeerEvent`]s, and reads the
//! incoming RTP. Forwarding to subscribers comes with the subscriber side.

use super::forward::{strip_extensions, KeyframeRequester, Origin};
use rtc::ice::mdns::MulticastDnsMode;
use rtc::interceptor::{NackResponderBuilder, Registry, SenderReportBuilder, Slot};
use rtc::peer_connection::configuration::interceptor_registry::register_default_interceptors;
use rtc::peer_connection::configuration::media_engine::MediaEngine;
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::transport::RTCIceCandidateInit;
use rtc::peer_connection::transport::RTCIceServer;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::payload_feedbacks::receiver_estimated_maximum_bitrate::ReceiverEstimatedMaximumBitrate;
use rtc::rtp;
use rtc::rtp_transceiver::rtp_sender::TYPE_RTCP_FB_NACK;
use rtc::rtp_transceiver::rtp_sender::{RTCPFeedback, RtpCodecKind};
use shared::janus::request::Candidate;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, mpsc, watch};
use webrtc::data_channel::{DataChannel, DataChannelEvent};
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCIceGatheringState, RTCPeerConnectionState,
};

/// ICE gathering on the configured addresses is local and quick; a stuck one must not hold a
/// request forever.
const GATHER_TIMEOUT: Duration = Duration::from_secs(3);

/// Where peers listen.
#[derive(Clone, Debug)]
pub struct MediaSettings {
    /// Addresses to gather host candidates on. A wildcard (`0.0.0.0`) binds every interface but
    /// loopback (webrtc-rs skips it); list `127.0.0.1` explicitly for tests on one machine.
    pub udp_ips: Vec<IpAddr>,
    /// UDP ports to use (inclusive), so a firewall or a Kubernetes pod can open just these;
    /// `None` picks ephemeral ports.
    pub ports: Option<PortRange>,
    /// The address to announce instead of the bound ones (Janus's `nat_1_1_mapping`), for a
    /// node behind a 1:1 NAT.
    pub public_ip: Option<String>,
    /// STUN/TURN servers peers may use (`stun:` / `turn:` URLs), with TURN credentials.
    pub ice_servers: Vec<IceServer>,
    /// Packets lost in a second on a stream that make a `slowlink` (0: never, Janus's default).
    pub slowlink_threshold: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IceServer {
    pub url: String,
    pub username: String,
    pub credential: String,
}

/// An inclusive UDP port range handed out round-robin; ports still in use are skipped.
#[derive(Clone, Debug)]
pub struct PortRange {
    pub min: u16,
    pub max: u16,
    next: Arc<std::sync::atomic::AtomicU32>,
}

impl PortRange {
    pub fn new(min: u16, max: u16) -> Option<Self> {
        (min > 0 && min <= max).then(|| Self { min, max, next: Arc::new(std::sync::atomic::AtomicU32::new(0)) })
    }

    fn next_port(&self) -> u16 {
        let span = u32::from(self.max - self.min) + 1;
        let i = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % span;
        self.min + i as u16
    }

    fn span(&self) -> u32 {
        u32::from(self.max - self.min) + 1
    }
}

/// What a peer reports to its room.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PeerEvent {
    /// DTLS/SRTP is up (Janus's `webrtcup`).
    Connected,
    /// Media of this kind started (`true`: the first packet, or the first after a silence) or
    /// stopped (`false`: nothing for [`NO_MEDIA_TIMER`]) arriving (Janus's `media` event).
    Receiving(String, bool),
    /// The PeerConnection is gone; the reason goes into Janus's `hangup`.
    Down(String),
    /// Packets of a stream are being lost (`uplink`: those sent to a subscriber, at m-line
    /// `mindex`; otherwise those a publisher sends us, of `kind`): Janus's `slowlink`.
    SlowLink { mindex: Option<usize>, kind: String, uplink: bool, lost: u32 },
    /// A subscriber's simulcast stream at m-line `mindex` now relays this substream or temporal
    /// layer (Janus's `substream` / `temporal` events).
    Layer { mindex: usize, substream: Option<u8>, temporal: Option<u8> },
}

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
const DATA_FEED_CAPACITY: usize = 256;

/// A publisher's simulcast layers (up to 3, lowest first; one without simulcast).
pub const MAX_LAYERS: usize = 3;
/// Since when each simulcast layer has sent nothing (`None`: flowing), for subscribers' fallback.
pub type Silence = [Option<Instant>; MAX_LAYERS];

/// Reports a PeerConnection's events to its room; a publisher's also fans its tracks out.
pub(super) struct PeerHandler {
    gathered: mpsc::Sender<()>,
    events: mpsc::UnboundedSender<PeerEvent>,
    /// Per kind, one feed per simulcast layer (lowest first).
    feeds: HashMap<String, Vec<Feed>>,
    /// The video's simulcast rids, lowest layer first (empty without simulcast).
    rids: Vec<String>,
    /// The SSRC of each video layer once it opened (0 before), for keyframe requests.
    layer_ssrcs: Arc<[AtomicU32; MAX_LAYERS]>,
    /// Simulcast: which layers went silent.
    silence: Option<watch::Sender<Silence>>,
    /// A publisher's data channel messages.
    data: Option<DataFeed>,
    /// Keyframe requests (a layer each), taken by the video track when it opens.
    keyframes: std::sync::Mutex<Option<mpsc::UnboundedReceiver<u8>>>,
    /// Periodic keyframe requests (the room's `fir_freq`).
    fir_freq: Option<Duration>,
    /// Packets lost in a second that make a slow link (0: never).
    slowlink_threshold: u32,
    /// The room's bitrate cap (bit/s), sent to a publisher as REMB (Janus's `bitrate`).
    bitrate: Option<u32>,
    /// Whether DTLS-SRTP is up: a subscriber's packets are only sent then (earlier ones are
    /// dropped by SRTP, and the keyframe it waits for would be lost).
    connected: watch::Sender<bool>,
}

impl PeerHandler {
    /// A subscriber's: no tracks come in, so no feeds and no keyframe requests to make.
    pub(super) fn sending(
        gathered: mpsc::Sender<()>,
        events: mpsc::UnboundedSender<PeerEvent>,
        connected: watch::Sender<bool>,
    ) -> Self {
        Self {
            gathered,
            events,
            feeds: HashMap::new(),
            rids: Vec::new(),
            layer_ssrcs: Arc::default(),
            silence: None,
            data: None,
            keyframes: std::sync::Mutex::new(None),
            fir_freq: None,
            slowlink_threshold: 0,
            bitrate: None,
            connected,
        }
    }
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for PeerHandler {
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            let _ = self.gathered.try_send(());
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        let _ = self.connected.send(state == RTCPeerConnectionState::Connected);
        let ev = match state {
            RTCPeerConnectionState::Connected => PeerEvent::Connected,
            RTCPeerConnectionState::Failed => PeerEvent::Down("ICE failed".into()),
            RTCPeerConnectionState::Closed => PeerEvent::Down("Close PC".into()),
            _ => return,
        };
        let _ = self.events.send(ev);
    }

    /// A publisher's data channel (janus.js opens `JanusDataChannel`; an application may open
    /// more): each message goes to the data feed with the channel's label.
    async fn on_data_channel(&self, channel: Arc<dyn DataChannel>) {
        let Some(feed) = self.data.clone() else { return };
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

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let kind = track.kind().await.to_string().to_ascii_lowercase();
        let Some(feeds) = self.feeds.get(&kind).cloned() else { return };
        if let (true, Some(bitrate)) = (kind == "video", self.bitrate) {
            tokio::spawn(cap_bitrate(track.clone(), bitrate));
        }
        let video = kind == "video";
        if video {
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
            events: self.events.clone(),
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
        if track.write_rtcp(plis).await.is_err() {
            break;
        }
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
        let mut quiet_track = 0u32;
        let mut receiving = false;
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let ev = tokio::select! {
                ev = track.poll() => match ev {
                    Some(ev) => ev,
                    None => break,
                },
                _ = tick.tick() => {
                    let any = counts.iter().any(|c| *c > 0);
                    quiet_track = if any { 0 } else { quiet_track + 1 };
                    if receiving && TICK * quiet_track >= NO_MEDIA_TIMER {
                        receiving = false;
                        let _ = events.send(PeerEvent::Receiving(kind.clone(), false));
                    }
                    if let Some(silence) = &silence {
                        let now = Instant::now();
                        for layer in 0..feeds.len() {
                            quiet[layer] = if counts[layer] > 0 { 0 } else { quiet[layer] + 1 };
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
                    if !receiving {
                        receiving = true;
                        tracing::debug!(kind = %kind, pt = packet.header.payload_type, len = packet.payload.len(), "media arriving");
                        let _ = events.send(PeerEvent::Receiving(kind.clone(), true));
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
async fn cap_bitrate(track: Arc<dyn TrackRemote>, bitrate: u32) {
    loop {
        let ssrc = track.ssrcs().await.first().copied().unwrap_or(0);
        let remb = ReceiverEstimatedMaximumBitrate { sender_ssrc: 0, bitrate: bitrate as f32, ssrcs: vec![ssrc] };
        if track.write_rtcp(vec![Box::new(remb)]).await.is_err() {
            return;
        }
        tokio::time::sleep(REMB_INTERVAL).await;
    }
}

/// A publisher's PeerConnection.
pub struct PublisherPeer {
    pc: Arc<dyn PeerConnection>,
    /// Per kind, one feed per simulcast layer (lowest first).
    feeds: HashMap<String, Vec<Feed>>,
    keyframes: mpsc::UnboundedSender<u8>,
    /// Per kind: muted by a moderator (`moderate`); its subscribers' streams hold meanwhile.
    muted: HashMap<String, watch::Sender<bool>>,
    /// Simulcast video: which layers went silent.
    silence: Option<watch::Receiver<Silence>>,
    data: DataFeed,
}

pub(super) fn media_error(what: &str, e: impl std::fmt::Display) -> String {
    format!("{what}: {e}")
}

/// Which way media goes on a PeerConnection: each direction gets only the interceptors it uses,
/// because every interceptor costs every packet (the chain moves each one through each stage).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Direction {
    /// A publisher's: receives media; sends NACKs, receiver reports, TWCC feedback and PLIs.
    Receive,
    /// A subscriber's: sends media; answers NACKs, sends sender reports, hears PLI/FIR.
    Send,
}

fn interceptors(direction: Direction, media: &mut MediaEngine) -> Result<Registry, String> {
    match direction {
        Direction::Receive => {
            register_default_interceptors(Registry::new(), media).map_err(|e| media_error("interceptors", e))
        }
        Direction::Send => {
            for parameter in ["", "pli"] {
                let fb = RTCPFeedback { typ: TYPE_RTCP_FB_NACK.to_owned(), parameter: parameter.to_owned() };
                media.register_feedback(fb, RtpCodecKind::Video);
            }
            let registry = Registry::new()
                .with(Slot::NackResponder, NackResponderBuilder::new().build())
                .with(Slot::SenderReport, SenderReportBuilder::new().build());
            Ok(super::feedback::register_with_reports(registry))
        }
    }
}

/// A PeerConnection on the configured addresses and port range, announcing the public
/// address (1:1 NAT) and the configured STUN/TURN servers.
pub(super) async fn build_pc(
    settings: &MediaSettings,
    direction: Direction,
    handler: Arc<PeerHandler>,
) -> Result<Arc<dyn PeerConnection>, String> {
    let setting = || {
        // A server neither resolves nor announces mDNS names (and a multicast socket fails
        // where no interface takes multicast, as in a container's network namespace).
        // (1:1 NAT is applied to the SDP: webrtc-rs 0.21 stores `nat_1to1_ips` but never uses them.)
        //
        // A peer-reflexive pair is selected at once: webrtc-rs (as pion) waits 1 s for one by
        // default, hoping for a better pair, but a client that trickles its candidates (janus.js
        // does) is first known by its checks, as peer-reflexive; with the wait, every such
        // subscriber (where the node controls ICE) connected about a second late (Chromium,
        // join -> first frame 1.7-2 s instead of ~0.3-0.6 s).
        SettingEngineBuilder::new()
            .with_multicast_dns_mode(MulticastDnsMode::Disabled)
            .with_prflx_acceptance_min_wait(Some(Duration::ZERO))
            .build()
    };
    let ice_servers: Vec<RTCIceServer> = settings
        .ice_servers
        .iter()
        .map(|s| RTCIceServer {
            urls: vec![s.url.clone()],
            username: s.username.clone(),
            credential: s.credential.clone(),
        })
        .collect();
    // With a port range, a port still held by another PeerConnection is skipped.
    let attempts = settings.ports.as_ref().map_or(1, |r| r.span().min(64));
    let mut last_error = String::new();
    for _ in 0..attempts {
        let port = settings.ports.as_ref().map_or(0, PortRange::next_port);
        let addrs: Vec<String> = settings.udp_ips.iter().map(|ip| format!("{ip}:{port}")).collect();
        // Builders consume the engine and registry, so each attempt makes its own.
        let mut media = MediaEngine::default();
        media.register_default_codecs().map_err(|e| media_error("codecs", e))?;
        let registry = interceptors(direction, &mut media)?;
        let built = PeerConnectionBuilder::new()
            .with_setting_engine(setting())
            .with_configuration(RTCConfigurationBuilder::new().with_ice_servers(ice_servers.clone()).build())
            .with_media_engine(media)
            .with_interceptor_registry(registry)
            .with_handler(handler.clone() as Arc<dyn PeerConnectionEventHandler>)
            .with_udp_addrs(addrs)
            .build()
            .await;
        match built {
            Ok(pc) => return Ok(Arc::new(pc)),
            Err(e) => last_error = e.to_string(),
        }
    }
    Err(media_error("PeerConnection", last_error))
}

/// The local description once ICE gathering completed (half-trickle: candidates included).
pub(super) async fn local_sdp_when_gathered(
    settings: &MediaSettings,
    pc: &Arc<dyn PeerConnection>,
    gathered: &mut mpsc::Receiver<()>,
) -> Result<String, String> {
    let complete = tokio::time::timeout(GATHER_TIMEOUT, gathered.recv()).await.is_ok();
    let sdp = pc.local_description().await.map(|d| match &settings.public_ip {
        Some(ip) => super::sdp::announce_address(&d.sdp, ip),
        None => d.sdp,
    });
    match sdp {
        Some(sdp) if complete => Ok(sdp),
        // A STUN/TURN server that does not answer must not stop a publish: the host
        // candidates gathered so far still reach peers that can route to them.
        Some(sdp) if sdp.contains("a=candidate:") => {
            tracing::warn!("ICE gathering incomplete after {GATHER_TIMEOUT:?} (unreachable ICE server?); answering with the candidates so far");
            Ok(sdp)
        }
        _ => {
            let _ = pc.close().await;
            Err("ICE gathering did not complete".into())
        }
    }
}

impl PublisherPeer {
    /// Answers `offer_sdp`; returns the peer and the answer SDP (with candidates). A simulcast
    /// video's rids are read from the offer in `rid_order` (Janus's `hml` unless `lmh`).
    pub async fn answer(
        settings: &MediaSettings,
        offer_sdp: String,
        rid_order: Option<&str>,
        fir_freq: Option<Duration>,
        bitrate: Option<u32>,
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
        let handler = Arc::new(PeerHandler {
            gathered,
            events,
            feeds: feeds.clone(),
            rids,
            layer_ssrcs: Arc::default(),
            silence: silence.clone(),
            data: Some(data.clone()),
            keyframes: std::sync::Mutex::new(Some(keyframe_rx)),
            fir_freq,
            slowlink_threshold: settings.slowlink_threshold,
            bitrate,
            connected: watch::channel(false).0,
        });
        let pc = build_pc(settings, Direction::Receive, handler).await?;
        let offer = RTCSessionDescription::offer(offer_sdp).map_err(|e| media_error("offer", e))?;
        pc.set_remote_description(offer).await.map_err(|e| media_error("remote description", e))?;
        let answer = pc.create_answer(None).await.map_err(|e| media_error("answer", e))?;
        pc.set_local_description(answer).await.map_err(|e| media_error("local description", e))?;
        let sdp = local_sdp_when_gathered(settings, &pc, &mut gather_done).await?;
        let muted = ["audio", "video"].into_iter().map(|k| (k.to_owned(), watch::channel(false).0)).collect();
        let silence = silence.map(|s| s.subscribe());
        Ok((Self { pc, feeds, keyframes, muted, silence, data }, sdp))
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
            muted: self.muted.get(kind).map(watch::Sender::subscribe).unwrap_or_else(|| watch::channel(false).1),
            silence: if kind == "video" { self.silence.clone() } else { None },
        })
    }

    /// Mutes (`moderate`) or unmutes this publisher's `kind` for every subscriber.
    pub fn set_muted(&self, kind: &str, muted: bool) {
        if let Some(m) = self.muted.get(kind) {
            m.send_replace(muted);
        }
    }

    /// A second handle on the same PeerConnection, for work done off the room's thread.
    pub fn clone_handle(&self) -> Self {
        Self {
            pc: self.pc.clone(),
            feeds: self.feeds.clone(),
            keyframes: self.keyframes.clone(),
            muted: self.muted.clone(),
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

/// Trickled remote candidates; end-of-candidates needs nothing here, and a candidate the
/// library refuses is logged and skipped (Janus ignores failures inside `candidates` too).
pub(super) async fn add_candidates(pc: &Arc<dyn PeerConnection>, candidates: Vec<Candidate>) {
    for c in candidates {
        let Candidate::Ice { sdp_mid, sdp_mline_index, candidate } = c else { continue };
        let init = RTCIceCandidateInit {
            candidate,
            sdp_mid,
            sdp_mline_index: sdp_mline_index.and_then(|i| u16::try_from(i).ok()),
            ..Default::default()
        };
        if let Err(e) = pc.add_ice_candidate(init).await {
            tracing::debug!(error = %e, "trickled candidate refused");
        }
    }
}
