//! The Redis [`Store`] for cluster mode. Every operation that touches several keys is one Lua
//! script, so it is atomic exactly like the in-memory twin's single lock. Time comes from the
//! injected [`Clock`] (passed to the scripts), so both implementations run one conformance suite.
//!
//! The key layout is in [`keys`]; records are stored as [`records`] encodes them.

use super::*;
use crate::clock::Clock;
use crate::ids::JanusId;
use crate::redis_conn::{Conn, Probe};
use crate::redis_link::Link;
use crate::wire::Signal;
use std::sync::Arc;
use std::time::Duration;

mod keys;
mod records;
mod scripts;
use keys::*;
use records::*;
use scripts::Scripts;

/// A Redis command never waits longer than this; a dead Redis becomes an error, not a hang.
pub const REDIS_RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
/// Connecting (or reconnecting) gives up after this.
pub const REDIS_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

#[derive(Clone)]
pub struct RedisStore {
    con: Conn,
    clock: Arc<dyn Clock>,
    scripts: Arc<Scripts>,
}

fn unavailable(e: ::redis::RedisError) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

impl RedisStore {
    /// Connects (and keeps reconnecting in the background after failures).
    pub async fn connect(url: &str, clock: Arc<dyn Clock>) -> Result<Self, StoreError> {
        let (store, probe) = Self::unstarted(url, clock)?;
        store.con.ping().await.map_err(unavailable)?;
        tokio::spawn(probe.run());
        Ok(store)
    }

    /// A store whose connection opens on its first command (its I/O task then runs on that
    /// command's thread), and the health probe to run beside it.
    pub fn unstarted(url: &str, clock: Arc<dyn Clock>) -> Result<(Self, Probe), StoreError> {
        let client = ::redis::Client::open(url).map_err(unavailable)?;
        let link = Link::new(&client, REDIS_CONNECT_TIMEOUT, REDIS_RESPONSE_TIMEOUT).map_err(unavailable)?;
        let (con, probe) = Conn::new(link);
        Ok((Self { con, clock, scripts: Arc::new(Scripts::new()) }, probe))
    }

    /// Its connection (whose health a bus may share).
    pub fn conn(&self) -> &Conn {
        &self.con
    }

    fn now(&self) -> u64 {
        self.clock.now_ms()
    }

    /// Runs one Lua script invocation on a connection of its own (clones are cheap handles).
    async fn eval<T: ::redis::FromRedisValue>(&self, inv: &::redis::ScriptInvocation<'_>) -> Result<T, StoreError> {
        let mut c = self.con.clone();
        inv.invoke_async(&mut c).await.map_err(unavailable)
    }

    /// A new handle, the session touched first in the same script when `touch`; a random id
    /// taken already is drawn again.
    async fn attach(
        &self,
        sid: SessionId,
        plugin: &str,
        opaque_id: Option<String>,
        max_handles: usize,
        touch: bool,
    ) -> Result<HandleId, StoreError> {
        for _ in 0..16 {
            let id = HandleId::random();
            let rec = HandleRecord {
                id,
                session: sid,
                plugin: plugin.to_owned(),
                opaque_id: opaque_id.clone(),
                binding: None,
                capture: None,
            };
            let mut inv;
            if touch {
                inv = self.touching(&self.scripts.touch_attach, sid);
                inv.key(HANDLE_COUNT);
            } else {
                inv = self.scripts.attach.prepare_invoke();
                inv.key(meta(sid)).key(handles(sid)).key(HANDLE_COUNT);
            }
            inv.arg(id.0).arg(encode_handle(&rec)).arg(max_handles);
            match self.eval::<i64>(&inv).await? {
                1 => return Ok(id),
                -1 => return Err(StoreError::NoSuchSession),
                -2 => return Err(StoreError::Limit),
                _ => continue,
            }
        }
        Err(StoreError::Conflict)
    }

