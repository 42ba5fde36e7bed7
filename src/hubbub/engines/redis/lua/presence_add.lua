-- presence_add.lua: add or refresh one client in a channel's presence.
--
-- KEYS[1]  presence hash of the channel: client id -> ClientInfo JSON
-- KEYS[2]  presence expiry sorted set: client id -> expiry time in ms
--          (Redis clock, so that every node agrees on it)
-- ARGV[1]  client id
-- ARGV[2]  ClientInfo JSON
-- ARGV[3]  ttl in ms: the entry disappears unless refreshed within it,
--          which is how a crashed node's clients leave presence
-- Returns  nothing

local now = redis.call('TIME')
now = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local ttl = tonumber(ARGV[3])
redis.call('ZADD', KEYS[2], string.format('%d', now + ttl), ARGV[1])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
-- Both keys outlive their longest-lived entry by another ttl (at least a
-- minute), so that an expired entry stays until a node collects it
-- (presence_expire.lua, every ttl / 3) and announces its leave; after that
-- the keys of a deserted channel go.
local keep = ttl + math.max(ttl, 60000)
for _, key in ipairs(KEYS) do
  if redis.call('PTTL', key) < keep then
    redis.call('PEXPIRE', key, keep)
  end
end
