//! A WebRTC test client on webrtc-rs: a publisher that offers one Opus and one VP8 track and
//! sends synthetic RTP (no encoder: VP8-shaped payloads with a keyframe first).

use crate::lossy::{Leg, Network};
use rtc::ice::mdns::MulticastDnsMode;
use rtc::interceptor::Registry;
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::interceptor_registry::register_default_interceptors;
use rtc::peer_connection::configuration::media_engine::{
    MediaEngine, MIME_TYPE_H264, MIME_TYPE_HEVC, MIME_TYPE_OPUS, MIME_TYPE_VP8, MIME_TYPE_VP9,
};
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::rtp;
use rtc::rtp_transceiver::rtp_sender::{RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use webrtc::data_channel::{DataChannel, DataChannelEvent};
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};
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

/// The SSRC of a [`TestPublisher`]'s video (without simulcast).
pub const VIDEO_SSRC: u32 = 2222;

pub struct TestPublisher {
    pc: Arc<dyn PeerConnection>,
    audio: Arc<TrackLocalStaticRTP>,
    video: Arc<TrackLocalStaticRTP>,
    pub states: mpsc::UnboundedReceiver<RTCPeerConnectionState>,
    seq: u16,
    /// Keyframe requests (PLI/FIR) received on the video track.
    keyframe_requests: Arc<std::sync::atomic::AtomicU64>,
    /// The last bitrate cap (REMB, bit/s) received; 0 if none.
    remb: Arc<std::sync::atomic::AtomicU64>,
    /// The byte video payloads are filled with, so a subscriber can tell publishers apart.
    pub fill: u8,
    /// Sending three simulcast layers instead of one video stream.
    simulcast: Option<SimulcastSend>,
    /// Its data channels by label, each with whether it is open.
    channels: Vec<(String, Arc<dyn DataChannel>, tokio::sync::watch::Receiver<bool>)>,
    /// RTP packets its (simulated) network lost.
    pub dropped: Arc<std::sync::atomic::AtomicU64>,
    /// Its screen share, if it offered one.
    screen: Option<Arc<TrackLocalStaticRTP>>,
    /// The negotiated ids of the audio level, video orientation and playout delay extensions
    /// (from the answer).
    level_ext: Option<u8>,
    orientation_ext: Option<u8>,
    playout_delay_ext: Option<u8>,
    /// Sending VP9 SVC: the video sequence number (three packets a frame).
    svc: Option<u16>,
    /// The video orientation its video packets carry (RFC 7742's byte: C, F, R1, R0) when the
    /// extension was negotiated.
    pub orientation: u8,
    /// The level its audio packets carry (-dBov: 0 loudest, 127 silence) when the extension
    /// was negotiated.
    pub audio_level: u8,
    /// Its video codec's name, and the payload type the answer gave it.
    video_codec: &'static str,
    video_pt: u8,
    /// Set: keyframes only when asked, as an encoder reacting late (see
    /// [`TestPublisher::keyframes_only_when_asked`]).
    on_request: Option<KeyframesOnRequest>,
    /// The next frame is a keyframe, whatever else says.
    key_next: bool,
    /// Packets in each video frame (one unless [`TestPublisher::packets_per_frame`] says), and
    /// how far the video's sequence numbers ran ahead of the frame count.
    frame_packets: u16,
    video_seq_ahead: u16,
}

/// A publisher that sends a keyframe only this long after a keyframe request.
struct KeyframesOnRequest {
    delay: Duration,
    /// Requests counted so far.
    seen: u64,
    /// When the oldest unanswered request was noticed.
    asked: Option<std::time::Instant>,
}

impl KeyframesOnRequest {
    /// Whether the next frame is a keyframe, given the requests counted so far.
    fn due(&mut self, requests: u64, now: std::time::Instant) -> bool {
        if requests > self.seen {
            self.seen = requests;
            self.asked.get_or_insert(now);
        }
        let due = self.asked.is_some_and(|at| now.duration_since(at) >= self.delay);
        if due {
            self.asked = None;
        }
        due
    }
}

