//! A video stream's latest group of pictures: the packets from its latest keyframe on, bounded.
//! A publisher layer keeps one ([`GopCache`], a task reading the layer's feed) so that a new
//! subscriber stream starts on the keyframe the publisher already sent instead of asking for
//! one and waiting out the encoder's reaction and the keyframe's pacing (Chromium under a room's
//! 128 kbit/s cap: 300-450 ms); a subscriber stream keeps one while it connects (`preroll`).
//! What was kept goes out in a burst with its own timestamps; a group spanning more than a
//! moment goes out as its keyframe alone (`preroll`).

use super::codec::VideoCodec;
use rtc::rtp;
use std::collections::VecDeque;
use tokio::sync::{broadcast, mpsc, oneshot};

/// The most packets kept: a 720p keyframe at 1.5 Mbit/s is 30-60 packets, and the delta frames
/// of a few hundred milliseconds beside it. Past this nothing is kept until the next keyframe.
pub const GOP_PACKETS: usize = 192;

/// The most frames kept (3 s at 30 frames/s): a receiver decodes every kept frame before the
/// live one, about a millisecond each for Chromium's VP8 at 640x480, so a longer group would
/// cost more than asking the publisher for a keyframe.
pub const GOP_FRAMES: usize = 90;

/// The packets from a video stream's latest keyframe on, at most [`GOP_PACKETS`] packets of at
/// most [`GOP_FRAMES`] frames; past either it keeps nothing until the next keyframe.
pub(super) struct Gop {
    codec: VideoCodec,
    packets: VecDeque<rtp::Packet>,
    /// Frames kept (distinct timestamps), and the newest one's timestamp.
    frames: usize,
    newest: u32,
}

impl Gop {
    pub fn new(codec: VideoCodec) -> Self {
        Self { codec, packets: VecDeque::new(), frames: 0, newest: 0 }
    }

    /// Keeps `p` if it starts a keyframe (which replaces what was kept) or follows one kept.
    pub fn keep(&mut self, p: rtp::Packet) {
        if self.codec.is_keyframe(&p.payload) {
            self.packets.clear();
            self.frames = 0;
        } else if self.packets.is_empty() {
            return;
        }
        if self.packets.is_empty() || p.header.timestamp != self.newest {
            self.frames += 1;
            self.newest = p.header.timestamp;
        }
        if self.packets.len() >= GOP_PACKETS || self.frames > GOP_FRAMES {
            tracing::debug!(
                packets = self.packets.len(),
                frames = self.frames,
                "group of pictures too long: keeping nothing until the next keyframe"
            );
            self.clear();
            return;
        }
        self.packets.push_back(p);
    }

    /// Starts from `packets` (a publisher's group, oldest first, starting with a keyframe).
    pub fn seed(&mut self, packets: Vec<rtp::Packet>) {
        self.clear();
        self.packets.reserve(packets.len());
        for p in packets {
            self.keep(p);
        }
    }

    /// Appends a packet past the limits (one that came while what was kept is going out).
    pub fn push(&mut self, p: rtp::Packet) {
        self.packets.push_back(p);
    }

    /// The oldest packet; the last one lets the queue's memory go (a subscriber's group is
    /// drained once, at connect, and a few hundred slots per subscriber would stay resident).
    pub fn pop(&mut self) -> Option<rtp::Packet> {
        let p = self.packets.pop_front();
        if self.packets.is_empty() {
            self.forget();
        }
        p
    }

    pub fn len(&self) -> usize {
        self.packets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.packets.is_empty()
    }

    /// Empties the group, keeping its memory for the next one (a publisher layer's, refilled at
    /// every keyframe).
    pub fn clear(&mut self) {
        self.packets.clear();
        self.frames = 0;
    }

    /// Empties the group and lets its memory go.
    pub fn forget(&mut self) {
        self.packets = VecDeque::new();
        self.frames = 0;
    }

    #[cfg(test)]
    pub fn capacity(&self) -> usize {
        self.packets.capacity()
    }

