//! Real WebRTC peers without an encoder: a publisher pacing VP8-shaped video and Opus-sized
//! audio RTP, and subscribers that count what arrives. Every payload carries a stamp (a
//! "measured" flag and the send time) that any SFU forwards untouched, so loss and one-way
//! latency are computed at the receiver for Portunus and Janus alike.

use crate::client::Result;
use media_node::media::feedback::is_keyframe_request;
use portunus_tests::peer::{local_track, peer_connection};
use rtc::peer_connection::configuration::media_engine::{MIME_TYPE_OPUS, MIME_TYPE_VP8};
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::rtp;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionEventHandler, RTCIceGatheringState, RTCPeerConnectionState,
};

/// Where the stamp sits in a payload: after the 4 bytes a VP8 depacketizer (or an SFU looking
/// for keyframes) reads.
const STAMP_AT: usize = 4;
const STAMP_LEN: usize = 9;

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn now_ns() -> u64 {
    epoch().elapsed().as_nanos() as u64
}

/// What the publisher sends.
#[derive(Clone, Copy, Debug)]
pub struct Traffic {
    pub video_pps: u32,
    pub video_bytes: usize,
    pub audio_pps: u32,
    pub audio_bytes: usize,
    pub fps: u32,
    /// A keyframe every this many frames, and whenever one is requested.
    pub keyframe_every: u32,
}

impl Default for Traffic {
    /// ~1.5 Mbit/s of video in ~130 packets/s (30 frames/s, a keyframe every 3 s) and one
    /// Opus-sized audio packet every 20 ms.
    fn default() -> Self {
        Self { video_pps: 130, video_bytes: 1400, audio_pps: 50, audio_bytes: 120, fps: 30, keyframe_every: 90 }
    }
}

/// Packets the publisher sent while measuring, and a switch for the measuring window.
#[derive(Default)]
pub struct SendStats {
    pub measuring: AtomicBool,
    pub measured: AtomicU64,
    pub total: AtomicU64,
}

/// What every subscriber of a run received: counts and a one-way latency histogram
/// (10 µs buckets up to 2 s), shared lock-free by all their track tasks.
pub struct RecvStats {
    pub measured: AtomicU64,
    pub total: AtomicU64,
    /// Sequence numbers a subscriber never saw between two it did: lost on the way from the
    /// server, where the rest of a shortfall was never sent to it.
    pub gaps: AtomicU64,
    latency: Box<[AtomicU64]>,
}

const BUCKET_NS: u64 = 10_000;
const BUCKETS: usize = 200_000;

impl Default for RecvStats {
    fn default() -> Self {
        Self {
            measured: AtomicU64::new(0),
            total: AtomicU64::new(0),
            gaps: AtomicU64::new(0),
            latency: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

impl RecvStats {
    fn record(&self, payload: &[u8], at_ns: u64) {
        self.total.fetch_add(1, Relaxed);
        let Some(stamp) = payload.get(STAMP_AT..STAMP_AT + STAMP_LEN) else { return };
        if stamp[0] != 1 {
            return;
        }
        self.measured.fetch_add(1, Relaxed);
        let sent = u64::from_be_bytes(stamp[1..9].try_into().expect("8 bytes"));
        let bucket = (at_ns.saturating_sub(sent) / BUCKET_NS) as usize;
        self.latency[bucket.min(BUCKETS - 1)].fetch_add(1, Relaxed);
    }

    /// Latency percentiles (ms) of the measured packets, and clears the histogram.
    pub fn take_latency(&self, ps: &[f64]) -> Vec<f64> {
        let counts: Vec<u64> = self.latency.iter().map(|c| c.swap(0, Relaxed)).collect();
        let n: u64 = counts.iter().sum();
        ps.iter()
            .map(|p| {
                let rank = ((n as f64) * p).ceil().max(1.0) as u64;
                let mut seen = 0;
                for (i, c) in counts.iter().enumerate() {
                    seen += c;
                    if seen >= rank {
                        return (i as f64 + 0.5) * BUCKET_NS as f64 / 1e6;
                    }
                }
                0.0
            })
            .collect()
    }
}

/// Where a subscriber's packets are counted, and when its first keyframe began to arrive.
#[derive(Clone)]
struct Received {
    stats: Arc<RecvStats>,
    first_keyframe: Arc<OnceLock<Instant>>,
    /// The last sequence number of each kind (audio, video) this subscriber received.
    last: [Option<u16>; 2],
}

impl Received {
    fn rtp(&mut self, video: bool, seq: u16, payload: &[u8]) {
        let last = &mut self.last[usize::from(video)];
        if let Some(l) = *last {
            let ahead = seq.wrapping_sub(l);
            if (2..0x8000).contains(&ahead) {
                self.stats.gaps.fetch_add(u64::from(ahead - 1), Relaxed);
            }
        }
        *last = Some(seq);
        // A decoder can start here: the first packet of a keyframe (the publisher marks them
        // as VP8 does; any server forwards the payload untouched).
        if video && payload.len() > 1 && payload[0] & 0x10 != 0 && payload[1] & 0x01 == 0 {
            self.first_keyframe.get_or_init(Instant::now);
        }
        self.stats.record(payload, now_ns());
    }
}

struct Handler {
    gathered: mpsc::Sender<()>,
    connected: watch::Sender<bool>,
    /// Subscribers only.
    recv: Option<Received>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            let _ = self.gathered.try_send(());
        }
    }
    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        let _ = self.connected.send(state == RTCPeerConnectionState::Connected);
    }
    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let Some(mut recv) = self.recv.clone() else { return };
        tokio::spawn(async move {
            let video = track.kind().await.to_string().eq_ignore_ascii_case("video");
            while let Some(ev) = track.poll().await {
                if let TrackRemoteEvent::OnRtpPacket(p) = ev {
                    recv.rtp(video, p.header.sequence_number, &p.payload);
                }
            }
        });
    }
}