    /// An invocation of `script`, one that starts with the touch (`scripts::touch`), given the
    /// touch's keys and arguments; the caller adds its own after them.
    fn touching<'a>(&self, script: &'a ::redis::Script, sid: SessionId) -> ::redis::ScriptInvocation<'a> {
        let mut inv = script.prepare_invoke();
        inv.key(meta(sid)).key(DEADLINES).key(handles(sid)).key(DEFAULT_TIMEOUT).arg(sid.0).arg(self.now());
        inv
    }

    /// Deletes every Portunus key (tests start from a clean database).
    pub async fn flush(&self) -> Result<(), StoreError> {
        let mut c = self.con.clone();
        ::redis::cmd("FLUSHDB").query_async::<()>(&mut c).await.map_err(unavailable)
    }
}

#[async_trait]
impl Store for RedisStore {
    async fn create_session(&self, new: NewSession<'_>, max_sessions: usize) -> Result<SessionId, StoreError> {
        let requested = new.requested;
        for _ in 0..16 {
            let id = requested.unwrap_or_else(SessionId::random);
            let r: i64 = self
                .eval(
                    self.scripts
                        .create
                        .key(meta(id))
                        .key(SESSIONS)
                        .key(DEADLINES)
                        .key(mbox(id))
                        .key(grave(id))
                        .key(DEFAULT_TIMEOUT)
                        .arg(id.0)
                        .arg(self.now())
                        .arg(new.timeout_ms)
                        .arg(new.owner.map(|o| o.to_string()).unwrap_or_default())
                        .arg(max_sessions)
                        .arg(new.principal)
                        .arg(new.relay.unwrap_or_default()),
                )
                .await?;
            match r {
                1 => return Ok(id),
                -2 => return Err(StoreError::Limit),
                _ if requested.is_some() => return Err(StoreError::Conflict),
                _ => continue,
            }
        }
        Err(StoreError::Conflict)
    }

    async fn session(&self, sid: SessionId) -> Result<Option<SessionRecord>, StoreError> {
        let mut c = self.con.clone();
        let (fields, deadline): (Vec<Option<String>>, Option<f64>) = ::redis::pipe()
            .cmd("HMGET")
            .arg(meta(sid))
            .arg(&["created", "timeout", "owner", "gone", "own", "who"])
            .cmd("ZSCORE")
            .arg(DEADLINES)
            .arg(sid.0)
            .query_async(&mut c)
            .await
            .map_err(unavailable)?;
        let [created, timeout, owner, gone, own, who] = fields.as_slice() else { return Ok(None) };
        let Some(created) = created.as_ref().and_then(|c| c.parse().ok()) else { return Ok(None) };
        Ok(Some(SessionRecord {
            id: sid,
            created_ms: created,
            deadline_ms: deadline.map(|d| d as u64),
            timeout_ms: timeout.as_ref().and_then(|t| t.parse().ok()).unwrap_or(0),
            own_timeout: own.as_deref() == Some("1"),
            principal: who.clone().unwrap_or_default(),
            owner: owner.as_ref().and_then(|o| o.parse().ok()),
            transport_gone: gone.as_deref() == Some("1"),
        }))
    }

    async fn touch_session(&self, sid: SessionId) -> Result<bool, StoreError> {
        let r: i64 = self.eval(&self.touching(&self.scripts.touch, sid)).await?;
        Ok(r == 1)
    }

    async fn touch_session_handle(
        &self,
        sid: SessionId,
        hid: HandleId,
        join: Option<&RoomId>,
    ) -> Result<Option<Option<FoundHandle>>, StoreError> {
        let script = if join.is_some() { &self.scripts.touch_handle_joining } else { &self.scripts.touch_handle };
        let mut inv = self.touching(script, sid);
        inv.arg(hid.0);
        if let Some(room) = join {
            inv.key(room_node(room)).arg(room.0.key());
        }
        let r: ::redis::Value = self.eval(&inv).await?;
        Ok(touched_handle(sid, hid, r))
    }