    pub fn snapshot(&self) -> Vec<rtp::Packet> {
        self.packets.iter().cloned().collect()
    }

    /// The time between the first kept frame and the newest, in timestamp ticks.
    pub fn span(&self) -> u32 {
        match (self.packets.front(), self.packets.back()) {
            (Some(first), Some(last)) => last.header.timestamp.wrapping_sub(first.header.timestamp),
            _ => 0,
        }
    }

    /// Keeps the first frame only (the keyframe).
    pub fn keep_first_frame(&mut self) {
        let Some(first) = self.packets.front().map(|p| p.header.timestamp) else { return };
        let frame = self.packets.iter().take_while(|p| p.header.timestamp == first).count();
        self.packets.truncate(frame);
        self.frames = 1;
        self.newest = first;
    }
}

/// Asks a publisher layer's cache for what it keeps.
type Ask = oneshot::Sender<Vec<rtp::Packet>>;

/// A publisher video layer's latest group of pictures, kept by a task reading the layer's feed
/// like one more subscriber (one wake-up per packet per layer, not per subscriber); it ends
/// with the feed.
#[derive(Clone)]
pub struct GopCache {
    asks: mpsc::UnboundedSender<Ask>,
}

impl GopCache {
    /// Keeps what `feed` (a publisher layer's broadcast) carries.
    pub fn start(feed: &broadcast::Sender<rtp::Packet>, codec: VideoCodec) -> Self {
        let (asks, rx) = mpsc::unbounded_channel();
        tokio::spawn(keep(feed.subscribe(), rx, Gop::new(codec)));
        Self { asks }
    }

    /// What the layer keeps, oldest first (empty: no keyframe within the limits, or the
    /// publisher is gone). Every packet the feed carried before this call is either in it or
    /// in a receiver subscribed before the call; some may be in both.
    pub async fn snapshot(&self) -> Vec<rtp::Packet> {
        let (tx, rx) = oneshot::channel();
        if self.asks.send(tx).is_err() {
            return Vec::new();
        }
        rx.await.unwrap_or_default()
    }
}

