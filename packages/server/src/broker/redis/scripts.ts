/**
 * Lua scripts of the Redis engine, run with EVALSHA (ioredis defineCommand falls back to EVAL on NOSCRIPT).
 * Every script touches keys of ONE hash tag only (Redis Cluster safe); see keys.ts for the layout.
 */

/**
 * Epochs of streams and of channels without one (Lua helpers shared by PUBLISH_LUA and HISTORY_LUA).
 *
 * Reads never write, so a channel without a stream has no stored epoch. Its position is offset 0 and a
 * BUCKET EPOCH `~<incarnation>.<bucket ms>.<bucket index>`: incarnation = 10 hex digits of sha1(run_id) of this
 * Redis server (changes on every restart, i.e. whenever data may have been lost), bucket = floor(now / bucket ms).
 * A stream created later in the same bucket uses that very epoch (so a position read on an empty channel
 * usually names the epoch of its first publication). Bucket epochs are unique per stream because a stream that
 * gets one lives at least one bucket (its history ttl is 0 or >= the bucket length; streams with a shorter ttl
 * get a random epoch instead), so two streams of one channel are never created in one bucket.
 *
 * A `since` position whose epoch is a bucket epoch the stream does not carry ("I have seen offsets up to N of
 * the first stream created after some time in that bucket") is taken in the current stream's epoch only if no
 * other stream can have been created and lost in between: same incarnation and
 *   - the stream exists, was created (`c`) no earlier than the bucket start and less than its ttl `t` after it
 *     (a stream created after the bucket start and gone already lived at least `t`: the current one would have
 *     been created later); or
 *   - no stream exists, since.offset is 0 and the bucket started at most `bound` ms ago, `bound` being the
 *     shortest history ttl any publish uses (the least a stream lives).
 * Otherwise the query is not recoverable (never a silent gap).
 */
const EPOCH_LUA = `
local function incarnation()
  local id = string.match(redis.call('INFO', 'server'), 'run_id:(%x+)') or ''
  return string.sub(redis.sha1hex(id), 1, 10)
end
local function bucketEpoch(now, bucketMs)
  return '~' .. incarnation() .. '.' .. string.format('%.0f', bucketMs) .. '.' .. string.format('%.0f', math.floor(now / bucketMs))
end
-- Start (ms) of the bucket of a bucket epoch of this Redis server, or nil.
local function bucketStart(e)
  local inc, len, k = string.match(e, '^~(%x+)%.(%d+)%.(%d+)$')
  if inc == nil or inc ~= incarnation() then return nil end
  return tonumber(k) * tonumber(len)
end
`;

/**
 * Publish atomically: idempotency check, epoch (created if absent: the stream is new; a bucket epoch, see
 * EPOCH_LUA, or the random candidate for a ttl shorter than a bucket; its creation time is recorded in `c`),
 * offset +1, XADD with approximate MAXLEN, key TTLs, idempotency record, PUBLISH/SPUBLISH of header+frame.
 * KEYS: 1 meta, 2 stream, 3 idempotency key (optional)
 * ARGV: 1 frame, 2 candidate epoch, 3 history size, 4 history ttl ms (0 = no expiry), 5 exclude as JSON
 *       (`null` or a JSON string), 6 exclude raw ('' = none), 7 pub/sub channel, 8 'PUBLISH' | 'SPUBLISH',
 *       9 idempotency window ms, 10 epoch bucket ms
 * Returns {0, header} for a new publication, {1, stored header.."\n"..frame} for a repeated idempotency key.
 */
