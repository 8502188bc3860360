//! The in-memory [`Store`] for standalone mode and tests. One lock guards all state, exactly as
//! a single Redis server serializes commands; it is never held across an await.

use super::*;
use crate::clock::{Clock, SystemClock};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex};

#[derive(Clone)]
pub struct MemoryStore {
    clock: Arc<dyn Clock>,
    state: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    sessions: HashMap<SessionId, SessionRecord>,
    /// Deadline index: (deadline, session).
    deadlines: BTreeSet<(u64, SessionId)>,
    handles: HashMap<SessionId, BTreeMap<HandleId, HandleRecord>>,
    handle_count: u64,
    mailboxes: HashMap<SessionId, VecDeque<Bytes>>,
    /// Mailboxes of destroyed sessions and when they go away.
    graves: BTreeSet<(u64, SessionId)>,
    rooms: BTreeMap<RoomId, RoomRecord>,
    /// Room owner and when its lease ends.
    placement: HashMap<RoomId, (NodeId, u64)>,
    /// Handles bound to each node.
    node_handles: HashMap<NodeId, BTreeSet<(SessionId, HandleId)>>,
    /// Registered nodes and when their registration lapses.
    nodes: BTreeMap<NodeId, (NodeStatus, u64)>,
    /// The declared rooms were created.
    seeded: bool,
    /// Stored tokens and the plugins each may attach to, in the order they were allowed.
    tokens: BTreeMap<String, Vec<String>>,
    /// The Admin API's default session timeout, once set.
    default_timeout: Option<u64>,
    /// The media knobs turned, each once (the last value).
    knobs: Vec<Knob>,
}

/// Adds (`on`) or removes `plugins` from a token's list, keeping the order they were allowed in.
fn allow(allowed: &mut Vec<String>, plugins: &[String], on: bool) {
    for p in plugins {
        match (on, allowed.iter().position(|a| a == p)) {
            (true, None) => allowed.push(p.clone()),
            (false, Some(i)) => {
                allowed.remove(i);
            }
            _ => {}
        }
    }
}

impl State {
    fn set_deadline(&mut self, sid: SessionId, deadline: Option<u64>) {
        if let Some(s) = self.sessions.get_mut(&sid) {
            if let Some(old) = s.deadline_ms {
                self.deadlines.remove(&(old, sid));
            }
            s.deadline_ms = deadline;
            if let Some(d) = deadline {
                self.deadlines.insert((d, sid));
            }
        }
    }

    fn unindex(&mut self, node: &NodeId, sid: SessionId, hid: HandleId) {
        if let Some(set) = self.node_handles.get_mut(node) {
            set.remove(&(sid, hid));
            if set.is_empty() {
                self.node_handles.remove(node);
            }
        }
    }

    fn owner(&self, room: &RoomId, now: u64) -> Option<&NodeId> {
        self.placement.get(room).filter(|(_, until)| *until > now).map(|(n, _)| n)
    }

    /// A session's timeout now: its own, or the default when one was set.
    fn timeout_of(&mut self, sid: SessionId) -> u64 {
        let default = self.default_timeout;
        match self.sessions.get_mut(&sid) {
            Some(s) => {
                if let (false, Some(d)) = (s.own_timeout, default) {
                    s.timeout_ms = d;
                }
                s.timeout_ms
            }
            None => 0,
        }
    }

    fn bury(&mut self, now: u64) {
        while let Some(&(t, sid)) = self.graves.first() {
            if t > now {
                break;
            }
            self.graves.pop_first();
            if !self.sessions.contains_key(&sid) {
                self.mailboxes.remove(&sid);
            }
        }
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new(Arc::new(SystemClock))
    }
}

