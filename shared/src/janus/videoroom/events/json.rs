//! The Janus JSON of every VideoRoom reply and event: field names, which fields are left out
//! when empty, and the quirks, all here.

use super::*;
use serde_json::{json, Map};

/// An object built field by field, in Janus's order.
struct Obj(Map<String, Value>);

impl Obj {
    fn new(videoroom: &str) -> Self {
        let mut m = Map::new();
        m.insert("videoroom".into(), videoroom.into());
        Self(m)
    }
    fn bare() -> Self {
        Self(Map::new())
    }
    fn set(mut self, k: &str, v: impl Into<Value>) -> Self {
        self.0.insert(k.into(), v.into());
        self
    }
    fn opt(self, k: &str, v: Option<impl Into<Value>>) -> Self {
        match v {
            Some(v) => self.set(k, v),
            None => self,
        }
    }
    /// `k: true` when `on`; nothing otherwise.
    fn flag(self, k: &str, on: bool) -> Self {
        if on {
            self.set(k, true)
        } else {
            self
        }
    }
    fn list<T>(self, k: &str, items: &[T], f: impl Fn(&T) -> Value) -> Self {
        let v: Vec<Value> = items.iter().map(f).collect();
        self.set(k, v)
    }
    fn done(self) -> Value {
        Value::Object(self.0)
    }
}

impl From<&RoomId> for Value {
    fn from(r: &RoomId) -> Value {
        json!(r.0)
    }
}

impl From<&ParticipantId> for Value {
    fn from(p: &ParticipantId) -> Value {
        json!(p.0)
    }
}

/// A VideoRoom error's body.
pub fn error(e: &VideoRoomError) -> Value {
    Obj::new("event").set("error_code", e.code as u16).set("error", e.reason.as_str()).done()
}

