-- peers: one exchange of an instance's verdict with the other instances of the key (peers.rs). In
-- one step it forgets judges not heard from, lists the caller as a judge (for ARGV[2] ms more:
-- a few seconds while it reads, a minute once it stopped) with its state, adds its records
-- (trimming each record's key of records older than its rule cares for, and making the key
-- live as long as its newest record matters), then reads back every judge and the records
-- under the keys looked up. Listings use Redis server time; records are scored by their publish
-- time (µs on the publishing host's clock). Every key expires on its own: the judges' when no
-- judge is left, a record's key when its last record stopped mattering.
--
-- KEYS[1] judges     sorted set: judge id -> when it is forgotten (server ms)
-- KEYS[2] judging    hash: judge id -> "reading_from_us:reading_until_us:recorded_until_us"
--                    (reading_until_us empty while it reads)
-- KEYS[3 .. 2+R]     each record's key, in the order of the records in ARGV
-- KEYS[3+R ..]       the keys looked up
-- ARGV[1] judge      the caller's id
-- ARGV[2] listed_ms  how long the caller stays listed without another exchange
-- ARGV[3] state      the caller's value in KEYS[2]
-- ARGV[4] R          how many records follow
-- ARGV[5 ..]         4 per record: member (`<judge>:<seq>`), publish µs, keep ms (how long its
--                    key must live from now), oldest µs (records scored before it are dropped);
--                    then 2 per key looked up: the range of publish µs wanted, (after, until]
-- Returns {judges, found}: judges as {id, state, id, state, ...}; found as one list per key
-- looked up, {member, publish µs, member, publish µs, ...}, oldest first.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
for _, judge in ipairs(gone) do
  redis.call('HDEL', KEYS[2], judge)
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local listed = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], now + listed, ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
for k = 1, 2 do
  if redis.call('PTTL', KEYS[k]) < listed then
    redis.call('PEXPIRE', KEYS[k], listed)
  end
end

local records = tonumber(ARGV[4])
for i = 1, records do
  local key = KEYS[2 + i]
  local a = 4 + (i - 1) * 4
  redis.call('ZADD', key, ARGV[a + 2], ARGV[a + 1])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', '(' .. ARGV[a + 4])
  local keep = tonumber(ARGV[a + 3])
  if redis.call('PTTL', key) < keep then
    redis.call('PEXPIRE', key, keep)
  end
end

local judges = {}
for _, judge in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local state = redis.call('HGET', KEYS[2], judge)
  if state then
    judges[#judges + 1] = judge
    judges[#judges + 1] = state
  end
end
local found = {}
local a = 4 + records * 4
for k = 3 + records, #KEYS do
  found[#found + 1] = redis.call('ZRANGEBYSCORE', KEYS[k], '(' .. ARGV[a + 1], ARGV[a + 2],
    'WITHSCORES')
  a = a + 2
end
return {judges, found}