/// What a test publisher offers besides Opus and VP8.
#[derive(Clone, Copy, Default)]
pub struct Offering {
    /// VP8 in three simulcast layers.
    pub simulcast: bool,
    /// A data channel (`JanusDataChannel`, as janus.js).
    pub data: bool,
    /// One RTP packet in this many lost on the way out (a retransmission gets through).
    pub lose_every: Option<u64>,
    /// With `lose_every`: retransmissions are lost too.
    pub persistent_loss: bool,
    /// A second VP8 track (a screen share beside the camera), its payloads filled with
    /// [`SCREEN_FILL`].
    pub screen: bool,
    /// The audio level header extension, each audio packet carrying
    /// [`TestPublisher::audio_level`].
    pub audio_level: bool,
    /// The video orientation and playout delay header extensions, each video packet carrying
    /// [`TestPublisher::orientation`] and [`PLAYOUT_DELAY`].
    pub orientation: bool,
    /// Its video track's codec (`vp8` unless `vp9`, `h264` or `h265`); the payloads carry that codec's
    /// keyframe marks (a keyframe every 25 frames).
    pub video_codec: Option<&'static str>,
    /// VP9 SVC (with `video_codec: Some("vp9")`): each frame three packets, spatial layers 0-2
    /// (see [`svc_marks`]), temporal layers 0, 2, 1, 2, ...
    pub svc: bool,
}

/// The spatial and temporal layer a test publisher's VP9 SVC payload says it is (byte 2: the
/// layer indices, TID in bits 7-5, SID in bits 3-1).
pub fn svc_marks(payload: &[u8]) -> Option<(u8, u8)> {
    let l = payload.get(2)?;
    Some(((l >> 1) & 0x07, l >> 5))
}

/// Spatial layer `sid` (0-2) of VP9 SVC frame `frame`, as a browser packetizes it in
/// non-flexible mode, one packet per layer frame: picture id, layer indices (temporal layers
/// 0, 2, 1, 2, ...; U above 0; D above spatial layer 0), TL0PICIDX; a keyframe every 24 frames
/// (P clear on its base layer, which carries the scalability structure: three layers,
/// 320x180 to 1280x720, as Janus looks for); then `fill`.
pub fn vp9_svc_payload(frame: u32, sid: u8, fill: u8) -> Vec<u8> {
    let tid = [0u8, 2, 1, 2][(frame % 4) as usize];
    let key = frame.is_multiple_of(24) && sid == 0;
    // I, L, B, E; P unless a keyframe's base layer, which has V (the scalability structure).
    let d = 0xAC | if key { 0x02 } else { 0x40 };
    let layers = tid << 5 | u8::from(tid > 0) << 4 | sid << 1 | u8::from(sid > 0);
    let mut payload = vec![d, (frame & 0x7f) as u8, layers, (frame / 4) as u8];
    if key {
        // N_S = 3 layers, Y: resolutions follow.
        payload.push(0b0101_0000);
        for (w, h) in [(320u16, 180u16), (640, 360), (1280, 720)] {
            payload.extend(w.to_be_bytes());
            payload.extend(h.to_be_bytes());
        }
    }
    payload.extend(std::iter::repeat_n(fill, 300));
    payload
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

/// The playout delay a test publisher with [`Offering::orientation`] asks for (min 0x001 and
/// max 0x020, in 10 ms units).
pub const PLAYOUT_DELAY: [u8; 3] = [0x00, 0x10, 0x20];

/// The byte a test publisher's screen-share payloads are filled with.
pub const SCREEN_FILL: u8 = 0x77;
/// The SSRC of a test publisher's screen share.
const SCREEN_SSRC: u32 = 3333;

/// A simulcast publisher's layers, lowest first: rids `l`, `m`, `h` (offered `h;m;l`, Janus's
/// default order), each with its SSRC and sequence, and which are stopped.
struct SimulcastSend {
    ssrcs: [u32; 3],
    seqs: [u16; 3],
    stopped: [bool; 3],
    /// The negotiated ids of the mid and rid header extensions (from the answer).
    mid_ext: Option<(u8, String)>,
    rid_ext: Option<u8>,
}

/// The rids of a simulcast test publisher's layers, lowest first.
pub const SIMULCAST_RIDS: [&str; 3] = ["l", "m", "h"];

/// Which simulcast layer a received VP8 payload came from (the byte a simulcast test publisher
/// marks it with) and its temporal layer.
pub fn simulcast_marks(payload: &[u8]) -> Option<(u8, u8)> {
    let tid = payload.get(2)? >> 6;
    let layer = payload.get(6)?.checked_sub(0xE0).filter(|l| *l < 3)?;
    Some((layer, tid))
}

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
    peer_connection_with(bind, handler, keyframe_requests, net, &[]).await
}

