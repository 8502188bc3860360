//! What a subscriber's video stream keeps until its connection is up: the packets from the
//! publisher's latest keyframe on, starting from what the publisher layer keeps (`gop`) and
//! going on through the offer, the answer, ICE and DTLS. At connect they go out first, so the
//! subscriber's first picture is a keyframe already sent instead of one asked for, which costs
//! the publisher's round trip, its encoder's reaction and the keyframe's pacing (Chromium under
//! a room's bitrate cap: hundreds of milliseconds). With none kept, or with a group too long to
//! go out whole ([`MAX_SPAN`]), one is asked for as soon as the answer is in (measured with
//! Chromium: no faster when asked at the offer already, and a subscriber that never answers
//! asks for nothing). Time is an input.

use super::codec::VideoCodec;
use super::feed::KeyframeAsk;
use super::gop::Gop;
use rtc::rtp;
use std::time::{Duration, Instant};

/// How long after DTLS is up (here) what was kept goes out. The DTLS server is done when it
/// sends its last flight, the client once that arrives and its SRTP keys are installed; what we
/// send after the flight arrives after it, but a client that installs its keys asynchronously
/// drops what comes meanwhile (webrtc-rs does, and the kept keyframe went with it in 3 of 6
/// runs of the codecs test when sent at once; none in 16 runs with 2 or 10 ms). 20 ms keeps a
/// margin for a loaded machine and is far below a keyframe asked for at connect.
pub const SETTLE: Duration = Duration::from_millis(20);

/// The longest group that goes out whole: sent in a burst, its frames keep their own timestamps
/// (a receiver that records at a fixed frame rate, aiortc's, cannot take two frames within one
/// of its frame slots), so a receiver plays its live frames this much late at first. A longer
/// group goes out as its keyframe alone: the subscriber sees the publisher's last picture at
/// once and its live ones from the next keyframe, asked for when the answer is in.
pub const MAX_SPAN: Duration = Duration::from_millis(100);

/// When what was kept goes out.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Release {
    /// At this time (the gate opened; the subscriber's DTLS settles meanwhile).
    At(Instant),
    /// Now: whole.
    Open,
    /// Now: its keyframe alone; what follows it waits for the next keyframe.
    Cut,
}

pub(super) struct Preroll {
    /// Video's kept packets (none: audio, which keeps nothing).
    gop: Option<Gop>,
    /// [`MAX_SPAN`] in timestamp ticks.
    max_span: u32,
    asked: KeyframeAsk,
    /// From the first time the kept packets were asked for after the gate opened.
    release: Option<Release>,
}

impl Preroll {
    pub fn new(codec: Option<VideoCodec>, clock_rate: u32) -> Self {
        let max_span = (MAX_SPAN.as_secs_f64() * f64::from(clock_rate)) as u32;
        Self { gop: codec.map(Gop::new), max_span, asked: KeyframeAsk::default(), release: None }
    }

    /// Starts from a publisher's kept group of pictures (its latest keyframe on).
    pub fn seed(&mut self, packets: Vec<rtp::Packet>) {
        if let Some(g) = self.gop.as_mut() {
            g.seed(packets);
        }
    }

    /// Keeps `p` if it is a keyframe's (which replaces what was kept) or follows one kept.
    pub fn keep(&mut self, p: rtp::Packet) {
        if let Some(g) = self.gop.as_mut() {
            g.keep(p);
        }
    }

    /// [`Preroll::keep`], and whether the publisher should be asked for a keyframe now (video
    /// with none kept, or with a group too long to go out whole, and not asked within the
    /// keyframe request interval).
    pub fn hold(&mut self, p: rtp::Packet, now: Instant) -> bool {
        self.keep(p);
        self.gop.is_some() && (self.is_empty() || self.too_long()) && self.asked.due(now)
    }

    /// Whether what is kept spans more than [`MAX_SPAN`] (then only its keyframe goes out).
    fn too_long(&self) -> bool {
        self.gop.as_ref().is_some_and(|g| g.span() > self.max_span)
    }

    /// Appends a packet that came after the gate opened, behind what was kept; behind a
    /// keyframe alone it is dropped (the stream waits for the next keyframe).
    pub fn push(&mut self, p: rtp::Packet) {
        if let Some(g) = self.gop.as_mut().filter(|_| self.release != Some(Release::Cut)) {
            g.push(p);
        }
    }

    /// The stream is open (DTLS up): when the kept packets may go out ([`SETTLE`] after the
    /// first call), or `None` if they may now (a group longer than [`MAX_SPAN`] cut to its
    /// keyframe, once).
    pub fn hold_until(&mut self, now: Instant) -> Option<Instant> {
        let at = match self.release {
            Some(Release::Open | Release::Cut) => return None,
            Some(Release::At(at)) => at,
            None => now + SETTLE,
        };
        if now < at {
            self.release = Some(Release::At(at));
            return Some(at);
        }
        self.release = Some(Release::Open);
        if self.too_long() {
            if let Some(g) = self.gop.as_mut() {
                g.keep_first_frame();
            }
            self.release = Some(Release::Cut);
        }
        None
    }

    /// The next kept packet, oldest first.
    pub fn pop(&mut self) -> Option<rtp::Packet> {
        self.gop.as_mut()?.pop()
    }

