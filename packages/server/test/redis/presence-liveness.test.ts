/**
 * Presence liveness (node heartbeats) against the provisioned Redis: every reader skips a node whose heartbeat
 * is older than nodeTimeoutMs (members, pages, counts, online users, userOnline, user counts) without deleting
 * its entries; a node beating again shows again; stale beats for everyone (Redis paused or unreachable for all)
 * open a grace period instead of hiding everybody; a heartbeat Redis lost makes the node rewrite its presence at
 * once; nodeTimeoutMs 0 writes no heartbeat. The heartbeats are
 * driven by hand (beat() is what the timer calls) so each step is deterministic.
 *   eval "$(bash scripts/provision/redis.sh)"; npx tsc -b packages/server && node --test packages/server/dist/test/redis/presence-liveness.test.js
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { uid, walkMembers } from '../broker-contract.js';
import { RedisNodeRegistry, RedisPresenceStore } from '../../src/broker/redis/index.js';
import { requireRedisUrl } from './redis-process.js';

const REDIS_URL = requireRedisUrl();
const TIMEOUT = 600;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function stores(keyPrefix: string, n: number, nodeTimeoutMs = TIMEOUT): Promise<RedisPresenceStore[]> {
  const out: RedisPresenceStore[] = [];
  for (let i = 0; i < n; i++) {
    const s = new RedisPresenceStore({ url: REDIS_URL, keyPrefix, nodeId: uid(`lv${i}`), presenceTtlMs: 30_000, nodeTimeoutMs });
    await s.start();
    s.stopRefreshing(); // the test beats by hand
    out.push(s);
  }
  return out;
}

describe('redis presence liveness', () => {
  it('a node whose heartbeat is stale is skipped by every reader, and shows again when it beats', async () => {
    const keyPrefix = `sbtest-lv-${uid('a')}:`;
    const [live, dead] = await stores(keyPrefix, 2);
    const ch = uid('ch');
    try {
      await live!.join(ch, { connection_id: 'c-live', user_id: 'u-live', username: 'L' });
      await live!.userConnected('u-live', 'L', 'c-live');
      await dead!.join(ch, { connection_id: 'c-dead', user_id: 'u-dead', username: 'D' });
      await dead!.userConnected('u-dead', 'D', 'c-dead');
      await dead!.userConnected('u-live', 'L', 'c-dead-2');
      await live!.beat();
      assert.equal(await live!.count(ch), 2);

      // Only `live` beats for longer than the timeout.
      for (let i = 0; i < 4; i++) { await sleep(TIMEOUT / 3); await live!.beat(); }
      assert.deepEqual(live!.deadOwners, [dead!.ownerId]);
      assert.deepEqual((await live!.members(ch)).map((m) => m.connection_id), ['c-live']);
      assert.deepEqual((await walkMembers(live!, ch, 10)).members.map((m) => m.connection_id), ['c-live']);
      assert.equal(await live!.count(ch), 1);
      assert.deepEqual((await live!.onlineUsers()).map((u) => [u.user_id, u.connections]), [['u-live', 1]]);
      assert.deepEqual((await live!.onlineUsersPage(null, 10)).users.map((u) => [u.user_id, u.connections]), [['u-live', 1]]);
      assert.equal(await live!.userOnline('u-dead'), false);
      assert.equal(await live!.userConnected('u-live', 'L', 'c-live-2'), 2, 'user counts skip the dead node\'s connection');
      // Hidden, not deleted.
      const raw = new Redis(REDIS_URL);
      try {
        assert.equal(await raw.hlen(`${keyPrefix}{p:${ch}}:h:${dead!.ownerId}`), 1);
      } finally {
        raw.disconnect();
      }

      // It beats again (it was only slow): visible again after the reader's next beat.
      await dead!.beat();
      await live!.beat();
      assert.deepEqual(live!.deadOwners, []);
      assert.equal(await live!.count(ch), 2);
      assert.equal(await live!.userOnline('u-dead'), true);
    } finally {
      await Promise.all([live!.close(), dead!.close()]);
    }
  });

  it('heartbeats stale for everyone (Redis paused for all) open a grace period: nobody is hidden', async () => {
    const keyPrefix = `sbtest-lv-${uid('g')}:`;
    const [a, b] = await stores(keyPrefix, 2);
    const ch = uid('ch');
    try {
      await a!.join(ch, { connection_id: 'ca', user_id: null, username: null });
      await b!.join(ch, { connection_id: 'cb', user_id: null, username: null });
      await b!.beat();
      await a!.beat();
      // Nobody beats for longer than the timeout (as when Redis is paused), then `a` beats first.
      await sleep(TIMEOUT * 1.5);
      await a!.beat();
      assert.deepEqual(a!.deadOwners, [], 'b is not taken for dead: everybody was silent');
      assert.equal(await a!.count(ch), 2);
      // b never beats again: once the grace period is over it is dead.
      for (let i = 0; i < 6; i++) { await sleep(TIMEOUT / 3); await a!.beat(); }
      assert.deepEqual(a!.deadOwners, [b!.ownerId]);
      assert.equal(await a!.count(ch), 1);
    } finally {
      await Promise.all([a!.close(), b!.close()]);
    }
  });

  it('the node registry leaves out a node whose heartbeats stopped, before its report expires', async () => {
    const keyPrefix = `sbtest-lv-${uid('r')}:`;
    const [live, dead] = await stores(keyPrefix, 2);
    const regs = [live!, dead!].map((s) => new RedisNodeRegistry({ url: REDIS_URL, keyPrefix, nodeId: s.nodeId, ttlMs: 60_000, nodeTimeoutMs: TIMEOUT }));
    try {
      for (const r of regs) { await r.start(); await r.report({ connections: 0, cpu: 0, memoryRss: 0, draining: false }); }
      assert.equal((await regs[0]!.list()).length, 2);
      for (let i = 0; i < 4; i++) { await sleep(TIMEOUT / 3); await live!.beat(); }
      assert.deepEqual((await regs[0]!.list()).map((n) => n.nodeId), [live!.nodeId]);
      // A node id restarted (new owner) and beating is back, whatever its old owner's heartbeat says.
      const again = new RedisPresenceStore({ url: REDIS_URL, keyPrefix, nodeId: dead!.nodeId, presenceTtlMs: 30_000, nodeTimeoutMs: TIMEOUT });
      await again.start();
      again.stopRefreshing();
      assert.deepEqual((await regs[0]!.list()).map((n) => n.nodeId).sort(), [live!.nodeId, dead!.nodeId].sort());
      await again.close();
    } finally {
      await Promise.all([...regs.map((r) => r.close()), live!.close(), dead!.close()]);
    }
  });

  it('a heartbeat Redis lost (restart without persistence) makes the node rewrite its presence at once', async () => {
    const keyPrefix = `sbtest-lv-${uid('l')}:`;
    const [s] = await stores(keyPrefix, 1);
    const ch = uid('ch');
    const raw = new Redis(REDIS_URL);
    try {
      await s!.join(ch, { connection_id: 'c1', user_id: 'u1', username: null });
      await s!.userConnected('u1', null, 'c1');
      await s!.beat();
      // What a restart without persistence does to this node's keys.
      await raw.del(`${keyPrefix}{hb}:z`, `${keyPrefix}{p:${ch}}:h:${s!.ownerId}`, `${keyPrefix}{p:${ch}}:z:${s!.ownerId}`,
        `${keyPrefix}{p:${ch}}:n`, `${keyPrefix}on:${s!.ownerId}`, `${keyPrefix}oz:${s!.ownerId}`, `${keyPrefix}pnodes`);
      assert.equal(await s!.count(ch), 0);
      await s!.beat(); // the timer's next beat: no refresh timer runs in this test
      // Polled: the rewrite runs in the background of the beat, which returns before it.
      const t0 = Date.now();
      while ((await s!.count(ch)) !== 1 && Date.now() - t0 < 3000) await sleep(20);
      assert.equal(await s!.count(ch), 1, 'members rewritten');
      assert.deepEqual((await s!.onlineUsers()).map((u) => u.user_id), ['u1'], 'online users rewritten');
    } finally {
      raw.disconnect();
      await s!.close();
    }
  });

  it('nodeTimeoutMs 0: no heartbeat is written', async () => {
    const keyPrefix = `sbtest-lv-${uid('z')}:`;
    const [s] = await stores(keyPrefix, 1, 0);
    const raw = new Redis(REDIS_URL);
    try {
      await s!.beat();
      assert.equal(await raw.exists(`${keyPrefix}{hb}:z`), 0);
    } finally {
      raw.disconnect();
      await s!.close();
    }
  });
});
