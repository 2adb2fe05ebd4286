/**
 * Lua scripts of the Redis engine, run with EVALSHA (ioredis defineCommand falls back to EVAL on NOSCRIPT).
 * Every script touches keys of ONE hash tag only (Redis Cluster safe); see keys.ts for the layout.
 */

/**
 * Publish atomically: idempotency check, epoch (created if absent: the stream is new), offset +1, XADD with
 * approximate MAXLEN, key TTLs, idempotency record, PUBLISH/SPUBLISH of header+frame.
 * KEYS: 1 meta, 2 stream, 3 idempotency key (optional)
 * ARGV: 1 frame, 2 candidate epoch, 3 history size, 4 history ttl ms (0 = no expiry), 5 exclude as JSON
 *       (`null` or a JSON string), 6 exclude raw ('' = none), 7 pub/sub channel, 8 'PUBLISH' | 'SPUBLISH',
 *       9 idempotency window ms
 * Returns {0, header} for a new publication, {1, stored header.."\n"..frame} for a repeated idempotency key.
 */
export const PUBLISH_LUA = `
if KEYS[3] then
  local prev = redis.call('GET', KEYS[3])
  if prev then return {1, prev} end
end
local epoch = redis.call('HGET', KEYS[1], 'e')
if not epoch then
  epoch = ARGV[2]
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'e', epoch)
end
local offset = redis.call('HINCRBY', KEYS[1], 'o', 1)
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local size = tonumber(ARGV[3])
local ttl = tonumber(ARGV[4])
redis.call('HSET', KEYS[1], 's', ARGV[3], 't', ARGV[4])
if size > 0 then
  if ARGV[6] ~= '' then
    redis.call('XADD', KEYS[2], 'MAXLEN', '~', size, offset .. '-0', 'f', ARGV[1], 't', now, 'x', ARGV[6])
  else
    redis.call('XADD', KEYS[2], 'MAXLEN', '~', size, offset .. '-0', 'f', ARGV[1], 't', now)
  end
  if ttl > 0 then redis.call('PEXPIRE', KEYS[2], ttl) end
end
if ttl > 0 then redis.call('PEXPIRE', KEYS[1], ttl) else redis.call('PERSIST', KEYS[1]) end
local header = '["p",' .. offset .. ',"' .. epoch .. '",' .. string.format('%.0f', now) .. ',' .. ARGV[5] .. ']'
redis.call(ARGV[8], ARGV[7], header .. '\\n' .. ARGV[1])
if KEYS[3] then redis.call('SET', KEYS[3], header .. '\\n' .. ARGV[1], 'PX', ARGV[9]) end
return {0, header}
`;

/**
 * Read the stream position and, optionally, a history window, in one atomic step. Creates the epoch when the
 * channel has none (so position() answers the same epoch the next publish will use).
 * KEYS: 1 meta, 2 stream
 * ARGV: 1 mode 'top' | 'since' | 'before', 2 offset (since / before), 3 limit, 4 candidate epoch,
 *       5 ttl ms of a freshly created epoch, 6 since epoch
 * Window kept = the last `s` offsets (MAXLEN ~ may keep more: they are not served) not older than `t` ms.
 * Returns {top, epoch, recoverable(0|1), offset1, frame1, time1, exclude1, offset2, ...}
 */