async fn keep(mut feed: broadcast::Receiver<rtp::Packet>, mut asks: mpsc::UnboundedReceiver<Ask>, mut gop: Gop) {
    loop {
        tokio::select! {
            biased;
            ask = asks.recv() => {
                let Some(ask) = ask else { return };
                // Everything sent so far first: the asker subscribed before asking.
                loop {
                    match feed.try_recv() {
                        Ok(p) => gop.keep(p),
                        Err(broadcast::error::TryRecvError::Lagged(_)) => gop.clear(),
                        Err(broadcast::error::TryRecvError::Empty) => break,
                        // The publisher is gone: nothing to start on.
                        Err(broadcast::error::TryRecvError::Closed) => return,
                    }
                }
                let _ = ask.send(gop.snapshot());
            }
            r = feed.recv() => match r {
                Ok(p) => gop.keep(p),
                Err(broadcast::error::RecvError::Lagged(_)) => gop.clear(),
                Err(broadcast::error::RecvError::Closed) => return,
            },
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A one-packet VP8 frame (a keyframe or not) with this sequence number and timestamp.
    pub fn vp8(seq: u16, ts: u32, key: bool) -> rtp::Packet {
        rtp::Packet {
            header: rtp::header::Header { sequence_number: seq, timestamp: ts, ..Default::default() },
            payload: bytes::Bytes::from(vec![0x10, if key { 0x00 } else { 0x01 }, 0, 0]),
        }
    }

    fn seqs(packets: &[rtp::Packet]) -> Vec<u16> {
        packets.iter().map(|p| p.header.sequence_number).collect()
    }

    #[test]
    fn keeps_from_the_latest_keyframe() {
        let mut g = Gop::new(VideoCodec::Vp8);
        g.keep(vp8(1, 0, false));
        assert!(g.is_empty(), "nothing before a keyframe");
        g.keep(vp8(2, 0, true));
        g.keep(vp8(3, 3000, false));
        assert_eq!(seqs(&g.snapshot()), [2, 3]);
        g.keep(vp8(4, 6000, true));
        g.keep(vp8(5, 6000, false));
        assert_eq!(seqs(&g.snapshot()), [4, 5], "a newer keyframe replaces the older group");
    }

    #[test]
    fn too_many_packets_keep_nothing_until_the_next_keyframe() {
        let mut g = Gop::new(VideoCodec::Vp8);
        g.keep(vp8(0, 0, true));
        for seq in 1..GOP_PACKETS as u16 {
            g.keep(vp8(seq, 0, false));
        }
        assert_eq!(g.len(), GOP_PACKETS);
        g.keep(vp8(GOP_PACKETS as u16, 0, false));
        assert!(g.is_empty(), "one packet over: nothing kept");
        g.keep(vp8(GOP_PACKETS as u16 + 1, 0, false));
        assert!(g.is_empty(), "not until a keyframe");
        g.keep(vp8(GOP_PACKETS as u16 + 2, 0, true));
        assert_eq!(g.len(), 1);
    }

    #[test]
    fn too_many_frames_keep_nothing_until_the_next_keyframe() {
        let mut g = Gop::new(VideoCodec::Vp8);
        g.keep(vp8(0, 0, true));
        for frame in 1..GOP_FRAMES as u16 {
            g.keep(vp8(frame, u32::from(frame) * 3000, false));
        }
        assert_eq!(g.len(), GOP_FRAMES, "{GOP_FRAMES} one-packet frames");
        g.keep(vp8(GOP_FRAMES as u16, GOP_FRAMES as u32 * 3000, false));
        assert!(g.is_empty(), "one frame over: nothing kept");
    }

    #[test]
    fn a_group_spans_its_frames_and_can_be_cut_to_its_keyframe() {
        let mut g = Gop::new(VideoCodec::Vp8);
        assert_eq!(g.span(), 0);
        for (seq, ts, key) in [(1, 9000, true), (2, 9000, false), (3, 12_000, false), (4, 15_000, false)] {
            g.keep(vp8(seq, ts, key));
        }
        assert_eq!(g.span(), 6000);
        g.keep_first_frame();
        assert_eq!(seqs(&g.snapshot()), [1, 2], "the keyframe's two packets");
        assert_eq!(g.span(), 0);
    }

    #[test]
    fn a_drained_group_lets_its_memory_go_and_a_cleared_one_keeps_it() {
        let mut g = Gop::new(VideoCodec::Vp8);
        g.keep(vp8(0, 0, true));
        for seq in 1..100 {
            g.keep(vp8(seq, u32::from(seq / 2) * 3000, false));
        }
        g.clear();
        assert!(g.capacity() >= 100, "a publisher's group refills at the next keyframe: memory kept");
        g.seed((0..100).map(|seq| vp8(seq, u32::from(seq / 2) * 3000, seq == 0)).collect());
        assert_eq!(g.len(), 100);
        while g.pop().is_some() {}
        assert_eq!(g.capacity(), 0, "drained: nothing stays allocated");
        g.keep(vp8(200, 0, true));
        g.forget();
        assert_eq!(g.capacity(), 0, "forgotten: nothing stays allocated");
    }

    #[tokio::test]
    async fn a_cache_gives_its_layers_group_with_everything_sent_before_the_ask() {
        let feed = broadcast::channel(16).0;
        let cache = GopCache::start(&feed, VideoCodec::Vp8);
        tokio::task::yield_now().await;
        for (seq, key) in [(1, false), (2, true), (3, false)] {
            feed.send(vp8(seq, u32::from(seq) * 3000, key)).expect("the cache listens");
        }
        // Sent just before the ask, with no chance for the cache to read it first.
        feed.send(vp8(4, 12_000, false)).expect("the cache listens");
        assert_eq!(seqs(&cache.snapshot().await), [2, 3, 4]);
        drop(feed);
        tokio::task::yield_now().await;
        assert!(cache.snapshot().await.is_empty(), "the publisher is gone");
    }
}
