//! Publishing: a publisher's offer (`publish`, `configure`), what it publishes as announced to
//! the room, and its end (`unpublish`, a PeerConnection gone), with the events Janus sends for
//! each.

use super::{check_mids, err, MediaAction, Outcome, RoomState, Slot, Who};
use crate::media::peer::StreamAt;
use crate::media::sdp::StreamInfo;
use crate::media::talk::TalkSettings;
use shared::ids::ParticipantId;
use shared::janus::errors::{VideoRoomCode, VideoRoomError};
use shared::janus::request::{Jsep, JsepType};
use shared::janus::videoroom::{
    AsyncName, CodecProfile, Configure, Departure, Publication, PublisherStream, VideoRoomEvent as Event,
};
use shared::media::{MediaKind, Mid, PlayoutDelay};
use std::collections::{BTreeMap, BTreeSet};

/// What a publisher sends, as announced to the room.
#[derive(Clone, Debug, PartialEq)]
pub struct Published {
    pub streams: Vec<StreamInfo>,
    /// Streams a moderator muted.
    pub moderated: BTreeSet<Mid>,
    /// Audio streams talking (their levels' average under the room's threshold).
    pub talking: BTreeSet<Mid>,
    /// Playout delays the publisher set on its video streams (`min_delay`/`max_delay`).
    pub delays: BTreeMap<Mid, PlayoutDelay>,
}

/// Which of Janus's publisher stream lists an entry is for: each shows a little more or less.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum StreamList {
    /// The publisher's own `configured`.
    Configured,
    /// The `publishers` event that announces it.
    Announced,
    /// `joined`'s list of the publishers already there.
    Joined,
}

impl Published {
    pub fn new(streams: Vec<StreamInfo>) -> Self {
        Self { streams, moderated: BTreeSet::new(), talking: BTreeSet::new(), delays: BTreeMap::new() }
    }

    /// The codec of its first stream of `kind` (Janus's `audio_codec` / `video_codec`).
    pub(super) fn codec_of(&self, kind: MediaKind) -> Option<&str> {
        self.streams.iter().find(|s| s.kind == kind).and_then(|s| s.codec.as_deref())
    }

    /// Whether it has an audio stream with audio levels (Janus then reports `talking`).
    pub(super) fn has_audio_levels(&self) -> bool {
        self.streams.iter().any(|s| s.kind == MediaKind::Audio && s.extensions.audio_level.is_some())
    }

    /// Whether any of its audio streams is talking.
    pub(super) fn is_talking(&self) -> bool {
        !self.talking.is_empty()
    }

    /// `streams` as Janus lists them: Opus's `stereo`/`fec`/`dtx` (when the room negotiates
    /// FEC, as Janus reads them only then), `simulcast`; `moderated` in `joined` (any stream)
    /// and `publishers` (video only); `talking` in `joined` for a stream with audio levels —
    /// Janus writes there whether an earlier audio stream of the publisher talks, so a single
    /// audio stream always shows `false`; the publisher's own `talking` is right.
    pub(super) fn publication(&self, list: StreamList, opus_fec: bool) -> Publication {
        let mut talking_before = false;
        let streams = self
            .streams
            .iter()
            .map(|s| {
                let mut e =
                    PublisherStream { disabled: s.disabled, ..PublisherStream::new(s.kind, s.mindex, s.mid.clone()) };
                if s.disabled {
                    return e;
                }
                e.description = s.description.clone();
                e.codec = s.codec.clone();
                let moderated = self.moderated.contains(&s.mid);
                match s.kind {
                    MediaKind::Audio => {
                        if opus_fec && s.codec.as_deref() == Some("opus") {
                            (e.stereo, e.fec, e.dtx) = (s.opus.stereo, s.opus.fec, s.opus.dtx);
                        }
                        if list == StreamList::Joined && s.extensions.audio_level.is_some() {
                            e.talking = Some(talking_before);
                            talking_before |= self.talking.contains(&s.mid);
                        }
                    }
                    MediaKind::Video => {
                        e.profile = profile_of(s);
                        e.moderated = list == StreamList::Announced && moderated;
                        e.simulcast = !s.rids.is_empty();
                        e.svc = s.svc;
                    }
                    MediaKind::Data => {}
                }
                e.moderated |= list == StreamList::Joined && moderated;
                e
            })
            .collect();
        Publication {
            audio_codec: self.codec_of(MediaKind::Audio).map(str::to_owned),
            video_codec: self.codec_of(MediaKind::Video).map(str::to_owned),
            streams,
        }
    }
}

