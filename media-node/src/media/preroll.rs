//! What a subscriber's video stream keeps until its connection is up (from its offer on,
//! through the answer, ICE and DTLS): the packets from the latest keyframe on. At connect they
//! go out first, so the subscriber's first picture is whatever keyframe came during its
//! handshake instead of one asked for only once DTLS is up, which costs the publisher's round
//! trip, its encoder's reaction and the keyframe's pacing (Chromium under a room's bitrate
//! cap: hundreds of milliseconds). With none kept, one is asked for as soon as the answer is
//! in (measured with Chromium: no faster when asked at the offer already, and a subscriber
//! that never answers asks for nothing). Time is an input.

use super::codec::VideoCodec;
use super::feed::KeyframeAsk;
use rtc::rtp;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The most packets kept: a 720p keyframe at 1.5 Mbit/s is 30–60 packets, and the delta frames
/// of a few hundred milliseconds of handshake fit beside it. Past this the stream waits for
/// the next keyframe (asked for), as it would without a preroll.
pub const PREROLL_PACKETS: usize = 192;

/// How long after DTLS is up (here) what was kept goes out. The DTLS server is done when it
/// sends its last flight, the client once that arrives and its SRTP keys are installed; what we
/// send after the flight arrives after it, but a client that installs its keys asynchronously
/// drops what comes meanwhile (webrtc-rs does, and the kept keyframe went with it in 3 of 6
/// runs of the codecs test when sent at once; none in 16 runs with 2 or 10 ms). 20 ms keeps a
/// margin for a loaded machine and is far below a keyframe asked for at connect.
pub const SETTLE: Duration = Duration::from_millis(20);

pub(super) struct Preroll {
    /// The stream's video codec (none: audio, which keeps nothing).
    codec: Option<VideoCodec>,
    packets: VecDeque<rtp::Packet>,
    asked: KeyframeAsk,
    /// When the kept packets may go out, from the first time they were asked for after the
    /// gate opened.
    release: Option<Instant>,
}

impl Preroll {
    pub fn new(codec: Option<VideoCodec>) -> Self {
        Self { codec, packets: VecDeque::new(), asked: KeyframeAsk::default(), release: None }
    }

    /// Keeps `p` if it is a keyframe's (which replaces what was kept) or follows one kept.
    pub fn keep(&mut self, p: rtp::Packet) {
        let Some(codec) = self.codec else { return };
        if codec.is_keyframe(&p.payload) {
            self.packets.clear();
            self.packets.push_back(p);
        } else if !self.packets.is_empty() {
            if self.packets.len() < PREROLL_PACKETS {
                self.packets.push_back(p);
            } else {
                tracing::debug!(kept = self.packets.len(), "preroll full: waiting for the next keyframe");
                self.packets.clear();
            }
        }
    }

    /// [`Preroll::keep`], and whether the publisher should be asked for a keyframe now (video,
    /// none kept, and not asked within the keyframe request interval).
    pub fn hold(&mut self, p: rtp::Packet, now: Instant) -> bool {
        self.keep(p);
        self.codec.is_some() && self.packets.is_empty() && self.asked.due(now)
    }

    /// Appends a packet that came after the gate opened, behind what was kept.
    pub fn push(&mut self, p: rtp::Packet) {
        self.packets.push_back(p);
    }

    /// The stream is open (DTLS up): when the kept packets may go out ([`SETTLE`] after the
    /// first call), or `None` if they may now.
    pub fn hold_until(&mut self, now: Instant) -> Option<Instant> {
        let release = *self.release.get_or_insert(now + SETTLE);
        (now < release).then_some(release)
    }

    /// The next kept packet, oldest first.
    pub fn pop(&mut self) -> Option<rtp::Packet> {
        self.packets.pop_front()
    }

    pub fn len(&self) -> usize {
        self.packets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.packets.is_empty()
    }

