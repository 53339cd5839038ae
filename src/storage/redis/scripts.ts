// The Lua behind RedisCounterStore: one script per CounterStore operation, each atomic because
// Redis runs a script to completion before any other command (https://redis.io/docs/latest/develop/interactive/programmability/eval-intro/).
// They mirror storage/counter-ops.ts; the shared contract suite pins the semantics and
// counters.test.ts pins each body's SHA1, so changing a script is a conscious act.
//
// Layout, all keys of one account in the account's hash-tag slot `{tag}`:
//   <counter key>        hash {v = value, e = expiresAt epoch ms (absent: never expires)}
//   tg:{tag}:cexp        sorted set: counter keys that expire, scored by e (sweep finds them here)
//   tg:{tag}:res:<id>    string: the reservation's ops as JSON StoredOp[] (written by the client)
//   tg:{tag}:resexp      sorted set: live reservation ids, scored by expiresAt
//   tg:{tag}:receipts    hash: reservation id → ledger record kept with its settlement, until
//                        acknowledged (the Receipts outbox of storage/counters.ts)
//   tg:{tag}:done:<id>   string with a TTL: this id was settled or charged. A settlement whose
//                        reply was lost (a command timeout, a dropped connection) is sent again
//                        later; finding this, the retry knows it ran instead of charging twice.
//
// Numbers: Redis Lua numbers are doubles, exact for integers below 2^53 (the port's safe
// integers). Amounts and expiries go back to Redis as the client's own ARGV strings wherever
// possible; computed numbers are formatted by Redis with %.17g, exact for such integers. A delta of
// 0 is never sent: Lua can make it -0, which HINCRBY rejects.
//
// Keys of *expired* reservations (read from their records) and expired counters (read from cexp)
// are not in KEYS: they cannot be known before the script reads. They share the slot of KEYS[1]
// (reserve asserts every op shares the tag), which is what Redis Cluster requires to serve them.

/** Shared helpers, pasted at the top of each script (a script cannot call another). */
const helpers = `
local MARGIN = 86400000
local redis_now = nil
local function clock()
  if not redis_now then
    local t = redis.call('TIME')
    redis_now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  end
  return redis_now
end
-- A real TTL a day after the logical expiry (never in the past by Redis's clock), so keys nobody
-- sweeps still vanish; only ever pushed later.
local function expire_after(key, e)
  local at = math.floor(math.max(e, clock()) + MARGIN)
  if redis.call('PEXPIRETIME', key) < at then redis.call('PEXPIREAT', key, at) end
end
-- Gives back to a counter that still exists; one already forgotten stays forgotten.
local function move(key, delta)
  if delta ~= 0 and redis.call('EXISTS', key) == 1 then redis.call('HINCRBY', key, 'v', delta) end
end
local function drop_expired(resexp, resprefix, now)
  local ids = redis.call('ZRANGEBYSCORE', resexp, '-inf', now)
  local dropped = 0
  for _, id in ipairs(ids) do
    local rk = resprefix .. id
    local rec = redis.call('GET', rk)
    if rec then
      for _, op in ipairs(cjson.decode(rec)) do move(op[1], -op[2]) end
      redis.call('DEL', rk)
      dropped = dropped + 1
    end
  end
  if #ids > 0 then redis.call('ZREMRANGEBYSCORE', resexp, '-inf', now) end
  return dropped
end
-- A counter's value and expiry state: 'new' if absent (or past its expiry, then forgotten now),
-- false if it never expires, else its expiry as stored (a string).
local function load(key, cexp, now)
  local h = redis.call('HMGET', key, 'v', 'e')
  if not h[1] then return 0, 'new' end
  if h[2] and now and tonumber(h[2]) <= now then
    redis.call('DEL', key)
    redis.call('ZREM', cexp, key)
    return 0, 'new'
  end
  return tonumber(h[1]), h[2]
end
-- mergeExpiry of counter-ops.ts: a new counter takes the op's expiry; else null (false) wins,
-- else the later time. Returns the resulting state.
local function merge_expiry(key, cexp, cur, new)
  local merged
  if cur == 'new' then
    if new == false then return false end
    merged = new
  elseif cur == false or new == false then merged = false
  elseif tonumber(new) > tonumber(cur) then merged = new
  else merged = cur end
  if merged == cur then return cur end
  if merged == false then
    redis.call('HDEL', key, 'e')
    redis.call('ZREM', cexp, key)
    redis.call('PERSIST', key)
  else
    redis.call('HSET', key, 'e', merged)
    redis.call('ZADD', cexp, merged, key)
    expire_after(key, tonumber(merged))
    expire_after(cexp, tonumber(merged))
  end
  return merged
end
`;

