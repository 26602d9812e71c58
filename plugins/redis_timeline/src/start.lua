-- start: joins the namespace. In one step it forgets instances whose heartbeat expired and the
-- caller itself (so a retried call does not count it as alive), counts the live ones, and only
-- when none is alive drops the events due before the CONSUME_FROM cutoff (a running instance may
-- still be publishing them), then registers the caller with a heartbeat. Uses Redis server time.
--
-- KEYS[1] due        sorted set of waiting events, scored by due ms
-- KEYS[2] instances  sorted set of live instances, scored by heartbeat expiry (server ms)
-- ARGV[1] instance   the caller's id
-- ARGV[2] heartbeat_ms
-- ARGV[3] cutoff     due ms before which events are dropped, or '' to drop none
-- Returns {instances alive before, events skipped}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
redis.call('ZREM', KEYS[2], ARGV[1])
local alive = redis.call('ZCARD', KEYS[2])
local skipped = 0
if alive == 0 and ARGV[3] ~= '' then
  skipped = redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[3])
end
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), ARGV[1])
return {alive, skipped}
