package bus

import "github.com/valkey-io/valkey-go"

// appendScript appends each event whose id was not seen before, and marks it seen. A batch
// that could take the stream past its cap is refused whole, before anything is written.
// KEYS[1] = stream, KEYS[2..n] = seen keys; ARGV[1] = seen TTL (s), ARGV[2] = length cap
// (0 = none), ARGV[3..] = payloads, in the order of the seen keys. Returns the count appended.
var appendScript = valkey.NewLuaScript(`
local cap = tonumber(ARGV[2])
if cap > 0 and redis.call('XLEN', KEYS[1]) + #KEYS - 1 > cap then
  return redis.error_reply('FULL partition stream is at its length cap')
end
local added = 0
for i = 2, #KEYS do
  if redis.call('SET', KEYS[i], '1', 'NX', 'EX', ARGV[1]) then
    redis.call('XADD', KEYS[1], '*', 'ce', ARGV[i + 1])
    added = added + 1
  end
end
return added
`)

// trimLua defines trim(stream, group): drop every entry that is acknowledged and below all
// unacknowledged work. Entries are delivered in order, so everything below the oldest pending
// entry is acknowledged; with nothing pending, everything up to the last delivered entry is.
// Unread entries are never dropped.
const trimLua = `
local function trim(stream, group)
  local pending = redis.call('XPENDING', stream, group)
  if pending[1] > 0 then
    redis.call('XTRIM', stream, 'MINID', pending[2])
    return
  end
  for _, g in ipairs(redis.call('XINFO', 'GROUPS', stream)) do
    local name, last
    for i = 1, #g, 2 do
      if g[i] == 'name' then name = g[i + 1] end
      if g[i] == 'last-delivered-id' then last = g[i + 1] end
    end
    if name == group and last then
      local ms, seq = string.match(last, '^(%d+)-(%d+)$')
      redis.call('XTRIM', stream, 'MINID', ms .. '-' .. (tonumber(seq) + 1))
    end
  end
end
`

// ackScript records the object versions just written, acknowledges entries and trims.
// KEYS[1] = stream, KEYS[2] = versions; ARGV[1] = group, ARGV[2] = number of version pairs n,
// ARGV[3..2+2n] = object, version pairs, then the ids.
var ackScript = valkey.NewLuaScript(trimLua + `
local n = tonumber(ARGV[2])
for i = 3, 2 + 2 * n, 2 do redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) end
local ids = {}
for i = 3 + 2 * n, #ARGV do ids[#ids + 1] = ARGV[i] end
if #ids == 0 then return 0 end
local acked = redis.call('XACK', KEYS[1], ARGV[1], unpack(ids))
trim(KEYS[1], ARGV[1])
return acked
`)

// deadLetterScript moves one entry to the DLQ stream, acknowledges it and trims, atomically.
// KEYS[1] = stream, KEYS[2] = dlq; ARGV[1] = group, ARGV[2] = id, ARGV[3] = payload,
// ARGV[4] = reason, ARGV[5] = cluster, ARGV[6] = attempts, ARGV[7] = redrives.
var deadLetterScript = valkey.NewLuaScript(trimLua + `
redis.call('XADD', KEYS[2], '*', 'ce', ARGV[3], 'reason', ARGV[4], 'id', ARGV[2], 'cluster', ARGV[5], 'attempts', ARGV[6], 'redrives', ARGV[7])
local acked = redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
trim(KEYS[1], ARGV[1])
return acked
`)

// redriveScript moves one DLQ entry back onto the partition's stream, as a new entry carrying
// its re-drive count plus one, and deletes it from the DLQ, atomically. It reads the entry
// itself, so two sweeps racing on one entry move it once. It bypasses the seen keys on
// purpose: the event id was seen when it was first appended, and must be processed again.
// KEYS[1] = stream, KEYS[2] = dlq; ARGV[1] = DLQ entry id, ARGV[2] = stream length cap
// (0 = none). Returns 1 when moved, 0 when the entry is gone or has no payload.
var redriveScript = valkey.NewLuaScript(`
local e = redis.call('XRANGE', KEYS[2], ARGV[1], ARGV[1])
if #e == 0 then return 0 end
local f = {}
local kv = e[1][2]
for i = 1, #kv, 2 do f[kv[i]] = kv[i + 1] end
if not f['ce'] then return 0 end
local cap = tonumber(ARGV[2])
if cap > 0 and redis.call('XLEN', KEYS[1]) >= cap then
  return redis.error_reply('FULL partition stream is at its length cap')
end
local n = tonumber(f['redrives'] or '0') or 0
redis.call('XADD', KEYS[1], '*', 'ce', f['ce'], 'redrives', tostring(n + 1))
redis.call('XDEL', KEYS[2], ARGV[1])
return 1
`)

// statsScript reads a partition's queue state in one round trip. KEYS[1] = stream,
// KEYS[2] = dlq, KEYS[3] = lease; ARGV[1] = group. Returns {length, pending, lag, dlq, leased}.
var statsScript = valkey.NewLuaScriptReadOnly(`
local length = redis.call('XLEN', KEYS[1])
local pending, lag = 0, length
if length > 0 or redis.call('EXISTS', KEYS[1]) == 1 then
  for _, g in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
    local f = {}
    for i = 1, #g, 2 do f[g[i]] = g[i + 1] end
    if f['name'] == ARGV[1] then
      pending = f['pending']
      if type(f['lag']) == 'number' then lag = f['lag'] else lag = length - pending end
    end
  end
end
return {length, pending, lag, redis.call('XLEN', KEYS[2]), redis.call('EXISTS', KEYS[3])}
`)
