//! A publisher's PeerConnection: answers its offer, making a feed for each m-line it publishes
//! (`incoming.rs` pumps the tracks into them), and is how the room reaches the publisher
//! afterwards: its streams' origins, holds, playout delays, bitrate cap and keyframe requests.

use super::codec::VideoCodec;
use super::extensions::{DelayStamp, ExtensionSettings};
use super::feed::{
    DataFeed, DataMessage, Feed, Hold, KeyframeRequester, Origin, Silence, DATA_FEED_CAPACITY, FEED_CAPACITY,
    MAX_LAYERS,
};
use super::gop::GopCache;
use super::incoming::{Incoming, IncomingStream};
use super::peer::{
    add_candidates, build_pc, local_sdp_when_gathered, Direction, MediaSettings, PeerEvent, PeerHandler,
};
use super::remote::{Inlet, RemoteIngress};
use super::talk::TalkSettings;
use super::MediaError;
use rtc::peer_connection::sdp::RTCSessionDescription;
use shared::janus::request::Candidate;
use shared::janus::videoroom::RemoteStream;
use shared::media::{ExtensionIds, MediaKind, Mid};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, watch};
use webrtc::peer_connection::PeerConnection;

/// How a publisher's PeerConnection is set up, from its room.
#[derive(Clone, Debug, Default)]
pub struct PublishOptions {
    /// The order of a simulcast video's rids (Janus's `hml` unless `lmh`).
    pub rid_order: Option<String>,
    /// Periodic keyframe requests (the room's `fir_freq`).
    pub fir_freq: Option<Duration>,
    /// The bitrate cap sent as REMB (0: none).
    pub bitrate: u32,
    /// The header extensions the room accepts (its `*_ext` settings).
    pub extensions: ExtensionSettings,
    /// VP9 video is relayed layer by layer (the room's `video_svc`).
    pub video_svc: bool,
    /// Talk detection (the room's `audiolevel_event`, with its or the publisher's settings).
    pub talk: Option<TalkSettings>,
    /// The room's codecs, in its order of preference (`audiocodec`, `videocodec`), and the
    /// publisher's own choice among them (`audiocodec`/`videocodec` in `publish`/`configure`).
    pub audio_codecs: Vec<String>,
    pub video_codecs: Vec<String>,
    pub preferred_audio: Option<String>,
    pub preferred_video: Option<String>,
}

impl PublishOptions {
    /// The codecs the answer may take: per audio and video m-line of `offer`, Janus's choice.
    fn answer_codecs(&self, offer: &[super::sdp::StreamInfo]) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for c in offer.iter().filter_map(|s| self.choice(s)) {
            if !out.iter().any(|o| o == c) {
                out.push(c.to_owned());
            }
        }
        out
    }

    /// The codec the answer takes for m-line `s`.
    fn choice(&self, s: &super::sdp::StreamInfo) -> Option<&str> {
        let (room, preferred) = match s.kind {
            MediaKind::Audio => (&self.audio_codecs, self.preferred_audio.as_deref()),
            MediaKind::Video => (&self.video_codecs, self.preferred_video.as_deref()),
            MediaKind::Data => return None,
        };
        super::codec::choose(room, &s.codecs, preferred)
    }

    /// The video codec the answer takes for m-line `s` (none for audio).
    fn video_codec(&self, s: &super::sdp::StreamInfo) -> Option<&str> {
        self.choice(s).filter(|_| s.kind == MediaKind::Video)
    }
}

/// A group-of-pictures cache per layer of a video stream in `codec` (none if its keyframes are
/// not known).
fn gops(feeds: &[Feed], codec: Option<&str>) -> Vec<GopCache> {
    match codec.and_then(VideoCodec::from_name) {
        Some(c) => feeds.iter().map(|f| GopCache::start(f, c)).collect(),
        None => Vec::new(),
    }
}