    async fn touch_session_handle_sending(
        &self,
        sid: SessionId,
        hid: HandleId,
        join: Option<&RoomId>,
        send: &crate::wire::AroundRoom,
    ) -> Result<Option<Option<(FoundHandle, bool)>>, StoreError> {
        let script = match join {
            Some(_) => &self.scripts.touch_handle_joining,
            None => &self.scripts.touch_handle,
        };
        let mut inv = self.touching(script, sid);
        inv.arg(hid.0);
        let flag = match join {
            Some(room) => {
                inv.key(room_node(room)).arg(room.0.key()).arg(&send.head);
                4
            }
            None => {
                inv.arg(&send.head).arg(&send.tail);
                2
            }
        };
        inv.arg(crate::keys::NODE_RPC.0).arg(crate::keys::NODE_RPC.1);
        let r: ::redis::Value = self.eval(&inv).await?;
        // The answer's last element, 1, when the script published.
        let sent = matches!(&r, ::redis::Value::Array(v) if matches!(v.get(flag), Some(::redis::Value::Int(1))));
        Ok(touched_handle(sid, hid, r).map(|found| found.map(|f| (f, sent))))
    }

    async fn claim_session(
        &self,
        sid: SessionId,
        owner: u64,
        principal: &str,
        relay: Option<&str>,
    ) -> Result<Claim, StoreError> {
        let r: i64 = self
            .eval(
                self.scripts
                    .claim
                    .key(meta(sid))
                    .key(DEADLINES)
                    .key(DEFAULT_TIMEOUT)
                    .arg(sid.0)
                    .arg(self.now())
                    .arg(owner.to_string())
                    .arg(principal)
                    .arg(relay.unwrap_or_default())
                    .arg(crate::keys::session_channel(sid))
                    .arg(Signal::Claimed { owner }.to_bytes().as_ref()),
            )
            .await?;
        Ok(match r {
            1 => Claim::Claimed,
            -1 => Claim::WrongPrincipal,
            _ => Claim::NoSuchSession,
        })
    }

    async fn set_session_timeout(&self, sid: SessionId, timeout_ms: u64, own: bool) -> Result<bool, StoreError> {
        let r: i64 = self
            .eval(
                self.scripts
                    .set_timeout
                    .key(meta(sid))
                    .key(DEADLINES)
                    .key(DEFAULT_TIMEOUT)
                    .arg(sid.0)
                    .arg(self.now())
                    .arg(timeout_ms)
                    .arg(if own { "1" } else { "0" }),
            )
            .await?;
        Ok(r == 1)
    }

    async fn set_default_session_timeout(&self, timeout_ms: u64) -> Result<(), StoreError> {
        let mut c = self.con.clone();
        ::redis::cmd("SET").arg(DEFAULT_TIMEOUT).arg(timeout_ms).query_async::<()>(&mut c).await.map_err(unavailable)
    }

    async fn default_session_timeout(&self) -> Result<Option<u64>, StoreError> {
        let mut c = self.con.clone();
        ::redis::cmd("GET").arg(DEFAULT_TIMEOUT).query_async::<Option<u64>>(&mut c).await.map_err(unavailable)
    }

    async fn release_session(&self, sid: SessionId, owner: u64, reclaim_ms: u64) -> Result<(), StoreError> {
        let _: i64 = self
            .eval(
                self.scripts
                    .release
                    .key(meta(sid))
                    .key(DEADLINES)
                    .arg(sid.0)
                    .arg(self.now())
                    .arg(owner.to_string())
                    .arg(reclaim_ms),
            )
            .await?;
        Ok(())
    }