    /// Forgets what was kept (the source changed, or packets were lost on the way in); the
    /// next connecting packet may ask again.
    pub fn clear(&mut self) {
        self.packets.clear();
        self.asked.reset();
        self.release = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::feed::KEYFRAME_REQUEST_INTERVAL;

    fn vp8(seq: u16, key: bool) -> rtp::Packet {
        rtp::Packet {
            header: rtp::header::Header { sequence_number: seq, ..Default::default() },
            payload: bytes::Bytes::from(vec![0x10, if key { 0x00 } else { 0x01 }, 0, 0]),
        }
    }

    fn drain(p: &mut Preroll) -> Vec<u16> {
        std::iter::from_fn(|| p.pop()).map(|p| p.header.sequence_number).collect()
    }

    #[test]
    fn keeps_from_the_latest_keyframe_and_asks_once_until_one_comes() {
        let t = Instant::now();
        let mut p = Preroll::new(Some(VideoCodec::Vp8));
        assert!(p.hold(vp8(1, false), t), "no keyframe kept: ask");
        assert!(!p.hold(vp8(2, false), t + Duration::from_millis(100)), "asked 100 ms ago");
        assert!(
            p.hold(vp8(3, false), t + KEYFRAME_REQUEST_INTERVAL),
            "no answer after KEYFRAME_REQUEST_INTERVAL: ask again"
        );
        assert!(!p.hold(vp8(4, true), t + KEYFRAME_REQUEST_INTERVAL), "a keyframe: nothing to ask");
        assert!(!p.hold(vp8(5, false), t + KEYFRAME_REQUEST_INTERVAL));
        assert!(!p.hold(vp8(6, true), t + KEYFRAME_REQUEST_INTERVAL), "a newer keyframe replaces the older one");
        assert!(!p.hold(vp8(7, false), t + KEYFRAME_REQUEST_INTERVAL * 4), "holding a keyframe: never ask");
        assert_eq!(p.hold_until(t), Some(t + SETTLE), "open: out after SETTLE");
        assert_eq!(p.hold_until(t + SETTLE / 2), Some(t + SETTLE), "counted from the first call");
        assert_eq!(p.hold_until(t + SETTLE), None);
        assert_eq!(drain(&mut p), [6, 7]);
        assert!(p.is_empty());
    }

    #[test]
    fn overflow_drops_everything_until_the_next_keyframe() {
        let t = Instant::now();
        let mut p = Preroll::new(Some(VideoCodec::Vp8));
        p.hold(vp8(0, true), t);
        for seq in 1..PREROLL_PACKETS as u16 {
            assert!(!p.hold(vp8(seq, false), t));
        }
        let overflowing = PREROLL_PACKETS as u16;
        assert!(p.hold(vp8(overflowing, false), t), "full: dropped, and the next keyframe asked for");
        assert!(p.is_empty());
        p.hold(vp8(overflowing + 1, true), t);
        assert_eq!(drain(&mut p), [overflowing + 1]);
    }

    #[test]
    fn keeping_never_asks() {
        let t = Instant::now();
        let mut p = Preroll::new(Some(VideoCodec::Vp8));
        p.keep(vp8(1, false));
        assert!(p.is_empty(), "nothing before a keyframe");
        p.keep(vp8(2, true));
        p.keep(vp8(3, false));
        assert!(!p.hold(vp8(4, false), t), "a keyframe kept before the answer: nothing to ask");
        assert_eq!(drain(&mut p), [2, 3, 4]);
        assert!(p.hold(vp8(5, false), t), "nothing kept, never asked: ask");
    }

    #[test]
    fn audio_keeps_nothing_and_never_asks() {
        let mut p = Preroll::new(None);
        assert!(!p.hold(vp8(1, true), Instant::now()));
        assert!(p.is_empty());
    }

    #[test]
    fn clear_forgets_packets_and_the_last_ask() {
        let t = Instant::now();
        let mut p = Preroll::new(Some(VideoCodec::Vp8));
        assert!(p.hold(vp8(1, false), t));
        p.clear();
        assert!(p.hold(vp8(2, false), t), "after a clear the stream asks at once");
        p.hold(vp8(3, true), t);
        p.clear();
        assert!(p.is_empty());
    }
}