/**
 * KEYS: resexp, cexp, reservation record, then each op's counter key.
 * ARGV: id, now, expiresAt, ops JSON (StoredOp[]), record key prefix, then per op: amount, max, min,
 * expiresAt ('' for none).
 * Returns {1, value per op} | {0, failed index, value before} | {-1} (id still live).
 */
export const RESERVE = `${helpers}
local now = tonumber(ARGV[2])
drop_expired(KEYS[1], ARGV[5], ARGV[2])
if redis.call('EXISTS', KEYS[3]) == 1 then return {-1} end
local n = #KEYS - 3
local value, pre, state = {}, {}, {}
-- Check every op before writing any, on running values so an op repeating a key sees the ones
-- before it.
for i = 1, n do
  local key = KEYS[3 + i]
  local a = 6 + (i - 1) * 4
  if value[key] == nil then
    local v, s = load(key, KEYS[2], now)
    value[key], pre[key], state[key] = v, v, s
  end
  local nxt = value[key] + tonumber(ARGV[a])
  local max, min = ARGV[a + 1], ARGV[a + 2]
  if (max ~= '' and nxt > tonumber(max)) or (min ~= '' and nxt < tonumber(min)) then
    return {0, i - 1, pre[key]}
  end
  value[key] = nxt
end
for i = 1, n do
  local key = KEYS[3 + i]
  local a = 6 + (i - 1) * 4
  redis.call('HINCRBY', key, 'v', ARGV[a])
  local e = ARGV[a + 3]
  state[key] = merge_expiry(key, KEYS[2], state[key], e ~= '' and e or false)
end
redis.call('SET', KEYS[3], ARGV[4])
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
local out = {1}
for i = 1, n do out[i + 1] = value[KEYS[3 + i]] end
return out
`;

/**
 * KEYS: resexp, reservation record, receipts, done marker, then the op keys (declared for Cluster;
 * the record names them). ARGV: id, actual, receipt ('' for none: nothing is kept), how long the
 * done marker lasts (ms). Returns 1 — also for a settlement that already ran (its marker is there)
 * — or 0 if the reservation is unknown (and then keeps no receipt).
 */
export const SETTLE = `${helpers}
local rec = redis.call('GET', KEYS[2])
if not rec then
  if redis.call('EXISTS', KEYS[4]) == 1 then return 1 end
  return 0
end
redis.call('DEL', KEYS[2])
redis.call('ZREM', KEYS[1], ARGV[1])
if ARGV[3] ~= '' then redis.call('HSET', KEYS[3], ARGV[1], ARGV[3]) end
local actual = tonumber(ARGV[2])
for _, op in ipairs(cjson.decode(rec)) do
  local amount, settle = op[2], op[3]
  if settle == 'return' then move(op[1], -amount)
  elseif settle == 'actual' then move(op[1], op[4] * actual - amount) end
end
redis.call('SET', KEYS[4], '1', 'PX', ARGV[4])
return 1
`;

/**
 * A charge without a reservation (it lapsed, or the request was admitted unmetered), once per id.
 * KEYS: cexp, receipts, done marker, resexp, reservation record, then the counter keys. ARGV: id,
 * receipt ('' for none), how long the done marker lasts (ms), then per key: amount, expiresAt (''
 * for none). Each amount is added as ADD adds it, the receipt kept, all at once; returns 0 and
 * changes nothing if this id was settled or charged already: its done marker is there, or a receipt
 * under it (a SETTLE whose marker lapsed before anyone wrote its receipt to the ledger). A reservation still recorded under
 * the id (not yet dropped by expiry) is given back first, as RELEASE does: the charge replaces it,
 * so a SETTLE of the same id arriving later finds only the done marker (a charge another process
 * applied for an owed ledger row, core/receipt-drain.ts, while the owner's SETTLE was in transit).
 */
