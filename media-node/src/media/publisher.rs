//! A publisher's PeerConnection: answers its offer and fans each incoming track out to
//! subscribers (one bounded broadcast per simulcast layer), keyframe requests coalesced, the
//! room's bitrate cap sent as REMB, silence, lost packets and data channel messages watched.

use super::arrivals::{Arrivals, Knobs, TICK};
use super::codec::VideoCodec;
use super::extensions::{relay, DelayStamp, ExtensionSettings};
use super::feed::{
    DataFeed, DataMessage, Feed, Hold, KeyframeRequester, Origin, Silence, DATA_FEED_CAPACITY, FEED_CAPACITY,
    MAX_LAYERS,
};
use super::gop::GopCache;
use super::keyframe_pacing::{layers_of, pace, KeyframePacer};
use super::peer::{
    add_candidates, build_pc, local_sdp_when_gathered, Direction, IncomingMedia, MediaSettings, PeerEvent, PeerHandler,
    StreamAt,
};
use super::remote::{Inlet, RemoteIngress};
use super::talk::{audio_level, TalkChange, TalkDetector, TalkSettings};
use super::MediaError;
use crate::metrics::METRICS;
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::payload_feedbacks::receiver_estimated_maximum_bitrate::ReceiverEstimatedMaximumBitrate;
use rtc::rtp;
use shared::janus::request::Candidate;
use shared::janus::videoroom::RemoteStream;
use shared::media::{ExtensionIds, MediaKind, Mid};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, mpsc, watch};
use webrtc::data_channel::{DataChannel, DataChannelEvent};
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::PeerConnection;

/// How often a publisher is reminded of the room's bitrate cap.
const REMB_INTERVAL: Duration = Duration::from_secs(5);
/// One m-line a publisher sends, as its PeerConnection's handler receives it: where its
/// packets go (one feed per simulcast layer, lowest first) and what watches them.
struct IncomingStream {
    mid: Mid,
    kind: MediaKind,
    /// The sender's track id from the offer (`msid`), which the incoming track carries.
    track_id: Option<String>,
    feeds: Vec<Feed>,
    /// A simulcast video's rids, lowest layer first (empty without simulcast).
    rids: Vec<String>,
    /// Simulcast: which layers went silent.
    silence: Option<watch::Sender<Silence>>,
    /// Keyframe requests (a layer each); taken when the track opens.
    keyframes: Option<mpsc::UnboundedReceiver<u8>>,
    /// The ids its sender gave the relayed header extensions (those the room accepts).
    extensions: ExtensionIds,
    /// Its playout delay override.
    delay: watch::Receiver<Option<[u8; 3]>>,
    /// Talk detection (needs the audio level extension).
    talk: Option<TalkSettings>,
    /// Whether a moderator muted it (no talk detection meanwhile, as Janus).
    hold: watch::Receiver<Hold>,
    /// Its track opened (a later track of the same kind without a matching id takes another).
    opened: bool,
}

/// What becomes of a publisher's incoming tracks and data channels (its PeerConnection's
/// handler hands them over): each track pumped into its m-line's feeds, video keyframe
/// requests and the bitrate cap sent back, data channel messages fanned out.
pub(super) struct Incoming {
    /// Per published m-line (control plane: locked when a track opens, never per packet).
    streams: std::sync::Mutex<Vec<IncomingStream>>,
    data: DataFeed,
    /// Periodic keyframe requests (the room's `fir_freq`).
    fir_freq: Option<Duration>,
    /// The no-media timer and slow-link threshold, read at each tick.
    tuning: Arc<super::tuning::LiveTuning>,
    /// The bitrate cap (bit/s) sent as REMB (Janus's `bitrate`; 0: none).
    bitrate: watch::Receiver<u32>,
}

#[async_trait::async_trait]
impl IncomingMedia for Incoming {
    /// A data channel (janus.js opens `JanusDataChannel`; an application may open more): each
    /// message goes to the data feed with the channel's label.
    fn data_channel(&self, channel: Arc<dyn DataChannel>) {
        let feed = self.data.clone();
        tokio::spawn(async move {
            let label: Arc<str> = channel.label().await.unwrap_or_default().into();
            tracing::debug!(label = %label, "publisher data channel");
            while let Some(ev) = channel.poll().await {
                match ev {
                    DataChannelEvent::OnMessage(m) => {
                        let msg = DataMessage { label: label.clone(), text: m.is_string, data: m.data.freeze() };
                        // No subscriber yet is fine: the message is dropped.
                        let _ = feed.send(msg);
                    }
                    DataChannelEvent::OnClose => break,
                    _ => {}
                }
            }
        });
    }