/// A video stream's H.264 or VP9 profile, from the `fmtp` its answer took, as Janus lists it.
pub(super) fn profile_of(s: &StreamInfo) -> Option<CodecProfile> {
    let fmtp = |param| s.fmtp.as_deref().and_then(|f| fmtp_param(f, param)).map(str::to_owned);
    match s.codec.as_deref() {
        Some("vp9") => fmtp("profile-id").map(CodecProfile::Vp9),
        Some("h264") => fmtp("profile-level-id").map(CodecProfile::H264),
        _ => None,
    }
}

/// The most m-lines a publisher's offer may have. Each audio or video one costs the node a
/// transceiver, a feed and its buffers before any packet comes, and a message may carry a
/// megabyte of SDP (tens of thousands of m-lines); a camera, a microphone, screens and data
/// need a handful.
const MAX_OFFER_MLINES: usize = 64;

/// How many m-lines `sdp` has.
fn mlines(sdp: &str) -> usize {
    sdp.lines().filter(|l| l.starts_with("m=")).count()
}

/// The value of `key` in an `fmtp` parameter list (`a=1;b=2`).
fn fmtp_param<'a>(fmtp: &'a str, key: &str) -> Option<&'a str> {
    fmtp.split(';').filter_map(|kv| kv.trim().split_once('=')).find(|(k, _)| *k == key).map(|(_, v)| v)
}

impl RoomState {
    /// `publish`, or `configure` on a publisher: with an offer, starts publishing.
    pub(super) fn configure(
        &mut self,
        who: Who,
        pid: ParticipantId,
        txn: &str,
        name: AsyncName,
        jsep: Option<&Jsep>,
        changes: Configure,
    ) -> Result<Outcome, VideoRoomError> {
        if !self.participants.contains_key(&pid) {
            return Err(err(VideoRoomCode::NoSuchRoom, "No such room"));
        }
        let descriptions = changes.descriptions.0.clone()?;
        let switched = self.set_recording(pid.clone(), &changes)?;
        let Some(p) = self.participants.get(&pid) else { return Err(err(VideoRoomCode::NoSuchRoom, "No such room")) };
        let busy = p.published.is_some() || p.publishing;
        let (published, recording) = (p.published.is_some(), p.recording);
        match jsep {
            None if name == AsyncName::Publish => {
                Err(err(VideoRoomCode::InvalidSdp, "Can't publish without a JSEP offer"))
            }
            None => {
                let mut out = self.reconfigure(who, pid.clone(), txn, changes)?;
                self.describe(who, &pid, &descriptions, &mut out);
                // Recording switched on or off while publishing: the files start (with a
                // keyframe asked for) or close now, as Janus does.
                if switched && published {
                    out.media.extend(self.record_action(pid, who, recording));
                }
                Ok(out)
            }
            Some(_) if changes.audiocodec.as_ref().is_some_and(|c| !self.config.audiocodec.contains(c)) => {
                Err(err(VideoRoomCode::InvalidElement, "Audio codec unavailable in this room"))
            }
            Some(_) if changes.videocodec.as_ref().is_some_and(|c| !self.config.videocodec.contains(c)) => {
                Err(err(VideoRoomCode::InvalidElement, "Video codec unavailable in this room"))
            }
            Some(j) if j.kind != JsepType::Offer => {
                Err(err(VideoRoomCode::InvalidSdpType, format!("Unsupported SDP type '{}'", "answer")))
            }
            Some(j) if mlines(&j.sdp) > MAX_OFFER_MLINES => Err(err(
                VideoRoomCode::InvalidSdp,
                format!("Too many m-lines ({}, at most {MAX_OFFER_MLINES})", mlines(&j.sdp)),
            )),
            Some(_) if busy => Err(err(VideoRoomCode::AlreadyPublished, "Can't publish, already published")),
            Some(j) => {
                let publishing = self.participants.values().filter(|p| p.published.is_some() || p.publishing).count();
                if publishing as u64 >= self.config.max_publishers {
                    return Err(err(
                        VideoRoomCode::PublishersFull,
                        format!("Maximum number of publishers ({}) reached", self.config.max_publishers),
                    ));
                }
                if let Some(p) = self.participants.get_mut(&pid) {
                    p.publishing = true;
                    p.descriptions = descriptions;
                }
                let mut out = Outcome::default();
                let (offer, rid_order) = (j.sdp.clone(), j.rid_order.clone());
                let talk = self.talk_settings(pid);
                let codecs = (changes.audiocodec, changes.videocodec);
                out.media.push(MediaAction::Publish {
                    who,
                    transaction: txn.to_owned(),
                    offer,
                    rid_order,
                    talk,
                    codecs,
                });
                Ok(out)
            }
        }
    }

