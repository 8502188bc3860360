//! Recording as the room decides it (Janus's rules): the room's `record` records every
//! publisher; a publisher's `publish`/`configure` turns its own recording on or off and names
//! its files (`filename`), only with the room secret when the room has `lock_record`;
//! `enable_recording` switches the room and everyone in it. The shell writes the files.

use super::{check_secret, MediaAction, Outcome, RoomState, Who};
use crate::media::sdp::StreamInfo;
use shared::ids::{ParticipantId, RoomId};
use shared::janus::errors::VideoRoomError;
use shared::janus::videoroom::{Configure, VideoRoomEvent as Event};

/// A publisher's recording to start: its streams and how to name their files.
#[derive(Clone, Debug, PartialEq)]
pub struct Recording {
    /// `<base>-<type>-<mindex>.mjr`, or Janus's `videoroom-<room>-user-<id>-<now>-<type>-<mindex>`.
    pub base: Option<String>,
    pub room: RoomId,
    pub id: ParticipantId,
    /// The room's `rec_dir` (else the node's).
    pub dir: Option<String>,
    pub streams: Vec<StreamInfo>,
}

impl RoomState {
    /// Applies a `publish`/`configure`'s `record` and `filename`; whether the publisher's
    /// recording switched.
    pub(super) fn set_recording(&mut self, pid: ParticipantId, c: &Configure) -> Result<bool, VideoRoomError> {
        if c.record.is_none() && c.filename.is_none() {
            return Ok(false);
        }
        if self.config.lock_record {
            check_secret(self.config.secret.as_deref(), c.secret.as_deref(), "secret")?;
        }
        let Some(p) = self.participants.get_mut(&pid) else { return Ok(false) };
        if let Some(f) = &c.filename {
            p.recording_base = Some(f.clone());
        }
        let before = p.recording;
        if let Some(r) = c.record {
            p.recording = r;
        }
        Ok(p.recording != before)
    }

    /// What recording `pid` (publishing now) takes, for the shell.
    pub(super) fn recording_of(&self, pid: ParticipantId) -> Option<Recording> {
        let p = self.participants.get(&pid)?;
        let published = p.published.as_ref()?;
        Some(Recording {
            base: p.recording_base.clone(),
            room: self.config.room.clone(),
            id: pid.clone(),
            dir: self.config.rec_dir.clone(),
            streams: published.streams.clone(),
        })
    }

    /// The shell's work for `pid`'s recording now being `on`.
    pub(super) fn record_action(&self, pid: ParticipantId, who: Who, on: bool) -> Option<MediaAction> {
        if !on {
            return Some(MediaAction::StopRecording { who });
        }
        self.recording_of(pid).map(|r| MediaAction::Record { who, recording: r })
    }

    /// A publisher's media is up: recorded when the room is, or when it asked to be.
    pub(super) fn record_if_asked(&mut self, pid: ParticipantId, who: Who, out: &mut Outcome) {
        let room_records = self.config.record;
        let Some(p) = self.participants.get_mut(&pid) else { return };
        if room_records || p.recording {
            p.recording = true;
            out.media.extend(self.record_action(pid, who, true));
        }
    }

    /// `enable_recording`: the room's `record`, and every publisher's recording with it.
    pub fn enable_recording(&mut self, secret: Option<&str>, record: bool) -> Result<(Event, Outcome), VideoRoomError> {
        check_secret(self.config.secret.as_deref(), secret, "secret")?;
        let mut out = Outcome::default();
        if self.config.record != record {
            self.config.record = record;
            let changed: Vec<(ParticipantId, Who)> = self
                .participants
                .iter_mut()
                .filter(|(_, p)| p.recording != record)
                .map(|(id, p)| {
                    p.recording = record;
                    (id.clone(), p.who)
                })
                .collect();
            for (pid, who) in changed {
                out.media.extend(self.record_action(pid, who, record));
            }
        }
        Ok((Event::Recording { record }, out))
    }
}