export const PUBLISH_LUA = EPOCH_LUA + `
if KEYS[3] then
  local prev = redis.call('GET', KEYS[3])
  if prev then return {1, prev} end
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local size = tonumber(ARGV[3])
local ttl = tonumber(ARGV[4])
local epoch = redis.call('HGET', KEYS[1], 'e')
if not epoch then
  local bucketMs = tonumber(ARGV[10])
  if ttl <= 0 or ttl >= bucketMs then epoch = bucketEpoch(now, bucketMs) else epoch = ARGV[2] end
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'e', epoch, 'c', string.format('%.0f', now))
end
local offset = redis.call('HINCRBY', KEYS[1], 'o', 1)
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
 * Read the stream position and, optionally, a history window, in one atomic step. READ-ONLY: a channel without
 * a stream gets no key (probing arbitrary channel names costs Redis nothing); it answers offset 0 and the
 * current bucket epoch (EPOCH_LUA, which also says when a `since` from a bucket epoch is recoverable).
 * KEYS: 1 meta, 2 stream
 * ARGV: 1 mode 'top' | 'since' | 'before', 2 offset (since / before), 3 limit, 4 epoch bucket ms,
 *       5 since epoch, 6 bound ms (the shortest history ttl)
 * Window kept = the last `s` offsets (MAXLEN ~ may keep more: they are not served) not older than `t` ms.
 * Returns {top, epoch, recoverable(0|1), offset1, frame1, time1, exclude1, offset2, ...}
 */
export const HISTORY_LUA = EPOCH_LUA + `
local m = redis.call('HMGET', KEYS[1], 'o', 'e', 's', 't', 'c')
local top = tonumber(m[1]) or 0
local epoch = m[2]
local mode = ARGV[1]
local sinceEpoch = ARGV[5]
local function nowMs()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
if not epoch then
  local now = nowMs()
  local rec = 1
  if mode == 'since' then
    rec = 0
    if tonumber(ARGV[2]) == 0 then
      local start = bucketStart(sinceEpoch)
      if start and now >= start and now - start <= tonumber(ARGV[6]) then rec = 1 end
    end
  end
  return {0, bucketEpoch(now, tonumber(ARGV[4])), rec}
end
if mode == 'top' then return {top, epoch, 1} end
local size = tonumber(m[3]) or 0
local ttl = tonumber(m[4]) or 0
if mode == 'since' and sinceEpoch ~= epoch and string.sub(sinceEpoch, 1, 1) == '~' then
  local start = bucketStart(sinceEpoch)
  local created = tonumber(m[5])
  if start and created and created >= start and (ttl <= 0 or created - start < ttl) then
    sinceEpoch = epoch
  else
    return {top, epoch, 0}
  end
end
local minOff = top - size + 1
if minOff < 1 then minOff = 1 end
local minTime = 0
if ttl > 0 then
  minTime = nowMs() - ttl
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
  if sinceEpoch ~= epoch then out[3] = 0 return out end
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

/** Presence join: record a member in this node's hash and index of the channel and register the node.
 * KEYS: 1 node set of the channel, 2 this node's hash, 3 this node's index (zset of the hash's connection ids).
 * ARGV: 1 node id, 2 connection id, 3 member JSON, 4 ttl ms */
export const PRESENCE_JOIN_LUA = `
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
redis.call('ZADD', KEYS[3], 0, ARGV[2])
redis.call('PEXPIRE', KEYS[3], ARGV[4])
redis.call('SADD', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
`;

/** Presence leave: remove a member from this node's hash and index of the channel (together: a page never
 * sees one without the other). KEYS: 1 this node's hash, 2 this node's index. ARGV: 1 connection id */
export const PRESENCE_LEAVE_LUA = `
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
`;

/** Lua: the owner ids named by ARGV[first..] as a set `dead`: owners whose heartbeat is older than the node
 * timeout (see HEARTBEAT_LUA). Readers skip them (their entries are hidden, not deleted: they expire with their
 * ttl, and a node wrongly taken for dead shows again on its next heartbeat). */
function deadOwners(first: number): string {
  return `local dead = {}
for i = ${first}, #ARGV do dead[ARGV[i]] = true end
`;
}

/**
 * Presence members page, first step (atomic): at most `limit` connection ids after the cursor from the index
 * of every node of the channel (ZRANGEBYLEX: byte order). The caller merges the lists (the page is the
 * `limit` smallest distinct ids) and reads the page's member JSON with HMGET from the hashes of the nodes that
 * listed them. Merging happens in the caller, not here: comparing strings in Lua costs Redis far more than the
 * reads (Lua's `<` follows the server's locale, so it would have to go byte by byte). Node ids with neither
 * index nor hash left (expired: the node died) are pruned from the node set; dead owners (ARGV 5…) are skipped.
 * O(nodes + limit per node).
 * KEYS: 1 node set of the channel. ARGV: 1 hash key prefix, 2 index key prefix, 3 ZRANGEBYLEX min ('-' or
 * '(' .. cursor), 4 limit, 5… dead owner ids.
 * Returns {{node, {id, ...}}, ...} for the nodes that listed at least one id.
 */
