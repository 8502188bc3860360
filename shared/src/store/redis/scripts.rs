//! The Lua scripts that make each of the Redis store's domain operations one atomic step.

use ::redis::Script;

pub(super) struct Scripts {
    pub(super) create: Script,
    pub(super) touch: Script,
    pub(super) touch_handle: Script,
    pub(super) touch_handle_joining: Script,
    pub(super) touch_attach: Script,
    pub(super) touch_detach: Script,
    pub(super) claim: Script,
    pub(super) release: Script,
    pub(super) destroy: Script,
    pub(super) take_expired: Script,
    pub(super) attach: Script,
    pub(super) detach: Script,
    pub(super) bind: Script,
    pub(super) create_room: Script,
    pub(super) place_room: Script,
    pub(super) replace_owner: Script,
    pub(super) owner_status: Script,
    pub(super) renew_room: Script,
    pub(super) take_lost: Script,
    pub(super) set_capture: Script,
    pub(super) unbind_from: Script,
    pub(super) tokens: Script,
    pub(super) set_timeout: Script,
    pub(super) push_many: Script,
}

/// A session touched: `missing` returned when it does not exist; its deadline moved (unless
/// its transport is gone) and its keys kept alive. KEYS: meta, deadlines, handles, default
/// timeout; ARGV: sid, now. Every session's meta holds `timeout`, so the fields read tell
/// whether it exists (a command less than asking first: a touch runs for nearly every request).
/// The script after it reads the session's owner relay as `f[5]`, and `kept` as it stands.
///
/// The keys' expiry (2x the timeout + 60 s, `kept` the time it was set for) is renewed only
/// once the deadline would come within 60 s of it, at most once per timeout: two commands
/// fewer for the touches of a session's burst of requests. A script that changes the expiry
/// otherwise sets `kept` to 0, so the next touch renews it.
fn touch(missing: i64) -> String {
    format!(
        r"
local f = redis.call('HMGET', KEYS[1], 'timeout', 'gone', 'own', 'kept', 'relay')
if not f[1] then return {missing} end
local t, now, kept = tonumber(f[1]), tonumber(ARGV[2]), tonumber(f[4] or 0)
if f[3] ~= '1' then
  local d = redis.call('GET', KEYS[4])
  if d and tonumber(d) ~= t then t = tonumber(d); redis.call('HSET', KEYS[1], 'timeout', t) end
end
if f[2] == '0' then
  if t > 0 then
    redis.call('ZADD', KEYS[2], now + t, ARGV[1])
    if kept < now + t + 60000 then
      kept = now + 2 * t + 60000
      redis.call('PEXPIRE', KEYS[1], 2 * t + 60000)
      redis.call('PEXPIRE', KEYS[3], 2 * t + 60000)
      redis.call('HSET', KEYS[1], 'kept', kept)
    end
  else
    redis.call('ZREM', KEYS[2], ARGV[1])
    redis.call('PERSIST', KEYS[1])
    redis.call('PERSIST', KEYS[3])
    if kept ~= 0 then kept = 0; redis.call('HSET', KEYS[1], 'kept', 0) end
  end
end
"
    )
}

/// Binds a handle (field `hid` of the session's `handles` hash) to `room` on `node`, or unbinds
/// it (`room` empty); 0 when there is no such handle. Keeps `pt:node:N:handles` (members
/// `SID:HID`) in step with the binding. Room ids are kept as strings inside the JSON: Lua
/// numbers lose digits past 2^53's 14. `record`: the handle's record when the caller has just
/// read it (else read here).
const BIND: &str = r"
local function bind(handles, hid, room, node, sid, record)
  local v = record or redis.call('HGET', handles, hid)
  if not v then return 0 end
  local h = cjson.decode(v)
  local member = sid .. ':' .. hid
  if type(h['node']) == 'string' then redis.call('SREM', 'pt:node:' .. h['node'] .. ':handles', member) end
  if room == '' then h['room'] = nil; h['node'] = nil else
    h['room'] = room; h['node'] = node
    redis.call('SADD', 'pt:node:' .. node .. ':handles', member)
  end
  redis.call('HSET', handles, hid, cjson.encode(h))
  return 1