/// One m-line a publisher sends, as its subscribers, forwarders and recorders take it.
#[derive(Clone)]
struct Published {
    mid: Mid,
    kind: MediaKind,
    /// One feed per simulcast layer (lowest first).
    feeds: Vec<Feed>,
    keyframes: mpsc::UnboundedSender<u8>,
    /// Held by a moderator or by the publisher; its subscribers' streams hold meanwhile.
    hold: watch::Sender<Hold>,
    /// Simulcast: which layers went silent.
    silence: Option<watch::Receiver<Silence>>,
    /// VP9 SVC (the room's `video_svc`, a remote publisher's `svc`).
    svc: bool,
    /// Video: each layer's latest group of pictures, for new subscribers to start on.
    gops: Vec<GopCache>,
    /// The playout delay its subscribers get instead of the publisher's (`configure`).
    delay: watch::Sender<Option<[u8; 3]>>,
    /// The ids its sender gives the relayed header extensions the room accepts.
    extensions: ExtensionIds,
}

/// Where a publisher's packets come from.
#[derive(Clone)]
enum Source {
    WebRtc(Arc<dyn PeerConnection>),
    /// Another server's `publish_remotely` (plain RTP on ports of its own).
    Remote(Arc<RemoteIngress>),
}

/// A publisher's PeerConnection (or a remote publisher's ingress).
pub struct PublisherPeer {
    source: Source,
    /// Per published m-line, in order.
    streams: Arc<[Published]>,
    /// Its bitrate cap (REMB), the room's until the publisher configures its own.
    bitrate: watch::Sender<u32>,
    data: DataFeed,
}

impl PublisherPeer {
    /// Its PeerConnection (for statistics); none for a remote publisher.
    pub fn pc(&self) -> Option<&Arc<dyn PeerConnection>> {
        match &self.source {
            Source::WebRtc(pc) => Some(pc),
            Source::Remote(_) => None,
        }
    }

    /// A remote publisher (`add_remote_publisher`): `streams` received on `port` (or any free
    /// one) of `ip`; returns it with its RTP and RTCP ports.
    pub fn remote(
        ip: std::net::IpAddr,
        port: Option<u16>,
        streams: &[RemoteStream],
    ) -> Result<(Self, u16, u16), MediaError> {
        let mut published = Vec::new();
        let mut inlets = Vec::new();
        let mut keyframe_rx = Vec::new();
        for s in streams {
            let (stream, inlet, keyframes) = Self::remote_stream(s);
            published.extend(stream);
            inlets.push(inlet);
            keyframe_rx.extend(keyframes.map(|rx| (s.mindex, rx)));
        }
        let data = broadcast::channel(DATA_FEED_CAPACITY).0;
        let ingress = super::remote::start(ip, port, inlets, data.clone(), keyframe_rx)?;
        let (port, rtcp_port) = (ingress.port, ingress.rtcp_port);
        let peer = Self {
            source: Source::Remote(Arc::new(ingress)),
            streams: published.into(),
            bitrate: watch::channel(0).0,
            data,
        };
        Ok((peer, port, rtcp_port))
    }

    /// One stream of a remote publisher: its feeds (none for data), where its packets go, and
    /// (video) its keyframe requests.
    fn remote_stream(s: &RemoteStream) -> (Option<Published>, Inlet, Option<mpsc::UnboundedReceiver<u8>>) {
        if s.kind == MediaKind::Data {
            return (None, Inlet::Data, None);
        }
        let layers = if s.simulcast { MAX_LAYERS } else { 1 };
        let feeds: Vec<Feed> = (0..layers).map(|_| broadcast::channel(FEED_CAPACITY).0).collect();
        let (keyframes, rx) = mpsc::unbounded_channel();
        let delay = watch::channel(None).0;
        let published = Published {
            mid: s.mid.clone(),
            kind: s.kind,
            feeds: feeds.clone(),
            keyframes,
            hold: watch::channel(Hold::default()).0,
            silence: None,
            svc: s.kind == MediaKind::Video && s.svc,
            gops: gops(&feeds, s.codec.as_deref().filter(|_| s.kind == MediaKind::Video)),
            delay: delay.clone(),
            extensions: s.extensions,
        };
        let inlet = Inlet::Media(feeds, s.extensions, DelayStamp::new(delay.subscribe()));
        (Some(published), inlet, (s.kind == MediaKind::Video).then_some(rx))
    }

