-- claim: renews the caller's heartbeat, puts back the events of up to 8 expired leases (their
-- instance died between claiming and publishing), then moves up to ARGV[2] events due by
-- ARGV[1] from the due set into a new lease, all in one step, so each event goes to exactly one
-- instance. On a virtual clock (ARGV[8] not '') it first records the caller's progress (when it
-- generates), forgets the progress of instances no longer alive, claims nothing due at or after
-- the lowest progress left (no instance publishes ahead of a generator), and records the latest
-- due time claimed (a generator joining later starts after it). Lease expiry uses Redis server time, so the instances' clocks need not agree.
-- Reads the member layout of member.rs: the owner (instance) is bytes 13-28 and the due ms
-- starts at byte 29, up to the first '|'.
--
-- KEYS[1] due        sorted set of waiting events, scored by due ms
-- KEYS[2] leases     sorted set of open leases, scored by expiry (server ms)
-- KEYS[3] this lease list of the claimed members
-- KEYS[4] its owners hash: instance -> how many of this lease's events it scheduled
-- KEYS[5] instances  sorted set of live instances, scored by heartbeat expiry (server ms)
-- KEYS[6] progress   hash: instance -> ms before which its sources scheduled everything
-- KEYS[7] clock      hash: the shared clock; on a virtual one `reached_ms` is the latest due
--                    time claimed so far
-- ARGV[1] until_ms   claim events due at or before this
-- ARGV[2] max        most events to claim
-- ARGV[3] lease_ms   how long the lease runs before others may take its events back
-- ARGV[4] lease id   member of KEYS[2]; KEYS[3] is ARGV[7] .. ARGV[4]
-- ARGV[5] instance   the caller's id
-- ARGV[6] heartbeat_ms
-- ARGV[7] lease key prefix
-- ARGV[8] progress   '' (scaled clock: no progress kept), 'worker' (virtual clock, no sources)
--                    or the caller's progress in ms (virtual clock, generating)
-- Returns {reclaimed, member...}: how many expired events were put back, then the claimed members.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[5], now + tonumber(ARGV[6]), ARGV[5])
local reclaimed = 0
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, 8)
for _, lease in ipairs(expired) do
  local key = ARGV[7] .. lease
  local members = redis.call('LRANGE', key, 0, -1)
  for _, m in ipairs(members) do
    local due = string.match(m, '^(%-?%d+)|', 29)
    redis.call('ZADD', KEYS[1], due, m)
  end
  reclaimed = reclaimed + #members
  redis.call('DEL', key, key .. ':owners')
  redis.call('ZREM', KEYS[2], lease)
end
local upto = ARGV[1]
if ARGV[8] ~= '' then
  if ARGV[8] ~= 'worker' then redis.call('HSET', KEYS[6], ARGV[5], ARGV[8]) end
  local entries = redis.call('HGETALL', KEYS[6])
  local low = nil
  for i = 1, #entries, 2 do
    local beat = redis.call('ZSCORE', KEYS[5], entries[i])
    local at = tonumber(entries[i + 1])
    if not beat or tonumber(beat) < now then
      redis.call('HDEL', KEYS[6], entries[i])
    elseif not low or at < low then
      low = at
    end
  end
  if low and low - 1 < tonumber(upto) then upto = string.format('%.0f', low - 1) end
end
local members = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', upto, 'LIMIT', 0, tonumber(ARGV[2]))
if #members > 0 then
  for i = 1, #members, 7000 do
    local last = math.min(i + 6999, #members)
    redis.call('ZREM', KEYS[1], unpack(members, i, last))
    redis.call('RPUSH', KEYS[3], unpack(members, i, last))
  end
  local counts = {}
  for _, m in ipairs(members) do
    local owner = string.sub(m, 13, 28)
    counts[owner] = (counts[owner] or 0) + 1
  end
  for owner, n in pairs(counts) do redis.call('HSET', KEYS[4], owner, n) end
  redis.call('ZADD', KEYS[2], now + tonumber(ARGV[3]), ARGV[4])
  if ARGV[8] ~= '' then
    local last = tonumber(string.match(members[#members], '^(%-?%d+)|', 29))
    local reached = tonumber(redis.call('HGET', KEYS[7], 'reached_ms') or '')
    if not reached or last > reached then
      redis.call('HSET', KEYS[7], 'reached_ms', string.format('%.0f', last))
    end
  end
end
table.insert(members, 1, reclaimed)
return members
