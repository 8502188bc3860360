//! The VideoRoom state machine of one room, without I/O: membership, ids, access checks and the
//! events each transition produces. `RoomActor` is a thin shell around it.

use serde_json::Value;
use shared::ids::{HandleId, ParticipantId, SessionId};
use shared::janus::errors::{VideoRoomCode, VideoRoomError};
use shared::janus::videoroom::{
    self as vr, AllowedAction, AsyncName, AsyncRequest, Departure, EditRoom, Join, ParticipantView, Ptype,
    PublisherJoin, RoomConfig,
};
use shared::wire::GoneReason;
use std::collections::{BTreeMap, HashMap, HashSet};

/// A handle, as the room knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Who {
    pub session: SessionId,
    pub handle: HandleId,
}

/// A plugin event for one handle; `transaction` is set when it answers that handle's request.
#[derive(Clone, Debug, PartialEq)]
pub struct Notice {
    pub to: Who,
    pub transaction: Option<String>,
    pub data: Value,
}

/// A change the shell must mirror outside (handle binding in the store).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Membership {
    Joined(Who),
    Left(Who),
    /// A join that failed: the handle was routed here but is not a member.
    Rejected(Who),
}

/// What a transition produced.
#[derive(Debug, Default, PartialEq)]
pub struct Outcome {
    pub notices: Vec<Notice>,
    pub membership: Vec<Membership>,
}

impl Outcome {
    fn notice(mut self, to: Who, transaction: Option<&str>, data: Value) -> Self {
        self.notices.push(Notice { to, transaction: transaction.map(str::to_owned), data });
        self
    }
}

#[derive(Clone, Debug)]
struct Participant {
    who: Who,
    private_id: ParticipantId,
    display: Option<String>,
    metadata: Option<Value>,
    /// Publishing media (set by the media issue's `publish`).
    publishing: bool,
}

/// What a handle is in this room.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Slot {
    Publisher(ParticipantId),
    /// Left or was kicked: Janus requires a new handle to join again.
    Gone,
}

pub struct RoomState {
    config: RoomConfig,
    participants: BTreeMap<ParticipantId, Participant>,
    slots: HashMap<Who, Slot>,
    private_ids: HashSet<ParticipantId>,
    /// Id source, injectable so tests are deterministic.
    next_id: Box<dyn FnMut() -> u64 + Send>,
}

fn err(code: VideoRoomCode, reason: impl Into<String>) -> VideoRoomError {
    VideoRoomError::new(code, reason)
}

