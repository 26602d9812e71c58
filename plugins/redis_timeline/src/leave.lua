-- leave: the caller stops. In one step it forgets the caller and its progress and, when no live
-- instance is left and no event waits, the clock too, so the next run starts a new one. (With
-- events still waiting the clock stays: they are published on the clock they were made for.)
--
-- KEYS[1] due        sorted set of waiting events
-- KEYS[2] instances  sorted set of live instances, scored by heartbeat expiry (server ms)
-- KEYS[3] clock      hash: the shared clock
-- KEYS[4] progress   hash: instance -> ms before which its sources scheduled everything
-- KEYS[5] leases     sorted set of open leases
-- ARGV[1] instance   the caller's id
-- Returns 1 when the clock went, else 0.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[4], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if redis.call('ZCARD', KEYS[2]) == 0 and redis.call('ZCARD', KEYS[1]) == 0
    and redis.call('ZCARD', KEYS[5]) == 0 then
  redis.call('DEL', KEYS[3], KEYS[4])
  return 1
end
return 0