/// [`peer_connection_on`] that also negotiates these header extensions (URI, kind), as
/// browsers do.
async fn peer_connection_with(
    bind: &str,
    handler: Arc<dyn PeerConnectionEventHandler>,
    keyframe_requests: bool,
    net: Option<&Network>,
    extensions: &[(&str, RtpCodecKind)],
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
    let setting = SettingEngineBuilder::new().with_multicast_dns_mode(MulticastDnsMode::Disabled).build();
    let pc = PeerConnectionBuilder::new()
        .with_configuration(RTCConfigurationBuilder::new().build())
        .with_setting_engine(setting)
        .with_media_engine(media)
        .with_interceptor_registry(registry)
        .with_handler(handler)
        .with_udp_addrs(vec![format!("{bind}:0")])
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
    loopback_pc_with(receive, net, extensions).await
}

async fn loopback_pc_with(receive: bool, net: &Network, extensions: &[(&str, RtpCodecKind)]) -> LoopbackPc {
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
    let pc = peer_connection_with(peer_addr(), handler, !receive, Some(net), extensions).await;
    LoopbackPc { pc, gather_done, states, packets, video_tracks, data }
}

impl TestPublisher {
    /// A publisher on 127.0.0.1 with its offer (candidates included).
    pub async fn offer() -> (Self, String) {
        Self::offer_with(Offering::default()).await
    }

