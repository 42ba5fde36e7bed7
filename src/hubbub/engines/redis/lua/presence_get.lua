-- presence_get.lua: the live clients of a channel's presence.
--
-- KEYS[1]  presence hash of the channel: client id -> ClientInfo JSON
-- KEYS[2]  presence expiry sorted set: client id -> expiry time in ms
-- ARGV[1]  '1': return only the ClientInfo JSON values (for stats);
--          otherwise client id and ClientInfo JSON, alternating
-- Returns  a flat list as described by ARGV[1]
--
-- Expired entries are skipped, not deleted: presence_expire.lua removes them
-- and hands them to exactly one node, which announces their leave.

local now = redis.call('TIME')
now = string.format('%d', tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000))
local expired = {}
for _, client in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)) do
  expired[client] = true
end
local flat = redis.call('HGETALL', KEYS[1])
local result = {}
for i = 1, #flat, 2 do
  if not expired[flat[i]] then
    if ARGV[1] ~= '1' then
      result[#result + 1] = flat[i]
    end
    result[#result + 1] = flat[i + 1]
  end
end
return result