end";

/// Publishes `payload` on a session's `channel` and, when the session has one, to its owner's
/// `relay`, as `bus::relayed` frames it: the channel's name, a newline, the payload.
const SIGNAL: &str = r"
local function signal(channel, payload, relay)
  redis.call('PUBLISH', channel, payload)
  if relay and relay ~= '' then redis.call('PUBLISH', relay, channel .. '\n' .. payload) end
end
";

/// A room's owner (the node named by its `pt:room:R:node` key) and whether that node's
/// registration (`pt:node:N`, with a TTL) is current (1) or not (0); nil without an owner.
const OWNER: &str = r"
local function owner(key)
  local n = redis.call('GET', key)
  if not n then return nil, 0 end
  return n, redis.call('EXISTS', 'pt:node:' .. n)
end
";

/// A room id's JSON from its key form (`JanusId::key`): a number as it is, `s:` and a string
/// as a JSON string.
const ROOM_JSON: &str = r"
local function room_json(key)
  if string.sub(key, 1, 2) == 's:' then return cjson.encode(string.sub(key, 3)) end
  return key
end
";

/// Appends an event to a mailbox, keeping its newest `cap` (trimmed only once it holds more).
const PUSH: &str = r"
local function push(mbox, event, cap)
  if redis.call('RPUSH', mbox, event) > cap then redis.call('LTRIM', mbox, -cap, -1) end
end
";

