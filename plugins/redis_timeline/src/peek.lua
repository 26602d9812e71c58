-- peek: the clock an instance starting now would adopt, read-only (for `validate`): the stored
-- one, unless no instance is alive and no event waits (then the next run sets a new one).
--
-- KEYS[1] due        sorted set of waiting events
-- KEYS[2] instances  sorted set of live instances, scored by heartbeat expiry (server ms)
-- KEYS[3] clock      hash: start_ms, speed, wall_us (server µs)
-- KEYS[4] leases     sorted set of open leases
-- Returns {start_ms, speed, wall_us, live instances}, or {} when none is kept.
local t = redis.call('TIME')
local now_us = tonumber(t[1]) * 1000000 + tonumber(t[2])
local alive = redis.call('ZCOUNT', KEYS[2], '(' .. math.floor(now_us / 1000), '+inf')
if alive == 0 and redis.call('ZCARD', KEYS[1]) == 0 and redis.call('ZCARD', KEYS[4]) == 0 then
  return {}
end
local clock = redis.call('HMGET', KEYS[3], 'start_ms', 'speed', 'wall_us')
if not clock[1] then return {} end
return {clock[1], clock[2], clock[3], alive}
