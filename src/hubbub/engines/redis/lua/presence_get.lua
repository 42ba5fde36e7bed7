-- presence_get.lua: drop the expired clients of a channel's presence and
-- return the live ones.
--
-- KEYS[1]  presence hash of the channel: client id -> ClientInfo JSON
-- KEYS[2]  presence expiry sorted set: client id -> expiry time in ms
-- ARGV[1]  '1': return only the ClientInfo JSON values (for stats);
--          otherwise client id and ClientInfo JSON, alternating
-- Returns  a flat list as described by ARGV[1]

local now = redis.call('TIME')
now = string.format('%d', tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000))
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)
if #expired > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
  for i = 1, #expired, 1000 do
    redis.call('HDEL', KEYS[1], unpack(expired, i, math.min(i + 999, #expired)))
  end
end
if ARGV[1] == '1' then
  return redis.call('HVALS', KEYS[1])
end
return redis.call('HGETALL', KEYS[1])
