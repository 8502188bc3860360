//! The Redis [`Store`] for cluster mode. Every operation that touches several keys is one Lua
//! script, so it is atomic exactly like the in-memory twin's single lock. Time comes from the
//! injected [`Clock`] (passed to the scripts), so both implementations run one conformance suite.
//!
//! Keys (prefix `pt:`; a session's keys share the hash tag `{s:SID}`):
//! `pt:{s:SID}:meta` (hash: created, timeout, owner, gone), `pt:{s:SID}:handles` (hash of handle
//! JSON), `pt:{s:SID}:mbox` (list of events), `pt:{s:SID}:grave` (marks a destroyed session's
//! readable mailbox), `pt:sessions` (set), `pt:deadlines` (zset), `pt:handles:count`,
//! Session keys also expire by themselves 2x the timeout + 60 s after the last activity: a
//! safety net for when no gateway is left to reap them, far enough past the deadline that a
//! reaper always finds the session (and sends its `timeout`) first.
//! `pt:room:R` (room JSON), `pt:room:R:n` (participants), `pt:room:R:node` (owner), `pt:rooms`.

use super::*;
use crate::clock::Clock;
use crate::redis_conn::Conn;
use ::redis::aio::ConnectionManagerConfig;
use ::redis::Script;
use std::sync::Arc;
use std::time::Duration;

/// A Redis command never waits longer than this; a dead Redis becomes an error, not a hang.
pub const REDIS_RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
/// Connecting (or reconnecting) gives up after this.
pub const REDIS_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

struct Scripts {
    create: Script,
    touch: Script,
    claim: Script,
    release: Script,
    destroy: Script,
    take_expired: Script,
    attach: Script,
    detach: Script,
    bind: Script,
    push: Script,
    create_room: Script,
    place_room: Script,
    replace_owner: Script,
    renew_room: Script,
    take_lost: Script,
    unbind_from: Script,
    tokens: Script,
    set_timeout: Script,
    push_many: Script,
}

