//! Shared state at the domain level: sessions with their keepalive deadlines, handles and their
//! binding to a room on a media node, per-session event mailboxes, rooms and room placement.
//!
//! The trait speaks in domain operations (not hash/list commands) so that the in-memory twin
//! and the Redis implementation (cluster mode) behave identically; each operation is atomic.

mod memory;
mod redis;

pub use self::redis::{RedisStore, REDIS_CONNECT_TIMEOUT, REDIS_RESPONSE_TIMEOUT};
pub use memory::MemoryStore;

use crate::ids::{HandleId, NodeId, RoomId, SessionId};
use crate::janus::videoroom::RoomConfig;
use crate::tuning::Knob;
use async_trait::async_trait;
use bytes::Bytes;

/// How many undelivered events a session keeps; older ones are dropped (a client that stops
/// polling must not grow the server without bound).
pub const MAILBOX_CAP: usize = 1000;
/// How long a room placement lasts unless its owner renews it (every [`ROOM_LEASE_RENEW_MS`]).
pub const ROOM_LEASE_MS: u64 = 10_000;
pub const ROOM_LEASE_RENEW_MS: u64 = 3_000;
/// How long a destroyed session's mailbox stays readable, so its last events (`timeout`,
/// `detached`) reach a consumer that is between two long-polls.
pub const MAILBOX_GRACE_MS: u64 = 10_000;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StoreError {
    #[error("id already in use")]
    Conflict,
    #[error("limit reached")]
    Limit,
    #[error("no such session")]
    NoSuchSession,
    #[error("store unavailable: {0}")]
    Unavailable(String),
}

/// A Janus session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRecord {
    pub id: SessionId,
    pub created_ms: u64,
    /// When the session times out unless touched; `None` when timeouts are disabled.
    pub deadline_ms: Option<u64>,
    pub timeout_ms: u64,
    /// Whether `timeout_ms` was set for this session alone (Admin API `set_session_timeout`);
    /// otherwise it follows the cluster-wide default.
    pub own_timeout: bool,
    /// Who created it (`Principal::fingerprint`): only the same credentials may claim it.
    pub principal: String,
    /// The transport connection that receives its events (WebSocket), if any.
    pub owner: Option<u64>,
    /// The owning connection closed; the session waits to be claimed until its deadline.
    pub transport_gone: bool,
}

/// What a new session starts with.
#[derive(Clone, Copy, Debug)]
pub struct NewSession<'a> {
    pub requested: Option<SessionId>,
    pub timeout_ms: u64,
    pub owner: Option<u64>,
    pub principal: &'a str,
    /// The relay of the owner's process (`Bus::relay`), where its signals go too.
    pub relay: Option<&'a str>,
}

impl NewSession<'static> {
    /// A session without owner, id or credentials (tests, tools).
    pub fn anyone(timeout_ms: u64) -> Self {
        Self { requested: None, timeout_ms, owner: None, principal: "", relay: None }
    }
}

/// A session [`Store::destroy_session`] ended: its handles.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Ended {
    pub handles: Vec<HandleRecord>,
    /// The events left in the mailbox after the teardown (the final event among them).
    pub queued: usize,
}

/// A handle [`Store::touch_session_handle`] found.
#[derive(Clone, Debug, PartialEq)]
pub struct FoundHandle {
    /// As it was before the request.
    pub handle: HandleRecord,
    /// For a join by a handle bound nowhere: what [`Store::bind_to_live_owner`] returned (the
    /// room's owner and whether it is registered, the handle now bound to it if so).
    pub owner: Option<(NodeId, bool)>,
}

/// Where a request to a handle was sent from the touch's step
/// (`Backends::touch_handle_sending`): the node, the room the request is for, and the room it
/// named as the handle's (none for a join).
#[derive(Clone, Debug, PartialEq)]
pub struct SentTo {
    pub node: NodeId,
    pub room: RoomId,
    pub bound_room: Option<RoomId>,
}