    /// A publisher offering `what` besides Opus and VP8.
    pub async fn offer_with(what: Offering) -> (Self, String) {
        let Offering {
            simulcast,
            data,
            lose_every,
            persistent_loss,
            screen,
            audio_level,
            orientation,
            video_codec,
            svc,
        } = what;
        let video_mime = match video_codec {
            Some("vp9") => MIME_TYPE_VP9,
            Some("h264") => MIME_TYPE_H264,
            Some("h265") => MIME_TYPE_HEVC,
            _ => MIME_TYPE_VP8,
        };
        let net =
            Network { loss: lose_every.map(|n| (Leg::Send, n)), persistent: persistent_loss, ..Network::default() };
        let mut extensions = Vec::new();
        if audio_level {
            extensions.push((AUDIO_LEVEL_URI, RtpCodecKind::Audio));
        }
        if orientation {
            extensions.extend([(VIDEO_ORIENTATION_URI, RtpCodecKind::Video), (PLAYOUT_DELAY_URI, RtpCodecKind::Video)]);
        }
        let LoopbackPc { pc, mut gather_done, states, .. } = loopback_pc_with(false, &net, &extensions).await;
        let dropped = net.dropped;
        let audio = local_track(RtpCodecKind::Audio, MIME_TYPE_OPUS, 48000, 2, 1111);
        let video = if simulcast {
            let codec = RTCRtpCodec { mime_type: video_mime.into(), clock_rate: 90000, ..Default::default() };
            // Listed highest first, as browsers do.
            let codings = SIMULCAST_RIDS
                .iter()
                .enumerate()
                .rev()
                .map(|(layer, rid)| RTCRtpEncodingParameters {
                    rtp_coding_parameters: RTCRtpCodingParameters {
                        rid: (*rid).to_owned(),
                        ssrc: Some(4441 + layer as u32),
                        ..Default::default()
                    },
                    codec: codec.clone(),
                    ..Default::default()
                })
                .collect();
            Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
                "test-simulcast".into(),
                "test-simulcast-track".into(),
                "test-simulcast".into(),
                RtpCodecKind::Video,
                codings,
            )))
        } else {
            local_track(RtpCodecKind::Video, video_mime, 90000, 0, VIDEO_SSRC)
        };
        pc.add_track(audio.clone() as Arc<dyn TrackLocal>).await.expect("audio track");
        pc.add_track(video.clone() as Arc<dyn TrackLocal>).await.expect("video track");
        let screen = screen.then(|| local_track(RtpCodecKind::Video, MIME_TYPE_VP8, 90000, 0, SCREEN_SSRC));
        if let Some(s) = &screen {
            pc.add_track(s.clone() as Arc<dyn TrackLocal>).await.expect("screen track");
        }
        let mut channels = Vec::new();
        if data {
            let dc = pc.create_data_channel("JanusDataChannel", None).await.expect("data channel");
            channels.push(("JanusDataChannel".to_owned(), dc.clone(), media_node::media::data::watch_open(dc)));
        }
        let offer = pc.create_offer(None).await.expect("offer");
        pc.set_local_description(offer).await.expect("local offer");
        tokio::time::timeout(Duration::from_secs(5), gather_done.recv()).await.expect("gathering");
        let sdp = pc.local_description().await.expect("local description").sdp;
        let keyframe_requests = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let remb = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let (track, count, last_remb) = (video.clone(), keyframe_requests.clone(), remb.clone());
        tokio::spawn(async move {
            use media_node::media::feedback::{bitrate_estimate, is_keyframe_request};
            use std::sync::atomic::Ordering::Relaxed;
            while let Some(TrackLocalEvent::OnRtcpPacket(packets)) = track.poll().await {
                for p in &packets {
                    if is_keyframe_request(p.as_ref()) {
                        count.fetch_add(1, Relaxed);
                    }
                    if let Some(b) = bitrate_estimate(p.as_ref()) {
                        last_remb.store(b as u64, Relaxed);
                    }
                }
            }
        });
        let simulcast = simulcast.then_some(SimulcastSend {
            ssrcs: [4441, 4442, 4443],
            seqs: [0; 3],
            stopped: [false; 3],
            mid_ext: None,
            rid_ext: None,
        });
        let me = Self {
            pc,
            audio,
            video,
            states,
            seq: 0,
            keyframe_requests,
            remb,
            fill: 0x55,
            simulcast,
            channels,
            dropped,
            screen,
            level_ext: None,
            orientation_ext: None,
            playout_delay_ext: None,
            on_request: None,
            key_next: false,
            svc: svc.then_some(0),
            orientation: 0,
            audio_level: 127,
            video_codec: video_codec.unwrap_or("vp8"),
            video_pt: 96,
            frame_packets: 1,
            video_seq_ahead: 0,
        };
        (me, sdp)
    }

    /// Sends `text` (or, with `binary`, those bytes) on the data channel `label`, opening it
    /// first if this publisher has none of that label (no renegotiation: SCTP is up); waits for
    /// the channel to be open.
    pub async fn send_data(&mut self, label: &str, text: &str, binary: bool) {
        if !self.channels.iter().any(|(l, _, _)| l == label) {
            let dc = self.pc.create_data_channel(label, None).await.expect("data channel");
            self.channels.push((label.to_owned(), dc.clone(), media_node::media::data::watch_open(dc)));
        }
        let (_, dc, open) = self.channels.iter_mut().find(|(l, _, _)| l == label).expect("channel");
        tokio::time::timeout(Duration::from_secs(10), open.wait_for(|o| *o))
            .await
            .expect("data channel opens in time")
            .expect("data channel open");
        if binary {
            dc.send(bytes::BytesMut::from(text.as_bytes())).await.expect("send binary");
        } else {
            dc.send_text(text).await.expect("send text");
        }
    }

    /// Stops (`true`) or resumes sending simulcast layer `layer` (0 lowest), as a browser does
    /// when bandwidth drops.
    pub fn set_layer_stopped(&mut self, layer: usize, stopped: bool) {
        if let Some(sc) = self.simulcast.as_mut() {
            sc.stopped[layer] = stopped;
        }
    }

    /// The last bitrate cap (REMB) the server sent this publisher, if any.
    pub fn bitrate_cap(&self) -> Option<u64> {
        Some(self.remb.load(std::sync::atomic::Ordering::Relaxed)).filter(|b| *b > 0)
    }

    /// Its audio and video tracks (to send media of the test's own, e.g. a [`crate::clip`]).
    pub fn tracks(&self) -> (&Arc<TrackLocalStaticRTP>, &Arc<TrackLocalStaticRTP>) {
        (&self.audio, &self.video)
    }

    /// The id the answer gave the video orientation extension, if it took it.
    pub fn orientation_ext(&self) -> Option<u8> {
        self.orientation_ext
    }

    /// From now on sends a keyframe only `delay` after being asked for one (an encoder's
    /// reaction and a keyframe's pacing), not every 25 frames.
    pub fn keyframes_only_when_asked(&mut self, delay: Duration) {
        self.on_request = Some(KeyframesOnRequest { delay, seen: self.keyframe_requests(), asked: None });
    }

    /// The next frame is a keyframe (an encoder's own, not asked for).
    pub fn keyframe_next(&mut self) {
        self.key_next = true;
    }

    /// How many keyframe requests (PLI/FIR) the server has sent this publisher.
    pub fn keyframe_requests(&self) -> u64 {
        self.keyframe_requests.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub async fn accept(&mut self, answer_sdp: &str) {
        self.level_ext = extmap_id(answer_sdp, AUDIO_LEVEL_URI);
        self.orientation_ext = extmap_id(answer_sdp, VIDEO_ORIENTATION_URI);
        self.playout_delay_ext = extmap_id(answer_sdp, PLAYOUT_DELAY_URI);
        let video_pt =
            answer_sdp.lines().find_map(|l| l.trim().strip_prefix("m=video")?.split_whitespace().nth(2)?.parse().ok());
        self.video_pt = video_pt.unwrap_or(96);
        if let Some(sc) = self.simulcast.as_mut() {
            let video_mid = answer_sdp
                .split("m=video")
                .nth(1)
                .and_then(|m| m.lines().find_map(|l| l.trim().strip_prefix("a=mid:")))
                .unwrap_or("1")
                .to_owned();
            sc.mid_ext = extmap_id(answer_sdp, "urn:ietf:params:rtp-hdrext:sdes:mid").map(|id| (id, video_mid));
            sc.rid_ext = extmap_id(answer_sdp, "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id");
        }
        let answer = RTCSessionDescription::answer(answer_sdp.to_owned()).expect("answer SDP");
        self.pc.set_remote_description(answer).await.expect("remote answer");
    }

    /// Waits until the PeerConnection is connected.
    pub async fn connected(&mut self, wait: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + wait;
        while let Ok(Some(s)) = tokio::time::timeout_at(deadline, self.states.recv()).await {
            if s == RTCPeerConnectionState::Connected {
                return true;
            }
        }
        false
    }

    /// From now on each video frame [`TestPublisher::send`] sends is `n` packets (at least one;
    /// plain video only: not simulcast or SVC), as an encoder cuts a frame larger than a packet.
    pub fn packets_per_frame(&mut self, n: u16) {
        self.frame_packets = n.max(1);
    }

    /// Sends one Opus-sized audio packet and one VP8 frame (the first a keyframe), one packet
    /// unless [`TestPublisher::packets_per_frame`] said more.
    pub async fn send(&mut self) {
        self.seq = self.seq.wrapping_add(1);
        let ts = u32::from(self.seq) * 960;
        let mut audio = rtp::Packet {
            header: rtp::header::Header {
                version: 2,
                payload_type: 111,
                sequence_number: self.seq,
                timestamp: ts,
                ssrc: 1111,
                marker: true,
                ..Default::default()
            },
            payload: bytes::Bytes::from(vec![0xf8u8; 80]),
        };
        if let Some(id) = self.level_ext {
            // The voice-activity bit set while loud, as browsers do.
            let vad = if self.audio_level < 60 { 0x80 } else { 0 };
            let _ = audio.header.set_extension(id, bytes::Bytes::copy_from_slice(&[vad | self.audio_level]));
        }
        // VP8 payload descriptor (S=1, PID 0) then a frame header: bit 0 of the first byte
        // clear means a keyframe.
        // A keyframe every 25 frames (this test client does not answer PLI), or only the
        // first and those asked for.
        let requests = self.keyframe_requests();
        let key = match self.on_request.as_mut() {
            None => self.seq % 25 == 1,
            Some(k) => k.due(requests, std::time::Instant::now()) || self.seq == 1,
        } || std::mem::take(&mut self.key_next);
        // Four bytes whose first marks a keyframe in this codec, then the fill.
        let mut vp8 = match self.video_codec {
            // VP9 payload descriptor: B and E set, P (inter-predicted) on all but keyframes.
            "vp9" => vec![if key { 0x0c } else { 0x4c }, 0x00, 0x00, 0x00],
            // H.264: an IDR slice or a non-IDR one (single NAL unit packets).
            "h264" => vec![if key { 0x65 } else { 0x41 }, 0x88, 0x00, 0x00],
            // H.265: an IDR picture (NAL type 19) or a trailing one (1), single NAL unit packets.
            "h265" => vec![if key { 0x26 } else { 0x02 }, 0x01, 0x00, 0x00],
            _ => vec![0x10u8, if key { 0x00 } else { 0x01 }, 0x00, 0x00],
        };
        vp8.extend(std::iter::repeat_n(self.fill, 900));
        let mut video = rtp::Packet {
            header: rtp::header::Header {
                version: 2,
                payload_type: self.video_pt,
                sequence_number: self.seq,
                timestamp: ts * 3,
                ssrc: VIDEO_SSRC,
                marker: true,
                ..Default::default()
            },
            payload: bytes::Bytes::from(vp8),
        };
        if let Some(id) = self.orientation_ext {
            let _ = video.header.set_extension(id, bytes::Bytes::copy_from_slice(&[self.orientation]));
        }
        if let Some(id) = self.playout_delay_ext {
            let _ = video.header.set_extension(id, bytes::Bytes::from_static(&PLAYOUT_DELAY));
        }
        let _ = self.audio.write_rtp(audio).await;
        if let Some(screen) = &self.screen {
            let mut payload = video.payload[..4].to_vec();
            payload.extend(std::iter::repeat_n(SCREEN_FILL, 600));
            let header = rtp::header::Header { ssrc: SCREEN_SSRC, ..video.header.clone() };
            let _ = screen.write_rtp(rtp::Packet { header, payload: bytes::Bytes::from(payload) }).await;
        }
        if let Some(seq) = self.svc.as_mut() {
            let frame = u32::from(self.seq) - 1;
            for sid in 0..3u8 {
                let payload = vp9_svc_payload(frame, sid, self.fill);
                *seq = seq.wrapping_add(1);
                let header = rtp::header::Header {
                    sequence_number: *seq,
                    // The frame ends with its top spatial layer.
                    marker: sid == 2,
                    ..video.header.clone()
                };
                let _ = self.video.write_rtp(rtp::Packet { header, payload: bytes::Bytes::from(payload) }).await;
            }
            return;
        }
        match self.simulcast.as_mut() {
            None => {
                // A frame's later packets continue its partition (S clear) and the last one
                // carries the marker.
                let n = self.frame_packets;
                video.header.sequence_number = video.header.sequence_number.wrapping_add(self.video_seq_ahead);
                video.header.marker = n == 1;
                let rest = (n > 1).then(|| video.clone());
                let _ = self.video.write_rtp(video).await;
                if let Some(first) = rest {
                    for i in 1..n {
                        let mut next = first.clone();
                        next.header.sequence_number = first.header.sequence_number.wrapping_add(i);
                        next.header.marker = i == n - 1;
                        let mut payload = first.payload.to_vec();
                        if self.video_codec == "vp8" {
                            payload[0] &= !0x10;
                        }
                        next.payload = bytes::Bytes::from(payload);
                        let _ = self.video.write_rtp(next).await;
                    }
                    self.video_seq_ahead = self.video_seq_ahead.wrapping_add(n - 1);
                }
            }
            Some(sc) => {
                // One frame per layer; temporal layers 0, 2, 1, 2, ... with keyframes on 0. Byte
                // 6 marks the layer (0xE0 + layer) for the subscriber to check.
                let frame = u32::from(self.seq) - 1;
                let tid = [0u8, 2, 1, 2][(frame % 4) as usize];
                let key = frame % 24 == 0;
                for layer in 0..3 {
                    if sc.stopped[layer] {
                        continue;
                    }
                    sc.seqs[layer] = sc.seqs[layer].wrapping_add(1);
                    // Byte 6 marks the layer in every codec; VP8 carries the temporal layer.
                    let mut vp8 = match self.video_codec {
                        "h264" => vec![if key { 0x65 } else { 0x41 }, 0x88, 0, 0, 0, 0, 0xE0 + layer as u8],
                        "h265" => vec![if key { 0x26 } else { 0x02 }, 0x01, 0, 0, 0, 0, 0xE0 + layer as u8],
                        "vp9" => vec![if key { 0x0c } else { 0x4c }, 0, 0, 0, 0, 0, 0xE0 + layer as u8],
                        _ => vec![0x90u8, 0x20, tid << 6, if key { 0x00 } else { 0x01 }, 0, 0, 0xE0 + layer as u8],
                    };
                    vp8.extend(std::iter::repeat_n(self.fill, 300 * (layer + 1)));
                    let mut header = rtp::header::Header {
                        version: 2,
                        payload_type: self.video_pt,
                        sequence_number: sc.seqs[layer],
                        timestamp: ts * 3,
                        ssrc: sc.ssrcs[layer],
                        marker: true,
                        ..Default::default()
                    };
                    if let Some((id, mid)) = &sc.mid_ext {
                        let _ = header.set_extension(*id, bytes::Bytes::from(mid.clone().into_bytes()));
                    }
                    if let Some(id) = sc.rid_ext {
                        let _ = header.set_extension(id, bytes::Bytes::from_static(SIMULCAST_RIDS[layer].as_bytes()));
                    }
                    let _ = self.video.write_rtp(rtp::Packet { header, payload: bytes::Bytes::from(vp8) }).await;
                }
            }
        }
    }

    pub async fn close(&self) {
        let _ = self.pc.close().await;
    }
}