impl VideoRoomEvent {
    /// Janus's JSON for this reply or event.
    pub fn to_json(&self) -> Value {
        use VideoRoomEvent as E;
        match self {
            E::Error(e) => error(e),
            E::Created { room, permanent } => Obj::new("created").set("room", room).set("permanent", *permanent).done(),
            E::Edited { room, permanent } => Obj::new("edited").set("room", room).set("permanent", *permanent).done(),
            E::Destroyed { room, permanent } => {
                Obj::new("destroyed").set("room", room).opt("permanent", *permanent).done()
            }
            E::Exists { room, exists } => Obj::new("success").set("room", room).set("exists", *exists).done(),
            E::List(rooms) => Obj::new("success").list("list", rooms, |(c, n)| c.list_entry(*n)).done(),
            E::Success => Obj::new("success").done(),
            E::Allowed { room, allowed } => {
                Obj::new("success").set("room", room).opt("allowed", allowed.clone()).done()
            }
            E::Participants { room, participants } => {
                Obj::new("participants").set("room", room).list("participants", participants, participant).done()
            }
            E::RtpForward { room, publisher_id, forwarders } => Obj::new("rtp_forward")
                .set("room", room)
                .set("publisher_id", publisher_id)
                .list("forwarders", forwarders, forwarder)
                .done(),
            E::StopRtpForward { room, publisher_id, stream_id } => Obj::new("stop_rtp_forward")
                .set("room", room)
                .set("publisher_id", publisher_id)
                .set("stream_id", *stream_id)
                .done(),
            E::Forwarders { room, publishers } => Obj::new("forwarders")
                .set("room", room)
                .list("publishers", publishers, |p| {
                    Obj::bare()
                        .set("publisher_id", &p.publisher_id)
                        .list("forwarders", &p.forwarders, forwarder)
                        .opt("display", p.display.as_deref())
                        .done()
                })
                .done(),
            E::Recording { record } => Obj::new("success").set("record", *record).done(),
            E::RemotePublisherAdded { room, id, port, rtcp_port } => Obj::new("success")
                .set("room", room)
                .set("id", id)
                .set("port", *port)
                .set("rtcp_port", *rtcp_port)
                .done(),
            E::Remote { room, id, remote_id } => {
                Obj::new("success").set("room", room).set("id", id).opt("remote_id", remote_id.as_deref()).done()
            }
            E::Remotes { room, id, list } => Obj::new("success")
                .set("room", room)
                .set("id", id)
                .list("list", list, |r| {
                    Obj::bare()
                        .set("remote_id", r.remote_id.as_str())
                        .set("host", r.host.as_str())
                        .set("port", r.port)
                        .opt("rtcp_port", r.rtcp_port)
                        .done()
                })
                .done(),
            E::Joined { room, description, id, private_id, publishers, attendees } => {
                let o = Obj::new("joined")
                    .set("room", room)
                    .set("description", description.as_str())
                    .set("id", id)
                    .set("private_id", private_id)
                    .list("publishers", publishers, publisher);
                match attendees {
                    Some(a) => o.list("attendees", a, attendee).done(),
                    None => o.done(),
                }
            }
            E::Joining { room, who } => Obj::new("event").set("room", room).set("joining", attendee(who)).done(),
            E::Publishers { room, publishers } => {
                Obj::new("event").set("room", room).list("publishers", publishers, publisher).done()
            }
            E::Departed { room, how, id, display, metadata } => {
                let key = match how {
                    Departure::Leaving => "leaving",
                    Departure::Kicked => "kicked",
                    Departure::Unpublished => "unpublished",
                };
                Obj::new("event")
                    .set("room", room)
                    .opt("display", display.as_deref())
                    .opt("metadata", metadata.clone())
                    .set(key, id)
                    .done()
            }
            E::LeavingOk { room, kicked } => {
                let o = Obj::new("event").set("room", room).set("leaving", "ok");
                if *kicked {
                    o.set("reason", "kicked").done()
                } else {
                    o.done()
                }
            }
            E::UnpublishedOk { room } => Obj::new("event").set("room", room).set("unpublished", "ok").done(),
            E::Configured { room, publication } => {
                let o = Obj::new("event").set("room", room).set("configured", "ok");
                match publication {
                    Some(p) => publication_fields(o, p).done(),
                    None => o.done(),
                }
            }
            E::Renamed { id, display } => Obj::new("event").set("id", id).set("display", display.as_str()).done(),
            E::SlowLink { current_bitrate } => Obj::new("slow_link").opt("current-bitrate", *current_bitrate).done(),
            E::Talking { room, id, mindex, mid, talking, average } => {
                Obj::new(if *talking { "talking" } else { "stopped-talking" })
                    .set("room", room)
                    .set("id", id)
                    .set("mindex", *mindex)
                    .set("mid", mid.as_str())
                    .set("audio-level-dBov-avg", *average)
                    .done()
            }
            E::Moderation { room, id, mid, muted } => Obj::new("event")
                .set("room", room)
                .set("id", id)
                .set("mid", mid.as_str())
                .set("moderation", if *muted { "muted" } else { "unmuted" })
                .done(),
            E::Paused { room } => Obj::new("event").set("room", room).set("paused", "ok").done(),
            E::Left { room } => Obj::new("event").set("room", room).set("left", "ok").done(),
            E::Started { room } => Obj::new("event").set("room", room).set("started", "ok").done(),
            E::Attached { room, legacy, streams } => {
                let mut o = Obj::new("attached").set("room", room);
                if let Some(l) = legacy {
                    o = o
                        .set("id", &l.id)
                        .set("warning", "deprecated_api")
                        .opt("display", l.display.as_deref())
                        .opt("metadata", l.metadata.clone());
                }
                o.list("streams", streams, subscriber_stream).done()
            }
            E::Switched { room, changes, streams } => Obj::new("event")
                .set("switched", "ok")
                .set("room", room)
                .set("changes", *changes)
                .list("streams", streams, subscriber_stream)
                .done(),
            E::Updated { room, streams } => {
                let o = Obj::new("updated").set("room", room);
                match streams {
                    Some(s) => o.list("streams", s, subscriber_stream).done(),
                    None => o.done(),
                }
            }
            E::Updating { room } => Obj::new("updating").set("room", room).done(),
            E::Layer { room, mid, svc, spatial, temporal } => {
                let (spatial_key, temporal_key) =
                    if *svc { ("spatial_layer", "temporal_layer") } else { ("substream", "temporal") };
                Obj::new("event")
                    .set("room", room)
                    .set("mid", mid.as_str())
                    .opt(spatial_key, *spatial)
                    .opt(temporal_key, *temporal)
                    .done()
            }
        }
    }
}

fn attendee(a: &Attendee) -> Value {
    Obj::bare().set("id", &a.id).opt("display", a.display.as_deref()).opt("metadata", a.metadata.clone()).done()
}

fn participant(p: &ParticipantEntry) -> Value {
    Obj::bare()
        .set("id", &p.id)
        .opt("display", p.display.as_deref())
        .opt("metadata", p.metadata.clone())
        .flag("remote", p.remote)
        .set("publisher", p.publisher)
        .opt("talking", p.talking)
        .done()
}

fn publisher(p: &PublisherEntry) -> Value {
    let o = Obj::bare().set("id", &p.id).opt("display", p.display.as_deref()).opt("metadata", p.metadata.clone());
    publication_fields(o, &p.publication).opt("talking", p.talking).done()
}

fn publication_fields(o: Obj, p: &Publication) -> Obj {
    o.opt("audio_codec", p.audio_codec.as_deref()).opt("video_codec", p.video_codec.as_deref()).list(
        "streams",
        &p.streams,
        publisher_stream,
    )
}

