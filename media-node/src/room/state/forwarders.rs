//! RTP forwarders as the room keeps them: which publisher streams are forwarded where (for
//! `listforwarders` and `stop_rtp_forward`), checked as Janus checks the requests. The shell
//! opens the sockets and runs the forwarding; the room only records and answers.

use super::{check_secret, err, MediaAction, Outcome, RoomState, Who};
use crate::media::sdp::StreamInfo;
use serde_json::{json, Value};
use shared::ids::ParticipantId;
use shared::janus::errors::{VideoRoomCode, VideoRoomError};
use shared::janus::videoroom::{ForwardStream, RtpForward, StreamRef};
use shared::media::MediaKind;

/// One forwarder, as `rtp_forward` and `listforwarders` show it.
#[derive(Clone, Debug, PartialEq)]
pub struct Forwarder {
    pub stream_id: u32,
    pub kind: MediaKind,
    pub host: String,
    pub port: u16,
    pub local_rtcp_port: Option<u16>,
    pub remote_rtcp_port: Option<u16>,
    pub ssrc: Option<u32>,
    pub pt: Option<u8>,
    /// The simulcast layer it relays (one forwarder per layer), if any.
    pub substream: Option<u8>,
    pub srtp: bool,
}

impl Forwarder {
    /// Janus's summary of a forwarder.
    pub fn summary(&self) -> Value {
        let mut m = serde_json::Map::new();
        m.insert("stream_id".into(), self.stream_id.into());
        m.insert("type".into(), self.kind.into());
        m.insert("host".into(), self.host.clone().into());
        m.insert("port".into(), self.port.into());
        if let Some(p) = self.local_rtcp_port {
            m.insert("local_rtcp_port".into(), p.into());
        }
        if let Some(p) = self.remote_rtcp_port {
            m.insert("remote_rtcp_port".into(), p.into());
        }
        if self.kind != MediaKind::Data {
            if let Some(s) = self.ssrc {
                m.insert("ssrc".into(), s.into());
            }
            if let Some(pt) = self.pt {
                m.insert("pt".into(), pt.into());
            }
            if let Some(l) = self.substream {
                m.insert("substream".into(), l.into());
            }
            m.insert("srtp".into(), self.srtp.into());
        }
        Value::Object(m)
    }
}

/// What an `rtp_forward` asks of the shell: the publisher, and each requested stream with the
/// publisher stream it takes (streams the publisher does not have are skipped, as Janus does).
#[derive(Debug)]
pub struct ForwardPlan {
    pub publisher: Who,
    pub pid: ParticipantId,
    pub streams: Vec<(ForwardStream, StreamInfo)>,
}

impl RoomState {
    /// Checks an `rtp_forward` (room secret, the publisher) and finds its streams.
    pub fn plan_forward(&self, f: &RtpForward) -> Result<ForwardPlan, VideoRoomError> {
        check_secret(self.config.secret.as_deref(), f.secret.as_deref(), "secret")?;
        let p = self
            .participants
            .get(&f.publisher_id)
            .ok_or_else(|| err(VideoRoomCode::NoSuchFeed, format!("No such feed ({})", f.publisher_id.0)))?;
        let published = p.published.as_ref().map(|pb| pb.streams.as_slice()).unwrap_or_default();
        let streams = f
            .streams
            .iter()
            .filter_map(|s| {
                let info = published.iter().find(|i| match &s.stream {
                    StreamRef::Mid(m) => i.mid == *m,
                    StreamRef::Kind(k) => i.kind == *k,
                })?;
                Some((s.clone(), info.clone()))
            })
            .collect();
        Ok(ForwardPlan { publisher: p.who, pid: f.publisher_id.clone(), streams })
    }

    /// Records the forwarders the shell started; the `rtp_forward` answer.
    pub fn forwarding(&mut self, pid: ParticipantId, started: Vec<Forwarder>) -> Value {
        let list: Vec<Value> = started.iter().map(Forwarder::summary).collect();
        self.forwarders.entry(pid.clone()).or_default().extend(started);
        json!({"videoroom": "rtp_forward", "room": &self.config.room, "publisher_id": &pid, "forwarders": list})
    }

    /// `stop_rtp_forward`: the answer, and the publisher whose forwarder the shell stops.
    pub fn stop_forward(
        &mut self,
        secret: Option<&str>,
        pid: ParticipantId,
        stream_id: u32,
    ) -> Result<(Value, Who), VideoRoomError> {
        check_secret(self.config.secret.as_deref(), secret, "secret")?;
        let who = self
            .participants
            .get(&pid)
            .map(|p| p.who)
            .ok_or_else(|| err(VideoRoomCode::NoSuchFeed, format!("No such feed ({})", pid.0)))?;
        let list = self.forwarders.get_mut(&pid);
        let found = list.as_ref().and_then(|l| l.iter().position(|f| f.stream_id == stream_id));
        let (Some(list), Some(i)) = (list, found) else {
            return Err(err(VideoRoomCode::NoSuchFeed, format!("No such stream ({stream_id})")));
        };
        list.remove(i);
        let room = self.config.room.clone();
        let data = json!({"videoroom": "stop_rtp_forward", "room": room, "publisher_id": &pid, "stream_id": stream_id});
        Ok((data, who))
    }

    /// `listforwarders`.
    pub fn list_forwarders(&self, secret: Option<&str>) -> Result<Value, VideoRoomError> {
        check_secret(self.config.secret.as_deref(), secret, "secret")?;
        let publishers: Vec<Value> = self
            .forwarders
            .iter()
            .filter(|(_, l)| !l.is_empty())
            .map(|(pid, l)| {
                let mut entry =
                    json!({"publisher_id": &pid, "forwarders": l.iter().map(Forwarder::summary).collect::<Vec<_>>()});
                if let Some(d) = self.participants.get(pid).and_then(|p| p.display.clone()) {
                    entry["display"] = d.into();
                }
                entry
            })
            .collect();
        Ok(json!({"videoroom": "forwarders", "room": &self.config.room, "publishers": publishers}))
    }

    /// A publisher stopped publishing (or left): its forwarders end with it.
    pub(super) fn drop_forwarders(&mut self, pid: ParticipantId, who: Who, out: &mut Outcome) {
        if self.forwarders.remove(&pid).is_some_and(|l| !l.is_empty()) {
            out.media.push(MediaAction::StopForwarders { who });
        }
    }
}
