//! A publisher's incoming media, as its PeerConnection's handler hands it over: each track
//! pumped into its m-line's feeds (one bounded broadcast per simulcast layer), keyframe requests
//! coalesced and sent, the room's bitrate cap sent as REMB, silence, lost packets and talking
//! watched, and data channel messages fanned out.

use super::arrivals::{Arrivals, Knobs, TICK};
use super::extensions::{relay, DelayStamp};
use super::feed::{DataFeed, DataMessage, Feed, Hold, Silence, MAX_LAYERS};
use super::keyframe_pacing::{layers_of, pace, KeyframePacer};
use super::peer::{IncomingMedia, PeerEvent, StreamAt};
use super::talk::{audio_level, TalkChange, TalkDetector, TalkSettings};
use crate::metrics::METRICS;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::payload_feedbacks::receiver_estimated_maximum_bitrate::ReceiverEstimatedMaximumBitrate;
use rtc::rtp;
use shared::media::{ExtensionIds, MediaKind, Mid};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
use webrtc::data_channel::{DataChannel, DataChannelEvent};
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};

/// How often a publisher is reminded of the room's bitrate cap.
const REMB_INTERVAL: Duration = Duration::from_secs(5);
/// One m-line a publisher sends, as its PeerConnection's handler receives it: where its
/// packets go (one feed per simulcast layer, lowest first) and what watches them.
pub(super) struct IncomingStream {
    pub(super) mid: Mid,
    pub(super) kind: MediaKind,
    /// The sender's track id from the offer (`msid`), which the incoming track carries.
    pub(super) track_id: Option<String>,
    pub(super) feeds: Vec<Feed>,
    /// A simulcast video's rids, lowest layer first (empty without simulcast).
    pub(super) rids: Vec<String>,
    /// Simulcast: which layers went silent.
    pub(super) silence: Option<watch::Sender<Silence>>,
    /// Keyframe requests (a layer each); taken when the track opens.
    pub(super) keyframes: Option<mpsc::UnboundedReceiver<u8>>,
    /// The ids its sender gave the relayed header extensions (those the room accepts).
    pub(super) extensions: ExtensionIds,
    /// Its playout delay override.
    pub(super) delay: watch::Receiver<Option<[u8; 3]>>,
    /// Talk detection (needs the audio level extension).
    pub(super) talk: Option<TalkSettings>,
    /// Whether a moderator muted it (no talk detection meanwhile, as Janus).
    pub(super) hold: watch::Receiver<Hold>,
    /// Its track opened (a later track of the same kind without a matching id takes another).
    pub(super) opened: bool,
}

/// What becomes of a publisher's incoming tracks and data channels (its PeerConnection's
/// handler hands them over): each track pumped into its m-line's feeds, video keyframe
/// requests and the bitrate cap sent back, data channel messages fanned out.
pub(super) struct Incoming {
    /// Per published m-line (control plane: locked when a track opens, never per packet).
    pub(super) streams: std::sync::Mutex<Vec<IncomingStream>>,
    pub(super) data: DataFeed,
    /// Periodic keyframe requests (the room's `fir_freq`).
    pub(super) fir_freq: Option<Duration>,
    /// The no-media timer and slow-link threshold, read at each tick.
    pub(super) tuning: Arc<super::tuning::LiveTuning>,
    /// The bitrate cap (bit/s) sent as REMB (Janus's `bitrate`; 0: none).
    pub(super) bitrate: watch::Receiver<u32>,
    /// Its data channels open now (at most [`super::data::MAX_DATA_CHANNELS`]).
    pub(super) data_channels: Arc<std::sync::atomic::AtomicUsize>,
}

#[async_trait::async_trait]
impl IncomingMedia for Incoming {
    /// A data channel (janus.js opens `JanusDataChannel`; an application may open more): each
    /// message goes to the data feed with the channel's label.
    fn data_channel(&self, channel: Arc<dyn DataChannel>) {
        use std::sync::atomic::Ordering::Relaxed;
        let open = self.data_channels.clone();
        if open.fetch_add(1, Relaxed) >= super::data::MAX_DATA_CHANNELS {
            open.fetch_sub(1, Relaxed);
            tracing::debug!("publisher data channel closed: too many open");
            tokio::spawn(async move { channel.close().await });
            return;
        }
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
            open.fetch_sub(1, Relaxed);
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
