//! WebRTC PeerConnections on webrtc-rs 0.21 — the `media` module is the only one that imports
//! it. This part is what publishers' (`publisher`) and subscribers' (`subscriber`)
//! PeerConnections share: where they listen (addresses, port range, 1:1 NAT, STUN/TURN), the
//! interceptors each direction needs, half-trickle gathering (offers and answers carry the
//! candidates, as Janus's), trickled candidates, and the handler that reports a
//! PeerConnection's state to its room as [`PeerEvent`]s and hands a publisher's tracks and data
//! channels to `incoming`.

use super::capture::{CaptureTap, Follow as CaptureFollow};
use super::extensions::ExtensionSettings;
use super::MediaError;
use crate::metrics::{PcState, Role, METRICS};
use rtc::ice::mdns::MulticastDnsMode;
use rtc::interceptor::{Registry, SenderReportBuilder, Slot};
use rtc::peer_connection::configuration::media_engine::MediaEngine;
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::transport::RTCIceCandidateInit;
use rtc::peer_connection::transport::RTCIceServer;
use rtc::rtp_transceiver::rtp_sender::TYPE_RTCP_FB_NACK;
use rtc::rtp_transceiver::rtp_sender::{RTCPFeedback, RtpCodecKind};
use shared::janus::request::Candidate;
use shared::media::{MediaKind, Mid};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use webrtc::data_channel::DataChannel;
use webrtc::media_stream::track_remote::TrackRemote;
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCIceGatheringState, RTCPeerConnectionState,
};

/// ICE gathering on the configured addresses is local and quick; a stuck one must not hold a
/// request forever.
const GATHER_TIMEOUT: Duration = Duration::from_secs(3);
/// Between ICE connectivity checks (webrtc-rs's default: 200 ms).
const ICE_CHECK_INTERVAL: Duration = Duration::from_millis(50);

/// Where peers listen.
#[derive(Clone, Debug)]
pub struct MediaSettings {
    /// Addresses to gather host candidates on. A wildcard (`0.0.0.0`) binds every interface but
    /// loopback (webrtc-rs skips it); list `127.0.0.1` explicitly for tests on one machine.
    pub udp_ips: Vec<IpAddr>,
    /// UDP ports to use (inclusive), so a firewall or a Kubernetes pod can open just these;
    /// `None` picks ephemeral ports.
    pub ports: Option<PortRange>,
    /// Every PeerConnection on one port (`media_port`) instead of `ports`.
    pub single_port: Option<Arc<super::single_port::SinglePort>>,
    /// The address to announce instead of the bound ones (Janus's `nat_1_1_mapping`), for a
    /// node behind a 1:1 NAT.
    pub public_ip: Option<String>,
    /// STUN/TURN servers peers may use (`stun:` / `turn:` URLs), with TURN credentials.
    pub ice_servers: Vec<IceServer>,
    /// The knobs in effect (no-media timer, slow-link threshold, NACK queue), turned live.
    pub tuning: Arc<super::tuning::LiveTuning>,
    /// Where recordings go when their room names no `rec_dir` (`rec_dir`).
    pub rec_dir: std::path::PathBuf,
    /// Where packet captures may not be written (`protected_folders`).
    pub protected_folders: std::sync::Arc<[std::path::PathBuf]>,
    /// Where RTP forwarders may send (`rtp_forward_allowed`).
    pub forward_allowed: std::sync::Arc<[super::forwarder::AddressRange]>,
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
#[derive(Clone, Debug, PartialEq)]
pub enum PeerEvent {
    /// DTLS/SRTP is up (Janus's `webrtcup`).
    Connected,
    /// A publisher's stream (of this simulcast substream) started (`true`: the first packet,
    /// or the first after a silence) or stopped (`false`: nothing for the no-media timer)
    /// arriving (Janus's `media` event).
    Receiving { mid: Mid, kind: MediaKind, receiving: bool, substream: Option<u8> },
    /// The PeerConnection is gone; the reason goes into Janus's `hangup`.
    Down(String),
    /// A publisher's audio stream started or stopped talking (its audio levels' average over
    /// the room's `audio_active_packets`): Janus's `talking` / `stopped-talking`.
    Talking { mid: Mid, talking: bool, average: f32 },
    /// Packets of a stream are being lost: Janus's `slowlink`.
    SlowLink { at: StreamAt, kind: MediaKind, lost: u32 },
    /// A subscriber's simulcast stream at m-line `mindex` now relays this substream or temporal
    /// layer (Janus's `substream` / `temporal` events).
    Layer { mindex: usize, substream: Option<u8>, temporal: Option<u8> },
    /// A subscriber's VP9 SVC stream at m-line `mindex` now relays up to this spatial or
    /// temporal layer (Janus's `spatial_layer` / `temporal_layer` events).
    SvcLayer { mindex: usize, spatial: Option<u8>, temporal: Option<u8> },
}

/// Which stream of a PeerConnection an event is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StreamAt {
    /// A publisher's incoming stream (losses on the way to us: Janus's downlink).
    Published(Mid),
    /// A subscriber's m-line (losses on the way to the subscriber: Janus's uplink).
    Subscribed(usize),
}

