//! RTP forwarders as the room keeps them: which publisher streams are forwarded where (for
//! `listforwarders` and `stop_rtp_forward`), checked as Janus checks the requests. The shell
//! opens the sockets and runs the forwarding; the room only records and answers.

use super::{check_secret, err, MediaAction, Outcome, RoomState, Who};
use crate::media::sdp::StreamInfo;
use shared::ids::ParticipantId;
use shared::janus::errors::{VideoRoomCode, VideoRoomError};
pub use shared::janus::videoroom::Forwarder;
use shared::janus::videoroom::{ForwardStream, PublisherForwarders, RtpForward, StreamRef, VideoRoomEvent as Event};

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
    pub fn forwarding(&mut self, pid: ParticipantId, started: Vec<Forwarder>) -> Event {
        self.forwarders.entry(pid.clone()).or_default().extend(started.iter().cloned());
        Event::RtpForward { room: self.config.room.clone(), publisher_id: pid, forwarders: started }
    }

    /// `stop_rtp_forward`: the answer, and the publisher whose forwarder the shell stops.
    pub fn stop_forward(
        &mut self,
        secret: Option<&str>,
        pid: ParticipantId,
        stream_id: u32,
    ) -> Result<(Event, Who), VideoRoomError> {
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
        let data = Event::StopRtpForward { room, publisher_id: pid, stream_id };
        Ok((data, who))
    }

    /// `listforwarders`.
    pub fn list_forwarders(&self, secret: Option<&str>) -> Result<Event, VideoRoomError> {
        check_secret(self.config.secret.as_deref(), secret, "secret")?;
        let publishers = self
            .forwarders
            .iter()
            .filter(|(_, l)| !l.is_empty())
            .map(|(pid, l)| PublisherForwarders {
                publisher_id: pid.clone(),
                display: self.participants.get(pid).and_then(|p| p.display.clone()),
                forwarders: l.clone(),
            })
            .collect();
        Ok(Event::Forwarders { room: self.config.room.clone(), publishers })
    }

    /// A publisher stopped publishing (or left): its forwarders end with it.
    pub(super) fn drop_forwarders(&mut self, pid: ParticipantId, who: Who, out: &mut Outcome) {
        if self.forwarders.remove(&pid).is_some_and(|l| !l.is_empty()) {
            out.media.push(MediaAction::StopForwarders { who });
        }
    }
}