    /// A publisher's `configure` without an offer: its bitrate cap, a keyframe, which of its
    /// streams are relayed (`send` per mid, or the deprecated `audio`/`video`), its display name
    /// (the others are told when it changes, as Janus). Every named mid is checked first.
    fn reconfigure(
        &mut self,
        who: Who,
        pid: ParticipantId,
        txn: &str,
        c: Configure,
    ) -> Result<Outcome, VideoRoomError> {
        let published = self.participants.get(&pid).and_then(|p| p.published.clone());
        let known = |m: &str| published.as_ref().is_some_and(|p| p.streams.iter().any(|s| s.mid == m));
        check_mids(&c, known, |m| format!("No such mid '{m}' published"))?;
        let room = self.config.room.clone();
        let mut out = Outcome::default().notice(who, Some(txn), Event::Configured { room, publication: None });
        if let Some(bitrate) = c.bitrate {
            out.media.push(MediaAction::Bitrate { who, bitrate });
        }
        if c.streams.iter().any(|e| e.keyframe) {
            out.media.push(MediaAction::Keyframe { who });
        }
        let legacy = !c.streams.iter().any(|e| e.mid.is_some());
        let live = self.participants.get_mut(&pid).and_then(|p| p.published.as_mut());
        if let Some(p) = live {
            for s in p.streams.iter().filter(|s| s.kind == MediaKind::Video) {
                for e in c.streams.iter().filter(|e| e.mid.as_deref() == Some(s.mid.as_str()) && !e.delay.is_empty()) {
                    let d = p.delays.entry(s.mid.clone()).or_default();
                    d.apply(e.delay.min, e.delay.max);
                    out.media.push(MediaAction::PublisherDelay { who, mid: s.mid.clone(), delay: d.bytes() });
                }
            }
        }
        for s in published.iter().flat_map(|p| p.streams.iter()).filter(|s| s.kind.is_rtp()) {
            let mut send = match (legacy, s.kind) {
                (true, MediaKind::Audio) => c.audio,
                (true, MediaKind::Video) => c.video,
                _ => None,
            };
            for e in c.streams.iter().filter(|e| e.mid.as_deref() == Some(s.mid.as_str())) {
                send = e.send.or(send);
            }
            if let Some(send) = send {
                out.media.push(MediaAction::Sending { who, mid: s.mid.clone(), send });
            }
        }
        if let Some(display) = c.display {
            let Some(p) = self.participants.get_mut(&pid) else { return Ok(out) };
            if p.display.replace(display.clone()).is_some() {
                let ev = Event::Renamed { id: pid.clone(), display };
                for other in self.participants.values().filter(|o| o.who != who) {
                    out = out.notice(other.who, None, ev.clone());
                }
            }
        }
        Ok(out)
    }

    /// An offer-less `configure`'s `descriptions`: the publisher's streams named get them, and
    /// if any did, everyone else gets its entry again (`publishers`), as Janus.
    fn describe(&mut self, who: Who, pid: &ParticipantId, descriptions: &[(Mid, String)], out: &mut Outcome) {
        let Some(p) = self.participants.get_mut(pid) else { return };
        let Some(published) = p.published.as_mut() else { return };
        let mut described = false;
        for s in published.streams.iter_mut() {
            if let Some((_, text)) = descriptions.iter().find(|(mid, _)| *mid == s.mid) {
                s.description = Some(text.clone());
                described = true;
            }
        }
        if described {
            let entry = p.publisher_entry(pid.clone(), StreamList::Announced, self.config.opus_fec);
            self.announce(who, entry, out);
        }
    }

    /// The publisher's PeerConnection answered: `configured` to it (the shell attaches the
    /// answer), `publishers` to everyone else.
    pub fn published(&mut self, who: Who, txn: &str, streams: Vec<StreamInfo>, answer: Jsep) -> Outcome {
        let Some(Slot::Publisher(pid)) = self.slots.get(&who).cloned() else { return Outcome::default() };
        let Some(p) = self.participants.get_mut(&pid) else { return Outcome::default() };
        p.publishing = false;
        let mut streams = streams;
        for s in &mut streams {
            if let Some((_, text)) = p.descriptions.iter().find(|(mid, _)| *mid == s.mid) {
                s.description = Some(text.clone());
            }
        }
        let published = Published::new(streams);
        let publication = Some(published.publication(StreamList::Configured, self.config.opus_fec));
        let configured = Event::Configured { room: self.config.room.clone(), publication };
        p.published = Some(published);
        let entry = p.publisher_entry(pid.clone(), StreamList::Announced, self.config.opus_fec);
        let mut recording = Outcome::default();
        self.record_if_asked(pid, who, &mut recording);
        let mut out = Outcome::default().notice(who, Some(txn), configured);
        if let Some(n) = out.notices.last_mut() {
            n.jsep = Some(answer);
        }
        self.announce(who, entry, &mut out);
        out.media.extend(recording.media);
        out
    }