/// Where a publisher's PeerConnection hands what it receives (`publisher` fans it out).
#[async_trait::async_trait]
pub(super) trait IncomingMedia: Send + Sync {
    /// An incoming track, reporting what happens to it on `events`.
    async fn track(&self, track: Arc<dyn TrackRemote>, events: mpsc::UnboundedSender<PeerEvent>);
    /// A data channel the publisher opened.
    fn data_channel(&self, channel: Arc<dyn DataChannel>);
}

/// Reports a PeerConnection's events to its room; a publisher's also fans its tracks out.
pub(super) struct PeerHandler {
    pub(super) gathered: mpsc::Sender<()>,
    pub(super) events: mpsc::UnboundedSender<PeerEvent>,
    /// Whether DTLS-SRTP is up: a subscriber's packets are only sent then (earlier ones are
    /// dropped by SRTP, and the keyframe it waits for would be lost).
    pub(super) connected: watch::Sender<bool>,
    /// A publisher's: what becomes of its tracks and data channels (a subscriber receives none).
    pub(super) incoming: Option<Box<dyn IncomingMedia>>,
    /// The state this PeerConnection is counted under in the node's metrics.
    counted: std::sync::atomic::AtomicU8,
}

impl PeerHandler {
    pub(super) fn new(
        gathered: mpsc::Sender<()>,
        events: mpsc::UnboundedSender<PeerEvent>,
        connected: watch::Sender<bool>,
        incoming: Option<Box<dyn IncomingMedia>>,
    ) -> Self {
        METRICS.peer_connection(Self::role_of(&incoming), None, Some(PcState::New));
        Self { gathered, events, connected, incoming, counted: std::sync::atomic::AtomicU8::new(PcState::New as u8) }
    }

    fn role_of(incoming: &Option<Box<dyn IncomingMedia>>) -> Role {
        if incoming.is_some() {
            Role::Publisher
        } else {
            Role::Subscriber
        }
    }

    /// Moves this PeerConnection to `to` in the metrics (None: gone).
    fn count_as(&self, to: Option<PcState>) {
        let from = self.counted.swap(to.map_or(u8::MAX, |s| s as u8), std::sync::atomic::Ordering::Relaxed);
        METRICS.peer_connection(Self::role_of(&self.incoming), PcState::from_u8(from), to);
    }
}

impl Drop for PeerHandler {
    fn drop(&mut self) {
        self.count_as(None);
    }
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for PeerHandler {
    async fn on_ice_connection_state_change(&self, state: webrtc::peer_connection::RTCIceConnectionState) {
        tracing::debug!(?state, role = ?Self::role_of(&self.incoming), "ICE state");
    }

    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            let _ = self.gathered.try_send(());
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        tracing::debug!(?state, role = ?Self::role_of(&self.incoming), "connection state");
        let _ = self.connected.send(state == RTCPeerConnectionState::Connected);
        let counted = match state {
            RTCPeerConnectionState::New => PcState::New,
            RTCPeerConnectionState::Connecting => PcState::Connecting,
            RTCPeerConnectionState::Connected => PcState::Connected,
            RTCPeerConnectionState::Disconnected => PcState::Disconnected,
            RTCPeerConnectionState::Failed => PcState::Failed,
            _ => PcState::Closed,
        };
        self.count_as(Some(counted));
        let ev = match state {
            RTCPeerConnectionState::Connected => PeerEvent::Connected,
            RTCPeerConnectionState::Failed => PeerEvent::Down("ICE failed".into()),
            RTCPeerConnectionState::Closed => PeerEvent::Down("Close PC".into()),
            _ => return,
        };
        let _ = self.events.send(ev);
    }