    async fn destroy_session(
        &self,
        sid: SessionId,
        last: Option<Bytes>,
        by: Option<u64>,
    ) -> Result<Option<Ended>, StoreError> {
        let r: Option<Vec<String>> = self
            .eval(
                self.scripts
                    .destroy
                    .key(meta(sid))
                    .key(handles(sid))
                    .key(SESSIONS)
                    .key(DEADLINES)
                    .key(mbox(sid))
                    .key(grave(sid))
                    .key(HANDLE_COUNT)
                    .arg(sid.0)
                    .arg(MAILBOX_GRACE_MS)
                    .arg(last.as_deref().unwrap_or_default())
                    .arg(crate::keys::session_channel(sid))
                    .arg(Signal::Over.to_bytes().as_ref())
                    .arg(MAILBOX_CAP)
                    .arg(by.map(|o| o.to_string()).unwrap_or_default()),
            )
            .await?;
        // The mailbox's length, then HGETALL's flat [id, json, id, json, ...].
        Ok(r.map(|flat| {
            // A count that does not read as one is taken as something left: the caller then
            // reads the mailbox rather than leave an event in it.
            let queued = flat.first().and_then(|n| n.parse().ok()).unwrap_or(1);
            let handles = flat.get(1..).unwrap_or_default();
            Ended {
                handles: handles
                    .chunks(2)
                    .filter_map(|kv| decode_handle(sid, HandleId(kv[0].parse().ok()?), kv.get(1)?))
                    .collect(),
                queued,
            }
        }))
    }

    async fn take_expired(&self, limit: usize) -> Result<Vec<SessionId>, StoreError> {
        let ids: Vec<u64> = self.eval(self.scripts.take_expired.key(DEADLINES).arg(self.now()).arg(limit)).await?;
        Ok(ids.into_iter().map(SessionId).collect())
    }

    async fn counts(&self) -> Result<(u64, u64), StoreError> {
        let mut c = self.con.clone();
        let (s, h): (u64, Option<i64>) = ::redis::pipe()
            .cmd("SCARD")
            .arg(SESSIONS)
            .cmd("GET")
            .arg(HANDLE_COUNT)
            .query_async(&mut c)
            .await
            .map_err(unavailable)?;
        Ok((s, h.unwrap_or(0).max(0) as u64))
    }

    async fn attach_handle(
        &self,
        sid: SessionId,
        plugin: &str,
        opaque_id: Option<String>,
        max_handles: usize,
    ) -> Result<HandleId, StoreError> {
        self.attach(sid, plugin, opaque_id, max_handles, false).await
    }

    async fn touch_attach_handle(
        &self,
        sid: SessionId,
        plugin: &str,
        opaque_id: Option<String>,
        max_handles: usize,
    ) -> Result<HandleId, StoreError> {
        self.attach(sid, plugin, opaque_id, max_handles, true).await
    }

    async fn handle(&self, sid: SessionId, hid: HandleId) -> Result<Option<HandleRecord>, StoreError> {
        let mut c = self.con.clone();
        let v: Option<String> =
            ::redis::cmd("HGET").arg(handles(sid)).arg(hid.0).query_async(&mut c).await.map_err(unavailable)?;
        Ok(v.and_then(|v| decode_handle(sid, hid, &v)))
    }

    async fn touch_detach_handle(
        &self,
        sid: SessionId,
        hid: HandleId,
    ) -> Result<Option<Option<HandleRecord>>, StoreError> {
        let mut inv = self.touching(&self.scripts.touch_detach, sid);
        inv.key(HANDLE_COUNT).arg(hid.0);
        let r: ::redis::Value = self.eval(&inv).await?;
        Ok(touched_handle(sid, hid, r).map(|found| found.map(|f| f.handle)))
    }