impl Scripts {
    fn new() -> Self {
        Self {
            create: Script::new(
                r"
if redis.call('EXISTS', KEYS[1]) == 1 then return -1 end
if redis.call('SCARD', KEYS[2]) >= tonumber(ARGV[5]) then return -2 end
local t = tonumber(redis.call('GET', KEYS[6]) or ARGV[3])
redis.call('HSET', KEYS[1], 'created', ARGV[2], 'timeout', t, 'owner', ARGV[4], 'gone', '0', 'own', '0', 'who', ARGV[6])
if t > 0 then
  redis.call('ZADD', KEYS[3], tonumber(ARGV[2]) + t, ARGV[1])
  redis.call('PEXPIRE', KEYS[1], 2 * t + 60000)
end
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('DEL', KEYS[4], KEYS[5])
return 1",
            ),
            touch: Script::new(
                r"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local f = redis.call('HMGET', KEYS[1], 'timeout', 'gone', 'own')
local t = tonumber(f[1])
if f[3] ~= '1' then
  local d = redis.call('GET', KEYS[4])
  if d and tonumber(d) ~= t then t = tonumber(d); redis.call('HSET', KEYS[1], 'timeout', t) end
end
if f[2] == '0' then
  if t > 0 then
    redis.call('ZADD', KEYS[2], tonumber(ARGV[2]) + t, ARGV[1])
    redis.call('PEXPIRE', KEYS[1], 2 * t + 60000)
    redis.call('PEXPIRE', KEYS[3], 2 * t + 60000)
  else
    redis.call('ZREM', KEYS[2], ARGV[1])
    redis.call('PERSIST', KEYS[1])
    redis.call('PERSIST', KEYS[3])
  end
end
return 1",
            ),
            claim: Script::new(
                r"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local f = redis.call('HMGET', KEYS[1], 'timeout', 'own', 'who')
if f[3] and f[3] ~= '' and f[3] ~= ARGV[4] then return -1 end
redis.call('HSET', KEYS[1], 'owner', ARGV[3], 'gone', '0')
local t = tonumber(f[1])
if f[2] ~= '1' then
  local d = redis.call('GET', KEYS[3])
  if d then t = tonumber(d); redis.call('HSET', KEYS[1], 'timeout', t) end
end
if t > 0 then
  redis.call('ZADD', KEYS[2], tonumber(ARGV[2]) + t, ARGV[1])
  redis.call('PEXPIRE', KEYS[1], 2 * t + 60000)
else redis.call('ZREM', KEYS[2], ARGV[1]) end
return 1",
            ),
            set_timeout: Script::new(
                r"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local t = tonumber(ARGV[3])
if ARGV[4] == '0' then t = tonumber(redis.call('GET', KEYS[3]) or ARGV[3]) end
redis.call('HSET', KEYS[1], 'timeout', t, 'own', ARGV[4])
if redis.call('HGET', KEYS[1], 'gone') == '1' then return 1 end
if t > 0 then
  redis.call('ZADD', KEYS[2], tonumber(ARGV[2]) + t, ARGV[1])
  redis.call('PEXPIRE', KEYS[1], 2 * t + 60000)
else
  redis.call('ZREM', KEYS[2], ARGV[1])
  redis.call('PERSIST', KEYS[1])
end
return 1",
            ),
            release: Script::new(
                r"
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[3] then return 0 end
redis.call('HSET', KEYS[1], 'owner', '', 'gone', '1')
redis.call('ZADD', KEYS[2], tonumber(ARGV[2]) + tonumber(ARGV[4]), ARGV[1])
if redis.call('PTTL', KEYS[1]) > 0 then redis.call('PEXPIRE', KEYS[1], 2 * tonumber(ARGV[4]) + 60000) end
return 1",
            ),
            destroy: Script::new(
                r"
redis.call('SREM', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[1])
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local hs = redis.call('HGETALL', KEYS[2])
redis.call('DEL', KEYS[1], KEYS[2])
if #hs > 0 then redis.call('DECRBY', KEYS[7], #hs / 2) end
for i = 1, #hs, 2 do
  local h = cjson.decode(hs[i + 1])
  if type(h['node']) == 'string' then redis.call('SREM', 'pt:node:' .. h['node'] .. ':handles', ARGV[1] .. ':' .. hs[i]) end
end
redis.call('SET', KEYS[6], '1', 'PX', ARGV[2])
redis.call('PEXPIRE', KEYS[5], ARGV[2])
return hs",
            ),
            take_expired: Script::new(
                r"
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, id in ipairs(ids) do redis.call('ZREM', KEYS[1], id) end
return ids",
            ),
            attach: Script::new(
                r"
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
if redis.call('HLEN', KEYS[2]) >= tonumber(ARGV[3]) then return -2 end
if redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('INCR', KEYS[3])
local ttl = redis.call('PTTL', KEYS[1])
if ttl > 0 then redis.call('PEXPIRE', KEYS[2], ttl) end
return 1",
            ),
            detach: Script::new(
                r"
local v = redis.call('HGET', KEYS[1], ARGV[1])
if not v then return false end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('DECR', KEYS[2])
local h = cjson.decode(v)
if type(h['node']) == 'string' then redis.call('SREM', 'pt:node:' .. h['node'] .. ':handles', ARGV[2] .. ':' .. ARGV[1]) end
return v",
            ),
            // Room ids are kept as strings inside the JSON: Lua numbers lose digits past 2^53's 14.
            // Also keeps `pt:node:N:handles` (members `SID:HID`) in step with the binding.
            bind: Script::new(
                r"
local v = redis.call('HGET', KEYS[1], ARGV[1])
if not v then return 0 end
local h = cjson.decode(v)
local member = ARGV[4] .. ':' .. ARGV[1]
if type(h['node']) == 'string' then redis.call('SREM', 'pt:node:' .. h['node'] .. ':handles', member) end
if ARGV[2] == '' then h['room'] = nil; h['node'] = nil else
  h['room'] = ARGV[2]; h['node'] = ARGV[3]
  redis.call('SADD', 'pt:node:' .. ARGV[3] .. ':handles', member)
end
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(h))
return 1",
            ),
            push_many: Script::new(
                r"
local cap = tonumber(ARGV[1])
for i = 1, #KEYS / 3 do
  local m, g, b = KEYS[3 * i - 2], KEYS[3 * i - 1], KEYS[3 * i]
  if redis.call('EXISTS', m) == 1 or redis.call('EXISTS', g) == 1 then
    redis.call('RPUSH', b, ARGV[i + 1])
    redis.call('LTRIM', b, -cap, -1)
  end
end
return 1",
            ),
            push: Script::new(
                r"
if redis.call('EXISTS', KEYS[1]) == 0 and redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
redis.call('RPUSH', KEYS[3], ARGV[1])
redis.call('LTRIM', KEYS[3], -tonumber(ARGV[2]), -1)
return 1",
            ),
            create_room: Script::new(
                r"
if redis.call('EXISTS', KEYS[1]) == 1 then return -1 end
if redis.call('SCARD', KEYS[2]) >= tonumber(ARGV[3]) then return -2 end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('SADD', KEYS[2], ARGV[1])
return 1",
            ),
            place_room: Script::new(
                r"
local cur = redis.call('GET', KEYS[1])
if cur then return cur end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return ARGV[1]",
            ),
            replace_owner: Script::new(
                r"
local cur = redis.call('GET', KEYS[1])
if (not cur) or cur == ARGV[1] then redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]); return ARGV[2] end
return cur",
            ),
            unbind_from: Script::new(
                r"
local v = redis.call('HGET', KEYS[1], ARGV[1])
if not v then return 0 end
local h = cjson.decode(v)
if h['node'] ~= ARGV[2] then return 0 end
h['room'] = nil; h['node'] = nil
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(h))
redis.call('SREM', 'pt:node:' .. ARGV[2] .. ':handles', ARGV[3] .. ':' .. ARGV[1])
return 1",
            ),
            renew_room: Script::new(
                r"
local cur = redis.call('GET', KEYS[1])
if cur and cur ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1",
            ),
            // A token's plugins, changed in one step: ARGV[2] is add (creates the token), allow
            // or disallow (of an existing token; nil when there is none); the list keeps the
            // order plugins were allowed in, one per line.
            tokens: Script::new(
                r"
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if not cur then
  if ARGV[2] ~= 'add' then return false end
  cur = ''
end
local list = {}
for p in string.gmatch(cur, '[^\n]+') do table.insert(list, p) end
for i = 3, #ARGV do
  local p, at = ARGV[i], nil
  for j, q in ipairs(list) do if q == p then at = j end end
  if ARGV[2] == 'disallow' then
    if at then table.remove(list, at) end
  elseif not at then
    table.insert(list, p)
  end
end
redis.call('HSET', KEYS[1], ARGV[1], table.concat(list, '\n'))
return list",
            ),
            // Registry members whose heartbeat key expired; SREM decides who handles each.
            take_lost: Script::new(
                r"
local lost = {}
for _, n in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if redis.call('EXISTS', 'pt:node:' .. n) == 0 then
    if redis.call('SREM', KEYS[1], n) == 1 then table.insert(lost, n) end
  end
end
return lost",
            ),
        }
    }
}

