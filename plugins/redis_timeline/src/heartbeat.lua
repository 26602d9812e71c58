-- heartbeat: keeps the caller registered as a live instance (also while it waits for a clock or
-- its sinks hold it up between claims). Uses Redis server time.
--
-- KEYS[1] instances  sorted set of live instances, scored by heartbeat expiry (server ms)
-- ARGV[1] instance   the caller's id
-- ARGV[2] heartbeat_ms
-- Returns 1.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
return 1