    async fn touch_detach_handle_telling(
        &self,
        sid: SessionId,
        hid: HandleId,
        gone: &crate::wire::AroundRoom,
        event: Bytes,
    ) -> Result<Option<Option<HandleRecord>>, StoreError> {
        let mut inv = self.touching(&self.scripts.touch_detach, sid);
        inv.key(HANDLE_COUNT).key(mbox(sid)).arg(hid.0).arg(&gone.head).arg(&gone.tail);
        inv.arg(crate::keys::NODE_RPC.0).arg(crate::keys::NODE_RPC.1).arg(event.as_ref()).arg(MAILBOX_CAP);
        inv.arg(Signal::Wake.to_bytes().as_ref()).arg(crate::keys::session_channel(sid));
        let r: ::redis::Value = self.eval(&inv).await?;
        Ok(touched_handle(sid, hid, r).map(|found| found.map(|f| f.handle)))
    }

    async fn detach_handle(&self, sid: SessionId, hid: HandleId) -> Result<Option<HandleRecord>, StoreError> {
        let v: Option<String> =
            self.eval(self.scripts.detach.key(handles(sid)).key(HANDLE_COUNT).arg(hid.0).arg(sid.0)).await?;
        Ok(v.and_then(|v| decode_handle(sid, hid, &v)))
    }

    async fn bind_handle(&self, sid: SessionId, hid: HandleId, binding: Option<Binding>) -> Result<(), StoreError> {
        let (room, node) = match binding {
            Some(b) => (b.room.0.key(), b.node.0),
            None => (String::new(), String::new()),
        };
        let _: i64 = self.eval(self.scripts.bind.key(handles(sid)).arg(hid.0).arg(room).arg(node).arg(sid.0)).await?;
        Ok(())
    }

    async fn set_handle_capture(
        &self,
        sid: SessionId,
        hid: HandleId,
        capture: Option<crate::janus::admin::CaptureSpec>,
    ) -> Result<Option<bool>, StoreError> {
        let spec = capture.map(|c| serde_json::to_string(&c).unwrap_or_default()).unwrap_or_default();
        let r: i64 = self.eval(self.scripts.set_capture.key(handles(sid)).arg(hid.0).arg(spec)).await?;
        Ok((r >= 0).then_some(r == 1))
    }

    async fn unbind_handle_from(&self, sid: SessionId, hid: HandleId, node: &NodeId) -> Result<bool, StoreError> {
        let r: i64 = self.eval(self.scripts.unbind_from.key(handles(sid)).arg(hid.0).arg(&node.0).arg(sid.0)).await?;
        Ok(r == 1)
    }

    fn signals_sessions(&self) -> bool {
        true
    }

    async fn push_event(&self, sid: SessionId, event: Bytes) -> Result<(), StoreError> {
        self.push_events(&[(sid, event)]).await
    }

    /// The wake-ups go out from the script that pushes the events: one round trip for both.
    async fn push_events(&self, events: &[(SessionId, Bytes)]) -> Result<(), StoreError> {
        self.push_events_after(&[], events).await
    }

    async fn push_events_after(
        &self,
        first: &[(String, Bytes)],
        events: &[(SessionId, Bytes)],
    ) -> Result<(), StoreError> {
        if first.is_empty() && events.is_empty() {
            return Ok(());
        }
        let mut inv = self.scripts.push_many.prepare_invoke();
        for (sid, _) in events {
            inv.key(meta(*sid)).key(grave(*sid)).key(mbox(*sid));
        }
        inv.arg(MAILBOX_CAP).arg(Signal::Wake.to_bytes().as_ref()).arg(first.len());
        for (channel, payload) in first {
            inv.arg(channel).arg(payload.as_ref());
        }
        for (sid, ev) in events {
            inv.arg(ev.as_ref()).arg(crate::keys::session_channel(*sid));
        }
        let _: i64 = self.eval(&inv).await?;
        Ok(())
    }

    async fn pop_events(&self, sid: SessionId, max: usize) -> Result<Vec<Bytes>, StoreError> {
        let mut c = self.con.clone();
        let v: Option<Vec<Vec<u8>>> =
            ::redis::cmd("LPOP").arg(mbox(sid)).arg(max).query_async(&mut c).await.map_err(unavailable)?;
        Ok(v.unwrap_or_default().into_iter().map(Bytes::from).collect())
    }