impl Scripts {
    pub(super) fn new() -> Self {
        let touch0 = touch(0);
        Self {
            create: Script::new(
                r"
if redis.call('EXISTS', KEYS[1]) == 1 then return -1 end
if redis.call('SCARD', KEYS[2]) >= tonumber(ARGV[5]) then return -2 end
local t = tonumber(redis.call('GET', KEYS[6]) or ARGV[3])
local kept = 0
if t > 0 then kept = tonumber(ARGV[2]) + 2 * t + 60000 end
redis.call('HSET', KEYS[1], 'created', ARGV[2], 'timeout', t, 'owner', ARGV[4], 'gone', '0', 'own', '0', 'who', ARGV[6], 'relay', ARGV[7], 'kept', kept)
if t > 0 then
  redis.call('ZADD', KEYS[3], tonumber(ARGV[2]) + t, ARGV[1])
  redis.call('PEXPIRE', KEYS[1], 2 * t + 60000)
end
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('DEL', KEYS[4], KEYS[5])
return 1",
            ),
            touch: Script::new(&format!("{touch0}return 1")),
            // The touch and the handle's record in one round trip: a request to a handle. Given an
            // envelope around its room (ARGV[4], ARGV[5]), for a bound handle ARGV[4] .. room ..
            // ARGV[5] published on ARGV[6] .. node .. ARGV[7] too: {1, record, 1} when it was.
            touch_handle: Script::new(&format!(
                "{ROOM_JSON}{touch0}
local v = redis.call('HGET', KEYS[3], ARGV[3])
if not v then return {{1}} end
if not ARGV[4] then return {{1, v}} end
local h = cjson.decode(v)
if type(h['node']) ~= 'string' then return {{1, v}} end
redis.call('PUBLISH', ARGV[6] .. h['node'] .. ARGV[7], ARGV[4] .. room_json(h['room']) .. ARGV[5])
return {{1, v, 1}}"
            )),
            // `touch_handle` for a join of room ARGV[4]: a handle bound nowhere is bound to the
            // room's owner (KEYS[5]) while that one is registered, as `bind_to_live_owner`:
            // {1, record, owner, registered} (only {1, record} for a bound handle or an unowned
            // room). Given an envelope (ARGV[5]), published on ARGV[6] .. owner .. ARGV[7] when
            // the handle was bound there and keeps no packet capture: {1, record, owner, 1, 1}.
            touch_handle_joining: Script::new(&format!(
                "{BIND}{OWNER}
{touch0}
local v = redis.call('HGET', KEYS[3], ARGV[3])
if not v then return {{1}} end
local h = cjson.decode(v)
if type(h['node']) == 'string' then return {{1, v}} end
local n, registered = owner(KEYS[5])
if not n then return {{1, v}} end
if registered ~= 1 then return {{1, v, n, registered}} end
bind(KEYS[3], ARGV[3], ARGV[4], n, ARGV[1], v)
if (not ARGV[5]) or h['capture'] ~= nil then return {{1, v, n, registered}} end
redis.call('PUBLISH', ARGV[6] .. n .. ARGV[7], ARGV[5])
return {{1, v, n, registered, 1}}"
            )),
            // `attach`'s touch and attach in one round trip: -1 without a session, then as
            // `attach` (KEYS[5] the handle count; ARGV[3..5] id, record, limit). The handles
            // expire with the meta: when the touch's `kept` is in the future, by it (a command
            // less than reading the meta's expiry).
            touch_attach: Script::new(&format!(
                "{}
if redis.call('HLEN', KEYS[3]) >= tonumber(ARGV[5]) then return -2 end
if redis.call('HSETNX', KEYS[3], ARGV[3], ARGV[4]) == 0 then return 0 end
redis.call('INCR', KEYS[5])
local ttl = kept - now
if ttl <= 0 then ttl = redis.call('PTTL', KEYS[1]) end
if ttl > 0 then redis.call('PEXPIRE', KEYS[3], ttl) end
return 1",
                touch(-1)
            )),
            // `detach`'s touch and detach in one round trip: 0 without a session, else {1} or
            // {1, the removed record} (KEYS[5] the handle count; ARGV[3] the handle). Given an
            // envelope around a room (ARGV[4], ARGV[5]): for a bound handle its node told
            // (ARGV[4] .. room .. ARGV[5] on ARGV[6] .. node .. ARGV[7]), then the event
            // (ARGV[8]) pushed to the mailbox (KEYS[6], cap ARGV[9]) and the wake-up (ARGV[10])
            // signalled on the session's channel (ARGV[11]) and to its owner's relay.
            touch_detach: Script::new(&format!(
                "{SIGNAL}{PUSH}{ROOM_JSON}{touch0}
local v = redis.call('HGET', KEYS[3], ARGV[3])
if not v then return {{1}} end
redis.call('HDEL', KEYS[3], ARGV[3])
redis.call('DECR', KEYS[5])
local h = cjson.decode(v)
if type(h['node']) == 'string' then
  redis.call('SREM', 'pt:node:' .. h['node'] .. ':handles', ARGV[1] .. ':' .. ARGV[3])
  if ARGV[4] then
    redis.call('PUBLISH', ARGV[6] .. h['node'] .. ARGV[7], ARGV[4] .. room_json(h['room']) .. ARGV[5])
  end
end
if ARGV[4] then
  push(KEYS[6], ARGV[8], tonumber(ARGV[9]))
  signal(ARGV[11], ARGV[10], f[5])
end
return {{1, v}}"
            )),
            // The claim, and `Claimed` (ARGV[7]) published on the session's channel (ARGV[6])
            // and to the previous owner's relay; ARGV[5] the new owner's relay.
            claim: Script::new(&[SIGNAL,
                r"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local f = redis.call('HMGET', KEYS[1], 'timeout', 'own', 'who')
if f[3] and f[3] ~= '' and f[3] ~= ARGV[4] then return -1 end
local before = redis.call('HGET', KEYS[1], 'relay')
redis.call('HSET', KEYS[1], 'owner', ARGV[3], 'gone', '0', 'relay', ARGV[5], 'kept', 0)
signal(ARGV[6], ARGV[7], before)
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
            ]
            .concat()),
            set_timeout: Script::new(
                r"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local t = tonumber(ARGV[3])
if ARGV[4] == '0' then t = tonumber(redis.call('GET', KEYS[3]) or ARGV[3]) end
redis.call('HSET', KEYS[1], 'timeout', t, 'own', ARGV[4], 'kept', 0)
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
redis.call('HSET', KEYS[1], 'owner', '', 'gone', '1', 'kept', 0)
redis.call('ZADD', KEYS[2], tonumber(ARGV[2]) + tonumber(ARGV[4]), ARGV[1])
if redis.call('PTTL', KEYS[1]) > 0 then redis.call('PEXPIRE', KEYS[1], 2 * tonumber(ARGV[4]) + 60000) end
return 1",
            ),
            // The teardown, the session's last event (ARGV[3], '' for none) into the mailbox,
            // and `Over` (ARGV[5]) on its channel (ARGV[4]) and to its owner's relay unless the
            // owner is the connection ending it (ARGV[7], '' for none); {mailbox length,
            // HGETALL of the handles...}.
            destroy: Script::new(&[SIGNAL, PUSH,
                r"
redis.call('SREM', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[1])
local f = redis.call('HMGET', KEYS[1], 'timeout', 'relay', 'owner')
if not f[1] then return false end
local relay = f[2] or ''
if ARGV[7] ~= '' and f[3] == ARGV[7] then relay = '' end
local hs = redis.call('HGETALL', KEYS[2])
redis.call('DEL', KEYS[1], KEYS[2])
if #hs > 0 then redis.call('DECRBY', KEYS[7], #hs / 2) end
for i = 1, #hs, 2 do
  local h = cjson.decode(hs[i + 1])
  if type(h['node']) == 'string' then redis.call('SREM', 'pt:node:' .. h['node'] .. ':handles', ARGV[1] .. ':' .. hs[i]) end
end
redis.call('SET', KEYS[6], '1', 'PX', ARGV[2])
if ARGV[3] ~= '' then push(KEYS[5], ARGV[3], tonumber(ARGV[6])) end
redis.call('PEXPIRE', KEYS[5], ARGV[2])
signal(ARGV[4], ARGV[5], relay)
table.insert(hs, 1, redis.call('LLEN', KEYS[5]))
return hs",
            ]
            .concat()),
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
            bind: Script::new(&format!("{BIND}\nreturn bind(KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4])")),
            // First the ARGV[3] messages after it published (channel, payload); then each event
            // (ARGV[o+2i-1], o past those) to its session's mailbox (KEYS[3i]) while the session
            // or its grave exists; then ARGV[2] published once on the channel (ARGV[o+2i]) of
            // each session that got one, and to its owner's relay: the wake-ups after the events.
            push_many: Script::new(&[SIGNAL, PUSH,
                r"
local cap = tonumber(ARGV[1])
local n = tonumber(ARGV[3])
for j = 1, n do redis.call('PUBLISH', ARGV[2 + 2 * j], ARGV[3 + 2 * j]) end
local o = 3 + 2 * n
local woken, order = {}, {}
for i = 1, #KEYS / 3 do
  local m, g, b = KEYS[3 * i - 2], KEYS[3 * i - 1], KEYS[3 * i]
  local f = redis.call('HMGET', m, 'timeout', 'relay')
  local relay = f[2]
  if f[1] or redis.call('EXISTS', g) == 1 then
    push(b, ARGV[o + 2 * i - 1], cap)
    local channel = ARGV[o + 2 * i]
    if not woken[channel] then woken[channel] = true; order[#order + 1] = {channel, relay} end
  end
end
for _, w in ipairs(order) do
  signal(w[1], ARGV[2], w[2])
end
return 1",
            ]
            .concat()),
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
            // A room's owner and whether its registration (`pt:node:N`, with a TTL) is current.
            owner_status: Script::new(&format!(
                "{OWNER}
local n, registered = owner(KEYS[1])
if not n then return false end
return {{n, registered}}"
            )),
            replace_owner: Script::new(
                r"
local cur = redis.call('GET', KEYS[1])
if (not cur) or cur == ARGV[1] then redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]); return ARGV[2] end
return cur",
            ),
            // A handle's packet capture kept (ARGV[2], JSON) unless it has one, or dropped
            // (ARGV[2] empty): 1 done, 0 not (one kept already, none to drop), -1 no handle.
            set_capture: Script::new(
                r"
local v = redis.call('HGET', KEYS[1], ARGV[1])
if not v then return -1 end
local h = cjson.decode(v)
if (h['capture'] ~= nil) == (ARGV[2] ~= '') then return 0 end
if ARGV[2] == '' then h['capture'] = nil else h['capture'] = cjson.decode(ARGV[2]) end
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(h))
return 1",
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