export const HISTORY_LUA = `
local m = redis.call('HMGET', KEYS[1], 'o', 'e', 's', 't')
local top = tonumber(m[1]) or 0
local epoch = m[2]
local mode = ARGV[1]
if not epoch then
  epoch = ARGV[4]
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'e', epoch)
  redis.call('PEXPIRE', KEYS[1], ARGV[5])
  return {0, epoch, (mode == 'since' and ARGV[6] == epoch) and 1 or 0}
end
if mode == 'top' then return {top, epoch, 1} end
local size = tonumber(m[3]) or 0
local ttl = tonumber(m[4]) or 0
local minOff = top - size + 1
if minOff < 1 then minOff = 1 end
local minTime = 0
if ttl > 0 then
  local t = redis.call('TIME')
  minTime = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) - ttl
end
local limit = tonumber(ARGV[3])
local out = {top, epoch, 1}
local function push(e)
  local id = e[1]
  local f = e[2]
  local frame, time, exclude = '', 0, ''
  for i = 1, #f, 2 do
    local k = f[i]
    if k == 'f' then frame = f[i + 1] elseif k == 't' then time = tonumber(f[i + 1]) elseif k == 'x' then exclude = f[i + 1] end
  end
  if time < minTime then return false end
  local off = tonumber(string.sub(id, 1, string.find(id, '-', 1, true) - 1))
  out[#out + 1] = off
  out[#out + 1] = frame
  out[#out + 1] = time
  out[#out + 1] = exclude
  return true
end
if mode == 'since' then
  if ARGV[6] ~= epoch then out[3] = 0 return out end
  local since = tonumber(ARGV[2])
  if since > top then out[3] = 0 return out end
  if since == top then return out end
  local start = since + 1
  if start < minOff then start = minOff end
  if start > top then out[3] = 0 return out end
  local n = limit
  if n < 1 then n = 1 end
  local entries = redis.call('XRANGE', KEYS[2], start .. '-0', '+', 'COUNT', n)
  local expect = since + 1
  local rec = 1
  for _, e in ipairs(entries) do
    local before = #out
    if push(e) then
      if out[before + 1] ~= expect then rec = 0 end
      expect = out[before + 1] + 1
    end
  end
  if #out == 3 then rec = 0 end
  if limit < 1 then
    for i = #out, 4, -1 do out[i] = nil end
  end
  out[3] = rec
  return out
end
-- 'before': newest first, offsets < ARGV[2]
local before = tonumber(ARGV[2])
local last = before - 1
if last > top then last = top end
if last < minOff or last < 1 or limit < 1 then return out end
local entries = redis.call('XREVRANGE', KEYS[2], last .. '-0', minOff .. '-0', 'COUNT', limit)
for _, e in ipairs(entries) do
  if not push(e) then break end
end
return out
`;

/** Presence join: record a member in this node's hash of the channel and register the node.
 * KEYS: 1 node set of the channel, 2 this node's hash. ARGV: 1 node id, 2 connection id, 3 member JSON, 4 ttl ms */
export const PRESENCE_JOIN_LUA = `
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
redis.call('SADD', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
`;

/** Presence members: every node hash of the channel; nodes whose hash expired are pruned from the set.
 * KEYS: 1 node set. ARGV: 1 hash key prefix. Returns a flat list of member JSON strings. */
export const PRESENCE_MEMBERS_LUA = `
local out = {}
local nodes = redis.call('SMEMBERS', KEYS[1])
for _, node in ipairs(nodes) do
  local vals = redis.call('HVALS', ARGV[1] .. node)
  if #vals == 0 then
    redis.call('SREM', KEYS[1], node)
  else
    for _, v in ipairs(vals) do out[#out + 1] = v end
  end
end
return out
`;

/** Lua: sum the HLEN of every live node's hash (`<prefix><node>`) listed in the node set KEYS[1], removing
 * nodes whose hash is gone (expired: the node died) from the set; returns the sum. `prefixArg` names the
 * ARGV holding the hash key prefix. */
function sumLiveNodeHashes(prefixArg: string): string {
  return `local total = 0
local nodes = redis.call('SMEMBERS', KEYS[1])
for _, node in ipairs(nodes) do
  local n = redis.call('HLEN', ${prefixArg} .. node)
  if n == 0 then redis.call('SREM', KEYS[1], node) else total = total + n end
end
return total
`;
}

/** Number of presence members of a channel on every live node (HLEN per node hash; prunes dead nodes).
 * KEYS: 1 node set of the channel. ARGV: 1 hash key prefix. */
export const PRESENCE_COUNT_LUA = sumLiveNodeHashes('ARGV[1]');

/** User connection count change + cluster-wide count.
 * KEYS: 1 node set of the user, 2 this node's hash of the user.
 * ARGV: 1 node id, 2 connection id, 3 '+' (connect) or '-' (disconnect), 4 username ('' = null), 5 ttl ms,
 *       6 hash key prefix. Returns the user's connection count on every live node afterwards. */
export const USER_COUNT_LUA = `
if ARGV[3] == '+' then
  redis.call('HSET', KEYS[2], ARGV[2], ARGV[4])
  redis.call('PEXPIRE', KEYS[2], ARGV[5])
  redis.call('SADD', KEYS[1], ARGV[1])
  redis.call('PEXPIRE', KEYS[1], ARGV[5])
else
  redis.call('HDEL', KEYS[2], ARGV[2])
end
` + sumLiveNodeHashes('ARGV[6]');
