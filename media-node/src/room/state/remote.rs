//! Remote publishers and remotizations, as the room keeps them: a remote publisher is a
//! participant with no handle (its stand-in [`Who::remote`] gets no events) whose streams are
//! announced like any publisher's; a remotization is a local publisher's `publish_remotely`
//! (its streams sent to another server), kept so that it resumes when the publisher publishes
//! again, as Janus keeps it.

use super::publishing::Published;
use super::{check_secret, err, Outcome, Participant, RoomState, Slot, StreamList, Who};
use crate::media::sdp::{OpusFlags, StreamInfo};
use shared::ids::{HandleId, ParticipantId, SessionId};
use shared::janus::errors::{VideoRoomCode, VideoRoomError};
use shared::janus::videoroom::{
    Departure, PublishRemotely, RemoteEntry, RemotePublisher, RemoteRef, RemoteStream, VideoRoomEvent as Event,
};
use shared::media::{ExtensionIds, Mid};

/// Where a local publisher's streams are sent by `publish_remotely`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Remotization {
    pub host: String,
    pub port: u16,
    pub rtcp_port: Option<u16>,
}

impl Who {
    /// A remote publisher's stand-in: no session (0 is never a Janus session id) and its
    /// participant id in place of a handle.
    pub fn remote(id: ParticipantId) -> Self {
        Who { session: SessionId(0), handle: HandleId(id.0.stable_u64()) }
    }

    pub fn is_remote(&self) -> bool {
        self.session.0 == 0
    }
}

/// A remote stream as the room announces it.
fn stream_info(s: &RemoteStream) -> StreamInfo {
    StreamInfo {
        kind: s.kind,
        mindex: s.mindex,
        mid: s.mid.clone(),
        codec: s.codec.clone(),
        pt: None,
        clock_rate: None,
        // Only whether there are layers counts here (they arrive by SSRC, not rid).
        rids: if s.simulcast { vec!["0".into(), "1".into(), "2".into()] } else { Vec::new() },
        track_id: None,
        // No talk detection on a remote publisher's audio: its level is relayed, not watched.
        extensions: ExtensionIds { audio_level: None, ..s.extensions },
        opus: OpusFlags { stereo: s.stereo, fec: s.fec, dtx: s.dtx },
        description: s.description.clone(),
        disabled: s.disabled,
        svc: s.svc,
        codecs: s.codec.iter().cloned().collect(),
        fmtp: None,
    }
}

impl RoomState {
    /// `add_remote_publisher`'s checks (the room secret; the id asked for must be free): the id
    /// the remote publisher gets.
    pub fn plan_remote_publisher(&mut self, r: &RemotePublisher) -> Result<ParticipantId, VideoRoomError> {
        check_secret(self.config.secret.as_deref(), r.secret.as_deref(), "secret")?;
        match &r.id {
            Some(id) if self.participants.contains_key(id) => {
                Err(err(VideoRoomCode::IdExists, format!("User ID {id} already exists")))
            }
            Some(id) => Ok(id.clone()),
            None => Ok(self.fresh(|s, i| s.participants.contains_key(i))),
        }
    }

    /// The remote publisher `id` receives: it joins, publishing `streams`, and the others are
    /// told (`publishers`), as for a local publisher.
    pub fn remote_publisher_added(
        &mut self,
        id: ParticipantId,
        r: &RemotePublisher,
        (port, rtcp_port): (u16, u16),
    ) -> (Event, Outcome) {
        let who = Who::remote(id.clone());
        let published = Published::new(r.streams.iter().map(stream_info).collect());
        let participant = Participant {
            who,
            private_id: ParticipantId::num(0),
            display: r.display.clone(),
            metadata: None,
            published: Some(published),
            publishing: false,
            descriptions: Vec::new(),
            recording: false,
            recording_base: None,
            talk: (0, 0),
            remotes: Default::default(),
        };
        let entry = participant.publisher_entry(id.clone(), StreamList::Announced, self.config.opus_fec);
        self.participants.insert(id.clone(), participant);
        self.slots.insert(who, Slot::Publisher(id.clone()));
        let mut out = Outcome::default();
        self.announce(who, entry, &mut out);
        (Event::RemotePublisherAdded { room: self.config.room.clone(), id, port, rtcp_port }, out)
    }

    /// `remove_remote_publisher`: it leaves (the others hear `leaving`).
    pub fn remove_remote_publisher(
        &mut self,
        secret: Option<&str>,
        id: ParticipantId,
    ) -> Result<(Event, Outcome), VideoRoomError> {
        check_secret(self.config.secret.as_deref(), secret, "secret")?;
        if !self.participants.get(&id).is_some_and(|p| p.who.is_remote()) {
            return Err(err(VideoRoomCode::NoSuchFeed, format!("No such remote publisher ({id})")));
        }
        Ok((Event::Success, self.depart(id, Departure::Leaving, None)))
    }

