-- start: joins the namespace and finds its clock. In one step it forgets instances whose
-- heartbeat expired and the caller itself (so a retried call does not count it as alive), counts
-- the live ones, and only when none is alive drops the events due before the CONSUME_FROM cutoff
-- (a running instance may still be publishing them) and, when then nothing waits either, the
-- clock of a finished simulation. It registers the caller with a heartbeat, stores the caller's
-- clock when none is stored and the caller may set one (it has sources). On a virtual clock it
-- answers where the live generators got instead of the clock's start, and registers a caller
-- with sources there, so it generates nothing before what may already be published. Uses Redis
-- server time.
--
-- KEYS[1] due        sorted set of waiting events, scored by due ms
-- KEYS[2] instances  sorted set of live instances, scored by heartbeat expiry (server ms)
-- KEYS[3] clock      hash: start_ms, speed (a number or 'max'), wall_us (server µs), set_by,
--                    and on a virtual clock reached_ms (the latest due time claimed)
-- KEYS[4] progress   hash: instance -> ms before which its sources scheduled everything
-- KEYS[5] leases     sorted set of open leases
-- ARGV[1] instance   the caller's id
-- ARGV[2] heartbeat_ms
-- ARGV[3] cutoff     due ms before which events are dropped, or '' to drop none
-- ARGV[4] start_ms   the caller's clock, or '' when it may not set one (no sources)
-- ARGV[5] speed      its speed: a number or 'max'
-- ARGV[6] wall_us    its wall origin, µs on the server's clock
-- Returns {instances alive before, events skipped, 1 if the caller stored the clock else 0,
--          start_ms (on a virtual clock: where the generators got), speed, wall_us (server µs),
--          the clock's own start_ms, or '' each}.
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
local clock = redis.call('HMGET', KEYS[3], 'start_ms', 'speed', 'wall_us', 'reached_ms')
local start_ms = clock[1]
if clock[2] == 'max' then
  -- A virtual clock is where the live generators got (the lowest progress: everything before it
  -- may be published already), and at least past the latest event claimed. A generator joining
  -- starts there.
  local entries = redis.call('HGETALL', KEYS[4])
  local low, live = nil, nil
  if clock[4] then low = tonumber(clock[4]) + 1 end
  -- A generator that scheduled everything reports the end of time (i64::MAX, beyond a Lua
  -- number's exact range): it tells nothing about where the clock is, and is left out.
  for i = 1, #entries, 2 do
    local at = tonumber(entries[i + 1])
    if not redis.call('ZSCORE', KEYS[2], entries[i]) then
      redis.call('HDEL', KEYS[4], entries[i])
    elseif entries[i] ~= ARGV[1] and at < 9007199254740992 and (not live or at < live) then
      live = at
    end
  end
  if live and (not low or live > low) then low = live end
  if low and low > tonumber(start_ms) then start_ms = string.format('%.0f', low) end
  if ARGV[4] ~= '' then redis.call('HSET', KEYS[4], ARGV[1], start_ms) end
end
return {alive, skipped, set_here, start_ms or '', clock[2] or '', clock[3] or '', clock[1] or ''}