    /// Whether a group cut to its keyframe has just gone out (true once): the stream must
    /// wait for the next keyframe, its timestamps going on from the time it is sent.
    pub fn cut_sent(&mut self) -> bool {
        if self.release == Some(Release::Cut) && self.is_empty() {
            self.release = Some(Release::Open);
            return true;
        }
        false
    }

    pub fn len(&self) -> usize {
        self.gop.as_ref().map_or(0, Gop::len)
    }

    pub fn is_empty(&self) -> bool {
        self.gop.as_ref().is_none_or(Gop::is_empty)
    }

    /// Forgets what was kept (the source changed, or packets were lost on the way in), its
    /// memory too; the next connecting packet may ask again.
    pub fn clear(&mut self) {
        if let Some(g) = self.gop.as_mut() {
            g.forget();
        }
        self.asked.reset();
        self.release = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::feed::KEYFRAME_REQUEST_INTERVAL;
    use crate::media::gop::tests::vp8 as frame;

    /// A one-packet VP8 frame at timestamp 0.
    fn vp8(seq: u16, key: bool) -> rtp::Packet {
        frame(seq, 0, key)
    }

    fn drain(p: &mut Preroll) -> Vec<u16> {
        std::iter::from_fn(|| p.pop()).map(|p| p.header.sequence_number).collect()
    }

    #[test]
    fn keeps_from_the_latest_keyframe_and_asks_once_until_one_comes() {
        let t = Instant::now();
        let mut p = Preroll::new(Some(VideoCodec::Vp8), 90_000);
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

    fn release(p: &mut Preroll, t: Instant) {
        assert_eq!(p.hold_until(t), Some(t + SETTLE));
        assert_eq!(p.hold_until(t + SETTLE), None);
    }

    #[test]
    fn a_short_seeded_group_asks_nothing_and_goes_out_whole_with_its_own_timestamps() {
        let t = Instant::now();
        let mut p = Preroll::new(Some(VideoCodec::Vp8), 90_000);
        // A two-packet keyframe and two frames 33 ms apart: 66 ms.
        p.seed(vec![frame(10, 0, true), frame(11, 0, false), frame(12, 3000, false), frame(13, 6000, false)]);
        assert!(!p.hold(frame(14, 6000, false), t), "a keyframe kept: nothing to ask");
        release(&mut p, t);
        p.push(frame(15, 9000, false));
        let out: Vec<(u16, u32)> =
            std::iter::from_fn(|| p.pop()).map(|p| (p.header.sequence_number, p.header.timestamp)).collect();
        assert_eq!(out, [(10, 0), (11, 0), (12, 3000), (13, 6000), (14, 6000), (15, 9000)]);
        assert!(!p.cut_sent(), "sent whole: the stream goes on");
    }

    #[test]
    fn a_long_group_asks_for_a_fresh_keyframe_and_goes_out_as_its_keyframe_alone() {
        let t = Instant::now();
        let mut p = Preroll::new(Some(VideoCodec::Vp8), 90_000);
        // A keyframe and frames a second apart.
        p.seed(vec![frame(10, 0, true), frame(11, 0, false), frame(12, 90_000, false), frame(13, 180_000, false)]);
        assert!(p.hold(frame(14, 183_000, false), t), "too long to go out whole: ask");
        assert!(!p.hold(frame(15, 186_000, false), t), "asked already");
        release(&mut p, t);
        p.push(frame(16, 189_000, false));
        assert_eq!(drain(&mut p), [10, 11], "the keyframe alone; what came behind it is dropped");
        assert!(p.cut_sent(), "the stream waits for the next keyframe");
        assert!(!p.cut_sent(), "once");
    }

    #[test]
    fn a_fresh_keyframe_while_connecting_replaces_a_long_group() {
        let t = Instant::now();
        let mut p = Preroll::new(Some(VideoCodec::Vp8), 90_000);
        p.seed(vec![frame(10, 0, true), frame(11, 90_000, false)]);
        assert!(p.hold(frame(12, 93_000, false), t));
        assert!(!p.hold(frame(13, 96_000, true), t), "a fresh keyframe: nothing to ask");
        p.hold(frame(14, 99_000, false), t);
        release(&mut p, t);
        assert_eq!(drain(&mut p), [13, 14]);
        assert!(!p.cut_sent());
    }

    #[test]
    fn keeping_never_asks() {
        let t = Instant::now();
        let mut p = Preroll::new(Some(VideoCodec::Vp8), 90_000);
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
        let mut p = Preroll::new(None, 48_000);
        assert!(!p.hold(vp8(1, true), Instant::now()));
        assert!(p.is_empty());
    }

    #[test]
    fn clear_forgets_packets_and_the_last_ask() {
        let t = Instant::now();
        let mut p = Preroll::new(Some(VideoCodec::Vp8), 90_000);
        assert!(p.hold(vp8(1, false), t));
        p.clear();
        assert!(p.hold(vp8(2, false), t), "after a clear the stream asks at once");
        for seq in 3..40 {
            p.hold(vp8(seq, seq == 3), t);
        }
        p.clear();
        assert!(p.is_empty());
        assert_eq!(p.gop.as_ref().map(Gop::capacity), Some(0), "its memory went with it");
    }
}