/// A PeerConnection with its signals.
struct Peer {
    pc: Arc<dyn PeerConnection>,
    gathered: mpsc::Receiver<()>,
    connected: watch::Receiver<bool>,
}

impl Peer {
    async fn new(bind: &str, recv: Option<Received>) -> Self {
        let (gathered_tx, gathered) = mpsc::channel(1);
        let (connected_tx, connected) = watch::channel(false);
        // Publishers answer keyframe requests, as an encoder does.
        let publisher = recv.is_none();
        let handler = Arc::new(Handler { gathered: gathered_tx, connected: connected_tx, recv });
        Self { pc: peer_connection(bind, handler, publisher).await, gathered, connected }
    }

    /// The local description once gathering completes (half-trickle: candidates included).
    async fn local_sdp(&mut self) -> Result<String> {
        tokio::time::timeout(Duration::from_secs(5), self.gathered.recv())
            .await
            .map_err(|_| "ICE gathering timed out")?;
        Ok(self.pc.local_description().await.ok_or("no local description")?.sdp)
    }

    async fn connected(&mut self, wait: Duration) -> Result<()> {
        tokio::time::timeout(wait, self.connected.wait_for(|c| *c))
            .await
            .map_err(|_| "PeerConnection not connected in time")??;
        Ok(())
    }
}

pub struct LoadPublisher {
    peer: Peer,
    audio: Arc<TrackLocalStaticRTP>,
    video: Arc<TrackLocalStaticRTP>,
    /// (audio, video): the track writes packets as given, SSRC included.
    ssrcs: (u32, u32),
    pub stats: Arc<SendStats>,
    pacer: Option<actix_web::rt::task::JoinHandle<()>>,
}

impl LoadPublisher {
    /// A publisher bound to `bind` and its offer.
    pub async fn offer(bind: &str) -> Result<(Self, String)> {
        let mut peer = Peer::new(bind, None).await;
        let ssrcs = (rand::random::<u32>() | 1, rand::random::<u32>() | 1);
        let audio = local_track(RtpCodecKind::Audio, MIME_TYPE_OPUS, 48000, 2, ssrcs.0);
        let video = local_track(RtpCodecKind::Video, MIME_TYPE_VP8, 90000, 0, ssrcs.1);
        peer.pc.add_track(audio.clone() as Arc<dyn TrackLocal>).await?;
        peer.pc.add_track(video.clone() as Arc<dyn TrackLocal>).await?;
        let offer = peer.pc.create_offer(None).await?;
        peer.pc.set_local_description(offer).await?;
        let sdp = peer.local_sdp().await?;
        Ok((Self { peer, audio, video, ssrcs, stats: Arc::default(), pacer: None }, sdp))
    }

    pub async fn accept(&mut self, answer: String) -> Result<()> {
        self.peer.pc.set_remote_description(RTCSessionDescription::answer(answer)?).await?;
        self.peer.connected(Duration::from_secs(10)).await
    }

    /// Starts sending `traffic` until the publisher is closed; a keyframe request (PLI/FIR)
    /// makes the next video frame a keyframe.
    pub fn start(&mut self, traffic: Traffic) {
        let (audio, video, stats) = (self.audio.clone(), self.video.clone(), self.stats.clone());
        let requested = Arc::new(AtomicBool::new(false));
        let (track, flag) = (video.clone(), requested.clone());
        actix_web::rt::spawn(async move {
            while let Some(ev) = track.poll().await {
                let TrackLocalEvent::OnRtcpPacket(packets) = ev else { continue };
                if packets.iter().any(|p| is_keyframe_request(p.as_ref())) {
                    flag.store(true, Relaxed);
                }
            }
        });
        self.pacer = Some(actix_web::rt::spawn(pace(audio, video, self.ssrcs, stats, requested, traffic)));
    }

    pub async fn close(mut self) {
        if let Some(p) = self.pacer.take() {
            p.abort();
        }
        let _ = self.peer.pc.close().await;
    }
}

