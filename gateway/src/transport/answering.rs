//! A WebSocket connection's rule for events read while one of its requests is in flight.
//!
//! A request's own step may queue events its reply announces (a `detach` queues `detached`
//! with the handle's removal), and a session's wake-up can reach the connection before the
//! reply does: the events of the session a request is for, read while it is handled, wait
//! for its reply. Other sessions' events are not held up.

use bytes::Bytes;
use shared::ids::SessionId;

#[derive(Default)]
pub(super) struct Answering {
    /// The session the request in flight is for.
    session: Option<SessionId>,
    waiting: Vec<Bytes>,
}

impl Answering {
    /// A request for `session` (none: the root, or refused) is being handled.
    pub(super) fn start(&mut self, session: Option<SessionId>) {
        self.session = session;
    }

    /// `events` read from `sid`'s mailbox: those to write now, in order (none while the
    /// request for `sid` is in flight; they are kept).
    pub(super) fn read(&mut self, sid: SessionId, events: Vec<Bytes>) -> Vec<Bytes> {
        if self.session == Some(sid) {
            self.waiting.extend(events);
            return Vec::new();
        }
        events
    }

    /// The request's reply is written: the events kept for it, in order.
    pub(super) fn answered(&mut self) -> Vec<Bytes> {
        self.session = None;
        std::mem::take(&mut self.waiting)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_of_the_session_answered_wait_for_the_reply_others_do_not() {
        let (s, other) = (SessionId(1), SessionId(2));
        let ev = |b: &'static str| Bytes::from_static(b.as_bytes());
        let mut a = Answering::default();
        a.start(Some(s));
        assert!(a.read(s, vec![ev("detached")]).is_empty());
        assert_eq!(a.read(other, vec![ev("elsewhere")]), vec![ev("elsewhere")]);
        assert!(a.read(s, vec![ev("next")]).is_empty());
        assert_eq!(a.answered(), vec![ev("detached"), ev("next")]);
        assert_eq!(a.read(s, vec![ev("later")]), vec![ev("later")], "nothing in flight: written at once");
        a.start(None);
        assert_eq!(a.read(s, vec![ev("root")]), vec![ev("root")]);
        assert!(a.answered().is_empty());
    }
}