#[derive(Clone)]
pub struct RedisStore {
    con: Conn,
    clock: Arc<dyn Clock>,
    scripts: Arc<Scripts>,
}

fn meta(s: SessionId) -> String {
    format!("pt:{{s:{s}}}:meta")
}
fn handles(s: SessionId) -> String {
    format!("pt:{{s:{s}}}:handles")
}
fn mbox(s: SessionId) -> String {
    format!("pt:{{s:{s}}}:mbox")
}
fn grave(s: SessionId) -> String {
    format!("pt:{{s:{s}}}:grave")
}
const SESSIONS: &str = "pt:sessions";
const DEADLINES: &str = "pt:deadlines";
/// The Admin API's default session timeout (ms), once set.
const DEFAULT_TIMEOUT: &str = "pt:sessions:timeout";
const HANDLE_COUNT: &str = "pt:handles:count";
const ROOMS: &str = "pt:rooms";
fn room_key(r: RoomId) -> String {
    format!("pt:room:{r}")
}
fn room_n(r: RoomId) -> String {
    format!("pt:room:{r}:n")
}
fn room_node(r: RoomId) -> String {
    format!("pt:room:{r}:node")
}
const NODES: &str = "pt:nodes";
/// Stored tokens: token -> the plugins it may attach to, one per line.
const TOKENS: &str = "pt:tokens";
/// Set once the declared rooms exist; gone with everything else when Redis loses its data.
const SEEDED: &str = "pt:seeded";
fn node_key(n: &NodeId) -> String {
    format!("pt:node:{n}")
}

fn unavailable(e: ::redis::RedisError) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

/// A handle as stored: JSON written and read here only (domain records carry no serde).
fn encode_handle(h: &HandleRecord) -> String {
    let mut v = serde_json::json!({"plugin": h.plugin, "opaque_id": h.opaque_id});
    if let Some(b) = &h.binding {
        v["room"] = serde_json::json!(b.room.0.to_string());
        v["node"] = serde_json::json!(b.node.0);
    }
    v.to_string()
}

