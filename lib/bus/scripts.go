package bus

import "github.com/valkey-io/valkey-go"

// appendScript appends each event whose id was not seen before, and marks it seen.
// KEYS[1] = stream, KEYS[2..n] = seen keys; ARGV[1] = seen TTL (s), ARGV[2] = length cap
// (0 = none), ARGV[3..] = payloads, in the order of the seen keys. Returns the count appended.
var appendScript = valkey.NewLuaScript(`
local cap = tonumber(ARGV[2])
if cap > 0 and redis.call('XLEN', KEYS[1]) >= cap then
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

// ackScript acknowledges entries and, when nothing else is pending, trims the stream up to the
// newest acknowledged id. KEYS[1] = stream; ARGV[1] = group, ARGV[2] = trim threshold (the
// id just above the newest acknowledged one), ARGV[3..] = ids.
var ackScript = valkey.NewLuaScript(`
local ids = {}
for i = 3, #ARGV do ids[#ids + 1] = ARGV[i] end
local acked = redis.call('XACK', KEYS[1], ARGV[1], unpack(ids))
local pending = redis.call('XPENDING', KEYS[1], ARGV[1])
if pending[1] == 0 then
  redis.call('XTRIM', KEYS[1], 'MINID', ARGV[2])
end
return acked
`)

// deadLetterScript moves one entry to the DLQ stream and acknowledges it, atomically.
// KEYS[1] = stream, KEYS[2] = dlq; ARGV[1] = group, ARGV[2] = id, ARGV[3] = payload,
// ARGV[4] = reason.
var deadLetterScript = valkey.NewLuaScript(`
redis.call('XADD', KEYS[2], '*', 'ce', ARGV[3], 'reason', ARGV[4], 'id', ARGV[2])
return redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
`)