    /// More streams for a remote publisher (`update_remote_publisher`), received on the same
    /// port from now on.
    pub fn add_remote_streams(&mut self, streams: &[RemoteStream]) -> Result<(), MediaError> {
        let Source::Remote(ingress) = &self.source else { return Err(MediaError::Gone("not a remote publisher")) };
        let mut published: Vec<Published> = self.streams.to_vec();
        for s in streams {
            let (stream, inlet, keyframes) = Self::remote_stream(s);
            published.extend(stream);
            ingress.add(s.mindex, inlet, keyframes);
        }
        self.streams = published.into();
        Ok(())
    }

    /// Answers `offer_sdp`; returns the peer and the answer SDP (with candidates). Each audio
    /// and video m-line of the offer is a stream of its own.
    pub async fn answer(
        settings: &MediaSettings,
        offer_sdp: String,
        options: PublishOptions,
        events: mpsc::UnboundedSender<PeerEvent>,
        capture: &super::capture::Follow,
    ) -> Result<(Self, String), MediaError> {
        let offered = super::sdp::streams(&offer_sdp);
        let codecs = options.answer_codecs(&offered);
        let video: Vec<Option<String>> = offered.iter().map(|s| options.video_codec(s).map(str::to_owned)).collect();
        let PublishOptions { rid_order, fir_freq, bitrate, extensions, talk, video_svc, .. } = options;
        let (gathered, mut gather_done) = mpsc::channel(1);
        let mut incoming_streams = Vec::new();
        let mut published = Vec::new();
        for (info, video) in offered.into_iter().zip(video).filter(|(s, _)| s.kind.is_rtp()) {
            let rids = match info.kind {
                MediaKind::Video => super::sdp::simulcast_layers(&info, rid_order.as_deref()),
                _ => Vec::new(),
            };
            let feeds: Vec<Feed> = (0..rids.len().max(1)).map(|_| broadcast::channel(FEED_CAPACITY).0).collect();
            let silence = (!rids.is_empty()).then(|| watch::channel([None; MAX_LAYERS]).0);
            let (keyframes, keyframe_rx) = mpsc::unbounded_channel();
            let hold = watch::channel(Hold::default()).0;
            let delay = watch::channel(None).0;
            published.push(Published {
                mid: info.mid.clone(),
                kind: info.kind,
                feeds: feeds.clone(),
                keyframes,
                hold: hold.clone(),
                silence: silence.as_ref().map(watch::Sender::subscribe),
                svc: video_svc && info.kind == MediaKind::Video,
                gops: gops(&feeds, video.as_deref()),
                delay: delay.clone(),
                extensions: extensions.accepted(info.extensions),
            });
            incoming_streams.push(IncomingStream {
                mid: info.mid,
                kind: info.kind,
                track_id: info.track_id,
                feeds,
                rids,
                silence,
                keyframes: Some(keyframe_rx),
                extensions: extensions.accepted(info.extensions),
                delay: delay.subscribe(),
                talk,
                hold: hold.subscribe(),
                opened: false,
            });
        }
        let data = broadcast::channel(DATA_FEED_CAPACITY).0;
        let cap = watch::channel(bitrate).0;
        let incoming = Incoming {
            data_channels: Arc::default(),
            streams: std::sync::Mutex::new(incoming_streams),
            data: data.clone(),
            fir_freq,
            tuning: settings.tuning.clone(),
            bitrate: cap.subscribe(),
        };
        let connected = watch::channel(false).0;
        let handler = Arc::new(PeerHandler::new(gathered, events, connected, Some(Box::new(incoming))));
        let pc = build_pc(settings, Direction::Receive { extensions, codecs }, handler, capture).await?;
        let offer = RTCSessionDescription::offer(offer_sdp).map_err(|e| MediaError::sdp("offer", e))?;
        pc.set_remote_description(offer).await.map_err(|e| MediaError::sdp("remote description", e))?;
        let answer = pc.create_answer(None).await.map_err(|e| MediaError::stack("answer", e))?;
        pc.set_local_description(answer).await.map_err(|e| MediaError::stack("local description", e))?;
        let sdp = local_sdp_when_gathered(settings, &pc, &mut gather_done).await?;
        Ok((Self { source: Source::WebRtc(pc), streams: published.into(), bitrate: cap, data }, sdp))
    }