fn packet(pt: u8, seq: u16, ts: u32, ssrc: u32, marker: bool, payload: Vec<u8>) -> rtp::Packet {
    rtp::Packet {
        header: rtp::header::Header {
            version: 2,
            payload_type: pt,
            sequence_number: seq,
            timestamp: ts,
            ssrc,
            marker,
            ..Default::default()
        },
        payload: payload.into(),
    }
}

/// Writes the stamp (measured flag, send time) into a payload.
fn stamp(payload: &mut [u8], stats: &SendStats) {
    let measuring = stats.measuring.load(Relaxed);
    payload[STAMP_AT] = measuring as u8;
    payload[STAMP_AT + 1..STAMP_AT + STAMP_LEN].copy_from_slice(&now_ns().to_be_bytes());
    stats.total.fetch_add(1, Relaxed);
    if measuring {
        stats.measured.fetch_add(1, Relaxed);
    }
}

/// Sends video frame by frame (each frame's packets back to back, as an encoder would) and
/// audio every 1/audio_pps s, on one timeline.
async fn pace(
    audio: Arc<TrackLocalStaticRTP>,
    video: Arc<TrackLocalStaticRTP>,
    (assrc, vssrc): (u32, u32),
    stats: Arc<SendStats>,
    keyframe_requested: Arc<AtomicBool>,
    t: Traffic,
) {
    // Payload types as the publisher offered them (webrtc-rs defaults: Opus 111, VP8 96).
    let (mut vseq, mut aseq) = (rand::random::<u16>(), rand::random::<u16>());
    let frame_every = Duration::from_secs_f64(1.0 / t.fps as f64);
    let audio_every = Duration::from_secs_f64(1.0 / t.audio_pps.max(1) as f64);
    let start = tokio::time::Instant::now();
    let (mut next_frame, mut next_audio) = (start, start);
    let (mut frame, mut audio_n, mut credit) = (0u32, 0u32, 0f64);
    loop {
        let now = tokio::time::Instant::now();
        if now >= next_audio && t.audio_pps > 0 {
            let mut p = vec![0xfcu8; t.audio_bytes.max(STAMP_AT + STAMP_LEN)];
            stamp(&mut p, &stats);
            aseq = aseq.wrapping_add(1);
            let _ = audio.write_rtp(packet(111, aseq, audio_n.wrapping_mul(960), assrc, true, p)).await;
            audio_n += 1;
            next_audio += audio_every;
        }
        if now >= next_frame && t.video_pps > 0 {
            credit += t.video_pps as f64 / t.fps as f64;
            let n = credit.floor().max(1.0) as u32;
            credit -= n as f64;
            let key = frame % t.keyframe_every.max(1) == 0 || keyframe_requested.swap(false, Relaxed);
            for i in 0..n {
                // VP8 payload descriptor (S bit on a frame's first packet), then the first
                // byte of the frame header: bit 0 clear marks a keyframe.
                let mut p = vec![0x55u8; t.video_bytes.max(STAMP_AT + STAMP_LEN)];
                p[0] = if i == 0 { 0x10 } else { 0x00 };
                p[1] = if key { 0x00 } else { 0x01 };
                p[2] = 0;
                p[3] = 0;
                stamp(&mut p, &stats);
                vseq = vseq.wrapping_add(1);
                let _ = video.write_rtp(packet(96, vseq, frame.wrapping_mul(3000), vssrc, i + 1 == n, p)).await;
            }
            frame += 1;
            next_frame += frame_every;
        }
        tokio::time::sleep_until(next_frame.min(if t.audio_pps > 0 { next_audio } else { next_frame })).await;
    }
}

pub struct LoadSubscriber {
    peer: Peer,
    first_keyframe: Arc<OnceLock<Instant>>,
}

impl LoadSubscriber {
    /// Answers the server's offer; packets received count into `stats`.
    pub async fn answer(bind: &str, offer: String, stats: Arc<RecvStats>) -> Result<(Self, String)> {
        let first_keyframe = Arc::new(OnceLock::new());
        let recv = Received { stats, first_keyframe: first_keyframe.clone(), last: [None; 2] };
        let mut peer = Peer::new(bind, Some(recv)).await;
        peer.pc.set_remote_description(RTCSessionDescription::offer(offer)?).await?;
        let answer = peer.pc.create_answer(None).await?;
        peer.pc.set_local_description(answer).await?;
        let sdp = peer.local_sdp().await?;
        Ok((Self { peer, first_keyframe }, sdp))
    }

    /// When the first keyframe began to arrive (video can be decoded from there), if one has.
    pub fn first_keyframe(&self) -> Option<Instant> {
        self.first_keyframe.get().copied()
    }

    pub async fn connected(&mut self, wait: Duration) -> Result<()> {
        self.peer.connected(wait).await
    }

    pub async fn close(self) {
        let _ = self.peer.pc.close().await;
    }
}