    /// Publishing could not start (the offer was refused): the request gets the error.
    pub fn publish_failed(&mut self, who: Who, txn: &str, e: VideoRoomError) -> Outcome {
        if let Some(Slot::Publisher(pid)) = self.slots.get(&who).cloned() {
            if let Some(p) = self.participants.get_mut(&pid) {
                p.publishing = false;
            }
        }
        Outcome::default().notice(who, Some(txn), Event::Error(e))
    }

    /// The publisher stopped (unpublish, or its PeerConnection went away): `unpublished` to it
    /// when it asked (`txn`), its id to everyone else.
    pub fn unpublished(&mut self, who: Who, txn: Option<&str>) -> Outcome {
        let mut out = Outcome::default();
        let Some(Slot::Publisher(pid)) = self.slots.get(&who).cloned() else { return out };
        let room = &self.config.room.clone();
        let Some(p) = self.participants.get_mut(&pid) else { return out };
        if p.published.take().is_none() {
            return out;
        }
        if p.recording {
            out.media.push(MediaAction::StopRecording { who });
        }
        if txn.is_some() {
            out = out.notice(who, txn, Event::UnpublishedOk { room: room.clone() });
        }
        self.deactivate_feed(who, &mut out);
        self.drop_forwarders(pid.clone(), who, &mut out);
        let ev =
            Event::Departed { room: room.clone(), how: Departure::Unpublished, id: pid, display: None, metadata: None };
        for other in self.participants.values().filter(|o| o.who != who) {
            out = out.notice(other.who, None, ev.clone());
        }
        out
    }

    /// A stream of `who` is losing packets: its mid (for the core `slowlink`) and the VideoRoom's
    /// `slow_link` event — a publisher's with its bitrate cap, a subscriber's bare, as Janus.
    pub fn slow_link(&mut self, who: Who, at: &StreamAt) -> Option<(Mid, Outcome)> {
        let (mid, ev) = match at {
            StreamAt::Published(mid) => {
                self.publication(who)?.streams.iter().find(|s| s.mid == *mid)?;
                (mid.clone(), Event::SlowLink { current_bitrate: Some(self.config.bitrate) })
            }
            StreamAt::Subscribed(i) => (self.subscription_mid(who, *i)?, Event::SlowLink { current_bitrate: None }),
        };
        Some((mid, Outcome::default().notice(who, None, ev)))
    }

    /// Talk detection for this publisher's audio, if the room asks for it (`audiolevel_event`):
    /// the publisher's own `audio_active_packets` / `audio_level_average`, or the room's.
    pub(super) fn talk_settings(&self, pid: ParticipantId) -> Option<TalkSettings> {
        let c = &self.config;
        if !(c.audiolevel_ext && c.audiolevel_event) {
            return None;
        }
        let (packets, average) = self.participants.get(&pid).map_or((0, 0), |p| p.talk);
        let pick = |own: u64, room: u64| u32::try_from(if own > 0 { own } else { room }).unwrap_or(u32::MAX);
        Some(TalkSettings {
            packets: pick(packets, c.audio_active_packets),
            threshold: pick(average, c.audio_level_average),
        })
    }

    /// A publisher's audio stream `mid` started or stopped talking: Janus's `talking` /
    /// `stopped-talking` to every participant, the speaker included.
    pub fn talking(&mut self, who: Who, mid: &Mid, talking: bool, average: f32) -> Outcome {
        let Some(Slot::Publisher(pid)) = self.slots.get(&who).cloned() else { return Outcome::default() };
        let Some(published) = self.participants.get_mut(&pid).and_then(|p| p.published.as_mut()) else {
            return Outcome::default();
        };
        let Some(stream) = published.streams.iter().find(|s| s.mid == *mid) else { return Outcome::default() };
        let mindex = stream.mindex;
        if talking {
            published.talking.insert(mid.clone());
        } else {
            published.talking.remove(mid);
        }
        let ev = Event::Talking { room: self.config.room.clone(), id: pid, mindex, mid: mid.clone(), talking, average };
        let mut out = Outcome::default();
        for p in self.participants.values() {
            out = out.notice(p.who, None, ev.clone());
        }
        out
    }

    /// What `who` publishes, if anything.
    pub fn publication(&self, who: Who) -> Option<&Published> {
        match self.slots.get(&who) {
            Some(Slot::Publisher(pid)) => self.participants.get(pid).and_then(|p| p.published.as_ref()),
            _ => None,
        }
    }
}
