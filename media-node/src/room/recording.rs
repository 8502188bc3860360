//! The room shell's part of recording: one `.mjr` file per stream of a publisher, named as
//! Janus names them, inside the room's `rec_dir` (else the node's), written by recorder tasks on
//! the publisher's feeds; dropping them closes the files.

use super::state::{Recording, Who};
use super::RoomActor;
use crate::media::forwarder;
use crate::media::recorder::Track;
use shared::media::MediaKind;
use std::path::{Component, Path, PathBuf};

/// `base` inside `dir`; a name that climbs out of it (`..`, an absolute path) is refused, so a
/// client's `filename` cannot write elsewhere on the node.
fn inside(dir: &Path, base: &str) -> Option<PathBuf> {
    let rel = Path::new(base);
    rel.components().all(|c| matches!(c, Component::Normal(_))).then(|| dir.join(rel))
}

impl RoomActor {
    pub(super) fn start_recording(&mut self, who: Who, r: Recording) {
        let Some(publisher) = self.peers.get(&who) else { return };
        let dir = r.dir.as_deref().map(PathBuf::from).unwrap_or_else(|| self.media.rec_dir.clone());
        let now_us = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_micros());
        let base = r.base.clone().unwrap_or_else(|| format!("videoroom-{}-user-{}-{now_us}", r.room, r.id));
        let mut running = Vec::new();
        for s in &r.streams {
            let Some(path) = inside(&dir, &format!("{base}-{}-{}.mjr", s.kind, s.mindex)) else {
                tracing::warn!(filename = %base, "recording refused: the file name leaves the recordings folder");
                return;
            };
            let started = match s.kind {
                MediaKind::Data => forwarder::start_data_recording(publisher.data_origin(), &path),
                kind => {
                    let Some(origin) = publisher.origin(&s.mid) else { continue };
                    let track = if kind == MediaKind::Audio { Track::Audio } else { Track::Video };
                    let clock = s.clock_rate.unwrap_or(kind.default_clock_rate());
                    let codec = s.codec.as_deref().unwrap_or(kind.as_str());
                    forwarder::start_recording(origin, &path, track, codec, clock)
                }
            };
            match started {
                Ok(rec) => {
                    tracing::info!(file = %path.display(), "recording");
                    running.push(rec);
                }
                Err(e) => tracing::warn!(error = %e, "recording not started"),
            }
        }
        self.recordings.insert(who, running);
    }

    pub(super) fn stop_recording(&mut self, who: Who) {
        self.recordings.remove(&who);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_stay_in_the_recordings_folder() {
        let d = Path::new("/rec");
        assert_eq!(inside(d, "meeting-audio-0.mjr"), Some(PathBuf::from("/rec/meeting-audio-0.mjr")));
        assert_eq!(inside(d, "sub/meeting-video-1.mjr"), Some(PathBuf::from("/rec/sub/meeting-video-1.mjr")));
        assert_eq!(inside(d, "../etc/x-audio-0.mjr"), None);
        assert_eq!(inside(d, "/etc/x-audio-0.mjr"), None);
    }
}
