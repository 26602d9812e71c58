-- schedule: adds events to the due set and counts them as pending for the instance that
-- scheduled them, in one step, so an event is never waiting without being counted.
-- Idempotent when retried: members are unique (see member.rs), so a retried call re-adds the
-- same members, ZADD counts none of them as added and the pending count does not grow.
--
-- KEYS[1] due      sorted set of waiting events, scored by due ms
-- KEYS[2] pending  hash: instance -> events it scheduled that nobody published yet
-- ARGV[1]          the calling instance's id
-- ARGV[2..]        score, member, score, member, ... (due ms and encoded event)
-- Returns the number of members added.
local added = 0
for i = 2, #ARGV, 7000 do
  local last = math.min(i + 6999, #ARGV)
  added = added + redis.call('ZADD', KEYS[1], unpack(ARGV, i, last))
end
if added > 0 then redis.call('HINCRBY', KEYS[2], ARGV[1], added) end
return added