impl MemoryStore {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self { clock, state: Arc::new(Mutex::new(State::default())) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave State half-updated in a way later calls
        // would misread (every method updates it in one step), so poisoning is ignored.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn deadline(&self, timeout_ms: u64) -> Option<u64> {
        (timeout_ms > 0).then(|| self.clock.now_ms() + timeout_ms)
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn create_session(&self, new: NewSession<'_>, max_sessions: usize) -> Result<SessionId, StoreError> {
        let now = self.clock.now_ms();
        let mut g = self.lock();
        let timeout_ms = g.default_timeout.unwrap_or(new.timeout_ms);
        let deadline = self.deadline(timeout_ms);
        g.bury(now);
        if g.sessions.len() >= max_sessions {
            return Err(StoreError::Limit);
        }
        let id = match new.requested {
            Some(id) if g.sessions.contains_key(&id) => return Err(StoreError::Conflict),
            Some(id) => id,
            None => loop {
                let id = SessionId::random();
                if !g.sessions.contains_key(&id) {
                    break id;
                }
            },
        };
        g.sessions.insert(
            id,
            SessionRecord {
                id,
                created_ms: now,
                deadline_ms: None,
                timeout_ms,
                own_timeout: false,
                principal: new.principal.to_owned(),
                owner: new.owner,
                transport_gone: false,
            },
        );
        g.set_deadline(id, deadline);
        // A reused id must not inherit a dead session's leftover events.
        g.mailboxes.remove(&id);
        Ok(id)
    }

    async fn session(&self, sid: SessionId) -> Result<Option<SessionRecord>, StoreError> {
        Ok(self.lock().sessions.get(&sid).cloned())
    }

    async fn touch_session(&self, sid: SessionId) -> Result<bool, StoreError> {
        let mut g = self.lock();
        let Some(s) = g.sessions.get(&sid) else { return Ok(false) };
        if !s.transport_gone {
            let d = self.deadline(g.timeout_of(sid));
            g.set_deadline(sid, d);
        }
        Ok(true)
    }

    async fn claim_session(
        &self,
        sid: SessionId,
        owner: u64,
        principal: &str,
        _relay: Option<&str>,
    ) -> Result<Claim, StoreError> {
        let mut g = self.lock();
        let Some(s) = g.sessions.get_mut(&sid) else { return Ok(Claim::NoSuchSession) };
        if !s.principal.is_empty() && s.principal != principal {
            return Ok(Claim::WrongPrincipal);
        }
        s.owner = Some(owner);
        s.transport_gone = false;
        let d = self.deadline(g.timeout_of(sid));
        g.set_deadline(sid, d);
        Ok(Claim::Claimed)
    }

    async fn set_session_timeout(&self, sid: SessionId, timeout_ms: u64, own: bool) -> Result<bool, StoreError> {
        let mut g = self.lock();
        let default = g.default_timeout.filter(|_| !own);
        let Some(s) = g.sessions.get_mut(&sid) else { return Ok(false) };
        s.own_timeout = own;
        s.timeout_ms = default.unwrap_or(timeout_ms);
        if !s.transport_gone {
            let d = self.deadline(s.timeout_ms);
            g.set_deadline(sid, d);
        }
        Ok(true)
    }

    async fn set_default_session_timeout(&self, timeout_ms: u64) -> Result<(), StoreError> {
        self.lock().default_timeout = Some(timeout_ms);
        Ok(())
    }

    async fn default_session_timeout(&self) -> Result<Option<u64>, StoreError> {
        Ok(self.lock().default_timeout)
    }

    async fn release_session(&self, sid: SessionId, owner: u64, reclaim_ms: u64) -> Result<(), StoreError> {
        let now = self.clock.now_ms();
        let mut g = self.lock();
        let Some(s) = g.sessions.get_mut(&sid) else { return Ok(()) };
        if s.owner != Some(owner) {
            return Ok(());
        }
        s.owner = None;
        s.transport_gone = true;
        g.set_deadline(sid, Some(now + reclaim_ms));
        Ok(())
    }

    async fn destroy_session(
        &self,
        sid: SessionId,
        last: Option<Bytes>,
        _by: Option<u64>,
    ) -> Result<Option<Ended>, StoreError> {
        let now = self.clock.now_ms();
        let mut g = self.lock();
        g.set_deadline(sid, None);
        if g.sessions.remove(&sid).is_none() {
            return Ok(None);
        }
        let handles: Vec<HandleRecord> = g.handles.remove(&sid).map(|m| m.into_values().collect()).unwrap_or_default();
        g.handle_count -= handles.len() as u64;
        for h in &handles {
            if let Some(b) = &h.binding {
                g.unindex(&b.node, sid, h.id);
            }
        }
        let mailbox = g.mailboxes.entry(sid).or_default();
        if let Some(ev) = last {
            append(mailbox, ev);
        }
        let queued = mailbox.len();
        g.graves.insert((now + MAILBOX_GRACE_MS, sid));
        Ok(Some(Ended { handles, queued }))
    }

