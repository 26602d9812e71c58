-- acknowledge: closes a lease whose events the sinks took. In one step it takes the lease's
-- events off the pending counts of the instances that scheduled them and deletes the lease, so
-- a count never drops without the lease going too. A lease already put back (expired and
-- reclaimed by a claim) has no owners left and changes nothing.
--
-- KEYS[1] leases     sorted set of open leases
-- KEYS[2] this lease list of its members
-- KEYS[3] its owners hash: instance -> how many of this lease's events it scheduled
-- KEYS[4] pending    hash: instance -> events it scheduled that nobody published yet
-- ARGV[1] lease id   member of KEYS[1]
-- Returns how many instances' counts were lowered.
local counts = redis.call('HGETALL', KEYS[3])
for i = 1, #counts, 2 do
  redis.call('HINCRBY', KEYS[4], counts[i], -tonumber(counts[i + 1]))
end
redis.call('DEL', KEYS[2], KEYS[3])
redis.call('ZREM', KEYS[1], ARGV[1])
return #counts / 2
