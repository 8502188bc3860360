//! WebRTC test clients on webrtc-rs: a publisher that offers one Opus and one VP8 track and
//! sends synthetic RTP (no encoder: VP8-shaped payloads with a keyframe first), and a subscriber
//! that answers a server's offer and records what it receives. This module makes their
//! PeerConnections; `publisher.rs` and `subscriber.rs` are the two peers, `payloads.rs` the
//! marks their synthetic payloads carry.

mod payloads;
mod publisher;
mod subscriber;

pub use payloads::{simulcast_marks, svc_marks, vp9_svc_payload};
pub use publisher::{Offering, TestPublisher, PLAYOUT_DELAY, SCREEN_FILL, SIMULCAST_RIDS, VIDEO_SSRC};
pub use subscriber::{LateSubscriber, TestSubscriber};

use crate::lossy::Network;
use rtc::ice::mdns::MulticastDnsMode;
use rtc::interceptor::Registry;
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::interceptor_registry::register_default_interceptors;
use rtc::peer_connection::configuration::media_engine::MediaEngine;
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::rtp;
use rtc::rtp_transceiver::rtp_sender::{RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind};
use std::sync::Arc;
use tokio::sync::mpsc;
use webrtc::data_channel::{DataChannel, DataChannelEvent};
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_remote::TrackRemote;
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCIceGatheringState, RTCPeerConnectionState,
};

struct Handler {
    gathered: mpsc::Sender<()>,
    state: mpsc::UnboundedSender<RTCPeerConnectionState>,
    /// Subscribers: every RTP packet received, with its track's kind.
    received: Option<mpsc::UnboundedSender<(String, rtp::Packet)>>,
    /// Subscribers: the remote video tracks, to send keyframe requests on.
    video_tracks: Arc<std::sync::Mutex<Vec<Arc<dyn TrackRemote>>>>,
    /// Subscribers: every data channel message, with its channel's label.
    data: Option<mpsc::UnboundedSender<DataReceived>>,
}

/// A data channel message a test subscriber received: label, text or binary, bytes.
pub type DataReceived = (String, bool, Vec<u8>);

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            let _ = self.gathered.try_send(());
        }
    }
    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        let _ = self.state.send(state);
    }

    async fn on_data_channel(&self, channel: Arc<dyn DataChannel>) {
        let Some(data) = self.data.clone() else { return };
        tokio::spawn(async move {
            let label = channel.label().await.unwrap_or_default();
            while let Some(ev) = channel.poll().await {
                if let DataChannelEvent::OnMessage(m) = ev {
                    let _ = data.send((label.clone(), m.is_string, m.data.to_vec()));
                }
            }
        });
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let Some(received) = self.received.clone() else { return };
        let kind = track.kind().await.to_string().to_ascii_lowercase();
        if kind == "video" {
            self.video_tracks.lock().expect("tracks").push(track.clone());
        }
        tokio::spawn(async move {
            while let Some(ev) = track.poll().await {
                if let webrtc::media_stream::track_remote::TrackRemoteEvent::OnRtpPacket(p) = ev {
                    let _ = received.send((kind.clone(), p));
                }
            }
        });
    }
}

pub use shared::media::{AUDIO_LEVEL_URI, PLAYOUT_DELAY_URI, VIDEO_ORIENTATION_URI};
pub const ABS_SEND_TIME_URI: &str = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time";

/// The header extensions a test subscriber accepts when offered (webrtc-rs's default
/// interceptors add transport-wide CC).
const SUBSCRIBER_EXTENSIONS: [(&str, RtpCodecKind); 4] = [
    (AUDIO_LEVEL_URI, RtpCodecKind::Audio),
    (VIDEO_ORIENTATION_URI, RtpCodecKind::Video),
    (PLAYOUT_DELAY_URI, RtpCodecKind::Video),
    (ABS_SEND_TIME_URI, RtpCodecKind::Video),
];

/// The id an answer gave to header extension `uri`.
pub fn extmap_id(sdp: &str, uri: &str) -> Option<u8> {
    sdp.lines()
        .filter_map(|l| l.trim().strip_prefix("a=extmap:"))
        .find(|l| l.split_whitespace().nth(1) == Some(uri))
        .and_then(|l| l.split([' ', '/']).next()?.parse().ok())
}

/// A local track sending `mime` RTP with SSRC `ssrc`.
pub fn local_track(kind: RtpCodecKind, mime: &str, clock: u32, channels: u16, ssrc: u32) -> Arc<TrackLocalStaticRTP> {
    let codec = RTCRtpCodec { mime_type: mime.into(), clock_rate: clock, channels, ..Default::default() };
    let name = format!("test-{ssrc}");
    Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
        name.clone(),
        format!("{name}-track"),
        name,
        kind,
        vec![RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters { ssrc: Some(ssrc), ..Default::default() },
            codec,
            ..Default::default()
        }],
    )))
}