/// Janus's `JANUS_CHECK_SECRET`: no secret configured means no check.
fn check_secret(expected: Option<&str>, given: Option<&str>, member: &str) -> Result<(), VideoRoomError> {
    match (expected, given) {
        (None, _) => Ok(()),
        (Some(_), None) => Err(err(VideoRoomCode::MissingElement, format!("Missing mandatory element ({member})"))),
        (Some(e), Some(g)) if constant_time_eq(e.as_bytes(), g.as_bytes()) => Ok(()),
        (Some(_), Some(_)) => Err(err(VideoRoomCode::Unauthorized, format!("Unauthorized (wrong {member})"))),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Media requests arrive with the media issue; until then they fail loudly, never silently.
pub fn media_unavailable(name: AsyncName) -> VideoRoomError {
    err(
        VideoRoomCode::UnknownError,
        format!(
            "Request '{}' needs media, which this Portunus build does not provide yet",
            format!("{name:?}").to_ascii_lowercase()
        ),
    )
}

impl RoomState {
    pub fn new(config: RoomConfig) -> Self {
        Self::with_ids(config, Box::new(shared::ids::random_id))
    }

    pub fn with_ids(config: RoomConfig, next_id: Box<dyn FnMut() -> u64 + Send>) -> Self {
        Self { config, participants: BTreeMap::new(), slots: HashMap::new(), private_ids: HashSet::new(), next_id }
    }

    pub fn config(&self) -> &RoomConfig {
        &self.config
    }

    /// Participants as Janus counts them for `list` (publisher-type participants).
    pub fn participant_count(&self) -> u64 {
        self.participants.len() as u64
    }

    /// Handles that have joined and not left.
    pub fn members(&self) -> Vec<Who> {
        self.participants.values().map(|p| p.who).collect()
    }

    /// An asynchronous request from `who`; errors become an error event for that request.
    pub fn on_async(
        &mut self,
        who: Who,
        txn: &str,
        name: AsyncName,
        parsed: Result<AsyncRequest, VideoRoomError>,
    ) -> Outcome {
        match self.handle_async(who, txn, name, parsed) {
            Ok(o) => o,
            Err(e) => {
                let mut out = Outcome::default().notice(who, Some(txn), vr::error(&e));
                if !self.slots.contains_key(&who) {
                    out.membership.push(Membership::Rejected(who));
                }
                out
            }
        }
    }

    fn handle_async(
        &mut self,
        who: Who,
        txn: &str,
        name: AsyncName,
        parsed: Result<AsyncRequest, VideoRoomError>,
    ) -> Result<Outcome, VideoRoomError> {
        match self.slots.get(&who).copied() {
            None => {
                if !name.is_join() {
                    return Err(err(VideoRoomCode::JoinFirst, "Invalid request on unconfigured participant"));
                }
                match parsed? {
                    AsyncRequest::Join(j) => self.join(who, txn, j),
                    AsyncRequest::Media(n) => Err(media_unavailable(n)),
                    _ => Err(err(VideoRoomCode::JoinFirst, "Invalid request on unconfigured participant")),
                }
            }
            Some(Slot::Gone) => Err(if name.is_join() {
                err(VideoRoomCode::AlreadyJoined, "Not in a room (create a new handle)")
            } else {
                err(VideoRoomCode::NoSuchRoom, "No such room")
            }),
            Some(Slot::Publisher(pid)) => match name {
                AsyncName::Join | AsyncName::JoinAndConfigure => {
                    Err(err(VideoRoomCode::AlreadyJoined, "Already in as a publisher on this handle"))
                }
                AsyncName::Leave => Ok(self.depart(pid, Departure::Leaving, Some(txn))),
                AsyncName::Unpublish => {
                    let publishing = self.participants.get(&pid).is_some_and(|p| p.publishing);
                    if !publishing {
                        return Err(err(VideoRoomCode::NotPublished, "Can't unpublish, not published"));
                    }
                    Err(media_unavailable(name))
                }
                AsyncName::Configure | AsyncName::Publish => Err(media_unavailable(name)),
                _ => Err(err(
                    VideoRoomCode::InvalidRequest,
                    format!("Unknown request '{}'", format!("{name:?}").to_ascii_lowercase()),
                )),
            },
        }
    }

    fn join(&mut self, who: Who, txn: &str, j: Join) -> Result<Outcome, VideoRoomError> {
        check_secret(self.config.pin.as_deref(), j.pin.as_deref(), "pin")?;
        let publisher = match j.ptype? {
            Ptype::Publisher(p) => p?,
            Ptype::Subscriber => {
                return Err(err(
                    VideoRoomCode::UnknownError,
                    "Subscribing needs media, which this Portunus build does not provide yet",
                ))
            }
        };
        if self.config.check_allowed && !j.token.as_ref().is_some_and(|t| self.config.allowed.contains(t)) {
            return Err(err(VideoRoomCode::Unauthorized, "Unauthorized (not in the allowed list)"));
        }
        let PublisherJoin { id, display, metadata } = publisher;
        if let Some(id) = id {
            if self.participants.contains_key(&id) {
                return Err(err(VideoRoomCode::IdExists, format!("User ID {id} already exists")));
            }
        }
        let id = id.unwrap_or_else(|| self.fresh(|s, i| s.participants.contains_key(&i)));
        let private_id = self.fresh(|s, i| s.private_ids.contains(&i));
        let mut out = Outcome::default();
        let publishers: Vec<Value> = Vec::new(); // Nobody publishes media before the media issue.
        let attendees = self.config.notify_joining.then(|| {
            self.participants
                .iter()
                .filter(|(_, p)| !p.publishing)
                .map(|(id, p)| vr::attendee(*id, p.display.as_deref(), p.metadata.as_ref()))
                .collect::<Vec<_>>()
        });
        let joined = vr::joined(vr::Joined {
            room: self.config.room,
            description: &self.config.description,
            id,
            private_id,
            publishers,
            attendees,
        });
        out = out.notice(who, Some(txn), joined);
        if self.config.notify_joining {
            let ev = vr::joining(self.config.room, vr::attendee(id, display.as_deref(), metadata.as_ref()));
            for p in self.participants.values() {
                out = out.notice(p.who, None, ev.clone());
            }
        }
        self.private_ids.insert(private_id);
        self.participants.insert(id, Participant { who, private_id, display, metadata, publishing: false });
        self.slots.insert(who, Slot::Publisher(id));
        out.membership.push(Membership::Joined(who));
        Ok(out)
    }

    fn fresh(&mut self, taken: impl Fn(&Self, ParticipantId) -> bool) -> ParticipantId {
        loop {
            let id = ParticipantId((self.next_id)());
            if id.0 != 0 && !taken(self, id) {
                return id;
            }
        }
    }

    /// Removes a participant and tells everyone; `txn` answers the participant's own `leave`.
    fn depart(&mut self, pid: ParticipantId, how: Departure, txn: Option<&str>) -> Outcome {
        let mut out = Outcome::default();
        let Some(p) = self.participants.remove(&pid) else { return out };
        self.private_ids.remove(&p.private_id);
        self.slots.insert(p.who, Slot::Gone);
        let room = self.config.room;
        match how {
            Departure::Kicked => out = out.notice(p.who, None, vr::leaving_ok(room, true)),
            _ if txn.is_some() => out = out.notice(p.who, txn, vr::leaving_ok(room, false)),
            _ => {}
        }
        let ev = vr::departed(room, how, pid, p.display.as_deref(), p.metadata.as_ref());
        for other in self.participants.values() {
            out = out.notice(other.who, None, ev.clone());
        }
        out.membership.push(Membership::Left(p.who));
        out
    }

    /// The handle's PeerConnection or the handle itself is gone.
    pub fn on_gone(&mut self, who: Who, reason: GoneReason) -> Outcome {
        match (self.slots.get(&who).copied(), reason) {
            (Some(Slot::Publisher(pid)), GoneReason::Detached) => {
                let out = self.depart(pid, Departure::Leaving, None);
                self.slots.remove(&who);
                out
            }
            (_, GoneReason::Detached) => {
                self.slots.remove(&who);
                Outcome::default()
            }
            // Without media there is no PeerConnection to close.
            (_, GoneReason::Hangup) => Outcome::default(),
        }
    }

    pub fn edit(&mut self, e: &EditRoom) -> Result<Value, VideoRoomError> {
        if e.permanent {
            return Err(err(VideoRoomCode::UnknownError, "No configuration file, can't edit room permanently"));
        }
        check_secret(self.config.secret.as_deref(), e.secret.as_deref(), "secret")?;
        self.config.apply_edit(e);
        Ok(vr::edited(self.config.room, false))
    }

    /// Destroys the room: every participant hears `destroyed`.
    pub fn destroy(&mut self, secret: Option<&str>, permanent: bool) -> Result<(Value, Outcome), VideoRoomError> {
        if permanent {
            return Err(err(VideoRoomCode::UnknownError, "No configuration file, can't destroy room permanently"));
        }
        check_secret(self.config.secret.as_deref(), secret, "secret")?;
        let room = self.config.room;
        let mut out = Outcome::default();
        for p in std::mem::take(&mut self.participants).into_values() {
            out = out.notice(p.who, None, vr::destroyed(room, None));
            out.membership.push(Membership::Left(p.who));
        }
        self.slots.clear();
        Ok((vr::destroyed(room, Some(false)), out))
    }

    pub fn list_participants(&self) -> Value {
        let list: Vec<ParticipantView<'_>> = self
            .participants
            .iter()
            .map(|(id, p)| ParticipantView {
                id: *id,
                display: p.display.as_deref(),
                metadata: p.metadata.as_ref(),
                publisher: p.publishing,
            })
            .collect();
        vr::participants(self.config.room, &list)
    }

    pub fn allowed(
        &mut self,
        secret: Option<&str>,
        action: AllowedAction,
        tokens: Option<&[String]>,
    ) -> Result<Value, VideoRoomError> {
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
        let list = (action != AllowedAction::Disable).then(|| self.config.allowed.clone());
        Ok(vr::allowed(self.config.room, list))
    }

    pub fn kick(&mut self, secret: Option<&str>, id: ParticipantId) -> Result<(Value, Outcome), VideoRoomError> {
        check_secret(self.config.secret.as_deref(), secret, "secret")?;
        if !self.participants.contains_key(&id) {
            return Err(err(VideoRoomCode::NoSuchFeed, format!("No such user {id} in room {}", self.config.room)));
        }
        let out = self.depart(id, Departure::Kicked, None);
        Ok((vr::success(), out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use shared::ids::RoomId;

    fn room(opts: Value) -> RoomState {
        let m = opts.as_object().cloned().unwrap_or_default();
        let cfg = RoomConfig::from_create(&m, RoomId(5)).unwrap();
        let mut n = 100;
        RoomState::with_ids(
            cfg,
            Box::new(move || {
                n += 1;
                n
            }),
        )
    }

    fn who(h: u64) -> Who {
        Who { session: SessionId(h * 10), handle: HandleId(h) }
    }

    fn join(display: &str) -> Result<AsyncRequest, VideoRoomError> {
        Ok(AsyncRequest::Join(Join {
            room: RoomId(5),
            pin: None,
            token: None,
            ptype: Ok(Ptype::Publisher(Ok(PublisherJoin { id: None, display: Some(display.into()), metadata: None }))),
        }))
    }

    #[test]
    fn join_then_leave_notifies_the_others() {
        let mut r = room(json!({}));
        let a = r.on_async(who(1), "t1", AsyncName::Join, join("alice"));
        assert_eq!(a.notices.len(), 1);
        assert_eq!(a.notices[0].data["videoroom"], "joined");
        assert_eq!(a.notices[0].data["id"], 101);
        assert_eq!(a.membership, vec![Membership::Joined(who(1))]);
        r.on_async(who(2), "t2", AsyncName::Join, join("bob"));
        assert_eq!(r.participant_count(), 2);
        let l = r.on_async(who(1), "t3", AsyncName::Leave, Ok(AsyncRequest::Leave));
        assert_eq!(
            l.notices[0],
            Notice {
                to: who(1),
                transaction: Some("t3".into()),
                data: json!({"videoroom":"event","room":5,"leaving":"ok"})
            }
        );
        assert_eq!(l.notices[1].data, json!({"videoroom":"event","room":5,"display":"alice","leaving":101}));
        assert_eq!(l.notices[1].to, who(2));
        // Joining again on the same handle is refused like Janus.
        let again = r.on_async(who(1), "t4", AsyncName::Join, join("alice"));
        assert_eq!(again.notices[0].data["error_code"], 425);
    }

    #[test]
    fn requests_before_join_and_double_join_fail() {
        let mut r = room(json!({}));
        let o = r.on_async(who(1), "t", AsyncName::Leave, Ok(AsyncRequest::Leave));
        assert_eq!(o.notices[0].data["error_code"], 424);
        r.on_async(who(1), "t", AsyncName::Join, join("a"));
        let o = r.on_async(who(1), "t", AsyncName::Join, join("a"));
        assert_eq!(o.notices[0].data["error"], "Already in as a publisher on this handle");
    }

    #[test]
    fn pin_allowed_list_and_id_conflicts_are_enforced() {
        let mut r = room(json!({"pin": "1234", "allowed": ["tok"]}));
        let mut j = |pin: Option<&str>, token: Option<&str>, id: Option<u64>| {
            let req = Ok(AsyncRequest::Join(Join {
                room: RoomId(5),
                pin: pin.map(Into::into),
                token: token.map(Into::into),
                ptype: Ok(Ptype::Publisher(Ok(PublisherJoin {
                    id: id.map(ParticipantId),
                    display: None,
                    metadata: None,
                }))),
            }));
            let h = rand_handle();
            r.on_async(who(h), "t", AsyncName::Join, req).notices[0].data.clone()
        };
        assert_eq!(j(None, Some("tok"), None)["error"], "Missing mandatory element (pin)");
        assert_eq!(j(Some("x"), Some("tok"), None)["error"], "Unauthorized (wrong pin)");
        assert_eq!(j(Some("1234"), None, None)["error"], "Unauthorized (not in the allowed list)");
        assert_eq!(j(Some("1234"), Some("tok"), Some(7))["id"], 7);
        assert_eq!(j(Some("1234"), Some("tok"), Some(7))["error_code"], 436);
    }

    fn rand_handle() -> u64 {
        shared::ids::random_id() % 1_000_000 + 10
    }

    #[test]
    fn notify_joining_sends_joining_and_attendees() {
        let mut r = room(json!({"notify_joining": true}));
        r.on_async(who(1), "t", AsyncName::Join, join("alice"));
        let o = r.on_async(who(2), "t", AsyncName::Join, join("bob"));
        assert_eq!(o.notices[0].data["attendees"], json!([{"id": 101, "display": "alice"}]));
        assert_eq!(o.notices[1].to, who(1));
        assert_eq!(o.notices[1].data, json!({"videoroom":"event","room":5,"joining":{"id":103,"display":"bob"}}));
    }

    #[test]
    fn destroy_and_kick_check_the_secret() {
        let mut r = room(json!({"secret": "s"}));
        r.on_async(who(1), "t", AsyncName::Join, join("alice"));
        r.on_async(who(2), "t", AsyncName::Join, join("bob"));
        assert_eq!(r.kick(None, ParticipantId(101)).unwrap_err().code, VideoRoomCode::MissingElement);
        assert_eq!(r.kick(Some("x"), ParticipantId(101)).unwrap_err().code, VideoRoomCode::Unauthorized);
        assert_eq!(r.kick(Some("s"), ParticipantId(9)).unwrap_err().reason, "No such user 9 in room 5");
        let (reply, out) = r.kick(Some("s"), ParticipantId(101)).unwrap();
        assert_eq!(reply, json!({"videoroom":"success"}));
        assert_eq!(out.notices[0].data, json!({"videoroom":"event","room":5,"leaving":"ok","reason":"kicked"}));
        assert_eq!(out.notices[1].data, json!({"videoroom":"event","room":5,"display":"alice","kicked":101}));
        let (reply, out) = r.destroy(Some("s"), false).unwrap();
        assert_eq!(reply, json!({"videoroom":"destroyed","room":5,"permanent":false}));
        assert_eq!(
            out.notices,
            vec![Notice { to: who(2), transaction: None, data: json!({"videoroom":"destroyed","room":5}) }]
        );
    }

    #[test]
    fn detach_makes_the_participant_leave() {
        let mut r = room(json!({}));
        r.on_async(who(1), "t", AsyncName::Join, join("alice"));
        r.on_async(who(2), "t", AsyncName::Join, join("bob"));
        let o = r.on_gone(who(2), GoneReason::Detached);
        assert_eq!(o.notices.len(), 1);
        assert_eq!(o.notices[0].to, who(1));
        assert_eq!(o.notices[0].data["leaving"], 103);
        assert_eq!(r.participant_count(), 1);
        assert!(r.on_gone(who(1), GoneReason::Hangup).notices.is_empty());
    }

    #[test]
    fn allowed_actions_edit_the_list() {
        let mut r = room(json!({}));
        let add = vec!["a".to_string(), "b".to_string()];
        assert_eq!(r.allowed(None, AllowedAction::Add, Some(&add)).unwrap()["allowed"], json!(["a", "b"]));
        assert!(r.allowed(None, AllowedAction::Disable, None).unwrap().get("allowed").is_none());
        let rm = vec!["a".to_string()];
        assert_eq!(r.allowed(None, AllowedAction::Remove, Some(&rm)).unwrap()["allowed"], json!(["b"]));
    }
}
