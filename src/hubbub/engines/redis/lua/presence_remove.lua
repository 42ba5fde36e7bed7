-- presence_remove.lua: remove one client from a channel's presence.
--
-- KEYS[1]  presence hash of the channel: client id -> ClientInfo JSON
-- KEYS[2]  presence expiry sorted set: client id -> expiry time in ms
-- ARGV[1]  client id
-- Returns  nothing

redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