    async fn take_expired(&self, limit: usize) -> Result<Vec<SessionId>, StoreError> {
        let now = self.clock.now_ms();
        let mut g = self.lock();
        g.bury(now);
        let mut out = Vec::new();
        while out.len() < limit {
            match g.deadlines.first() {
                Some(&(d, sid)) if d <= now => {
                    g.deadlines.pop_first();
                    if let Some(s) = g.sessions.get_mut(&sid) {
                        s.deadline_ms = None;
                    }
                    out.push(sid);
                }
                _ => break,
            }
        }
        Ok(out)
    }

    async fn counts(&self) -> Result<(u64, u64), StoreError> {
        let g = self.lock();
        Ok((g.sessions.len() as u64, g.handle_count))
    }

    async fn attach_handle(
        &self,
        sid: SessionId,
        plugin: &str,
        opaque_id: Option<String>,
        max_handles: usize,
    ) -> Result<HandleId, StoreError> {
        let mut g = self.lock();
        if !g.sessions.contains_key(&sid) {
            return Err(StoreError::NoSuchSession);
        }
        let hs = g.handles.entry(sid).or_default();
        if hs.len() >= max_handles {
            return Err(StoreError::Limit);
        }
        let id = loop {
            let id = HandleId::random();
            if !hs.contains_key(&id) {
                break id;
            }
        };
        hs.insert(
            id,
            HandleRecord { id, session: sid, plugin: plugin.to_owned(), opaque_id, binding: None, capture: None },
        );
        g.handle_count += 1;
        Ok(id)
    }

    async fn handle(&self, sid: SessionId, hid: HandleId) -> Result<Option<HandleRecord>, StoreError> {
        Ok(self.lock().handles.get(&sid).and_then(|m| m.get(&hid)).cloned())
    }

    async fn detach_handle(&self, sid: SessionId, hid: HandleId) -> Result<Option<HandleRecord>, StoreError> {
        let mut g = self.lock();
        let h = g.handles.get_mut(&sid).and_then(|m| m.remove(&hid));
        if let Some(rec) = &h {
            g.handle_count -= 1;
            if let Some(b) = &rec.binding {
                g.unindex(&b.node, sid, hid);
            }
        }
        Ok(h)
    }

    async fn bind_handle(&self, sid: SessionId, hid: HandleId, binding: Option<Binding>) -> Result<(), StoreError> {
        let mut g = self.lock();
        let Some(h) = g.handles.get_mut(&sid).and_then(|m| m.get_mut(&hid)) else { return Ok(()) };
        let old = std::mem::replace(&mut h.binding, binding.clone());
        if let Some(o) = old {
            g.unindex(&o.node, sid, hid);
        }
        if let Some(b) = binding {
            g.node_handles.entry(b.node).or_default().insert((sid, hid));
        }
        Ok(())
    }

    async fn set_handle_capture(
        &self,
        sid: SessionId,
        hid: HandleId,
        capture: Option<crate::janus::admin::CaptureSpec>,
    ) -> Result<Option<bool>, StoreError> {
        let mut g = self.lock();
        let Some(h) = g.handles.get_mut(&sid).and_then(|m| m.get_mut(&hid)) else { return Ok(None) };
        if h.capture.is_some() == capture.is_some() {
            return Ok(Some(false));
        }
        h.capture = capture.map(Box::new);
        Ok(Some(true))
    }

    async fn unbind_handle_from(&self, sid: SessionId, hid: HandleId, node: &NodeId) -> Result<bool, StoreError> {
        let mut g = self.lock();
        let Some(h) = g.handles.get_mut(&sid).and_then(|m| m.get_mut(&hid)) else { return Ok(false) };
        if h.binding.as_ref().map(|b| &b.node) != Some(node) {
            return Ok(false);
        }
        h.binding = None;
        g.unindex(node, sid, hid);
        Ok(true)
    }

    async fn push_event(&self, sid: SessionId, event: Bytes) -> Result<(), StoreError> {
        let mut g = self.lock();
        // Only live sessions, and destroyed ones in their grace period, have a mailbox.
        if !g.sessions.contains_key(&sid) && !g.mailboxes.contains_key(&sid) {
            return Ok(());
        }
        append(g.mailboxes.entry(sid).or_default(), event);
        Ok(())
    }

