//! Real media for tests that decode what Portunus recorded or forwarded: ffmpeg (Debian
//! `ffmpeg`) encodes a test pattern as VP8 (IVF) and a tone as Opus (Ogg, one 20 ms packet per
//! page), and a [`ClipSender`] sends them through a test publisher's tracks in real time.

use bytes::Bytes;
use rtc::media::io::ivf_reader::IVFReader;
use rtc::media::io::ogg_reader::OggReader;
use rtc::rtp;
use rtc::rtp::packetizer::Payloader;
use std::path::Path;
use std::process::Command;
use webrtc::media_stream::track_local::TrackLocal;

/// Frames per second of the clip's video (25: one video frame and two Opus packets per 40 ms).
pub const FPS: u32 = 25;

/// An encoded clip: VP8 frames and Opus packets.
pub struct Clip {
    pub video: Vec<Bytes>,
    pub audio: Vec<Bytes>,
}

impl Clip {
    /// Encodes `seconds` of a 320x240 test pattern (a keyframe each second) and a 440 Hz tone
    /// into `dir`, and reads them back.
    pub fn make(dir: &Path, seconds: u32) -> Self {
        std::fs::create_dir_all(dir).expect("clip folder");
        let (ivf, ogg) = (dir.join("clip.ivf"), dir.join("clip.ogg"));
        let ffmpeg = |args: &[&str]| {
            let out = Command::new("ffmpeg").args(["-hide_banner", "-loglevel", "error", "-y"]).args(args).output();
            let out = out.expect("ffmpeg runs (apt-get install ffmpeg; tests/run.sh does this)");
            assert!(out.status.success(), "ffmpeg {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        };
        let t = seconds.to_string();
        let rate = format!("testsrc=size=320x240:rate={FPS}");
        ffmpeg(&[
            "-f",
            "lavfi",
            "-i",
            &rate,
            "-t",
            &t,
            "-c:v",
            "libvpx",
            "-deadline",
            "realtime",
            "-cpu-used",
            "8",
            "-g",
            "25",
            "-b:v",
            "300k",
            "-auto-alt-ref",
            "0",
            ivf.to_str().unwrap(),
        ]);
        ffmpeg(&[
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000",
            "-t",
            &t,
            "-c:a",
            "libopus",
            "-b:a",
            "32k",
            "-frame_duration",
            "20",
            "-page_duration",
            "20000",
            ogg.to_str().unwrap(),
        ]);
        let (mut r, _) = IVFReader::new(std::fs::File::open(&ivf).unwrap()).expect("IVF header");
        let mut video = Vec::new();
        while let Ok((frame, _)) = r.parse_next_frame() {
            video.push(frame.freeze());
        }
        let (mut r, _) = OggReader::new(std::fs::File::open(&ogg).unwrap(), true).expect("Ogg header");
        let mut audio = Vec::new();
        while let Ok((page, header)) = r.parse_next_page() {
            // The first two pages are OpusHead and OpusTags.
            if header.granule_position > 0 && !page.starts_with(b"OpusTags") {
                audio.push(page.freeze());
            }
        }
        assert!(
            video.len() as u32 >= seconds * FPS - 1 && audio.len() as u32 >= seconds * 45,
            "{} video frames, {} audio packets",
            video.len(),
            audio.len()
        );
        Self { video, audio }
    }
}

/// Sends a clip through a publisher's tracks: [`ClipSender::tick`] every 40 ms sends the next
/// video frame (one or more RTP packets) and two Opus packets. Video packets carry the
/// publisher's [`TestPublisher::orientation`](crate::peer::TestPublisher::orientation) when it
/// negotiated the video orientation extension.
pub struct ClipSender {
    clip: Clip,
    frame: usize,
    payloader: rtp::codec::vp8::Vp8Payloader,
    seq: (u16, u16),
}

impl ClipSender {
    pub fn new(clip: Clip) -> Self {
        Self { clip, frame: 0, payloader: Default::default(), seq: (0, 0) }
    }

    /// Video frames sent so far.
    pub fn frames_sent(&self) -> usize {
        self.frame.min(self.clip.video.len())
    }

    /// Sends the next 40 ms; false once the clip is over.
    pub async fn tick(&mut self, publisher: &crate::peer::TestPublisher) -> bool {
        let i = self.frame;
        if i >= self.clip.video.len() {
            return false;
        }
        self.frame += 1;
        let (audio_track, video_track) = publisher.tracks();
        let ts = (i as u32) * (90_000 / FPS);
        let payloads = self.payloader.payload(1200, &self.clip.video[i]).unwrap_or_default();
        let n = payloads.len();
        for (k, payload) in payloads.into_iter().enumerate() {
            self.seq.1 = self.seq.1.wrapping_add(1);
            let header = rtp::header::Header {
                version: 2,
                payload_type: 96,
                sequence_number: self.seq.1,
                timestamp: ts,
                ssrc: 2222,
                marker: k + 1 == n,
                ..Default::default()
            };
            let mut packet = rtp::Packet { header, payload };
            if let Some(id) = publisher.orientation_ext() {
                let _ = packet.header.set_extension(id, Bytes::copy_from_slice(&[publisher.orientation]));
            }
            let _ = video_track.write_rtp(packet).await;
        }
        for k in 0..2 {
            let Some(opus) = self.clip.audio.get(i * 2 + k) else { continue };
            self.seq.0 = self.seq.0.wrapping_add(1);
            let header = rtp::header::Header {
                version: 2,
                payload_type: 111,
                sequence_number: self.seq.0,
                timestamp: ((i * 2 + k) as u32) * 960,
                ssrc: 1111,
                marker: false,
                ..Default::default()
            };
            let _ = audio_track.write_rtp(rtp::Packet { header, payload: opus.clone() }).await;
        }
        true
    }
}
