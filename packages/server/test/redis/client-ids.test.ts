/**
 * Redis engine: client id claims (issue 11) beyond the shared contract — the key layout and ttl, the refresh
 * (re-applies the ttl, writes a lost key back, reports a claim another connection took meanwhile) and close.
 *   eval "$(bash scripts/provision/redis.sh)"; npx tsc -b packages/server && node --test --test-concurrency=1 packages/server/dist/test/redis/client-ids.test.js
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { RedisPresenceStore } from '../../src/broker/redis/index.js';
import { uid } from '../broker-contract.js';
import { requireRedisUrl } from './redis-process.js';

const REDIS_URL = requireRedisUrl();
const PREFIX = `sbcid-${process.pid}-${Date.now().toString(36)}:`;
const TTL = 3000;
const keyOf = (clientId: string): string => `${PREFIX}{c:${clientId}}:o`;

describe('redis engine: client id claims', () => {
  let redis: Redis;
  let a: RedisPresenceStore;
  let b: RedisPresenceStore;
  const lostOnB: Array<[string, string]> = [];

  before(async () => {
    redis = new Redis(REDIS_URL);
    a = new RedisPresenceStore({ url: REDIS_URL, keyPrefix: PREFIX, nodeId: 'node-a', presenceTtlMs: TTL });
    b = new RedisPresenceStore({ url: REDIS_URL, keyPrefix: PREFIX, nodeId: 'node-b', presenceTtlMs: TTL });
    await Promise.all([a.start(), b.start()]);
    // Refreshes are driven by the tests (refresh()), not by the timers.
    a.stopRefreshing();
    b.stopRefreshing();
    b.onClientIdLost((clientId, connectionId) => lostOnB.push([clientId, connectionId]));
  });
  after(async () => {
    await Promise.all([a.close(), b.close()]);
    redis.disconnect();
  });

  it('one hash per client id in its own slot: connection, node, generation, user (absent: anonymous), presence ttl', async () => {
    const id = uid('layout');
    const claim = await a.claimClientId(id, 'alice', 'c-1');
    assert.ok(claim.ok);
    assert.deepEqual(await redis.hgetall(keyOf(id)), { c: 'c-1', n: 'node-a', g: String(claim.generation), u: 'alice' });
    const pttl = await redis.pttl(keyOf(id));
    assert.ok(pttl > 0 && pttl <= TTL, `expires with the presence ttl (pttl ${pttl})`);
    const anon = uid('layout-anon');
    const c2 = await a.claimClientId(anon, null, 'c-2');
    assert.ok(c2.ok);
    assert.deepEqual(await redis.hgetall(keyOf(anon)), { c: 'c-2', n: 'node-a', g: String(c2.generation) });
    assert.ok(Math.abs(c2.generation / 1000 - Date.now()) < 60_000, 'generation: the Redis clock in microseconds');
    await a.releaseClientId(id, 'c-1');
    await a.releaseClientId(anon, 'c-2');
    assert.equal(await redis.exists(keyOf(id), keyOf(anon)), 0, 'released: keys deleted');
  });

  it('refresh re-applies the ttl and writes back a key Redis lost (restart without persistence)', async () => {
    const id = uid('lost');
    const claim = await a.claimClientId(id, 'alice', 'c-1');
    assert.ok(claim.ok);
    await redis.pexpire(keyOf(id), 500);
    await a.refresh();
    assert.ok((await redis.pttl(keyOf(id))) > 500, 'ttl re-applied');
    await redis.del(keyOf(id));
    await a.refresh();
    assert.deepEqual(await redis.hgetall(keyOf(id)), { c: 'c-1', n: 'node-a', g: String(claim.generation), u: 'alice' }, 'written back as it was');
    assert.deepEqual(await b.claimClientId(id, 'mallory', 'c-m'), { ok: false, holderUserId: 'alice' }, 'and it protects the id again');
    await a.releaseClientId(id, 'c-1');
  });

  it('a claim another connection took while the key was gone is reported once and never overwritten', async () => {
    const id = uid('taken');
    assert.ok((await b.claimClientId(id, 'alice', 'c-b')).ok);
    await redis.del(keyOf(id)); // expired while node b could not refresh (cut off from Redis)
    const newer = await a.claimClientId(id, 'mallory', 'c-a');
    assert.ok(newer.ok, 'the id was free: mallory takes it');
    await b.refresh();
    assert.deepEqual(lostOnB.filter(([c]) => c === id), [[id, 'c-b']], 'node b is told its connection lost the id');
    assert.equal(await redis.hget(keyOf(id), 'c'), 'c-a', 'the newer claim stays');
    await b.refresh();
    await b.releaseClientId(id, 'c-b');
    assert.equal(lostOnB.filter(([c]) => c === id).length, 1, 'reported once');
    assert.equal(await redis.hget(keyOf(id), 'c'), 'c-a', 'the old holder\'s release leaves the newer claim alone');
    await a.releaseClientId(id, 'c-a');
  });

  it('a same-owner takeover on another node is not a loss: the old node stops refreshing it quietly once released', async () => {
    const id = uid('takeover');
    assert.ok((await b.claimClientId(id, 'alice', 'c-b')).ok);
    assert.ok((await a.claimClientId(id, 'alice', 'c-a')).ok);
    await b.releaseClientId(id, 'c-b'); // the superseded connection closed
    await b.refresh();
    assert.deepEqual(lostOnB.filter(([c]) => c === id), []);
    assert.equal(await redis.hget(keyOf(id), 'c'), 'c-a');
    await a.releaseClientId(id, 'c-a');
  });

  it('close() releases the claims the node still holds', async () => {
    const c = new RedisPresenceStore({ url: REDIS_URL, keyPrefix: PREFIX, nodeId: 'node-c', presenceTtlMs: TTL });
    await c.start();
    const mine = uid('close-mine');
    const theirs = uid('close-theirs');
    assert.ok((await c.claimClientId(mine, 'alice', 'c-1')).ok);
    assert.ok((await c.claimClientId(theirs, 'bob', 'c-2')).ok);
    assert.ok((await a.claimClientId(theirs, 'bob', 'c-3')).ok, 'bob moved to node a');
    await c.close();
    assert.equal(await redis.exists(keyOf(mine)), 0, 'its own claim is gone');
    assert.equal(await redis.hget(keyOf(theirs), 'c'), 'c-3', 'a claim taken over by another node stays');
    await a.releaseClientId(theirs, 'c-3');
  });
});
