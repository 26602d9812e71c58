-- start: joins the namespace and finds its clock. In one step it forgets instances whose
-- heartbeat expired and the caller itself (so a retried call does not count it as alive), counts
-- the live ones, and only when none is alive drops the events due before the CONSUME_FROM cutoff
-- (a running instance may still be publishing them) and, when then nothing waits either, the
-- clock of a finished simulation. It registers the caller with a heartbeat, stores the caller's
-- clock when none is stored and the caller may set one (it has sources), and on a virtual clock
-- registers such a caller's progress at the clock's start. Uses Redis server time.
--
-- KEYS[1] due        sorted set of waiting events, scored by due ms
-- KEYS[2] instances  sorted set of live instances, scored by heartbeat expiry (server ms)
-- KEYS[3] clock      hash: start_ms, speed (a number or 'max'), wall_us (server µs), set_by
-- KEYS[4] progress   hash: instance -> ms before which its sources scheduled everything
-- KEYS[5] leases     sorted set of open leases
-- ARGV[1] instance   the caller's id
-- ARGV[2] heartbeat_ms
-- ARGV[3] cutoff     due ms before which events are dropped, or '' to drop none
-- ARGV[4] start_ms   the caller's clock, or '' when it may not set one (no sources)
-- ARGV[5] speed      its speed: a number or 'max'
-- ARGV[6] wall_us    its wall origin, µs on the server's clock
-- Returns {instances alive before, events skipped, 1 if the caller stored the clock else 0,
--          start_ms, speed, wall_us (server µs) of the clock or '' each}.
local t = redis.call('TIME')
local now_us = tonumber(t[1]) * 1000000 + tonumber(t[2])
local now = math.floor(now_us / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
redis.call('ZREM', KEYS[2], ARGV[1])
local alive = redis.call('ZCARD', KEYS[2])
local skipped = 0
if alive == 0 then
  if ARGV[3] ~= '' then
    skipped = redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[3])
  end
  if redis.call('ZCARD', KEYS[1]) == 0 and redis.call('ZCARD', KEYS[5]) == 0 then
    redis.call('DEL', KEYS[3], KEYS[4])
  end
end
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), ARGV[1])
local set_here = 0
if ARGV[4] ~= '' and redis.call('EXISTS', KEYS[3]) == 0 then
  redis.call('HSET', KEYS[3], 'start_ms', ARGV[4], 'speed', ARGV[5], 'wall_us', ARGV[6],
    'set_by', ARGV[1])
  set_here = 1
end
local clock = redis.call('HMGET', KEYS[3], 'start_ms', 'speed', 'wall_us')
if ARGV[4] ~= '' and clock[2] == 'max' then
  redis.call('HSET', KEYS[4], ARGV[1], clock[1])
end
return {alive, skipped, set_here, clock[1] or '', clock[2] or '', clock[3] or ''}
