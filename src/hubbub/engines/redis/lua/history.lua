-- history.lua: read a channel's kept publications and its top position,
-- creating the channel's epoch when it has none, atomically, so that a
-- publish that follows continues in the epoch this read reported.
--
-- KEYS[1]  meta hash of the channel: e = epoch, o = top offset
-- KEYS[2]  history stream of the channel (see publish.lua)
-- ARGV[1]  epoch to create when the channel has none (fresh, random)
-- ARGV[2]  meta ttl in ms for a created meta hash (0: never expires)
-- ARGV[3]  'XRANGE' (oldest first) or 'XREVRANGE' (newest first)
-- ARGV[4]  first stream id of the range ('-' / '+' for open ends)
-- ARGV[5]  last stream id of the range
-- ARGV[6]  max number of publications (-1: all kept, 0: none)
-- Returns  {top offset, epoch, publication JSON...}

local epoch = redis.call('HGET', KEYS[1], 'e')
if not epoch then
  redis.call('HSET', KEYS[1], 'e', ARGV[1], 'o', 0)
  local meta_ttl = tonumber(ARGV[2])
  if meta_ttl > 0 then
    redis.call('PEXPIRE', KEYS[1], meta_ttl)
  end
  redis.call('DEL', KEYS[2])
  return {0, ARGV[1]}
end
local result = {tonumber(redis.call('HGET', KEYS[1], 'o')) or 0, epoch}
local limit = tonumber(ARGV[6])
if limit == 0 then
  return result
end

-- Entries expire in append order: delete the expired ones at the head, so
-- that ranges and limits below count only live publications. Usually the
-- oldest entry is alive and one COUNT 1 lookup is all this costs.
local now = redis.call('TIME')
now = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local batch = 1
while true do
  local head = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', batch)
  local expired = {}
  for _, entry in ipairs(head) do
    if tonumber(entry[2][4]) > now then
      break
    end
    expired[#expired + 1] = entry[1]
  end
  if #expired > 0 then
    redis.call('XDEL', KEYS[2], unpack(expired))
  end
  if #expired < batch then
    break
  end
  batch = 100
end

local entries
if limit > 0 then
  entries = redis.call(ARGV[3], KEYS[2], ARGV[4], ARGV[5], 'COUNT', limit)
else
  entries = redis.call(ARGV[3], KEYS[2], ARGV[4], ARGV[5])
end
for i, entry in ipairs(entries) do
  result[i + 2] = entry[2][2]
end
return result
