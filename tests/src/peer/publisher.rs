//! The test publisher: its offer, and the synthetic RTP and data it sends.

use super::{
    extmap_id, local_track, loopback_pc_with, vp9_svc_payload, LoopbackPc, AUDIO_LEVEL_URI, PLAYOUT_DELAY_URI,
    VIDEO_ORIENTATION_URI,
};
use crate::lossy::{Leg, Network};
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::media_engine::{
    MIME_TYPE_H264, MIME_TYPE_HEVC, MIME_TYPE_OPUS, MIME_TYPE_VP8, MIME_TYPE_VP9,
};
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::rtp;
use rtc::rtp_transceiver::rtp_sender::{RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use webrtc::data_channel::DataChannel;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};
use webrtc::peer_connection::{PeerConnection, RTCPeerConnectionState};

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
    /// Signals ICE gathering complete (again after an ICE restart).
    gather_done: mpsc::Receiver<()>,
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
    /// (see [`super::svc_marks`]), temporal layers 0, 2, 1, 2, ...
    pub svc: bool,
    /// Gathers on this UDP port instead of any, and binds it again at an ICE restart.
    pub port: Option<u16>,
}

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
            port,
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
        let LoopbackPc { pc, mut gather_done, states, .. } =
            loopback_pc_with(false, &net, &extensions, port.unwrap_or(0)).await;
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
            gather_done,
        };
        (me, sdp)
    }

    /// Opens a data channel `label` without waiting for it: whether it is open, as it changes.
    pub async fn open_data_channel(&mut self, label: &str) -> tokio::sync::watch::Receiver<bool> {
        let dc = self.pc.create_data_channel(label, None).await.expect("data channel");
        let open = media_node::media::data::watch_open(dc.clone());
        self.channels.push((label.to_owned(), dc, open.clone()));
        open
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

    /// Offers an ICE restart (new credentials; its sockets bound again): the offer, with
    /// candidates, to be answered and [`TestPublisher::accept`]ed.
    pub async fn restart_ice(&mut self) -> String {
        let options = rtc::peer_connection::configuration::RTCOfferOptions { ice_restart: true };
        let offer = self.pc.create_offer(Some(options)).await.expect("an ICE restart offer");
        self.pc.set_local_description(offer).await.expect("local offer");
        tokio::time::timeout(Duration::from_secs(5), self.gather_done.recv()).await.expect("gathering again");
        self.pc.local_description().await.expect("local description").sdp
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