    async fn create_room(&self, config: RoomConfig, max_rooms: usize) -> Result<(), StoreError> {
        let json = serde_json::to_string(&config).map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let r: i64 = self
            .eval(
                self.scripts
                    .create_room
                    .key(room_key(&config.room))
                    .key(ROOMS)
                    .arg(config.room.0.key())
                    .arg(json)
                    .arg(max_rooms),
            )
            .await?;
        match r {
            1 => Ok(()),
            -2 => Err(StoreError::Limit),
            _ => Err(StoreError::Conflict),
        }
    }

    async fn room(&self, room: RoomId) -> Result<Option<RoomRecord>, StoreError> {
        let mut c = self.con.clone();
        let (cfg, n): (Option<String>, Option<u64>) = ::redis::cmd("MGET")
            .arg(room_key(&room))
            .arg(room_n(&room))
            .query_async(&mut c)
            .await
            .map_err(unavailable)?;
        Ok(cfg
            .and_then(|j| serde_json::from_str::<RoomConfig>(&j).ok())
            .map(|config| RoomRecord { config, participants: n.unwrap_or(0) }))
    }

    async fn update_room(&self, config: RoomConfig) -> Result<(), StoreError> {
        let mut c = self.con.clone();
        let json = serde_json::to_string(&config).map_err(|e| StoreError::Unavailable(e.to_string()))?;
        ::redis::cmd("SET")
            .arg(room_key(&config.room))
            .arg(json)
            .arg("XX")
            .query_async::<()>(&mut c)
            .await
            .map_err(unavailable)
    }

    async fn set_room_participants(&self, room: RoomId, n: u64) -> Result<(), StoreError> {
        let mut c = self.con.clone();
        ::redis::cmd("SET").arg(room_n(&room)).arg(n).query_async::<()>(&mut c).await.map_err(unavailable)
    }

    async fn delete_room(&self, room: RoomId) -> Result<bool, StoreError> {
        let mut c = self.con.clone();
        let (deleted, _): (i64, i64) = ::redis::pipe()
            .atomic()
            .cmd("DEL")
            .arg(room_key(&room))
            .arg(room_n(&room))
            .arg(room_node(&room))
            .cmd("SREM")
            .arg(ROOMS)
            .arg(room.0.key())
            .query_async(&mut c)
            .await
            .map_err(unavailable)?;
        Ok(deleted > 0)
    }

    async fn list_rooms(&self) -> Result<Vec<RoomRecord>, StoreError> {
        let mut c = self.con.clone();
        let keys: Vec<String> = ::redis::cmd("SMEMBERS").arg(ROOMS).query_async(&mut c).await.map_err(unavailable)?;
        let mut ids: Vec<RoomId> = keys.iter().filter_map(|k| JanusId::from_key(k)).map(RoomId).collect();
        ids.sort_unstable();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut mget = ::redis::cmd("MGET");
        for id in &ids {
            mget.arg(room_key(id)).arg(room_n(id));
        }
        let vals: Vec<Option<String>> = mget.query_async(&mut c).await.map_err(unavailable)?;
        Ok(vals
            .chunks(2)
            .filter_map(|pair| {
                let config = serde_json::from_str::<RoomConfig>(pair[0].as_deref()?).ok()?;
                let participants = pair.get(1).cloned().flatten().and_then(|n| n.parse().ok()).unwrap_or(0);
                Some(RoomRecord { config, participants })
            })
            .collect())
    }

    async fn place_room(&self, room: RoomId, candidate: &NodeId, lease_ms: u64) -> Result<NodeId, StoreError> {
        let owner: String =
            self.eval(self.scripts.place_room.key(room_node(&room)).arg(&candidate.0).arg(lease_ms)).await?;
        Ok(NodeId(owner))
    }