/// A PeerConnection whose ICE uses only `bind` (an IP; each PC gets its own port), with the
/// default codecs and interceptors and no ICE servers, reporting to `handler`. With
/// `keyframe_requests`, PLI/FIR reach the local tracks' `poll()` (whoever asks must poll them).
pub async fn peer_connection(
    bind: &str,
    handler: Arc<dyn PeerConnectionEventHandler>,
    keyframe_requests: bool,
) -> Arc<dyn PeerConnection> {
    peer_connection_on(bind, handler, keyframe_requests, None).await
}

/// [`peer_connection`] on a simulated network ([`crate::lossy`]).
pub async fn peer_connection_on(
    bind: &str,
    handler: Arc<dyn PeerConnectionEventHandler>,
    keyframe_requests: bool,
    net: Option<&Network>,
) -> Arc<dyn PeerConnection> {
    peer_connection_with(bind, handler, keyframe_requests, net, &[], 0).await
}

/// [`peer_connection_on`] that also negotiates these header extensions (URI, kind), as
/// browsers do, and gathers on `port` (0: any; otherwise that port is bound again at an ICE
/// restart, webrtc-rs's `discard_local_candidates_during_ice_restart`).
async fn peer_connection_with(
    bind: &str,
    handler: Arc<dyn PeerConnectionEventHandler>,
    keyframe_requests: bool,
    net: Option<&Network>,
    extensions: &[(&str, RtpCodecKind)],
    port: u16,
) -> Arc<dyn PeerConnection> {
    let mut media = MediaEngine::default();
    media.register_default_codecs().expect("codecs");
    for (uri, kind) in extensions {
        let ext = rtc::rtp_transceiver::rtp_sender::RTCRtpHeaderExtensionCapability { uri: (*uri).to_owned() };
        media.register_header_extension(ext, *kind, None).expect("header extension");
    }
    let mut registry = register_default_interceptors(Registry::new(), &mut media).expect("interceptors");
    if keyframe_requests {
        registry = media_node::media::feedback::register(registry);
    }
    if let Some(net) = net {
        registry = crate::lossy::register(registry, net);
    }
    // No mDNS: its multicast socket fails where no interface takes multicast (a private network
    // namespace), and every candidate here is a plain IP anyway.
    let setting = SettingEngineBuilder::new()
        .with_multicast_dns_mode(MulticastDnsMode::Disabled)
        .with_discard_local_candidates_during_ice_restart(port != 0)
        .build();
    let pc = PeerConnectionBuilder::new()
        .with_configuration(RTCConfigurationBuilder::new().build())
        .with_setting_engine(setting)
        .with_media_engine(media)
        .with_interceptor_registry(registry)
        .with_handler(handler)
        .with_udp_addrs(vec![format!("{bind}:{port}")])
        .build()
        .await
        .expect("test PeerConnection");
    Arc::new(pc)
}

/// Where test peers gather: 127.0.0.1 unless [`set_peer_addr`] said otherwise.
static PEER_ADDR: std::sync::OnceLock<String> = std::sync::OnceLock::new();

fn peer_addr() -> &'static str {
    PEER_ADDR.get().map_or("127.0.0.1", String::as_str)
}

/// Test peers of this process gather on `addr` (a test host's address) instead of 127.0.0.1;
/// set once, before the first peer.
pub fn set_peer_addr(addr: &str) {
    let set = PEER_ADDR.get_or_init(|| addr.to_owned());
    assert_eq!(set, addr, "test peers already gather on {set}");
}

/// A loopback PeerConnection for a test peer and its signals. A subscriber (`receive`) gets
/// the packets it receives and its video tracks; a publisher sees keyframe requests.
struct LoopbackPc {
    pc: Arc<dyn PeerConnection>,
    gather_done: mpsc::Receiver<()>,
    states: mpsc::UnboundedReceiver<RTCPeerConnectionState>,
    packets: mpsc::UnboundedReceiver<(String, rtp::Packet)>,
    video_tracks: Arc<std::sync::Mutex<Vec<Arc<dyn TrackRemote>>>>,
    data: mpsc::UnboundedReceiver<DataReceived>,
}

async fn loopback_pc(receive: bool, net: &Network) -> LoopbackPc {
    // A subscriber takes every extension a server may offer, as a browser does.
    let extensions: &[(&str, RtpCodecKind)] = if receive { &SUBSCRIBER_EXTENSIONS } else { &[] };
    loopback_pc_with(receive, net, extensions, 0).await
}

async fn loopback_pc_with(receive: bool, net: &Network, extensions: &[(&str, RtpCodecKind)], port: u16) -> LoopbackPc {
    let (gathered, gather_done) = mpsc::channel(1);
    let (state_tx, states) = mpsc::unbounded_channel();
    let (pkt_tx, packets) = mpsc::unbounded_channel();
    let (data_tx, data) = mpsc::unbounded_channel();
    let video_tracks = Arc::default();
    let handler = Arc::new(Handler {
        gathered,
        state: state_tx,
        received: receive.then_some(pkt_tx),
        video_tracks: Arc::clone(&video_tracks),
        data: receive.then_some(data_tx),
    });
    let pc = peer_connection_with(peer_addr(), handler, !receive, Some(net), extensions, port).await;
    LoopbackPc { pc, gather_done, states, packets, video_tracks, data }
}
