//! Publishing: a publisher's offer (`publish`, `configure`), what it publishes as announced to
//! the room, and its end (`unpublish`, a PeerConnection gone), with the events Janus sends for
//! each.

use super::{check_mids, err, MediaAction, Outcome, RoomState, Slot, Who};
use crate::media::peer::StreamAt;
use crate::media::sdp::StreamInfo;
use serde_json::Value;
use shared::ids::ParticipantId;
use shared::janus::errors::{VideoRoomCode, VideoRoomError};
use shared::janus::request::{Jsep, JsepType};
use shared::janus::videoroom::{self as vr, AsyncName, Configure, Departure};
use shared::media::{MediaKind, Mid};

/// What a publisher sends, as announced to the room.
#[derive(Clone, Debug, PartialEq)]
pub struct Published {
    pub streams: Vec<StreamInfo>,
}

impl Published {
    /// The codec of its first stream of `kind` (Janus's `audio_codec` / `video_codec`).
    pub(super) fn codec_of(&self, kind: MediaKind) -> Option<&str> {
        self.streams.iter().find(|s| s.kind == kind).and_then(|s| s.codec.as_deref())
    }

    /// `streams` as Janus lists them in `configured`, `publishers` and `joined`.
    pub(super) fn streams_json(&self) -> Value {
        Value::Array(
            self.streams
                .iter()
                .map(|s| {
                    let mut m = serde_json::Map::new();
                    m.insert("type".into(), s.kind.into());
                    m.insert("mindex".into(), s.mindex.into());
                    m.insert("mid".into(), s.mid.clone().into());
                    if let Some(c) = &s.codec {
                        m.insert("codec".into(), c.clone().into());
                    }
                    if !s.rids.is_empty() {
                        m.insert("simulcast".into(), true.into());
                    }
                    Value::Object(m)
                })
                .collect(),
        )
    }
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
        let switched = self.set_recording(pid, &changes)?;
        let Some(p) = self.participants.get(&pid) else { return Err(err(VideoRoomCode::NoSuchRoom, "No such room")) };
        let busy = p.published.is_some() || p.publishing;
        let (published, recording) = (p.published.is_some(), p.recording);
        match jsep {
            None if name == AsyncName::Publish => {
                Err(err(VideoRoomCode::InvalidSdp, "Can't publish without a JSEP offer"))
            }
            None => {
                let mut out = self.reconfigure(who, pid, txn, changes)?;
                // Recording switched on or off while publishing: the files start (with a
                // keyframe asked for) or close now, as Janus does.
                if switched && published {
                    out.media.extend(self.record_action(pid, who, recording));
                }
                Ok(out)
            }
            Some(j) if j.kind != JsepType::Offer => {
                Err(err(VideoRoomCode::InvalidSdpType, format!("Unsupported SDP type '{}'", "answer")))
            }
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
                }
                let mut out = Outcome::default();
                let (offer, rid_order) = (j.sdp.clone(), j.rid_order.clone());
                out.media.push(MediaAction::Publish { who, transaction: txn.to_owned(), offer, rid_order });
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
        let room = self.config.room.0;
        let mut out = Outcome::default().notice(
            who,
            Some(txn),
            serde_json::json!({"videoroom": "event", "room": room, "configured": "ok"}),
        );
        if let Some(bitrate) = c.bitrate {
            out.media.push(MediaAction::Bitrate { who, bitrate });
        }
        if c.streams.iter().any(|e| e.keyframe) {
            out.media.push(MediaAction::Keyframe { who });
        }
        let legacy = !c.streams.iter().any(|e| e.mid.is_some());
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
                let ev = serde_json::json!({"videoroom": "event", "id": pid.0, "display": display});
                for other in self.participants.values().filter(|o| o.who != who) {
                    out = out.notice(other.who, None, ev.clone());
                }
            }
        }
        Ok(out)
    }

    /// The publisher's PeerConnection answered: `configured` to it (the shell attaches the
    /// answer), `publishers` to everyone else.
    pub fn published(&mut self, who: Who, txn: &str, streams: Vec<StreamInfo>, answer: Jsep) -> Outcome {
        let Some(Slot::Publisher(pid)) = self.slots.get(&who).copied() else { return Outcome::default() };
        let Some(p) = self.participants.get_mut(&pid) else { return Outcome::default() };
        p.publishing = false;
        let published = Published { streams };
        let mut configured = serde_json::json!({"videoroom": "event", "room": self.config.room.0, "configured": "ok"});
        if let Some(c) = published.codec_of(MediaKind::Audio) {
            configured["audio_codec"] = c.into();
        }
        if let Some(c) = published.codec_of(MediaKind::Video) {
            configured["video_codec"] = c.into();
        }
        configured["streams"] = published.streams_json();
        p.published = Some(published);
        let entry = p.publisher_entry(pid);
        let mut recording = Outcome::default();
        self.record_if_asked(pid, who, &mut recording);
        let mut out = Outcome::default().notice(who, Some(txn), configured);
        if let Some(n) = out.notices.last_mut() {
            n.jsep = Some(answer);
        }
        if let Some(entry) = entry {
            let ev = serde_json::json!({"videoroom": "event", "room": self.config.room.0, "publishers": [entry]});
            for other in self.participants.values().filter(|o| o.who != who) {
                out = out.notice(other.who, None, ev.clone());
            }
        }
        out.media.extend(recording.media);
        out
    }

    /// Publishing could not start (the offer was refused): the request gets the error.
    pub fn publish_failed(&mut self, who: Who, txn: &str, e: VideoRoomError) -> Outcome {
        if let Some(Slot::Publisher(pid)) = self.slots.get(&who).copied() {
            if let Some(p) = self.participants.get_mut(&pid) {
                p.publishing = false;
            }
        }
        Outcome::default().notice(who, Some(txn), vr::error(&e))
    }

    /// The publisher stopped (unpublish, or its PeerConnection went away): `unpublished` to it
    /// when it asked (`txn`), its id to everyone else.
    pub fn unpublished(&mut self, who: Who, txn: Option<&str>) -> Outcome {
        let mut out = Outcome::default();
        let Some(Slot::Publisher(pid)) = self.slots.get(&who).copied() else { return out };
        let room = self.config.room;
        let Some(p) = self.participants.get_mut(&pid) else { return out };
        if p.published.take().is_none() {
            return out;
        }
        if p.recording {
            out.media.push(MediaAction::StopRecording { who });
        }
        if txn.is_some() {
            out = out.notice(who, txn, vr::unpublished_ok(room));
        }
        self.deactivate_feed(who, &mut out);
        self.drop_forwarders(pid, who, &mut out);
        let ev = vr::departed(room, Departure::Unpublished, pid, None, None);
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
                (mid.clone(), serde_json::json!({"videoroom": "slow_link", "current-bitrate": self.config.bitrate}))
            }
            StreamAt::Subscribed(i) => (self.subscription_mid(who, *i)?, serde_json::json!({"videoroom": "slow_link"})),
        };
        Some((mid, Outcome::default().notice(who, None, ev)))
    }

    /// What `who` publishes, if anything.
    pub fn publication(&self, who: Who) -> Option<&Published> {
        match self.slots.get(&who) {
            Some(Slot::Publisher(pid)) => self.participants.get(pid).and_then(|p| p.published.as_ref()),
            _ => None,
        }
    }
}
