-- pending: how many of the caller's events nobody has published yet. Reading the count and
-- dropping a spent (0 or below) entry happen in one step, so finished runs leave nothing behind
-- and a count raised meanwhile by a schedule is never deleted. Absent means 0.
--
-- KEYS[1] pending    hash: instance -> events it scheduled that nobody published yet
-- ARGV[1] instance   the caller's id
-- Returns the count (the caller reads one below 0 as 0).
local n = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
if n <= 0 then redis.call('HDEL', KEYS[1], ARGV[1]) end
return n