    /// An incoming track: matched to its m-line by the track id the offer gave it (`msid`),
    /// or else to the first m-line of its kind not yet open, and pumped into that m-line's feeds.
    async fn track(&self, track: Arc<dyn TrackRemote>, events: mpsc::UnboundedSender<PeerEvent>) {
        let Some(kind) = MediaKind::parse(&track.kind().await.to_string().to_ascii_lowercase()) else { return };
        let track_id = track.track_id().await.to_string();
        let claimed = {
            let Ok(mut streams) = self.streams.lock() else { return };
            let at = streams
                .iter()
                .position(|s| !s.opened && s.kind == kind && s.track_id.as_deref() == Some(track_id.as_str()))
                .or_else(|| streams.iter().position(|s| !s.opened && s.kind == kind));
            at.map(|i| {
                let s = &mut streams[i];
                s.opened = true;
                let talk = s.talk.zip(s.extensions.audio_level).map(|(settings, id)| Talk {
                    id,
                    detector: TalkDetector::new(settings),
                    moderated: s.hold.borrow().moderated,
                    hold: s.hold.clone(),
                });
                let relayed = (s.extensions, DelayStamp::new(s.delay.clone()));
                (s.mid.clone(), s.feeds.clone(), s.rids.clone(), s.silence.clone(), s.keyframes.take(), talk, relayed)
            })
        };
        let Some((mid, feeds, rids, silence, keyframes, talk, (extensions, delay))) = claimed else {
            tracing::debug!(%kind, track_id, "a track no m-line of the offer expects");
            return;
        };
        tracing::debug!(%kind, %mid, track_id, "publisher track");
        let layer_ssrcs: Arc<[AtomicU32; MAX_LAYERS]> = Arc::default();
        if kind == MediaKind::Video {
            tokio::spawn(cap_bitrate(track.clone(), self.bitrate.clone()));
            if let Some(requests) = keyframes {
                let pacer = KeyframePacer::new(feeds.len(), self.fir_freq, Instant::now());
                tokio::spawn(request_keyframes(track.clone(), requests, layer_ssrcs.clone(), pacer));
            }
        }
        let tuning = self.tuning.clone();
        let pump = Pump { mid, kind, feeds, rids, layer_ssrcs, silence, events, tuning, talk, extensions, delay };
        tokio::spawn(pump.run(track));
    }
}

/// Sends a publisher track's keyframe requests as [`KeyframePacer`] paces them: a PLI to the
/// SSRC of each layer a round asks for.
async fn request_keyframes(
    track: Arc<dyn TrackRemote>,
    requests: mpsc::UnboundedReceiver<u8>,
    layer_ssrcs: Arc<[AtomicU32; MAX_LAYERS]>,
    pacer: KeyframePacer,
) {
    pace(requests, pacer, |round| {
        let (track, layer_ssrcs) = (track.clone(), layer_ssrcs.clone());
        async move {
            let first = track.ssrcs().await.first().copied().unwrap_or(0);
            let mut plis: Vec<Box<dyn rtc::rtcp::Packet>> = Vec::new();
            for layer in layers_of(round) {
                let ssrc = match layer_ssrcs.get(usize::from(layer)).map_or(0, |s| s.load(Ordering::Relaxed)) {
                    0 => first,
                    s => s,
                };
                tracing::debug!(ssrc, layer, "PLI to the publisher");
                plis.push(Box::new(PictureLossIndication { sender_ssrc: 0, media_ssrc: ssrc }));
            }
            let n = plis.len() as u64;
            let sent = track.write_rtcp(plis).await.is_ok();
            if sent {
                METRICS.plis_sent(n);
            }
            sent
        }
    })
    .await
}

/// An audio stream's talk detection: its level extension's id, and nothing counted while a
/// moderator has it muted (Janus counts only active, unmuted streams).
struct Talk {
    id: u8,
    detector: TalkDetector,
    hold: watch::Receiver<Hold>,
    /// The hold's `moderated`, read again only when it changed (an atomic load per packet
    /// rather than the watch's lock).
    moderated: bool,
}

impl Talk {
    fn packet(&mut self, header: &rtp::header::Header) -> Option<TalkChange> {
        if self.hold.has_changed().unwrap_or(false) {
            self.moderated = self.hold.borrow_and_update().moderated;
        }
        if self.moderated {
            return None;
        }
        self.detector.level(audio_level(header, self.id)?)
    }
}

/// Reads one publisher track: each packet goes to its layer's feed (once, whatever the number of
/// subscribers); every [`TICK`] its [`Arrivals`] tell which layers went silent and whether the track
/// stopped (Janus's `media` event after the no-media timer).
struct Pump {
    mid: Mid,
    kind: MediaKind,
    talk: Option<Talk>,
    extensions: ExtensionIds,
    delay: DelayStamp,
    feeds: Vec<Feed>,
    rids: Vec<String>,
    layer_ssrcs: Arc<[AtomicU32; MAX_LAYERS]>,
    silence: Option<watch::Sender<Silence>>,
    events: mpsc::UnboundedSender<PeerEvent>,
    tuning: Arc<super::tuning::LiveTuning>,
}