    async fn pop_events(&self, sid: SessionId, max: usize) -> Result<Vec<Bytes>, StoreError> {
        let mut g = self.lock();
        let Some(mb) = g.mailboxes.get_mut(&sid) else { return Ok(Vec::new()) };
        let n = max.min(mb.len());
        Ok(mb.drain(..n).collect())
    }

    async fn create_room(&self, config: RoomConfig, max_rooms: usize) -> Result<(), StoreError> {
        let mut g = self.lock();
        if g.rooms.contains_key(&config.room) {
            return Err(StoreError::Conflict);
        }
        if g.rooms.len() >= max_rooms {
            return Err(StoreError::Limit);
        }
        g.rooms.insert(config.room.clone(), RoomRecord { config, participants: 0 });
        Ok(())
    }

    async fn room(&self, room: RoomId) -> Result<Option<RoomRecord>, StoreError> {
        Ok(self.lock().rooms.get(&room).cloned())
    }

    async fn update_room(&self, config: RoomConfig) -> Result<(), StoreError> {
        if let Some(r) = self.lock().rooms.get_mut(&config.room) {
            r.config = config;
        }
        Ok(())
    }

    async fn set_room_participants(&self, room: RoomId, n: u64) -> Result<(), StoreError> {
        if let Some(r) = self.lock().rooms.get_mut(&room) {
            r.participants = n;
        }
        Ok(())
    }

    async fn delete_room(&self, room: RoomId) -> Result<bool, StoreError> {
        let mut g = self.lock();
        g.placement.remove(&room);
        Ok(g.rooms.remove(&room).is_some())
    }

    async fn list_rooms(&self) -> Result<Vec<RoomRecord>, StoreError> {
        Ok(self.lock().rooms.values().cloned().collect())
    }

    async fn place_room(&self, room: RoomId, candidate: &NodeId, lease_ms: u64) -> Result<NodeId, StoreError> {
        let now = self.clock.now_ms();
        let mut g = self.lock();
        if let Some(owner) = g.owner(&room, now) {
            return Ok(owner.clone());
        }
        g.placement.insert(room, (candidate.clone(), now + lease_ms));
        Ok(candidate.clone())
    }

    async fn room_owner(&self, room: RoomId) -> Result<Option<NodeId>, StoreError> {
        Ok(self.lock().owner(&room, self.clock.now_ms()).cloned())
    }

    async fn room_owner_status(&self, room: RoomId) -> Result<Option<(NodeId, bool)>, StoreError> {
        let now = self.clock.now_ms();
        let g = self.lock();
        Ok(g.owner(&room, now).map(|n| (n.clone(), g.nodes.get(n).is_some_and(|(_, until)| *until > now))))
    }

    async fn replace_room_owner(
        &self,
        room: RoomId,
        dead: &NodeId,
        candidate: &NodeId,
        lease_ms: u64,
    ) -> Result<NodeId, StoreError> {
        let now = self.clock.now_ms();
        let mut g = self.lock();
        match g.owner(&room, now) {
            Some(owner) if owner != dead => Ok(owner.clone()),
            _ => {
                g.placement.insert(room, (candidate.clone(), now + lease_ms));
                Ok(candidate.clone())
            }
        }
    }

    async fn renew_room(&self, room: RoomId, node: &NodeId, lease_ms: u64) -> Result<bool, StoreError> {
        let now = self.clock.now_ms();
        let mut g = self.lock();
        match g.owner(&room, now) {
            Some(owner) if owner != node => Ok(false),
            _ => {
                g.placement.insert(room, (node.clone(), now + lease_ms));
                Ok(true)
            }
        }
    }

    async fn register_node(&self, status: NodeStatus, ttl_ms: u64) -> Result<(), StoreError> {
        let until = self.clock.now_ms() + ttl_ms;
        self.lock().nodes.insert(status.node.clone(), (status, until));
        Ok(())
    }

    async fn add_token(&self, token: &str, plugins: &[String]) -> Result<Vec<String>, StoreError> {
        let mut g = self.lock();
        let allowed = g.tokens.entry(token.to_owned()).or_default();
        allow(allowed, plugins, true);
        Ok(allowed.clone())
    }