    async fn on_data_channel(&self, channel: Arc<dyn DataChannel>) {
        if let Some(incoming) = &self.incoming {
            incoming.data_channel(channel);
        }
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        if let Some(incoming) = &self.incoming {
            incoming.track(track, self.events.clone()).await;
        }
    }
}

/// Which way media goes on a PeerConnection: each direction gets only the interceptors it uses,
/// because every interceptor costs every packet (the chain moves each one through each stage).
/// Both negotiate the room's header extensions (`extensions`).
#[derive(Clone, PartialEq, Eq)]
pub(super) enum Direction {
    /// A publisher's: receives media; sends NACKs, receiver reports, TWCC feedback and PLIs.
    /// `codecs`: the only codecs its answer may take (by name; empty: webrtc-rs's defaults).
    Receive { extensions: ExtensionSettings, codecs: Vec<String> },
    /// A subscriber's: sends media; answers NACKs, sends sender reports, hears PLI/FIR.
    /// `codecs`: the only codecs its streams may carry (the room's; empty: webrtc-rs's defaults).
    Send { extensions: ExtensionSettings, codecs: Vec<String> },
}

/// `tuning`: the knobs a subscriber's NACK responder reads; `capture`: the handle's capture
/// switch, which the wire-most tap follows.
fn interceptors(
    direction: &Direction,
    media: &mut MediaEngine,
    tuning: Arc<super::tuning::LiveTuning>,
    capture: CaptureTap,
) -> Result<Registry, MediaError> {
    match direction {
        Direction::Receive { extensions, .. } => super::extensions::register_receive(*extensions, media)
            .map(|registry| super::feedback::count_sent_nacks(registry, capture)),
        Direction::Send { extensions, .. } => {
            for parameter in ["", "pli"] {
                let fb = RTCPFeedback { typ: TYPE_RTCP_FB_NACK.to_owned(), parameter: parameter.to_owned() };
                media.register_feedback(fb, RtpCodecKind::Video);
            }
            let registry = Registry::new()
                .with(Slot::NackResponder, super::tap::Tap::new(super::retransmit::Retransmitter::new(tuning)))
                .with(Slot::SenderReport, SenderReportBuilder::new().build());
            let registry = super::feedback::register_with_reports(registry);
            super::extensions::register_send(*extensions, media, registry, capture)
        }
    }
}