/// A subscriber that has answered, its ICE not started.
pub struct LateSubscriber {
    pc: LoopbackPc,
    answer: RTCSessionDescription,
    net: Network,
}

impl LateSubscriber {
    /// Starts its ICE (and so DTLS): a [`TestSubscriber`] from here on.
    pub async fn connect(self) -> TestSubscriber {
        let LoopbackPc { pc, mut gather_done, states, packets, video_tracks, data } = self.pc;
        pc.set_local_description(self.answer).await.expect("local answer");
        tokio::time::timeout(Duration::from_secs(5), gather_done.recv()).await.expect("gathering");
        let answer = pc.local_description().await.expect("local description").sdp;
        TestSubscriber { pc, states, packets, video_tracks, data, net: self.net, answer }
    }
}

/// A subscriber: answers the server's offer and records every packet it receives.
pub struct TestSubscriber {
    pc: Arc<dyn PeerConnection>,
    pub states: mpsc::UnboundedReceiver<RTCPeerConnectionState>,
    pub packets: mpsc::UnboundedReceiver<(String, rtp::Packet)>,
    /// Data channel messages received, with their channel's label.
    pub data: mpsc::UnboundedReceiver<DataReceived>,
    /// Its (simulated) network: RTP packets lost, sender reports received.
    pub net: Network,
    /// Its first answer, candidates included.
    pub answer: String,
    video_tracks: Arc<std::sync::Mutex<Vec<Arc<dyn TrackRemote>>>>,
}

