//! The room shell's part of packet captures (the Admin API's `start_pcap`/`stop_pcap`): each
//! handle's capture switch, which every PeerConnection the handle has or builds later follows,
//! and its running capture. A capture ends when it is stopped, when its handle is detached and
//! when the room closes here.

use super::state::Who;
use super::RoomActor;
use crate::media::capture::{Capture, Follow, Switch};
use shared::janus::admin::{CaptureFormat, CaptureSpec};
use shared::wire::CaptureAnswer;
use tokio::sync::oneshot;

/// A handle's capture: the switch its PeerConnections follow, and the file while one runs.
pub(super) struct HandleCapture {
    switch: Switch,
    running: Option<Capture>,
}

impl HandleCapture {
    fn new() -> Self {
        Self { switch: Switch::new(None), running: None }
    }
}

impl RoomActor {
    /// What a new PeerConnection of `who` follows.
    pub(super) fn capture_follow(&mut self, who: Who) -> Follow {
        self.captures.entry(who).or_insert_with(HandleCapture::new).switch.subscribe()
    }

    /// Starts (`Some`) or stops `who`'s capture; a stop's receiver answers once the file has
    /// everything captured.
    pub(super) fn capture(
        &mut self,
        who: Who,
        start: Option<CaptureSpec>,
    ) -> (CaptureAnswer, Option<oneshot::Receiver<()>>) {
        if !self.state.knows(who) {
            return (CaptureAnswer::NoHandle, None);
        }
        let c = self.captures.entry(who).or_insert_with(HandleCapture::new);
        match start {
            Some(_) if c.running.is_some() => (CaptureAnswer::AlreadyStarted, None),
            Some(spec) => match Capture::start(&spec, &self.media.protected_folders, who.session.0, who.handle.0) {
                Ok((capture, sink)) => {
                    tracing::info!(file = capture.file(), format = spec.format.name(), "capture started");
                    c.running = Some(capture);
                    c.switch.send_replace(Some(sink));
                    (CaptureAnswer::Started, None)
                }
                Err(why) => (CaptureAnswer::CannotStart(why), None),
            },
            None => match c.running.take() {
                Some(capture) => {
                    c.switch.send_replace(None);
                    tracing::info!(file = capture.file(), "capture stopped");
                    (CaptureAnswer::Stopped, Some(capture.stop()))
                }
                None => (CaptureAnswer::NotStarted, None),
            },
        }
    }

    /// `who` joined with a capture kept for its handle: it runs here from now on, unless it
    /// does already. Nobody waits for the answer: a file that cannot be opened here is logged.
    pub(super) fn capture_joined(&mut self, who: Who, spec: CaptureSpec) {
        if let (CaptureAnswer::CannotStart(why), _) = self.capture(who, Some(spec)) {
            tracing::warn!(session = %who.session, handle = %who.handle, %why, "capture not started");
        }
    }

    /// `who`'s running capture: its format and file.
    pub(super) fn capture_info(&self, who: Who) -> Option<(CaptureFormat, String)> {
        let running = self.captures.get(&who)?.running.as_ref()?;
        Some((running.format(), running.file().to_owned()))
    }

    /// `who` is detached: its capture ends (its PeerConnections' taps let go of it).
    pub(super) fn forget_capture(&mut self, who: Who) {
        self.captures.remove(&who);
    }
}