    async fn renew_room(&self, room: RoomId, node: &NodeId, lease_ms: u64) -> Result<bool, StoreError> {
        let r: i64 = self.eval(self.scripts.renew_room.key(room_node(&room)).arg(&node.0).arg(lease_ms)).await?;
        Ok(r == 1)
    }

    async fn take_lost_nodes(&self) -> Result<Vec<NodeId>, StoreError> {
        let lost: Vec<String> = self.eval(&self.scripts.take_lost.key(NODES)).await?;
        Ok(lost.into_iter().map(NodeId).collect())
    }

    async fn node_handles(&self, node: &NodeId) -> Result<Vec<(SessionId, HandleId)>, StoreError> {
        let mut c = self.con.clone();
        let members: Vec<String> = ::redis::cmd("SMEMBERS")
            .arg(format!("pt:node:{node}:handles"))
            .query_async(&mut c)
            .await
            .map_err(unavailable)?;
        let mut out: Vec<(SessionId, HandleId)> = members
            .iter()
            .filter_map(|m| {
                let (s, h) = m.split_once(':')?;
                Some((SessionId(s.parse().ok()?), HandleId(h.parse().ok()?)))
            })
            .collect();
        out.sort();
        Ok(out)
    }

    async fn room_owner(&self, room: RoomId) -> Result<Option<NodeId>, StoreError> {
        let mut c = self.con.clone();
        let v: Option<String> =
            ::redis::cmd("GET").arg(room_node(&room)).query_async(&mut c).await.map_err(unavailable)?;
        Ok(v.map(NodeId))
    }

    async fn room_owner_status(&self, room: RoomId) -> Result<Option<(NodeId, bool)>, StoreError> {
        let v: Option<(String, i64)> = self.eval(&self.scripts.owner_status.key(room_node(&room))).await?;
        Ok(v.map(|(node, registered)| (NodeId(node), registered == 1)))
    }

    async fn replace_room_owner(
        &self,
        room: RoomId,
        dead: &NodeId,
        candidate: &NodeId,
        lease_ms: u64,
    ) -> Result<NodeId, StoreError> {
        let owner: String = self
            .eval(self.scripts.replace_owner.key(room_node(&room)).arg(&dead.0).arg(&candidate.0).arg(lease_ms))
            .await?;
        Ok(NodeId(owner))
    }

    async fn register_node(&self, status: NodeStatus, ttl_ms: u64) -> Result<(), StoreError> {
        let mut c = self.con.clone();
        let value = format!("{} {}", status.load, u8::from(status.draining));
        ::redis::pipe()
            .cmd("SET")
            .arg(node_key(&status.node))
            .arg(value)
            .arg("PX")
            .arg(ttl_ms)
            .ignore()
            .cmd("SADD")
            .arg(NODES)
            .arg(&status.node.0)
            .ignore()
            .query_async::<()>(&mut c)
            .await
            .map_err(unavailable)
    }

    async fn add_token(&self, token: &str, plugins: &[String]) -> Result<Vec<String>, StoreError> {
        let r: Option<Vec<String>> =
            self.eval(self.scripts.tokens.key(TOKENS).arg(token).arg("add").arg(plugins)).await?;
        Ok(r.unwrap_or_default())
    }

    async fn token(&self, token: &str) -> Result<Option<Vec<String>>, StoreError> {
        let mut c = self.con.clone();
        let v: Option<String> =
            ::redis::cmd("HGET").arg(TOKENS).arg(token).query_async(&mut c).await.map_err(unavailable)?;
        Ok(v.map(|v| plugin_list(&v)))
    }

    async fn allow_token(
        &self,
        token: &str,
        plugins: &[String],
        allow: bool,
    ) -> Result<Option<Vec<String>>, StoreError> {
        let mode = if allow { "allow" } else { "disallow" };
        self.eval(self.scripts.tokens.key(TOKENS).arg(token).arg(mode).arg(plugins)).await
    }