    pub async fn add_candidates(&self, candidates: Vec<Candidate>) {
        if let Source::WebRtc(pc) = &self.source {
            add_candidates(pc, candidates).await
        }
    }

    fn stream(&self, mid: &str) -> Option<&Published> {
        self.streams.iter().find(|s| s.mid == mid)
    }

    /// This publisher's stream `mid` as a subscriber stream (or a forwarder) takes it.
    pub fn origin(&self, mid: &str) -> Option<Origin> {
        let s = self.stream(mid)?;
        Some(Origin {
            layers: s.feeds.iter().map(broadcast::Sender::downgrade).collect(),
            keyframes: KeyframeRequester::new(s.keyframes.clone()),
            gops: s.gops.clone(),
            muted: s.hold.subscribe(),
            silence: s.silence.clone(),
            svc: s.svc,
            extensions: s.extensions,
        })
    }

    /// Mutes (`moderate`) or unmutes this publisher's stream `mid` for every subscriber.
    pub fn set_muted(&self, mid: &str, muted: bool) {
        if let Some(s) = self.stream(mid) {
            s.hold.send_modify(|h| h.moderated = muted);
        }
    }

    /// The playout delay every subscriber of stream `mid` gets (none: what the publisher sends).
    pub fn set_delay(&self, mid: &str, delay: Option<[u8; 3]>) {
        if let Some(s) = self.stream(mid) {
            s.delay.send_replace(delay);
        }
    }

    /// Relays (`true`) or holds this publisher's stream `mid` (its `configure` `send`).
    pub fn set_sending(&self, mid: &str, send: bool) {
        if let Some(s) = self.stream(mid) {
            s.hold.send_modify(|h| h.unsent = !send);
        }
    }

    /// A new bitrate cap for this publisher (its `configure` `bitrate`), sent at once.
    pub fn set_bitrate(&self, bitrate: u32) {
        self.bitrate.send_replace(bitrate);
    }

    /// Asks this publisher for a keyframe on every layer of every video stream (its
    /// `configure` `keyframe`).
    pub fn request_keyframe(&self) {
        for s in self.streams.iter().filter(|s| s.kind == MediaKind::Video) {
            for layer in 0..s.feeds.len() {
                let _ = s.keyframes.send(layer as u8);
            }
        }
    }

    /// A second handle on the same PeerConnection, for work done off the room's thread.
    pub fn clone_handle(&self) -> Self {
        Self {
            source: self.source.clone(),
            streams: self.streams.clone(),
            bitrate: self.bitrate.clone(),
            data: self.data.clone(),
        }
    }

    /// This publisher's data channel messages, for a subscriber's data channel (weak, as
    /// [`Origin`]'s feeds).
    pub fn data_origin(&self) -> broadcast::WeakSender<DataMessage> {
        self.data.downgrade()
    }

    pub async fn close(&self) {
        match &self.source {
            Source::WebRtc(pc) => {
                let _ = pc.close().await;
            }
            Source::Remote(ingress) => ingress.stop(),
        }
    }
}