fn decode_handle(session: SessionId, id: HandleId, text: &str) -> Option<HandleRecord> {
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    let binding = match (v["room"].as_str().and_then(|r| r.parse().ok()), v["node"].as_str()) {
        (Some(room), Some(node)) => Some(Binding { room: RoomId(room), node: NodeId(node.to_owned()) }),
        _ => None,
    };
    Some(HandleRecord {
        id,
        session,
        plugin: v["plugin"].as_str().unwrap_or_default().to_owned(),
        opaque_id: v["opaque_id"].as_str().map(str::to_owned),
        binding,
    })
}

fn plugin_list(v: &str) -> Vec<String> {
    v.lines().filter(|l| !l.is_empty()).map(str::to_owned).collect()
}

impl RedisStore {
    /// Connects (and keeps reconnecting in the background after failures).
    pub async fn connect(url: &str, clock: Arc<dyn Clock>) -> Result<Self, StoreError> {
        let client = ::redis::Client::open(url).map_err(unavailable)?;
        let cfg = ConnectionManagerConfig::new()
            .set_response_timeout(Some(REDIS_RESPONSE_TIMEOUT))
            .set_connection_timeout(Some(REDIS_CONNECT_TIMEOUT))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(1));
        let con = Conn::new(client.get_connection_manager_with_config(cfg).await.map_err(unavailable)?);
        Ok(Self { con, clock, scripts: Arc::new(Scripts::new()) })
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
                        .arg(new.principal),
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
        let r: i64 = self
            .eval(
                self.scripts
                    .touch
                    .key(meta(sid))
                    .key(DEADLINES)
                    .key(handles(sid))
                    .key(DEFAULT_TIMEOUT)
                    .arg(sid.0)
                    .arg(self.now()),
            )
            .await?;
        Ok(r == 1)
    }

    async fn claim_session(&self, sid: SessionId, owner: u64, principal: &str) -> Result<Claim, StoreError> {
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
                    .arg(principal),
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

    async fn destroy_session(&self, sid: SessionId) -> Result<Option<Vec<HandleRecord>>, StoreError> {
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
                    .arg(MAILBOX_GRACE_MS),
            )
            .await?;
        // HGETALL's flat [id, json, id, json, ...].
        Ok(r.map(|flat| {
            flat.chunks(2).filter_map(|kv| decode_handle(sid, HandleId(kv[0].parse().ok()?), kv.get(1)?)).collect()
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
        for _ in 0..16 {
            let id = HandleId::random();
            let rec = HandleRecord {
                id,
                session: sid,
                plugin: plugin.to_owned(),
                opaque_id: opaque_id.clone(),
                binding: None,
            };
            let r: i64 = self
                .eval(
                    self.scripts
                        .attach
                        .key(meta(sid))
                        .key(handles(sid))
                        .key(HANDLE_COUNT)
                        .arg(id.0)
                        .arg(encode_handle(&rec))
                        .arg(max_handles),
                )
                .await?;
            match r {
                1 => return Ok(id),
                -1 => return Err(StoreError::NoSuchSession),
                -2 => return Err(StoreError::Limit),
                _ => continue,
            }
        }
        Err(StoreError::Conflict)
    }

    async fn handle(&self, sid: SessionId, hid: HandleId) -> Result<Option<HandleRecord>, StoreError> {
        let mut c = self.con.clone();
        let v: Option<String> =
            ::redis::cmd("HGET").arg(handles(sid)).arg(hid.0).query_async(&mut c).await.map_err(unavailable)?;
        Ok(v.and_then(|v| decode_handle(sid, hid, &v)))
    }

    async fn detach_handle(&self, sid: SessionId, hid: HandleId) -> Result<Option<HandleRecord>, StoreError> {
        let v: Option<String> =
            self.eval(self.scripts.detach.key(handles(sid)).key(HANDLE_COUNT).arg(hid.0).arg(sid.0)).await?;
        Ok(v.and_then(|v| decode_handle(sid, hid, &v)))
    }

    async fn bind_handle(&self, sid: SessionId, hid: HandleId, binding: Option<Binding>) -> Result<(), StoreError> {
        let (room, node) = match binding {
            Some(b) => (b.room.0.to_string(), b.node.0),
            None => (String::new(), String::new()),
        };
        let _: i64 = self.eval(self.scripts.bind.key(handles(sid)).arg(hid.0).arg(room).arg(node).arg(sid.0)).await?;
        Ok(())
    }

    async fn unbind_handle_from(&self, sid: SessionId, hid: HandleId, node: &NodeId) -> Result<bool, StoreError> {
        let r: i64 = self.eval(self.scripts.unbind_from.key(handles(sid)).arg(hid.0).arg(&node.0).arg(sid.0)).await?;
        Ok(r == 1)
    }

    async fn push_event(&self, sid: SessionId, event: Bytes) -> Result<(), StoreError> {
        let _: i64 = self
            .eval(self.scripts.push.key(meta(sid)).key(grave(sid)).key(mbox(sid)).arg(event.as_ref()).arg(MAILBOX_CAP))
            .await?;
        Ok(())
    }

    async fn push_events(&self, events: &[(SessionId, Bytes)]) -> Result<(), StoreError> {
        if events.is_empty() {
            return Ok(());
        }
        let mut inv = self.scripts.push_many.prepare_invoke();
        for (sid, _) in events {
            inv.key(meta(*sid)).key(grave(*sid)).key(mbox(*sid));
        }
        inv.arg(MAILBOX_CAP);
        for (_, ev) in events {
            inv.arg(ev.as_ref());
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
                    .key(room_key(config.room))
                    .key(ROOMS)
                    .arg(config.room.0)
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
            .arg(room_key(room))
            .arg(room_n(room))
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
            .arg(room_key(config.room))
            .arg(json)
            .arg("XX")
            .query_async::<()>(&mut c)
            .await
            .map_err(unavailable)
    }

    async fn set_room_participants(&self, room: RoomId, n: u64) -> Result<(), StoreError> {
        let mut c = self.con.clone();
        ::redis::cmd("SET").arg(room_n(room)).arg(n).query_async::<()>(&mut c).await.map_err(unavailable)
    }

    async fn delete_room(&self, room: RoomId) -> Result<bool, StoreError> {
        let mut c = self.con.clone();
        let (deleted, _): (i64, i64) = ::redis::pipe()
            .atomic()
            .cmd("DEL")
            .arg(room_key(room))
            .arg(room_n(room))
            .arg(room_node(room))
            .cmd("SREM")
            .arg(ROOMS)
            .arg(room.0)
            .query_async(&mut c)
            .await
            .map_err(unavailable)?;
        Ok(deleted > 0)
    }

    async fn list_rooms(&self) -> Result<Vec<RoomRecord>, StoreError> {
        let mut c = self.con.clone();
        let mut ids: Vec<u64> = ::redis::cmd("SMEMBERS").arg(ROOMS).query_async(&mut c).await.map_err(unavailable)?;
        ids.sort_unstable();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut mget = ::redis::cmd("MGET");
        for id in &ids {
            mget.arg(room_key(RoomId(*id))).arg(room_n(RoomId(*id)));
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
            self.eval(self.scripts.place_room.key(room_node(room)).arg(&candidate.0).arg(lease_ms)).await?;
        Ok(NodeId(owner))
    }

    async fn renew_room(&self, room: RoomId, node: &NodeId, lease_ms: u64) -> Result<bool, StoreError> {
        let r: i64 = self.eval(self.scripts.renew_room.key(room_node(room)).arg(&node.0).arg(lease_ms)).await?;
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
            ::redis::cmd("GET").arg(room_node(room)).query_async(&mut c).await.map_err(unavailable)?;
        Ok(v.map(NodeId))
    }

    async fn replace_room_owner(
        &self,
        room: RoomId,
        dead: &NodeId,
        candidate: &NodeId,
        lease_ms: u64,
    ) -> Result<NodeId, StoreError> {
        let owner: String = self
            .eval(self.scripts.replace_owner.key(room_node(room)).arg(&dead.0).arg(&candidate.0).arg(lease_ms))
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
            match v {
                Some(v) => {
                    let mut it = v.split(' ');
                    let load = it.next().and_then(|l| l.parse().ok()).unwrap_or(0);
                    let draining = it.next() == Some("1");
                    live.push(NodeStatus { node: NodeId(name), load, draining });
                }
                // Its registration lapsed; `take_lost_nodes` hands it to one gateway for cleanup.
                None => {}
            }
        }
        Ok(live)
    }
}