    async fn token(&self, token: &str) -> Result<Option<Vec<String>>, StoreError> {
        Ok(self.lock().tokens.get(token).cloned())
    }

    async fn allow_token(&self, token: &str, plugins: &[String], on: bool) -> Result<Option<Vec<String>>, StoreError> {
        Ok(self.lock().tokens.get_mut(token).map(|allowed| {
            allow(allowed, plugins, on);
            allowed.clone()
        }))
    }

    async fn remove_token(&self, token: &str) -> Result<bool, StoreError> {
        Ok(self.lock().tokens.remove(token).is_some())
    }

    async fn list_tokens(&self) -> Result<Vec<(String, Vec<String>)>, StoreError> {
        Ok(self.lock().tokens.iter().map(|(t, p)| (t.clone(), p.clone())).collect())
    }

    async fn session_handles(&self, sid: SessionId) -> Result<Vec<HandleId>, StoreError> {
        Ok(self.lock().handles.get(&sid).map(|h| h.keys().copied().collect()).unwrap_or_default())
    }

    async fn list_sessions(&self) -> Result<Vec<SessionId>, StoreError> {
        Ok(self.lock().sessions.keys().copied().collect())
    }

    async fn seeded(&self) -> Result<bool, StoreError> {
        Ok(self.lock().seeded)
    }

    async fn mark_seeded(&self) -> Result<(), StoreError> {
        self.lock().seeded = true;
        Ok(())
    }

    async fn set_knob(&self, knob: Knob) -> Result<(), StoreError> {
        let knobs = &mut self.lock().knobs;
        knobs.retain(|k| k.field() != knob.field());
        knobs.push(knob);
        Ok(())
    }

    async fn knobs(&self) -> Result<Vec<Knob>, StoreError> {
        Ok(self.lock().knobs.clone())
    }

    async fn deregister_node(&self, node: &NodeId) -> Result<(), StoreError> {
        self.lock().nodes.remove(node);
        Ok(())
    }

    async fn live_nodes(&self) -> Result<Vec<NodeStatus>, StoreError> {
        let now = self.clock.now_ms();
        let g = self.lock();
        Ok(g.nodes.values().filter(|(_, until)| *until > now).map(|(s, _)| s.clone()).collect())
    }

    async fn take_lost_nodes(&self) -> Result<Vec<NodeId>, StoreError> {
        let now = self.clock.now_ms();
        let mut g = self.lock();
        let lost: Vec<NodeId> =
            g.nodes.iter().filter(|(_, (_, until))| *until <= now).map(|(n, _)| n.clone()).collect();
        for n in &lost {
            g.nodes.remove(n);
        }
        Ok(lost)
    }

    async fn node_handles(&self, node: &NodeId) -> Result<Vec<(SessionId, HandleId)>, StoreError> {
        Ok(self.lock().node_handles.get(node).map(|s| s.iter().copied().collect()).unwrap_or_default())
    }
}

/// Appends to a mailbox, dropping the oldest events past [`MAILBOX_CAP`].
fn append(mailbox: &mut VecDeque<Bytes>, event: Bytes) {
    mailbox.push_back(event);
    while mailbox.len() > MAILBOX_CAP {
        mailbox.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    #[tokio::test]
    async fn passes_the_store_conformance_suite() {
        let clock = ManualClock::new(1_000_000);
        let store = MemoryStore::new(Arc::new(clock.clone()));
        let reset = || async { *store.lock() = State::default() };
        crate::testing::store_conformance::run(&store, &clock, reset).await;
    }

    #[tokio::test]
    async fn a_destroyed_sessions_mailbox_is_dropped_after_the_grace_period() {
        let clock = ManualClock::new(1_000_000);
        let s = MemoryStore::new(Arc::new(clock.clone()));
        let a = s.create_session(NewSession::anyone(1000), 10).await.unwrap();
        s.destroy_session(a, None, None).await.unwrap();
        s.push_event(a, Bytes::from("last")).await.unwrap();
        clock.advance_ms(MAILBOX_GRACE_MS + 1);
        s.take_expired(1).await.unwrap();
        s.push_event(a, Bytes::from("late")).await.unwrap();
        assert!(s.pop_events(a, 10).await.unwrap().is_empty());
    }
}