/// A PeerConnection on the configured addresses and port range, announcing the public
/// address (1:1 NAT) and the configured STUN/TURN servers; its packets go to the handle's
/// capture when `capture` turns it on.
pub(super) async fn build_pc(
    settings: &MediaSettings,
    direction: Direction,
    handler: Arc<PeerHandler>,
    capture: &CaptureFollow,
) -> Result<Arc<dyn PeerConnection>, MediaError> {
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
        //
        // Connectivity checks every 50 ms rather than 200 (as many over the same 1.4 s): the
        // node nominates the pair its subscriber's DTLS waits for that much sooner.
        //
        // A subscriber's transport-wide feedback is dropped unparsed: nothing here reads it (the
        // node runs no sender-side congestion control; Janus 1.1.2 uses none of it either), and it arrives
        // every 50-100 ms from each subscriber.
        SettingEngineBuilder::new()
            .with_multicast_dns_mode(MulticastDnsMode::Disabled)
            .with_transport_feedback_dropped(true)
            .with_prflx_acceptance_min_wait(Some(Duration::ZERO))
            .with_ice_connection_attempts(Some(ICE_CHECK_INTERVAL), Some(28))
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
    // With a port range, a port still held by another PeerConnection is skipped. On the single
    // port, the PeerConnection's own (ephemeral) socket only names it.
    let ranged = settings.ports.as_ref().filter(|_| settings.single_port.is_none());
    let attempts = ranged.map_or(1, |r| r.span().min(64));
    let mut last_error = String::new();
    for _ in 0..attempts {
        let port = ranged.map_or(0, PortRange::next_port);
        let addrs: Vec<String> = settings.udp_ips.iter().map(|ip| format!("{ip}:{port}")).collect();
        // Builders consume the engine and registry, so each attempt makes its own.
        let mut media = MediaEngine::default();
        match &direction {
            // Each codec registered costs every PeerConnection its parameters: only those it
            // may use are.
            Direction::Receive { codecs, .. } | Direction::Send { codecs, .. } if !codecs.is_empty() => {
                for name in codecs {
                    let kind = if super::codec::is_audio(name) { RtpCodecKind::Audio } else { RtpCodecKind::Video };
                    for c in super::codec::parameters(name) {
                        media.register_codec(c, kind).map_err(|e| MediaError::stack("codecs", e))?;
                    }
                }
            }
            _ => media.register_default_codecs().map_err(|e| MediaError::stack("codecs", e))?,
        }
        let tap = CaptureTap::new(capture.clone());
        let registry = interceptors(&direction, &mut media, settings.tuning.clone(), tap)?;
        let mut builder = PeerConnectionBuilder::new();
        match (&settings.single_port, &direction) {
            (Some(single), _) => builder = builder.with_runtime(single.runtime()),
            (None, Direction::Send { .. }) => {
                let runtime = super::runtime::subscriber().map_err(|e| MediaError::stack("runtime", e))?;
                builder = builder.with_runtime(runtime);
            }
            (None, Direction::Receive { .. }) => {}
        }
        let built = builder
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
    Err(MediaError::stack("PeerConnection", last_error))
}

/// The local description once ICE gathering completed (half-trickle: candidates included).
pub(super) async fn local_sdp_when_gathered(
    settings: &MediaSettings,
    pc: &Arc<dyn PeerConnection>,
    gathered: &mut mpsc::Receiver<()>,
) -> Result<String, MediaError> {
    let complete = tokio::time::timeout(GATHER_TIMEOUT, gathered.recv()).await.is_ok();
    let sdp = pc.local_description().await.map(|d| {
        let sdp = match &settings.single_port {
            Some(single) => single.announce(&d.sdp),
            None => d.sdp,
        };
        match &settings.public_ip {
            Some(ip) => super::sdp::announce_address(&sdp, ip),
            None => sdp,
        }
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
            Err(MediaError::stack("ICE gathering", "did not complete"))
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use rtc::media_stream::MediaStreamTrack;
    use rtc::rtp_transceiver::rtp_sender::{RTCRtpCodingParameters, RTCRtpEncodingParameters};
    use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
    use webrtc::media_stream::track_local::TrackLocal;

    fn settings() -> MediaSettings {
        MediaSettings {
            udp_ips: vec![IpAddr::from([127, 0, 0, 1])],
            ports: None,
            single_port: None,
            public_ip: None,
            ice_servers: Vec::new(),
            tuning: Default::default(),
            rec_dir: std::env::temp_dir(),
            protected_folders: Arc::new([]),
            forward_allowed: Arc::new([]),
        }
    }

    /// Whether a subscriber PeerConnection for a room of `room_codecs` can offer a `codec` track.
    async fn offers(room_codecs: &[&str], codec: &str) -> bool {
        let (gathered, _) = mpsc::channel(1);
        let (events, _) = mpsc::unbounded_channel();
        let handler = Arc::new(PeerHandler::new(gathered, events, watch::channel(false).0, None));
        let codecs = room_codecs.iter().map(|c| (*c).to_owned()).collect();
        let direction = Direction::Send { extensions: ExtensionSettings::default(), codecs };
        let pc = build_pc(&settings(), direction, handler, &watch::channel(None).1).await.unwrap();
        let rtp_codec = super::super::codec::parameters(codec).remove(0).rtp_codec;
        let track = TrackLocalStaticRTP::new(MediaStreamTrack::new(
            "s".into(),
            "t".into(),
            "t".into(),
            RtpCodecKind::Video,
            vec![RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters { ssrc: Some(1), ..Default::default() },
                codec: rtp_codec,
                ..Default::default()
            }],
        ));
        let added = pc.add_track(Arc::new(track) as Arc<dyn TrackLocal>).await.is_ok();
        let offered = added && pc.create_offer(None).await.is_ok_and(|o| o.sdp.contains("/90000"));
        let _ = pc.close().await;
        offered
    }

    #[tokio::test]
    async fn a_subscribers_peer_connection_knows_only_its_rooms_codecs() {
        assert!(offers(&["opus", "vp9"], "vp9").await);
        assert!(!offers(&["opus", "vp9"], "vp8").await, "a codec the room does not allow");
        // Without a room's list: webrtc-rs's defaults.
        assert!(offers(&[], "vp8").await);
    }
}