impl SentTo {
    /// Where a request to the handle `found` goes from the touch's step, if anywhere: without
    /// `join`, to a bound handle's node naming its room; for a `join` by a handle bound
    /// nowhere and without a packet capture, to the room's live owner naming none.
    pub fn of(found: &FoundHandle, join: Option<&RoomId>) -> Option<Self> {
        match (&found.handle.binding, join, &found.owner) {
            (Some(b), None, _) => {
                Some(Self { node: b.node.clone(), room: b.room.clone(), bound_room: Some(b.room.clone()) })
            }
            (None, Some(room), Some((owner, true))) if found.handle.capture.is_none() => {
                Some(Self { node: owner.clone(), room: room.clone(), bound_room: None })
            }
            _ => None,
        }
    }
}

/// How a claim went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Claim {
    Claimed,
    NoSuchSession,
    /// The session was created with other credentials.
    WrongPrincipal,
}

/// Where a handle's plugin state lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Binding {
    pub room: RoomId,
    pub node: NodeId,
}

/// A plugin handle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HandleRecord {
    pub id: HandleId,
    pub session: SessionId,
    pub plugin: String,
    pub opaque_id: Option<String>,
    pub binding: Option<Binding>,
    /// The handle's packet capture (Admin API `start_pcap`), kept until it is stopped or the
    /// handle detached: wherever the handle joins, its room captures it. Boxed: most handles
    /// have none, and a request's future holds a record.
    pub capture: Option<Box<crate::janus::admin::CaptureSpec>>,
}

/// A media node as the registry sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeStatus {
    pub node: NodeId,
    /// What placement balances on (the node's rooms and participants).
    pub load: u64,
    /// A draining node takes no new rooms.
    pub draining: bool,
}