export const PRESENCE_PAGE_LUA = deadOwners(5) + `
local out = {}
for _, node in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if not dead[node] then
    local ids = redis.call('ZRANGEBYLEX', ARGV[2] .. node, ARGV[3], '+', 'LIMIT', 0, tonumber(ARGV[4]))
    if #ids > 0 then
      out[#out + 1] = {node, ids}
    elseif redis.call('EXISTS', ARGV[2] .. node) == 0 and redis.call('EXISTS', ARGV[1] .. node) == 0 then
      redis.call('SREM', KEYS[1], node)
    end
  end
end
return out
`;

/** Presence members: every node hash of the channel; nodes whose hash expired are pruned from the set, dead
 * owners skipped. KEYS: 1 node set. ARGV: 1 hash key prefix, 2… dead owner ids. Returns a flat list of member
 * JSON strings. */
export const PRESENCE_MEMBERS_LUA = deadOwners(2) + `
local out = {}
local nodes = redis.call('SMEMBERS', KEYS[1])
for _, node in ipairs(nodes) do
  if not dead[node] then
    local vals = redis.call('HVALS', ARGV[1] .. node)
    if #vals == 0 then
      redis.call('SREM', KEYS[1], node)
    else
      for _, v in ipairs(vals) do out[#out + 1] = v end
    end
  end
end
return out
`;

/** Lua: sum the HLEN of every live node's hash (`<prefix><node>`) listed in the node set KEYS[1], removing
 * nodes whose hash is gone (expired: the node died) from the set and skipping dead owners (ARGV[firstDead…]);
 * returns the sum. `prefixArg` names the ARGV holding the hash key prefix. */
function sumLiveNodeHashes(prefixArg: string, firstDead: number): string {
  return deadOwners(firstDead) + `local total = 0
local nodes = redis.call('SMEMBERS', KEYS[1])
for _, node in ipairs(nodes) do
  if not dead[node] then
    local n = redis.call('HLEN', ${prefixArg} .. node)
    if n == 0 then redis.call('SREM', KEYS[1], node) else total = total + n end
  end
end
return total
`;
}

/** Number of presence members of a channel on every live node (HLEN per node hash; prunes dead nodes).
 * KEYS: 1 node set of the channel. ARGV: 1 hash key prefix, 2… dead owner ids. */
export const PRESENCE_COUNT_LUA = sumLiveNodeHashes('ARGV[1]', 2);

/** User connection count change + cluster-wide count.
 * KEYS: 1 node set of the user, 2 this node's hash of the user.
 * ARGV: 1 node id, 2 connection id, 3 '+' (connect) or '-' (disconnect), 4 username ('' = null), 5 ttl ms,
 *       6 hash key prefix, 7… dead owner ids. Returns the user's connection count on every live node afterwards. */
export const USER_COUNT_LUA = `
if ARGV[3] == '+' then
  redis.call('HSET', KEYS[2], ARGV[2], ARGV[4])
  redis.call('PEXPIRE', KEYS[2], ARGV[5])
  redis.call('SADD', KEYS[1], ARGV[1])
  redis.call('PEXPIRE', KEYS[1], ARGV[5])
else
  redis.call('HDEL', KEYS[2], ARGV[2])
end
` + sumLiveNodeHashes('ARGV[6]', 7);

/**
 * Client id claim (issue 11), atomic: the key names the holder (c connection, n node, g generation, u user id,
 * absent for an anonymous holder). Free (no key: never claimed, released, or expired with its node) or held by
 * the same owner (same user id; anonymous and anonymous) -> the caller becomes the holder with a generation
 * larger than any before it: the Redis clock in microseconds, or the previous generation + 1 if that is not
 * larger (the clock is shared by every node, so later claims of an id get larger generations even across
 * releases). Another owner -> refused, nothing written.
 * KEYS: 1 the client id key. ARGV: 1 '1' identified | '0' anonymous, 2 user id ('' when anonymous), 3 node id,
 *       4 connection id, 5 ttl ms.
 * Returns {1, generation} or {0, '1' | '0' (holder identified), holder user id ('' when anonymous)}.
 */