    async fn remove_token(&self, token: &str) -> Result<bool, StoreError> {
        let mut c = self.con.clone();
        let n: u64 = ::redis::cmd("HDEL").arg(TOKENS).arg(token).query_async(&mut c).await.map_err(unavailable)?;
        Ok(n > 0)
    }

    async fn list_tokens(&self) -> Result<Vec<(String, Vec<String>)>, StoreError> {
        let mut c = self.con.clone();
        let all: std::collections::BTreeMap<String, String> =
            ::redis::cmd("HGETALL").arg(TOKENS).query_async(&mut c).await.map_err(unavailable)?;
        Ok(all.into_iter().map(|(t, p)| (t, plugin_list(&p))).collect())
    }

    async fn session_handles(&self, sid: SessionId) -> Result<Vec<HandleId>, StoreError> {
        let mut c = self.con.clone();
        let ids: Vec<u64> = ::redis::cmd("HKEYS").arg(handles(sid)).query_async(&mut c).await.map_err(unavailable)?;
        Ok(ids.into_iter().map(HandleId).collect())
    }

    async fn list_sessions(&self) -> Result<Vec<SessionId>, StoreError> {
        let mut c = self.con.clone();
        let ids: Vec<u64> = ::redis::cmd("SMEMBERS").arg(SESSIONS).query_async(&mut c).await.map_err(unavailable)?;
        Ok(ids.into_iter().map(SessionId).collect())
    }

    async fn seeded(&self) -> Result<bool, StoreError> {
        let mut c = self.con.clone();
        ::redis::cmd("EXISTS").arg(SEEDED).query_async(&mut c).await.map_err(unavailable)
    }

    async fn mark_seeded(&self) -> Result<(), StoreError> {
        let mut c = self.con.clone();
        ::redis::cmd("SET").arg(SEEDED).arg(1).query_async(&mut c).await.map_err(unavailable)
    }

    async fn set_knob(&self, knob: Knob) -> Result<(), StoreError> {
        let mut c = self.con.clone();
        ::redis::cmd("HSET")
            .arg(KNOBS)
            .arg(knob.field())
            .arg(knob.value())
            .query_async(&mut c)
            .await
            .map_err(unavailable)
    }

    async fn knobs(&self) -> Result<Vec<Knob>, StoreError> {
        let mut c = self.con.clone();
        let all: Vec<(String, String)> =
            ::redis::cmd("HGETALL").arg(KNOBS).query_async(&mut c).await.map_err(unavailable)?;
        Ok(all.iter().filter_map(|(f, v)| Knob::parse(f, v)).collect())
    }

    async fn deregister_node(&self, node: &NodeId) -> Result<(), StoreError> {
        let mut c = self.con.clone();
        ::redis::pipe()
            .cmd("SREM")
            .arg(NODES)
            .arg(&node.0)
            .ignore()
            .cmd("DEL")
            .arg(node_key(node))
            .ignore()
            .query_async::<()>(&mut c)
            .await
            .map_err(unavailable)
    }

    async fn live_nodes(&self) -> Result<Vec<NodeStatus>, StoreError> {
        let mut c = self.con.clone();
        let mut names: Vec<String> =
            ::redis::cmd("SMEMBERS").arg(NODES).query_async(&mut c).await.map_err(unavailable)?;
        names.sort();
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let mut mget = ::redis::cmd("MGET");
        for n in &names {
            mget.arg(node_key(&NodeId(n.clone())));
        }
        let vals: Vec<Option<String>> = mget.query_async(&mut c).await.map_err(unavailable)?;
        let mut live = Vec::new();
        for (name, v) in names.into_iter().zip(vals) {
            // None: its registration lapsed; `take_lost_nodes` hands it to one gateway for cleanup.
            if let Some(v) = v {
                let mut it = v.split(' ');
                let load = it.next().and_then(|l| l.parse().ok()).unwrap_or(0);
                let draining = it.next() == Some("1");
                live.push(NodeStatus { node: NodeId(name), load, draining });
            }
        }
        Ok(live)
    }
}