/// A room: its configuration plus the participant count its owner keeps current (for `list`).
#[derive(Clone, Debug, PartialEq)]
pub struct RoomRecord {
    pub config: RoomConfig,
    pub participants: u64,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    // Sessions.
    /// Creates a session with `requested` id (or a random one). `timeout_ms == 0` disables
    /// expiry; a default set with `set_default_session_timeout` replaces it.
    async fn create_session(&self, new: NewSession<'_>, max_sessions: usize) -> Result<SessionId, StoreError>;
    async fn session(&self, sid: SessionId) -> Result<Option<SessionRecord>, StoreError>;
    /// Activity on the session: pushes its deadline out. `false` when it does not exist.
    async fn touch_session(&self, sid: SessionId) -> Result<bool, StoreError>;
    /// [`Store::touch_session`] and the handle `hid` of that session, in one step where the store
    /// can (a request to a handle): `None` when there is no such session. For a join of `room`
    /// by a handle bound nowhere, [`Store::bind_to_live_owner`] in the same step too.
    async fn touch_session_handle(
        &self,
        sid: SessionId,
        hid: HandleId,
        join: Option<&RoomId>,
    ) -> Result<Option<Option<FoundHandle>>, StoreError> {
        if !self.touch_session(sid).await? {
            return Ok(None);
        }
        let Some(handle) = self.handle(sid, hid).await? else { return Ok(Some(None)) };
        let owner = match join {
            Some(room) if handle.binding.is_none() => self.bind_to_live_owner(sid, hid, room.clone()).await?,
            _ => None,
        };
        Ok(Some(Some(FoundHandle { handle, owner })))
    }
    /// [`Store::touch_session`] then [`Store::attach_handle`], in one step where the store can
    /// (a client's `attach`).
    async fn touch_attach_handle(
        &self,
        sid: SessionId,
        plugin: &str,
        opaque_id: Option<String>,
        max_handles: usize,
    ) -> Result<HandleId, StoreError> {
        if !self.touch_session(sid).await? {
            return Err(StoreError::NoSuchSession);
        }
        self.attach_handle(sid, plugin, opaque_id, max_handles).await
    }
    /// [`Store::touch_session`] then [`Store::detach_handle`], in one step where the store can
    /// (a client's `detach`): `None` when there is no such session.
    async fn touch_detach_handle(
        &self,
        sid: SessionId,
        hid: HandleId,
    ) -> Result<Option<Option<HandleRecord>>, StoreError> {
        if !self.touch_session(sid).await? {
            return Ok(None);
        }
        Ok(Some(self.detach_handle(sid, hid).await?))
    }
    /// Makes `owner` (of the process whose relay is `relay`) the session's event consumer and
    /// revives it if its transport was gone. A store that [signals sessions](Store::signals_sessions)
    /// tells the previous owner, `Signal::Claimed`, in the same step.
    async fn claim_session(
        &self,
        sid: SessionId,
        owner: u64,
        principal: &str,
        relay: Option<&str>,
    ) -> Result<Claim, StoreError>;
    /// Sets a session's timeout: its own (`own`), or back to the default (the one set with
    /// `set_default_session_timeout`, else `timeout_ms`). `false` when it does not exist.
    async fn set_session_timeout(&self, sid: SessionId, timeout_ms: u64, own: bool) -> Result<bool, StoreError>;
    /// The cluster-wide default timeout of sessions without their own, from their next activity on.
    async fn set_default_session_timeout(&self, timeout_ms: u64) -> Result<(), StoreError>;
    /// The default set with `set_default_session_timeout`, if any.
    async fn default_session_timeout(&self) -> Result<Option<u64>, StoreError>;
    /// The owner's transport closed: keep the session claimable for `reclaim_ms` from now.
    /// Does nothing if another owner claimed it meanwhile.
    async fn release_session(&self, sid: SessionId, owner: u64, reclaim_ms: u64) -> Result<(), StoreError>;
    /// Removes the session and returns its handles, then appends `last` (the session's final
    /// event, if any) to its mailbox, which stays readable for [`MAILBOX_GRACE_MS`]. A store
    /// that [signals sessions](Store::signals_sessions) publishes `Signal::Over` on the
    /// session's channel and to its owner's relay in the same step, but not to the relay of
    /// `by`, the connection ending it (a client's `destroy`), when that connection owns it: that
    /// one stops consuming the session itself, reading what [`Ended::queued`] says is left.
    /// `None` if it did not exist (so exactly one caller tears it down).
    async fn destroy_session(
        &self,
        sid: SessionId,
        last: Option<Bytes>,
        by: Option<u64>,
    ) -> Result<Option<Ended>, StoreError>;
    /// Up to `limit` sessions whose deadline has passed, each handed to exactly one caller.
    async fn take_expired(&self, limit: usize) -> Result<Vec<SessionId>, StoreError>;
    /// `(sessions, handles)` in existence.
    async fn counts(&self) -> Result<(u64, u64), StoreError>;
    /// Every session's id (the Admin API's `list_sessions`).
    async fn list_sessions(&self) -> Result<Vec<SessionId>, StoreError>;

    // Handles.
    async fn attach_handle(
        &self,
        sid: SessionId,
        plugin: &str,
        opaque_id: Option<String>,
        max_handles: usize,
    ) -> Result<HandleId, StoreError>;
    async fn handle(&self, sid: SessionId, hid: HandleId) -> Result<Option<HandleRecord>, StoreError>;
    /// A session's handles' ids (none when there is no such session).
    async fn session_handles(&self, sid: SessionId) -> Result<Vec<HandleId>, StoreError>;
    async fn detach_handle(&self, sid: SessionId, hid: HandleId) -> Result<Option<HandleRecord>, StoreError>;
    async fn bind_handle(&self, sid: SessionId, hid: HandleId, binding: Option<Binding>) -> Result<(), StoreError>;
    /// Keeps `Some` capture for the handle unless it has one, or drops the one it has:
    /// whether that happened (`false`: it had one already, or none to drop), `None` when there
    /// is no such handle. One step: of two starts at once, one keeps its capture.
    async fn set_handle_capture(
        &self,
        sid: SessionId,
        hid: HandleId,
        capture: Option<crate::janus::admin::CaptureSpec>,
    ) -> Result<Option<bool>, StoreError>;
    /// Unbinds the handle only if it is still bound to `node`; `true` if this call did it (so
    /// whoever cleans up after a node tells each client exactly once).
    async fn unbind_handle_from(&self, sid: SessionId, hid: HandleId, node: &NodeId) -> Result<bool, StoreError>;

    // Mailboxes.
    /// Whether the store publishes session signals itself, from the step that causes them: a
    /// push's `Wake`, a claim's `Claimed` (Redis: in the same script, on the session's channel
    /// and to its owner's relay). Otherwise the caller publishes them on the bus.
    fn signals_sessions(&self) -> bool {
        false
    }
    /// Appends an event (finished Janus JSON) to the session's mailbox.
    async fn push_event(&self, sid: SessionId, event: Bytes) -> Result<(), StoreError>;
    /// Appends each event to its session's mailbox, in order, in one step (one round trip to
    /// Redis for a whole batch).
    async fn push_events(&self, events: &[(SessionId, Bytes)]) -> Result<(), StoreError> {
        for (sid, ev) in events {
            self.push_event(*sid, ev.clone()).await?;
        }
        Ok(())
    }
    /// [`Store::push_events`] after publishing `first` (bus messages: a channel and a payload),
    /// in order, from the same step: only a store that signals sessions itself can; others
    /// refuse any (their caller publishes on the bus).
    async fn push_events_after(
        &self,
        first: &[(String, Bytes)],
        events: &[(SessionId, Bytes)],
    ) -> Result<(), StoreError> {
        if !first.is_empty() {
            return Err(StoreError::Unavailable("this store publishes nothing".into()));
        }
        self.push_events(events).await
    }
    /// [`Store::touch_session_handle`] and, in the same step, `send` published: without `join`
    /// to a bound handle's node, completed with its room; for a `join` by a handle bound nowhere
    /// and without a packet capture, whole, to the live owner it was bound to. `true` in the
    /// answer when it was. Only a store that signals sessions itself can; others refuse (their
    /// caller sends on the bus, `Backends::touch_handle_sending`).
    async fn touch_session_handle_sending(
        &self,
        _sid: SessionId,
        _hid: HandleId,
        _join: Option<&RoomId>,
        _send: &crate::wire::AroundRoom,
    ) -> Result<Option<Option<(FoundHandle, bool)>>, StoreError> {
        Err(StoreError::Unavailable("this store publishes nothing".into()))
    }
    /// [`Store::touch_detach_handle`] and, in the same step, when the handle was bound its node
    /// told (`gone` completed with the handle's room, published on the node's channel) and then
    /// `event` pushed to the session's mailbox: only a store that signals sessions itself can;
    /// others refuse (their caller does it in steps on the bus, `Backends::detach_telling`).
    async fn touch_detach_handle_telling(
        &self,
        _sid: SessionId,
        _hid: HandleId,
        _gone: &crate::wire::AroundRoom,
        _event: Bytes,
    ) -> Result<Option<Option<HandleRecord>>, StoreError> {
        Err(StoreError::Unavailable("this store publishes nothing".into()))
    }
    /// Removes and returns up to `max` events, oldest first.
    async fn pop_events(&self, sid: SessionId, max: usize) -> Result<Vec<Bytes>, StoreError>;

    // Rooms.
    async fn create_room(&self, config: RoomConfig, max_rooms: usize) -> Result<(), StoreError>;
    async fn room(&self, room: RoomId) -> Result<Option<RoomRecord>, StoreError>;
    async fn update_room(&self, config: RoomConfig) -> Result<(), StoreError>;
    async fn set_room_participants(&self, room: RoomId, n: u64) -> Result<(), StoreError>;
    async fn delete_room(&self, room: RoomId) -> Result<bool, StoreError>;
    async fn list_rooms(&self) -> Result<Vec<RoomRecord>, StoreError>;
    /// The node owning `room`, making `candidate` the owner (for a `lease_ms` lease) if nobody is.
    async fn place_room(&self, room: RoomId, candidate: &NodeId, lease_ms: u64) -> Result<NodeId, StoreError>;
    /// The node owning `room`, if any lease is current.
    async fn room_owner(&self, room: RoomId) -> Result<Option<NodeId>, StoreError>;
    /// [`Store::room_owner`] and whether that node's registration is current, in one read: a
    /// request to a room needs both.
    async fn room_owner_status(&self, room: RoomId) -> Result<Option<(NodeId, bool)>, StoreError>;
    /// [`Store::room_owner_status`] and, while the owner is registered, the handle bound to
    /// `room` on it (a join; a store does it in one step within [`Store::touch_session_handle`]).
    async fn bind_to_live_owner(
        &self,
        sid: SessionId,
        hid: HandleId,
        room: RoomId,
    ) -> Result<Option<(NodeId, bool)>, StoreError> {
        let status = self.room_owner_status(room.clone()).await?;
        if let Some((node, true)) = &status {
            self.bind_handle(sid, hid, Some(Binding { room, node: node.clone() })).await?;
        }
        Ok(status)
    }
    /// Moves `room` from `dead` to `candidate` unless someone already moved it; returns the owner.
    async fn replace_room_owner(
        &self,
        room: RoomId,
        dead: &NodeId,
        candidate: &NodeId,
        lease_ms: u64,
    ) -> Result<NodeId, StoreError>;
    /// The owner renews its lease (re-asserting it if the lease vanished, e.g. after a Redis
    /// restart). `false`: another node owns the room now, and `node` must stand down.
    async fn renew_room(&self, room: RoomId, node: &NodeId, lease_ms: u64) -> Result<bool, StoreError>;

    /// Whether the mark set by [`Store::mark_seeded`] is there (false: the store is new, or lost
    /// its data, and the rooms the configuration declares must be created again).
    async fn seeded(&self) -> Result<bool, StoreError>;
    async fn mark_seeded(&self) -> Result<(), StoreError>;

    // Stored tokens (`token_auth` without a secret), one set for the whole cluster.
    /// Adds `token` (kept as it is when present) and allows it `plugins`; returns the plugins it
    /// may attach to now.
    async fn add_token(&self, token: &str, plugins: &[String]) -> Result<Vec<String>, StoreError>;
    /// The plugins `token` may attach to; None when there is no such token.
    async fn token(&self, token: &str) -> Result<Option<Vec<String>>, StoreError>;
    /// Allows (`allow`) or disallows `plugins` for an existing token; its plugins now, or None
    /// when there is no such token.
    async fn allow_token(
        &self,
        token: &str,
        plugins: &[String],
        allow: bool,
    ) -> Result<Option<Vec<String>>, StoreError>;
    /// Whether there was such a token.
    async fn remove_token(&self, token: &str) -> Result<bool, StoreError>;
    /// Every token with its plugins.
    async fn list_tokens(&self) -> Result<Vec<(String, Vec<String>)>, StoreError>;

    // Media knobs (`tuning`), one set for the whole cluster: what the Admin API turned.
    /// Keeps `knob` turned for every process (overriding their configuration).
    async fn set_knob(&self, knob: Knob) -> Result<(), StoreError>;
    /// The knobs turned so far.
    async fn knobs(&self) -> Result<Vec<Knob>, StoreError>;

    // Media-node registry.
    /// A node's heartbeat: it is alive for `ttl_ms` more.
    async fn register_node(&self, status: NodeStatus, ttl_ms: u64) -> Result<(), StoreError>;
    /// A node leaves the registry after a graceful drain: it is not reported as lost.
    async fn deregister_node(&self, node: &NodeId) -> Result<(), StoreError>;
    /// Nodes whose last heartbeat has not expired.
    async fn live_nodes(&self) -> Result<Vec<NodeStatus>, StoreError>;
    /// Registered nodes whose heartbeat lapsed, each handed to exactly one caller (which then
    /// cleans up after it) and removed from the registry.
    async fn take_lost_nodes(&self) -> Result<Vec<NodeId>, StoreError>;
    /// The handles bound to rooms on `node`.
    async fn node_handles(&self, node: &NodeId) -> Result<Vec<(SessionId, HandleId)>, StoreError>;
}