impl TestSubscriber {
    pub async fn answer(offer_sdp: &str) -> (Self, String) {
        Self::answer_on(offer_sdp, Network::default()).await
    }

    /// [`TestSubscriber::answer`] on a simulated network.
    pub async fn answer_on(offer_sdp: &str, net: Network) -> (Self, String) {
        let (late, _) = Self::answer_later_on(offer_sdp, net).await;
        let sub = late.connect().await;
        let sdp = sub.answer.clone();
        (sub, sdp)
    }

    /// Answers `offer_sdp` at once but holds its ICE back (no candidates in the answer: the
    /// server learns the subscriber's address from its checks, as with a browser trickling):
    /// nothing is checked, so no DTLS either, until [`LateSubscriber::connect`].
    pub async fn answer_later(offer_sdp: &str) -> (LateSubscriber, String) {
        Self::answer_later_on(offer_sdp, Network::default()).await
    }

    async fn answer_later_on(offer_sdp: &str, net: Network) -> (LateSubscriber, String) {
        let pc = loopback_pc(true, &net).await;
        let offer = RTCSessionDescription::offer(offer_sdp.to_owned()).expect("offer SDP");
        pc.pc.set_remote_description(offer).await.expect("remote offer");
        let answer = pc.pc.create_answer(None).await.expect("answer");
        let sdp = answer.sdp.clone();
        (LateSubscriber { pc, answer, net }, sdp)
    }

