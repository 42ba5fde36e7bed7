-- publish.lua: assign the next offset of a channel, keep the publication in
-- history and PUBLISH it, in one atomic step, so that every node receives a
-- channel's publications in offset order and history never disagrees with
-- what was delivered.
--
-- KEYS[1]  meta hash of the channel: e = epoch, o = top offset
-- KEYS[2]  history stream of the channel: entry id "<offset>-0",
--          fields p = publication JSON, x = expiry time in ms (Redis clock)
-- ARGV[1]  pub/sub channel to PUBLISH the envelope on
-- ARGV[2]  publication JSON without its opening brace and offset, that is
--          the tail '"data":...,"info":...}' (encoded once by the caller)
-- ARGV[3]  history size: how many newest publications to keep (0: none)
-- ARGV[4]  history ttl in ms (0: keep nothing; offsets still advance)
-- ARGV[5]  meta ttl in ms (0: the meta hash never expires)
-- ARGV[6]  epoch to start with when the channel has none (fresh, random):
--          a missing meta hash means its history was lost or expired
-- KEYS[3]  (optional) idempotency key of this publish: when it exists, the
--          script publishes nothing and returns the position stored in it
-- ARGV[7]  (with KEYS[3]) how long the idempotency key is kept, in ms
-- Returns  {offset, epoch}
--
-- Pub/sub envelope: '["p","<epoch>",<publication JSON>]'.

if KEYS[3] then
  local known = redis.call('GET', KEYS[3])
  if known then
    local sep = string.find(known, ':', 1, true)
    return {tonumber(string.sub(known, 1, sep - 1)), string.sub(known, sep + 1)}
  end
end

local epoch = redis.call('HGET', KEYS[1], 'e')
if not epoch then
  epoch = ARGV[6]
  redis.call('HSET', KEYS[1], 'e', epoch, 'o', 0)
  -- Entries of a lost epoch must not reappear under the new one.
  redis.call('DEL', KEYS[2])
end
local offset = redis.call('HINCRBY', KEYS[1], 'o', 1)
local meta_ttl = tonumber(ARGV[5])
if meta_ttl > 0 then
  redis.call('PEXPIRE', KEYS[1], meta_ttl)
else
  redis.call('PERSIST', KEYS[1])
end

local publication = '{"offset":' .. string.format('%d', offset) .. ',' .. ARGV[2]
local size = tonumber(ARGV[3])
local ttl = tonumber(ARGV[4])
if size > 0 and ttl > 0 then
  local now = redis.call('TIME')
  local expires = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) + ttl
  redis.call('XADD', KEYS[2], 'MAXLEN', size, string.format('%d-0', offset),
    'p', publication, 'x', string.format('%d', expires))
  redis.call('PEXPIRE', KEYS[2], ttl)
else
  redis.call('DEL', KEYS[2])
end

redis.call('PUBLISH', ARGV[1], '["p","' .. epoch .. '",' .. publication .. ']')
if KEYS[3] then
  redis.call('SET', KEYS[3], string.format('%d', offset) .. ':' .. epoch, 'PX', ARGV[7])
end
return {offset, epoch}