    /// `update_remote_publisher`: a new display name, new descriptions or `disabled` flags for
    /// its streams (named by mid), and streams it did not have (named, as Janus names them, by
    /// their m-line index, which may be at most one past the last; others are skipped, as
    /// Janus does); a change to the streams is announced again (`publishers`). The streams
    /// added are returned, for the shell to receive them.
    pub fn update_remote_publisher(
        &mut self,
        r: &RemotePublisher,
    ) -> Result<(Event, Outcome, Vec<RemoteStream>), VideoRoomError> {
        check_secret(self.config.secret.as_deref(), r.secret.as_deref(), "secret")?;
        let id = r.id.clone().unwrap_or(ParticipantId::num(0));
        let p = match self.participants.get_mut(&id) {
            Some(p) if p.who.is_remote() => p,
            _ => return Err(err(VideoRoomCode::NoSuchFeed, format!("No such remote publisher ({id})"))),
        };
        let Some(published) = p.published.as_mut() else {
            return Ok((Event::Success, Outcome::default(), Vec::new()));
        };
        if let Some(d) = &r.display {
            p.display = Some(d.clone());
        }
        let mut changed = false;
        let mut added = Vec::new();
        for s in &r.streams {
            let Some(x) = published.streams.iter_mut().find(|x| x.mid == s.mid) else {
                let next = published.streams.iter().map(|x| x.mindex + 1).max().unwrap_or(0);
                if s.mindex > next + 1 || published.streams.iter().any(|x| x.mindex == s.mindex) {
                    continue;
                }
                let new = RemoteStream { mid: Mid::from(s.mindex.to_string()), ..s.clone() };
                published.streams.push(stream_info(&new));
                added.push(new);
                changed = true;
                continue;
            };
            if x.description.is_none() || (s.description.is_some() && s.description != x.description) {
                changed |= x.description != s.description;
                x.description = s.description.clone();
            }
            if s.disabled != x.disabled {
                x.disabled = s.disabled;
                changed = true;
            }
        }
        let mut out = Outcome::default();
        if changed {
            let entry = p.publisher_entry(id, StreamList::Announced, self.config.opus_fec);
            let who = p.who;
            self.announce(who, entry, &mut out);
        }
        Ok((Event::Success, out, added))
    }

    /// `publish_remotely`'s checks: the secret, a local publisher, a new remote id; its handle.
    pub fn plan_remotize(&self, p: &PublishRemotely) -> Result<Who, VideoRoomError> {
        check_secret(self.config.secret.as_deref(), p.secret.as_deref(), "secret")?;
        let id = &p.publisher_id.clone();
        let participant =
            self.participants.get(id).ok_or_else(|| err(VideoRoomCode::NoSuchFeed, format!("No such feed ({id})")))?;
        if participant.who.is_remote() {
            return Err(err(VideoRoomCode::InvalidElement, "Only local publishers can be remotized"));
        }
        if participant.remotes.contains_key(&p.remote_id) {
            return Err(err(VideoRoomCode::IdExists, format!("Remotization already exists ({})", p.remote_id)));
        }
        Ok(participant.who)
    }

    /// Records a remotization the shell started; the `publish_remotely` answer.
    pub fn remotized(&mut self, p: &PublishRemotely) -> Event {
        let r = Remotization { host: p.host.clone(), port: p.port, rtcp_port: p.rtcp_port };
        if let Some(participant) = self.participants.get_mut(&p.publisher_id) {
            participant.remotes.insert(p.remote_id.clone(), r);
        }
        let (room, id, remote_id) = (self.config.room.clone(), p.publisher_id.clone(), Some(p.remote_id.clone()));
        Event::Remote { room, id, remote_id }
    }

    /// `unpublish_remotely`: the answer, and the publisher whose remotization the shell stops.
    pub fn unremotize(&mut self, r: &RemoteRef) -> Result<(Event, Who), VideoRoomError> {
        check_secret(self.config.secret.as_deref(), r.secret.as_deref(), "secret")?;
        let id = &r.publisher_id.clone();
        let remote_id = r.remote_id.as_deref().unwrap_or_default();
        let p = self
            .participants
            .get_mut(id)
            .ok_or_else(|| err(VideoRoomCode::NoSuchFeed, format!("No such publisher ({id})")))?;
        if p.remotes.remove(remote_id).is_none() {
            return Err(err(VideoRoomCode::NoSuchFeed, format!("No such remotization ({remote_id})")));
        }
        Ok((Event::Remote { room: self.config.room.clone(), id: id.clone(), remote_id: None }, p.who))
    }

    /// `listremotes`.
    pub fn list_remotes(&self, r: &RemoteRef) -> Result<Event, VideoRoomError> {
        check_secret(self.config.secret.as_deref(), r.secret.as_deref(), "secret")?;
        let id = &r.publisher_id.clone();
        let p = self
            .participants
            .get(id)
            .ok_or_else(|| err(VideoRoomCode::NoSuchFeed, format!("No such publisher ({id})")))?;
        let list = p
            .remotes
            .iter()
            .map(|(remote_id, r)| RemoteEntry {
                remote_id: remote_id.clone(),
                host: r.host.clone(),
                port: r.port,
                rtcp_port: r.rtcp_port,
            })
            .collect();
        Ok(Event::Remotes { room: self.config.room.clone(), id: id.clone(), list })
    }

    /// Where `who`'s streams are remotized to (to start again when it publishes).
    pub fn remotizations(&self, who: Who) -> Vec<(String, Remotization)> {
        match self.slots.get(&who) {
            Some(Slot::Publisher(pid)) => self
                .participants
                .get(pid)
                .map(|p| p.remotes.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default(),
            _ => Vec::new(),
        }
    }
}