    /// Answers a new offer from the server (a renegotiation, as after `updated`).
    pub async fn reanswer(&self, offer_sdp: &str) -> String {
        let offer = RTCSessionDescription::offer(offer_sdp.to_owned()).expect("offer SDP");
        self.pc.set_remote_description(offer).await.expect("remote offer");
        let answer = self.pc.create_answer(None).await.expect("answer");
        self.pc.set_local_description(answer).await.expect("local answer");
        self.pc.local_description().await.expect("local description").sdp
    }

    /// Sends a PLI on every video track received so far (as a decoder that lost its
    /// reference does); returns how many tracks it went out on.
    pub async fn request_keyframe(&self) -> usize {
        let tracks = self.video_tracks.lock().expect("tracks").clone();
        for t in &tracks {
            let ssrc = t.ssrcs().await.first().copied().unwrap_or(0);
            let pli = rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication {
                sender_ssrc: 0,
                media_ssrc: ssrc,
            };
            t.write_rtcp(vec![Box::new(pli)]).await.expect("PLI");
        }
        tracks.len()
    }

    /// Sends, on every video track received so far, one RTCP packet holding transport-wide
    /// feedback first and then a PLI (a compound packet, as a browser may send them); returns
    /// how many tracks it went out on.
    pub async fn request_keyframe_after_transport_feedback(&self) -> usize {
        use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
        use rtc::rtcp::transport_feedbacks::transport_layer_cc::{
            PacketStatusChunk, RecvDelta, RunLengthChunk, StatusChunkTypeTcc, SymbolTypeTcc, TransportLayerCc,
        };
        let tracks = self.video_tracks.lock().expect("tracks").clone();
        for t in &tracks {
            let ssrc = t.ssrcs().await.first().copied().unwrap_or(0);
            let received = SymbolTypeTcc::PacketReceivedSmallDelta;
            let feedback = TransportLayerCc {
                sender_ssrc: 0,
                media_ssrc: ssrc,
                base_sequence_number: 1,
                packet_status_count: 1,
                reference_time: 0,
                fb_pkt_count: 0,
                packet_chunks: vec![PacketStatusChunk::RunLengthChunk(RunLengthChunk {
                    type_tcc: StatusChunkTypeTcc::RunLengthChunk,
                    packet_status_symbol: received,
                    run_length: 1,
                })],
                recv_deltas: vec![RecvDelta { type_tcc_packet: received, delta: 250 }],
            };
            let pli = PictureLossIndication { sender_ssrc: 0, media_ssrc: ssrc };
            t.write_rtcp(vec![Box::new(feedback), Box::new(pli)]).await.expect("feedback and PLI");
        }
        tracks.len()
    }

    pub async fn close(&self) {
        let _ = self.pc.close().await;
    }
}