export const CLIENT_ID_CLAIM_LUA = `
local h = redis.call('HMGET', KEYS[1], 'c', 'u', 'g')
if h[1] then
  if ARGV[1] == '1' then
    if h[2] ~= ARGV[2] then
      if h[2] then return {0, '1', h[2]} end
      return {0, '0', ''}
    end
  elseif h[2] then
    return {0, '1', h[2]}
  end
end
local t = redis.call('TIME')
local g = tonumber(t[1]) * 1000000 + tonumber(t[2])
local prev = tonumber(h[3] or '')
if prev and prev >= g then g = prev + 1 end
local gs = string.format('%.0f', g)
redis.call('DEL', KEYS[1])
if ARGV[1] == '1' then
  redis.call('HSET', KEYS[1], 'c', ARGV[4], 'n', ARGV[3], 'g', gs, 'u', ARGV[2])
else
  redis.call('HSET', KEYS[1], 'c', ARGV[4], 'n', ARGV[3], 'g', gs)
end
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return {1, gs}
`;

/** Client id release: delete the key only if the connection still holds it (a newer holder keeps its claim).
 * KEYS: 1 the client id key. ARGV: 1 connection id. Returns 1 if deleted. */
export const CLIENT_ID_RELEASE_LUA = `
if redis.call('HGET', KEYS[1], 'c') == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
`;

/**
 * Client id refresh by the holder's node: the connection still holds it -> PEXPIRE (1); the key is gone (Redis
 * lost it, or it expired while this node could not reach Redis) and nobody claimed the id since -> written back
 * as it was (2); another connection holds it now -> 0, nothing written (the node closes its connection: the
 * newer claim wins).
 * KEYS: 1 the client id key. ARGV: 1 connection id, 2 node id, 3 '1' identified | '0' anonymous, 4 user id,
 *       5 generation, 6 ttl ms.
 */
export const CLIENT_ID_REFRESH_LUA = `
local c = redis.call('HGET', KEYS[1], 'c')
if c == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[6])
  return 1
end
if c then return 0 end
if ARGV[3] == '1' then
  redis.call('HSET', KEYS[1], 'c', ARGV[1], 'n', ARGV[2], 'g', ARGV[5], 'u', ARGV[4])
else
  redis.call('HSET', KEYS[1], 'c', ARGV[1], 'n', ARGV[2], 'g', ARGV[5])
end
redis.call('PEXPIRE', KEYS[1], ARGV[6])
return 2
`;


/**
 * Node heartbeat (presence liveness). Every node beats every nodeTimeoutMs / 3 into one sorted set, score =
 * Redis' own clock (no skew between hosts): O(1) writes per node per beat, whatever its connections. Readers take
 * an owner whose last beat is older than the node timeout for dead and skip its presence entries, so a killed
 * node's members and users are gone within about nodeTimeoutMs × 4/3 instead of presenceTtlMs.
 * If nobody beat for more than two intervals (Redis was paused or unreachable for everyone, or every node
 * stopped), the beats are stale for a reason that is not the nodes': a grace marker (KEYS[2], PX timeout) is set
 * and nobody is reported dead until it expires, by which time every live node has beaten again.
 * Entries older than `keep` ms are dropped (their presence keys have expired by then). `added` is 1 when the
 * owner was not in the set: Redis lost it (restart without persistence) or dropped it, so the node rewrites its
 * presence at once instead of at its next refresh.
 * KEYS: 1 heartbeat zset, 2 grace marker. ARGV: 1 owner id ('' = read only), 2 timeout ms, 3 keep ms.
 * Returns {now ms, grace (0|1), added (0|1), owner, score, owner, score, ...}.
 */
export const HEARTBEAT_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local timeout = tonumber(ARGV[2])
local added = 0
if ARGV[1] ~= '' then
  local top = redis.call('ZREVRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  if #top == 2 and now - tonumber(top[2]) > (timeout * 2) / 3 then
    redis.call('SET', KEYS[2], '1', 'PX', timeout)
  end
  added = redis.call('ZADD', KEYS[1], now, ARGV[1])
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[3]))
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
local out = {now, redis.call('EXISTS', KEYS[2]), added}
for _, v in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')) do out[#out + 1] = v end
return out
`;