impl Pump {
    async fn run(self, track: Arc<dyn TrackRemote>) {
        let Pump { mid, kind, feeds, rids, layer_ssrcs, silence, events, tuning, mut talk, extensions, mut delay } =
            self;
        let receiving_event = |receiving: bool, substream: Option<u8>| PeerEvent::Receiving {
            mid: mid.clone(),
            kind,
            receiving,
            substream,
        };
        let mut arrivals = Arrivals::new(feeds.len());
        // Layer of each SSRC seen (a simulcast track's layers share the track).
        let mut ssrc_layer: Vec<(u32, usize)> = Vec::new();
        let simulcast = feeds.len() > 1;
        let substream = |layer: usize| simulcast.then_some(layer as u8);
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let ev = tokio::select! {
                ev = track.poll() => match ev {
                    Some(ev) => ev,
                    None => break,
                },
                _ = tick.tick() => {
                    let knobs = Knobs {
                        no_media_timer: tuning.no_media_timer(),
                        slow_link_threshold: tuning.slowlink_threshold(),
                    };
                    let found = arrivals.tick(Instant::now(), knobs);
                    for (layer, _) in found.stopped.iter().enumerate().filter(|(_, s)| **s) {
                        let _ = events.send(receiving_event(false, substream(layer)));
                    }
                    if let Some(silence) = silence.as_ref().filter(|_| found.silence_changed) {
                        silence.send_replace(arrivals.silence());
                    }
                    if let Some(lost) = found.lost {
                        METRICS.incoming_lost(u64::from(lost));
                        if found.slow_link {
                            let at = StreamAt::Published(mid.clone());
                            let _ = events.send(PeerEvent::SlowLink { at, kind, lost });
                        }
                    }
                    continue;
                }
            };
            match ev {
                TrackRemoteEvent::OnOpen(init) => {
                    let layer = init.rid.as_deref().and_then(|r| rids.iter().position(|x| x == r)).unwrap_or(0);
                    tracing::debug!(kind = %kind, ssrc = init.ssrc, rid = ?init.rid, layer, "track open");
                    ssrc_layer.retain(|(s, _)| *s != init.ssrc);
                    ssrc_layer.push((init.ssrc, layer));
                    layer_ssrcs[layer].store(init.ssrc, Ordering::Relaxed);
                }
                TrackRemoteEvent::OnRtpPacket(mut packet) => {
                    let ssrc = packet.header.ssrc;
                    let layer = ssrc_layer.iter().find(|(s, _)| *s == ssrc).map_or(0, |(_, l)| *l);
                    let starts = arrivals.packet(layer, packet.header.sequence_number);
                    if let Some(t) = talk.as_mut() {
                        if let Some(change) = t.packet(&packet.header) {
                            let ev = PeerEvent::Talking {
                                mid: mid.clone(),
                                talking: change.talking,
                                average: change.average,
                            };
                            let _ = events.send(ev);
                        }
                    }
                    relay(&mut packet, &extensions);
                    if kind == MediaKind::Video {
                        delay.packet(&mut packet);
                    }
                    if starts {
                        tracing::debug!(kind = %kind, layer, pt = packet.header.payload_type, "media arriving");
                        let _ = events.send(receiving_event(true, substream(layer)));
                    }
                    // No subscriber yet is fine: the packet is dropped.
                    let _ = feeds[layer.min(feeds.len() - 1)].send(packet);
                }
                _ => {}
            }
        }
    }
}

/// Tells a publisher the room's bitrate cap (REMB) when its video starts and every
/// [`REMB_INTERVAL`] after, as Janus does with the room's `bitrate`; ends with the track.
/// A new cap (the publisher's `configure` `bitrate`) is sent at once; 0 sends none.
async fn cap_bitrate(track: Arc<dyn TrackRemote>, mut bitrate: watch::Receiver<u32>) {
    loop {
        let cap = *bitrate.borrow_and_update();
        if cap > 0 {
            let ssrc = track.ssrcs().await.first().copied().unwrap_or(0);
            let remb = ReceiverEstimatedMaximumBitrate { sender_ssrc: 0, bitrate: cap as f32, ssrcs: vec![ssrc] };
            if track.write_rtcp(vec![Box::new(remb)]).await.is_err() {
                return;
            }
            METRICS.remb_sent();
        }
        tokio::select! {
            _ = tokio::time::sleep(REMB_INTERVAL) => {}
            changed = bitrate.changed() => if changed.is_err() { return },
        }
    }
}

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