fn publisher_stream(s: &PublisherStream) -> Value {
    let o = Obj::bare().set("type", s.kind).set("mindex", s.mindex).set("mid", s.mid.as_str());
    if s.disabled {
        return o.set("disabled", true).done();
    }
    let o = o.opt("description", s.description.as_deref()).opt("codec", s.codec.as_deref());
    let o = match &s.profile {
        Some(CodecProfile::Vp9(p)) => o.set("vp9_profile", p.as_str()),
        Some(CodecProfile::H264(p)) => o.set("h264_profile", p.as_str()),
        None => o,
    };
    o.flag("stereo", s.stereo)
        .flag("fec", s.fec)
        .flag("dtx", s.dtx)
        .opt("talking", s.talking)
        .flag("moderated", s.moderated)
        .flag("simulcast", s.simulcast)
        .flag("svc", s.svc)
        .done()
}

fn subscriber_stream(s: &SubscriberStream) -> Value {
    let o = Obj::bare()
        .set("type", s.kind)
        .set("active", s.active)
        .set("mindex", s.mindex)
        .set("mid", s.mid.as_str())
        .opt("crossrefid", s.crossrefid.as_deref())
        .set("ready", s.ready)
        .set("send", s.send);
    match &s.source {
        StreamSource::Data { sources } => {
            o.set("sources", sources.len()).list("source_ids", sources, |id| Value::from(id)).done()
        }
        StreamSource::None => o.done(),
        StreamSource::Feed { id, display, metadata, mid, description, codec, profile, layers, delay } => {
            let o = o
                .set("feed_id", id)
                .opt("feed_display", display.as_deref())
                .opt("feed_metadata", metadata.clone())
                .set("feed_mid", mid.as_str())
                .opt("feed_description", description.as_deref())
                .set("codec", codec.as_str());
            let o = match profile {
                Some(CodecProfile::H264(p)) => o.set("h264-profile", p.as_str()),
                Some(CodecProfile::Vp9(p)) => o.set("vp9-profile", p.as_str()),
                None => o,
            };
            let o = match layers {
                Some(Layers::Simulcast { substream, substream_target, temporal, temporal_target, fallback }) => o.set(
                    "simulcast",
                    Obj::bare()
                        .set("substream", *substream)
                        .set("substream-target", *substream_target)
                        .set("temporal-layer", *temporal)
                        .set("temporal-layer-target", *temporal_target)
                        .opt("fallback", *fallback)
                        .done(),
                ),
                Some(Layers::Svc { spatial, spatial_target, temporal, temporal_target }) => o.set(
                    "svc",
                    Obj::bare()
                        .set("spatial-layer", *spatial)
                        .set("target-spatial-layer", *spatial_target)
                        .set("temporal-layer", *temporal)
                        .set("target-temporal-layer", *temporal_target)
                        .done(),
                ),
                None => o,
            };
            o.opt("playout-delay", delay.map(|d| json!({"min-delay": d.min, "max-delay": d.max}))).done()
        }
    }
}

fn forwarder(f: &Forwarder) -> Value {
    let o = Obj::bare()
        .set("stream_id", f.stream_id)
        .set("type", f.kind)
        .set("host", f.host.as_str())
        .set("port", f.port)
        .opt("local_rtcp_port", f.local_rtcp_port)
        .opt("remote_rtcp_port", f.remote_rtcp_port);
    if f.kind == MediaKind::Data {
        return o.done();
    }
    o.opt("ssrc", f.ssrc).opt("pt", f.pt).opt("substream", f.substream).set("srtp", f.srtp).done()
}

impl HandleInfo {
    pub fn to_json(&self) -> Value {
        let o = match self {
            HandleInfo::Publisher { room, id, private_id, display, bitrate, streams } => Obj::bare()
                .set("type", "publisher")
                .set("room", room)
                .set("id", id)
                .set("private_id", private_id)
                .opt("display", display.as_deref())
                .set("bitrate", *bitrate)
                .list("streams", streams, |s| {
                    let o = Obj::bare()
                        .set("type", s.kind)
                        .set("mindex", s.mindex)
                        .set("mid", s.mid.as_str())
                        .opt("codec", s.codec.as_deref());
                    let o = if s.rids.is_empty() { o } else { o.set("simulcast", true).set("rids", s.rids.clone()) };
                    o.set("subscribers", s.subscribers).done()
                }),
            HandleInfo::Subscriber { room, answered, pending_offer, pending_restart, paused, streams } => Obj::bare()
                .set("type", "subscriber")
                .set("room", room)
                .set("answered", *answered)
                .set("pending_offer", *pending_offer)
                .set("pending_restart", *pending_restart)
                .list("streams", streams, subscriber_stream)
                .opt("paused", *paused),
            HandleInfo::None => Obj::bare().set("type", "none"),
        };
        o.set("hangingup", 0).set("destroyed", 0).done()
    }
}