export const CHARGE = `${helpers}
if redis.call('EXISTS', KEYS[3]) == 1 then return 0 end
-- A receipt kept under the id: its SETTLE ran (and charged), whatever became of its marker.
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then return 0 end
local rec = redis.call('GET', KEYS[5])
if rec then
  for _, op in ipairs(cjson.decode(rec)) do move(op[1], -op[2]) end
  redis.call('DEL', KEYS[5])
  redis.call('ZREM', KEYS[4], ARGV[1])
end
for i = 6, #KEYS do
  local a = 4 + (i - 6) * 2
  if ARGV[a] ~= '0' then
    local _, state = load(KEYS[i], KEYS[1], nil)
    redis.call('HINCRBY', KEYS[i], 'v', ARGV[a])
    merge_expiry(KEYS[i], KEYS[1], state, ARGV[a + 1] ~= '' and ARGV[a + 1] or false)
  end
end
if ARGV[2] ~= '' then redis.call('HSET', KEYS[2], ARGV[1], ARGV[2]) end
redis.call('SET', KEYS[3], '1', 'PX', ARGV[3])
return 1
`;

/** KEYS and result as SETTLE; ARGV: id. Every op is given back, whatever its settle. */
export const RELEASE = `${helpers}
local rec = redis.call('GET', KEYS[2])
if not rec then return 0 end
redis.call('DEL', KEYS[2])
redis.call('ZREM', KEYS[1], ARGV[1])
for _, op in ipairs(cjson.decode(rec)) do move(op[1], -op[2]) end
return 1
`;

/** KEYS: resexp. ARGV: expiresAt, then ids. Pushes live ids only (XX), never earlier (GT). */
export const RENEW = `
for i = 2, #ARGV do redis.call('ZADD', KEYS[1], 'XX', 'GT', ARGV[1], ARGV[i]) end
return 0
`;

/** KEYS: resexp, cexp, then the counter keys. ARGV: now, record key prefix. Returns the values. */
export const GET = `${helpers}
drop_expired(KEYS[1], ARGV[2], ARGV[1])
local now = tonumber(ARGV[1])
local out = {}
for i = 3, #KEYS do
  local v = load(KEYS[i], KEYS[2], now)
  out[i - 2] = v
end
return out
`;

/**
 * KEYS: counter key, cexp. ARGV: amount, expiresAt ('' for none).
 * Returns {1, the new value} | {0, the value before} when the result would pass 2^53 - 1 either way:
 * HINCRBY itself holds 64 bits, but every script reads the value back as a double, so past 2^53 each
 * later settlement would round (counter-ops.ts CounterOverflowError). Both operands are safe
 * integers, so a sum past the bound rounds to at least 2^53 and the comparison is exact.
 */
export const ADD = `${helpers}
local before, state = load(KEYS[1], KEYS[2], nil)
local after = before + tonumber(ARGV[1])
if after > 9007199254740991 or after < -9007199254740991 then return {0, before} end
local v = redis.call('HINCRBY', KEYS[1], 'v', ARGV[1])
merge_expiry(KEYS[1], KEYS[2], state, ARGV[2] ~= '' and ARGV[2] or false)
return {1, v}
`;

/** KEYS: resexp, cexp. ARGV: now, record key prefix. Returns the reservations dropped. */
export const SWEEP = `${helpers}
local dropped = drop_expired(KEYS[1], ARGV[2], ARGV[1])
local keys = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
for _, key in ipairs(keys) do redis.call('DEL', key) end
if #keys > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[1]) end
return dropped
`;

/** Every script by the name it is defined under on the client. */
export const scripts = {
  tgReserve: RESERVE,
  tgSettle: SETTLE,
  tgRelease: RELEASE,
  tgRenew: RENEW,
  tgGet: GET,
  tgAdd: ADD,
  tgCharge: CHARGE,
  tgSweep: SWEEP,
} as const;

export type ScriptName = keyof typeof scripts;
