//! The room's own requests, answered by the room rather than a participant: `edit`, `destroy`,
//! `listparticipants`, `allowed`, `moderate` and `kick`.

use super::{check_secret, err, MediaAction, Membership, Outcome, Published, RoomState};
use shared::ids::ParticipantId;
use shared::janus::errors::{VideoRoomCode, VideoRoomError};
use shared::janus::videoroom::{AllowedAction, Departure, EditRoom, ParticipantEntry, VideoRoomEvent as Event};
use shared::media::Mid;

impl RoomState {
    pub fn edit(&mut self, e: &EditRoom) -> Result<Event, VideoRoomError> {
        if e.permanent {
            return Err(err(VideoRoomCode::UnknownError, "No configuration file, can't edit room permanently"));
        }
        check_secret(self.config.secret.as_deref(), e.secret.as_deref(), "secret")?;
        self.config.apply_edit(e);
        Ok(Event::Edited { room: self.config.room.clone(), permanent: false })
    }

    /// Destroys the room: every participant hears `destroyed`.
    pub fn destroy(&mut self, secret: Option<&str>, permanent: bool) -> Result<(Event, Outcome), VideoRoomError> {
        if permanent {
            return Err(err(VideoRoomCode::UnknownError, "No configuration file, can't destroy room permanently"));
        }
        check_secret(self.config.secret.as_deref(), secret, "secret")?;
        let room = &self.config.room.clone();
        let mut out = Outcome::default();
        for p in std::mem::take(&mut self.participants).into_values() {
            if p.published.is_some() || p.publishing {
                out.media.push(MediaAction::Close { who: p.who });
            }
            out = out.notice(p.who, None, Event::Destroyed { room: room.clone(), permanent: None });
            out.membership.push(Membership::Left(p.who));
        }
        self.slots.clear();
        Ok((Event::Destroyed { room: room.clone(), permanent: Some(false) }, out))
    }

    pub fn list_participants(&self) -> Event {
        let participants = self
            .participants
            .iter()
            .map(|(id, p)| ParticipantEntry {
                id: id.clone(),
                display: p.display.clone(),
                metadata: p.metadata.clone(),
                publisher: p.published.is_some(),
                remote: p.who.is_remote(),
                talking: p.published.as_ref().filter(|pb| pb.has_audio_levels()).map(Published::is_talking),
            })
            .collect();
        Event::Participants { room: self.config.room.clone(), participants }
    }

    pub fn allowed(
        &mut self,
        secret: Option<&str>,
        action: AllowedAction,
        tokens: Option<&[String]>,
    ) -> Result<Event, VideoRoomError> {
        check_secret(self.config.secret.as_deref(), secret, "secret")?;
        match action {
            AllowedAction::Enable => self.config.check_allowed = true,
            AllowedAction::Disable => self.config.check_allowed = false,
            AllowedAction::Add => {
                for t in tokens.unwrap_or_default() {
                    if !self.config.allowed.contains(t) {
                        self.config.allowed.push(t.clone());
                    }
                }
            }
            AllowedAction::Remove => {
                let remove = tokens.unwrap_or_default();
                self.config.allowed.retain(|t| !remove.contains(t));
            }
        }
        let allowed = (action != AllowedAction::Disable).then(|| self.config.allowed.clone());
        Ok(Event::Allowed { room: self.config.room.clone(), allowed })
    }

    /// `moderate`: a publisher's stream (`mid`) muted or unmuted for everyone; every participant,
    /// the publisher included, hears it.
    pub fn moderate(
        &mut self,
        secret: Option<&str>,
        id: ParticipantId,
        mid: &str,
        mute: bool,
    ) -> Result<(Event, Outcome), VideoRoomError> {
        check_secret(self.config.secret.as_deref(), secret, "secret")?;
        let room = &self.config.room.clone();
        let p = self
            .participants
            .get(&id)
            .ok_or_else(|| err(VideoRoomCode::NoSuchFeed, format!("No such user {id} in room {room}")))?;
        let stream = p.published.as_ref().and_then(|pb| pb.streams.iter().find(|s| s.mid == mid));
        let stream = stream.ok_or_else(|| err(VideoRoomCode::NoSuchFeed, format!("No such stream {mid}")))?;
        let mut out = Outcome::default();
        out.media.push(MediaAction::Mute { who: p.who, mid: stream.mid.clone(), muted: mute });
        if let Some(published) = self.participants.get_mut(&id).and_then(|p| p.published.as_mut()) {
            let mid = Mid::new(mid);
            if mute {
                published.moderated.insert(mid);
            } else {
                published.moderated.remove(&mid);
            }
        }
        let ev = Event::Moderation { room: room.clone(), id: id.clone(), mid: Mid::new(mid), muted: mute };
        for other in self.participants.values() {
            out = out.notice(other.who, None, ev.clone());
        }
        Ok((Event::Success, out))
    }

    pub fn kick(&mut self, secret: Option<&str>, id: ParticipantId) -> Result<(Event, Outcome), VideoRoomError> {
        check_secret(self.config.secret.as_deref(), secret, "secret")?;
        if !self.participants.contains_key(&id) {
            return Err(err(VideoRoomCode::NoSuchFeed, format!("No such user {id} in room {}", self.config.room)));
        }
        let out = self.depart(id, Departure::Kicked, None);
        Ok((Event::Success, out))
    }
}
