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
-- Both keys live as long as their longest-lived entry.
for _, key in ipairs(KEYS) do
  if redis.call('PTTL', key) < ttl then
    redis.call('PEXPIRE', key, ttl)
  end
end
