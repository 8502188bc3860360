//! A publisher stream as everything downstream takes it: its packets (one bounded broadcast per
//! simulcast layer), its data channel messages, whether it is held, which layers went silent,
//! and where keyframe requests go. Publishers (WebRTC or remote) fill feeds; subscriber
//! streams, forwarders and recorders read them. Only types: neither side's code.

use super::gop::GopCache;
use rtc::rtp;
use shared::media::ExtensionIds;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{broadcast, mpsc, watch};

/// Packets a publisher track fans out to its subscribers: a bounded broadcast, so a slow
/// subscriber drops (and counts as lagged) instead of stalling the publisher or the others.
pub type Feed = broadcast::Sender<rtp::Packet>;
pub(super) const FEED_CAPACITY: usize = 512;
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
pub(super) const DATA_FEED_CAPACITY: usize = 256;

/// A publisher's simulcast layers (up to 3, lowest first; one without simulcast).
pub const MAX_LAYERS: usize = 3;

/// At most one keyframe request per publisher stream per this interval, and a stream waiting
/// for a keyframe asks again after it: libwebrtc's encoder honours at most one request per
/// 300 ms, so a shorter interval would be ignored and a longer one makes a subscriber whose
/// first request was ignored (the encoder had just sent its first keyframe) wait longer.
pub const KEYFRAME_REQUEST_INTERVAL: std::time::Duration = std::time::Duration::from_millis(300);

/// When a waiting stream last asked for a keyframe: it asks again only
/// [`KEYFRAME_REQUEST_INTERVAL`] later (a request can be lost or ignored).
#[derive(Default)]
pub struct KeyframeAsk(Option<Instant>);

impl KeyframeAsk {
    /// Whether to ask now; if so, the interval starts again.
    pub fn due(&mut self, now: Instant) -> bool {
        let due = self.0.is_none_or(|at| now.duration_since(at) >= KEYFRAME_REQUEST_INTERVAL);
        if due {
            self.0 = Some(now);
        }
        due
    }

    /// Nothing asked yet: the next [`KeyframeAsk::due`] is.
    pub fn reset(&mut self) {
        self.0 = None;
    }
}
/// Since when each simulcast layer has sent nothing (`None`: flowing), for subscribers' fallback.
pub type Silence = [Option<Instant>; MAX_LAYERS];

/// Why a publisher stream is not relayed: muted by a moderator (`moderate`), or not sent by its
/// publisher (`configure` with `send: false`); subscribers' streams hold while either is set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Hold {
    pub moderated: bool,
    pub unsent: bool,
}

impl Hold {
    pub fn held(&self) -> bool {
        self.moderated || self.unsent
    }
}

/// Asks a publisher for a keyframe of one of its (simulcast) layers; requests are coalesced at
/// the publisher.
#[derive(Clone)]
pub struct KeyframeRequester {
    tx: mpsc::UnboundedSender<u8>,
    layer: u8,
}

impl KeyframeRequester {
    pub(super) fn new(tx: mpsc::UnboundedSender<u8>) -> Self {
        Self { tx, layer: 0 }
    }

    /// The same publisher, asked for `layer`.
    pub(super) fn for_layer(&self, layer: u8) -> Self {
        Self { tx: self.tx.clone(), layer }
    }

    pub fn request(&self) {
        let _ = self.tx.send(self.layer);
    }
}

/// A publisher stream as a subscriber stream takes it: its packets (one feed per simulcast
/// layer, lowest first), where keyframe requests go, its moderation, and (simulcast) which
/// layers went silent. The feeds are weak: a subscriber must not keep a publisher's feed open
/// after the publisher left (its stream ends when the feed closes).
#[derive(Clone)]
pub struct Origin {
    pub layers: Vec<broadcast::WeakSender<rtp::Packet>>,
    /// Each layer's latest group of pictures (video whose keyframes are known; else empty).
    pub gops: Vec<GopCache>,
    pub keyframes: KeyframeRequester,
    pub muted: watch::Receiver<Hold>,
    pub silence: Option<watch::Receiver<Silence>>,
    /// VP9 SVC: every layer in one stream, each packet's layers in its payload descriptor.
    pub svc: bool,
    /// Which relayed header extensions its packets carry (a subscriber's offer lists those).
    pub extensions: ExtensionIds,
}

impl Origin {
    pub(super) fn subscribe(&self, layer: u8) -> Option<broadcast::Receiver<rtp::Packet>> {
        self.layers.get(usize::from(layer))?.upgrade().map(|f| f.subscribe())
    }

    /// What `layer` keeps from its latest keyframe on (empty if nothing).
    pub(super) async fn kept(&self, layer: u8) -> Vec<rtp::Packet> {
        match self.gops.get(usize::from(layer)) {
            Some(g) => g.snapshot().await,
            None => Vec::new(),
        }
    }

    pub fn simulcast(&self) -> bool {
        self.layers.len() > 1
    }
}

/// Waits for a simulcast source's silent layers to change (forever without one); false once
/// the publisher is gone.
pub(super) async fn silence_changed(silence: &mut Option<watch::Receiver<Silence>>) -> bool {
    match silence.as_mut() {
        Some(s) => s.changed().await.is_ok(),
        None => std::future::pending().await,
    }
}
