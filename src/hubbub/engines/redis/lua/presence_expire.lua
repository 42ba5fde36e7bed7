-- presence_expire.lua: remove the expired clients of a channel's presence
-- and return them, atomically, so that when several nodes collect the same
-- channel each expired client is returned to exactly one of them (which
-- announces its leave once).
--
-- KEYS[1]  presence hash of the channel: client id -> ClientInfo JSON
-- KEYS[2]  presence expiry sorted set: client id -> expiry time in ms
-- Returns  the ClientInfo JSON of each removed client

local now = redis.call('TIME')
now = string.format('%d', tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000))
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, 1000)
if #expired == 0 then
  return {}
end
local infos = redis.call('HMGET', KEYS[1], unpack(expired))
redis.call('ZREM', KEYS[2], unpack(expired))
redis.call('HDEL', KEYS[1], unpack(expired))
local result = {}
for _, info in ipairs(infos) do
  if info then
    result[#result + 1] = info
  end
end
return result
