/**
 * Redis engine: the shared broker contract (plain and sharded pub/sub) against the provisioned Redis
 * ($REDIS_URL), plus Redis-only behaviour: a killed node's presence expires, fail-fast while Redis is stopped or
 * frozen, recovery after a restart, node registry.
 *   eval "$(bash scripts/provision/redis.sh)"; npx tsc -b packages/server && node --test --test-concurrency=1 packages/server/dist/test/redis/
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { resolve } from 'node:path';
import { Redis } from 'ioredis';
import { Recorder, runBrokerContract, uid, waitFor, waitForAsync, walkMembers, type MakeNodes } from '../broker-contract.js';
import { RedisBroker, RedisNodeRegistry, RedisPresenceStore, BROKER_UNAVAILABLE } from '../../src/broker/redis/index.js';
import { freePort, RedisProcess, REPO_ROOT, requireRedisUrl } from './redis-process.js';

const REDIS_URL = requireRedisUrl();
const RUN_PREFIX = `sbtest-${Date.now().toString(36)}:`;

const unhandled: unknown[] = [];
process.on('unhandledRejection', (e) => { unhandled.push(e); });
process.on('uncaughtException', (e) => { unhandled.push(e); });

function factory(opts: { sharded: boolean; url?: string; keyPrefix?: string; commandTimeoutMs?: number; presenceTtlMs?: number }): MakeNodes {
  return async (n, settings = {}) => {
    const url = opts.url ?? REDIS_URL;
    const keyPrefix = opts.keyPrefix ?? RUN_PREFIX;
    const brokers: RedisBroker[] = [];
    const presences: RedisPresenceStore[] = [];
    for (let i = 0; i < n; i++) {
      const nodeId = uid(`node${i}`);
      brokers.push(new RedisBroker({ url, keyPrefix, nodeId, sharded: opts.sharded, commandTimeoutMs: opts.commandTimeoutMs ?? 1000 }));
      const p = new RedisPresenceStore({ url, keyPrefix, nodeId, commandTimeoutMs: opts.commandTimeoutMs ?? 1000, presenceTtlMs: settings.presenceTtlMs ?? opts.presenceTtlMs ?? 10_000 });
      await p.start();
      presences.push(p);
    }
    return {
      brokers,
      presences,
      // Killed without cleanup: no more refreshes; close() later is the test's cleanup, after the assertions.
      async crashPresence(i) { presences[i]!.stopRefreshing(); },
      async cleanup() {
        await Promise.all([...brokers.map((b) => b.close()), ...presences.map((p) => p.close())]);
      },
    };
  };
}

runBrokerContract('redis', factory({ sharded: false }));
runBrokerContract('redis (sharded pub/sub)', factory({ sharded: true }));

/** Expect `fn` to reject with code BROKER_UNAVAILABLE within `ms`. */
async function expectUnavailable(what: string, fn: () => Promise<unknown>, ms: number): Promise<void> {
  const t0 = Date.now();
  await assert.rejects(fn(), (err: Error & { code?: string }) => {
    assert.equal(err.code, BROKER_UNAVAILABLE, `${what}: code (${err.message})`);
    return true;
  }, what);
  const took = Date.now() - t0;
  assert.ok(took <= ms, `${what} took ${took} ms (limit ${ms} ms)`);
}

describe('redis engine specifics', () => {
  after(() => {
    assert.deepEqual(unhandled, [], 'no unhandled rejections or exceptions');
  });

  it('history ttl: publications older than ttlMs are not served; the stream expires into a new epoch', async () => {
    const make = factory({ sharded: false });
    const nodes = await make(1);
    const b = nodes.brokers[0]!;
    try {
      await b.start(new Recorder());
      const ch = uid('ttl');
      const policy = { history: { size: 10, ttlMs: 1500 } };
      const p1 = await b.publish(ch, '{"n":1}', policy);
      await new Promise((r) => setTimeout(r, 900)); // deliberate: p1 and p2 must be 900 ms apart in age (the ttl is the behaviour)
      const p2 = await b.publish(ch, '{"n":2}', policy);
      // p1 ages out ~1500 ms after it was published; the keys live until ~1500 ms after p2.
      // Polled: ageing out is decided by the clock at read time and by Redis key expiry; neither raises an
      // event a client can wait for (no keyspace notifications). The ttl is the behaviour under test.
      let h = await b.history(ch, { since: { epoch: p1.epoch, offset: 0 }, limit: 10 });
      const deadline = Date.now() + 3000;
      while (h.publications.some((p) => p.offset === 1) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 20));
        h = await b.history(ch, { since: { epoch: p1.epoch, offset: 0 }, limit: 10 });
      }
      assert.equal(h.position.epoch, p1.epoch, 'keys still alive when p1 aged out');
      assert.deepEqual(h.publications, [p2]);
      assert.equal(h.recoverable, false, 'offset 1 is gone');
      // Then the whole stream expires: a new epoch, offsets restart.
      let pos = await b.position(ch);
      const deadline2 = Date.now() + 5000;
      while (pos.epoch === p1.epoch && Date.now() < deadline2) {
        await new Promise((r) => setTimeout(r, 50));
        pos = await b.position(ch);
      }
      assert.notEqual(pos.epoch, p1.epoch, 'new epoch after expiry');
      assert.equal(pos.offset, 0);
      const old = await b.history(ch, { since: { epoch: p1.epoch, offset: 2 }, limit: 10 });
      assert.equal(old.recoverable, false);
      const p3 = await b.publish(ch, '{"n":3}', policy);
      assert.equal(p3.offset, 1);
      assert.notEqual(p3.epoch, p1.epoch);
    } finally {
      await nodes.cleanup();
    }
  });

  it('a killed node\'s presence and user connections expire within presenceTtlMs; live nodes keep theirs', async () => {
    const ttl = 800;
    const ch = uid('dead');
    const user = uid('user');
    const nodeId = uid('dead-node');
    const keyPrefix = RUN_PREFIX;
    const modUrl = new URL(`file://${resolve(REPO_ROOT, 'packages/server/dist/src/broker/redis/index.js')}`).href;
    const code = `
      import { RedisPresenceStore } from ${JSON.stringify(modUrl)};
      const p = new RedisPresenceStore({ url: ${JSON.stringify(REDIS_URL)}, keyPrefix: ${JSON.stringify(keyPrefix)}, nodeId: ${JSON.stringify(nodeId)}, presenceTtlMs: ${ttl} });
      await p.start();
      await p.join(${JSON.stringify(ch)}, { connection_id: 'dead-c1', user_id: ${JSON.stringify(user)}, username: 'Zed' });
      await p.userConnected(${JSON.stringify(user)}, 'Zed', 'dead-c1');
      process.stdout.write('ready\\n');
      setInterval(() => {}, 1000);
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
    const exited = new Promise((r) => child.once('exit', r));
    const live = new RedisPresenceStore({ url: REDIS_URL, keyPrefix, nodeId: uid('live-node'), presenceTtlMs: ttl });
    try {
      await new Promise<void>((res, rej) => {
        const timer = setTimeout(() => rej(new Error('child did not get ready')), 10_000);
        child.stdout!.on('data', (d: Buffer) => { if (d.toString().includes('ready')) { clearTimeout(timer); res(); } });
        child.once('exit', (c) => { clearTimeout(timer); rej(new Error(`child exited ${c}`)); });
      });
      await live.start();
      await live.join(ch, { connection_id: 'live-c1', user_id: user, username: 'Zed' });
      assert.equal(await live.userConnected(user, 'Zed', 'live-c1'), 2, 'counts the other node\'s connection');
      // Alive for longer than one ttl: the child's refresh keeps its entries (deliberate: the ttl is the behaviour).
      await new Promise((r) => setTimeout(r, ttl * 1.5));
      assert.equal((await live.members(ch)).length, 2, 'both entries survive while both nodes refresh');

      child.kill('SIGKILL');
      await exited;
      const killedAt = Date.now();
      // Polled: the dead node's entries go by Redis expiry, which raises no event a client sees.
      let members = await live.members(ch);
      while (members.length > 1 && Date.now() - killedAt < ttl + 3000) {
        await new Promise((r) => setTimeout(r, 25));
        members = await live.members(ch);
      }
      assert.deepEqual(members.map((m) => m.connection_id), ['live-c1'], 'dead node\'s member expired, live one kept');
      assert.ok(Date.now() - killedAt <= ttl + 3000);
      // The dead node's online-users hash expires on its own schedule (its refresh wrote it one round trip after
      // the channel hash), so it may still count for a moment: polled against the same deadline.
      const onlineOf = async () => (await live.onlineUsers()).find((u) => u.user_id === user);
      let online = await onlineOf();
      while (online?.connections !== 1 && Date.now() - killedAt < ttl + 3000) {
        await new Promise((r) => setTimeout(r, 25));
        online = await onlineOf();
      }
      assert.deepEqual(online, { user_id: user, username: 'Zed', connections: 1 });
      assert.equal(await live.userDisconnected(user, 'live-c1'), 0, 'the dead node\'s connection no longer counts');
      // And the live node still refreshes its own entry past another ttl (deliberate: the ttl is the behaviour).
      await new Promise((r) => setTimeout(r, ttl * 1.5));
      assert.deepEqual((await live.members(ch)).map((m) => m.connection_id), ['live-c1']);
    } finally {
      if (child.exitCode === null && child.signalCode === null) { child.kill('SIGKILL'); await exited; }
      await live.close();
    }
  });

  it('stopRefreshing(): entries expire as if the node died', async () => {
    const ttl = 500;
    const ch = uid('stop');
    const a = new RedisPresenceStore({ url: REDIS_URL, keyPrefix: RUN_PREFIX, nodeId: uid('a'), presenceTtlMs: ttl });
    try {
      await a.start();
      await a.join(ch, { connection_id: 'c1', user_id: null, username: null });
      a.stopRefreshing();
      assert.equal((await a.members(ch)).length, 1);
      let n = 1;
      const t0 = Date.now();
      // Polled: Redis expiry raises no event a client sees.
      while (n > 0 && Date.now() - t0 < ttl + 3000) {
        await new Promise((r) => setTimeout(r, 25));
        n = (await a.members(ch)).length;
      }
      assert.equal(n, 0);
    } finally {
      await a.close();
    }
  });

  it('fails fast with BROKER_UNAVAILABLE while Redis is frozen or dead, reports down/up, recovers after restart', async () => {
    const timeout = 300;
    const limit = timeout + 400;
    const server = new RedisProcess(await freePort());
    await server.start();
    const make = factory({ sharded: false, url: server.url, keyPrefix: 'sb:', commandTimeoutMs: timeout, presenceTtlMs: 600 });
    const nodes = await make(2);
    const [b0, b1] = nodes.brokers as [RedisBroker, RedisBroker];
    const [p0, p1] = nodes.presences as [RedisPresenceStore, RedisPresenceStore];
    const r0 = new Recorder();
    const r1 = new Recorder();
    const ch = uid('ff');
    const hist = { history: { size: 10, ttlMs: 60_000 } };
    try {
      await b0.start(r0);
      await b1.start(r1);
      await b1.subscribe(ch);
      const before = await b0.publish(ch, '{"n":1}', hist);
      await waitFor(() => r1.pubsOf(ch).length === 1, 'delivery before the outage');
      await p0.join(ch, { connection_id: 'c0', user_id: 'u', username: null });
      const never = uid('never');
      const placeholder = await b0.position(never);
      assert.equal((await b1.history(never, { since: placeholder, limit: 10 })).recoverable, true, 'placeholder of a channel without a stream');

      // Frozen Redis (socket open, no answers): the command timeout bounds every call.
      server.signal('SIGSTOP');
      await expectUnavailable('publish (frozen)', () => b0.publish(ch, '{"n":2}', hist), limit);
      await expectUnavailable('history (frozen)', () => b0.history(ch, { since: { epoch: before.epoch, offset: 0 }, limit: 10 }), limit);
      await expectUnavailable('members (frozen)', () => p1.members(ch), limit);
      server.signal('SIGCONT');
      // A timed-out command is not cancelled: Redis runs it once it thaws, so the publish above is applied
      // and delivered (callers that retry use idempotency keys).
      await waitFor(() => r1.pubsOf(ch).length === 2, 'the timed-out publish lands after SIGCONT');

      // Dead Redis.
      await server.kill();
      await waitFor(() => r0.statuses.at(-1) === 'down' && r1.statuses.at(-1) === 'down', 'onStatus(down) on both nodes');
      await expectUnavailable('publish', () => b0.publish(ch, '{"n":3}', hist), limit);
      await expectUnavailable('publishEphemeral', () => b0.publishEphemeral(ch, '{}'), limit);
      await expectUnavailable('publishControl', () => b0.publishControl({ kind: 'all', frame: '{}' }), limit);
      await expectUnavailable('subscribe', () => b0.subscribe(uid('x')), limit);
      await expectUnavailable('history', () => b0.history(ch, { before: 10, limit: 10 }), limit);
      await expectUnavailable('position', () => b0.position(ch), limit);
      await expectUnavailable('presence join', () => p0.join(ch, { connection_id: 'c1', user_id: null, username: null }), limit);
      await expectUnavailable('presence members', () => p1.members(ch), limit);
      await expectUnavailable('userConnected', () => p0.userConnected('u', null, 'c0'), limit);
      await expectUnavailable('onlineUsers', () => p0.onlineUsers(), limit);

      // Back (empty: no persistence).
      await server.start();
      await waitFor(() => r0.statuses.at(-1) === 'up' && r1.statuses.at(-1) === 'up', 'onStatus(up) on both nodes', 10_000);
      const pos = await b0.position(ch);
      assert.notEqual(pos.epoch, before.epoch, 'the stream was lost: new epoch');
      assert.equal(pos.offset, 0);
      const lost = await b1.history(ch, { since: { epoch: before.epoch, offset: 1 }, limit: 10 });
      assert.equal(lost.recoverable, false);
      const restarted = await b1.history(never, { since: placeholder, limit: 10 });
      assert.equal(restarted.recoverable, false, 'a placeholder from before a Redis restart proves nothing (data may have been lost)');
      const afterPub = await b0.publish(ch, '{"n":4}', hist);
      assert.equal(afterPub.offset, 1);
      await waitFor(() => r1.pubsOf(ch).length === 3, 'delivery after recovery (subscription restored)');
      assert.deepEqual(r1.pubsOf(ch)[2], afterPub);
      await b1.publishControl({ kind: 'all', frame: '{"x":1}' });
      await waitFor(() => r0.control.length === 1, 'control channel restored');
      // Presence rewritten from the local mirror by the refresh timer (c1 joined locally while Redis was down).
      // Polled: that rewrite is the store's internal timer, with no callback to wait for. The presence connection
      // reconnects on its own backoff, independently of the brokers' (up to ~2.4 s later): BROKER_UNAVAILABLE until
      // then counts as "not yet".
      const membersOrNone = () => p1.members(ch).catch((err: Error & { code?: string }) => {
        if (err.code !== BROKER_UNAVAILABLE) throw err;
        return [];
      });
      let members = await membersOrNone();
      const t0 = Date.now();
      while (members.length < 2 && Date.now() - t0 < 5000) {
        await new Promise((r) => setTimeout(r, 25));
        members = await membersOrNone();
      }
      assert.deepEqual(members.map((m) => m.connection_id).sort(), ['c0', 'c1']);
      const page = await p1.membersPage(ch, null, 10);
      assert.deepEqual({ ids: page.members.map((m) => m.connection_id), next: page.nextCursor }, { ids: ['c0', 'c1'], next: null },
        'the index of the channel was rewritten with its hash');
      assert.deepEqual(r0.statuses, ['down', 'up']);
    } finally {
      await nodes.cleanup();
      await server.kill();
    }
  });

  it('position() and history() of never-published channels create no Redis key', async () => {
    const keyPrefix = `${RUN_PREFIX}${uid('probe')}:`;
    const b = new RedisBroker({ url: REDIS_URL, keyPrefix, nodeId: uid('n') });
    const raw = new Redis(REDIS_URL);
    try {
      await b.start(new Recorder());
      for (let i = 0; i < 5000; i += 100) {
        await Promise.all(Array.from({ length: 100 }, async (_, j) => {
          const ch = `probe-${i + j}`;
          const pos = await b.position(ch);
          assert.equal(pos.offset, 0);
          await b.history(ch, { since: pos, limit: 10 });
          await b.history(ch, { before: 5, limit: 10 });
          await b.history(ch, { since: { epoch: 'abc', offset: 3 }, limit: 10 });
        }));
      }
      const [, keys] = await raw.scan(0, 'MATCH', `${keyPrefix}*`, 'COUNT', 1_000_000);
      assert.deepEqual(keys, [], 'reads left keys behind');
      // A publish does create the stream, as before.
      await b.publish('probe-0', '{}', { history: { size: 10, ttlMs: 60_000 } });
      const [, after] = await raw.scan(0, 'MATCH', `${keyPrefix}*`, 'COUNT', 1_000_000);
      assert.ok(after.length > 0);
    } finally {
      raw.disconnect();
      await b.close();
    }
  });

  it('epochs of channels without a stream: bucket epochs, kept by a stream created in the bucket, bounded by emptyEpochTtlMs', async () => {
    const raw = new Redis(REDIS_URL);
    const runId = /run_id:([0-9a-f]+)/.exec(await raw.info('server'))![1]!;
    raw.disconnect();
    const incarnation = createHash('sha1').update(runId).digest('hex').slice(0, 10);
    const b = new RedisBroker({ url: REDIS_URL, keyPrefix: RUN_PREFIX, nodeId: uid('n'), emptyEpochTtlMs: 300 });
    try {
      await b.start(new Recorder());
      const ch = uid('bound');
      const p0 = await b.position(ch);
      const m = /^~([0-9a-f]{10})\.150\.(\d+)$/.exec(p0.epoch);
      assert.ok(m, `bucket epoch of 150 ms buckets: ${p0.epoch}`);
      assert.equal(m[1], incarnation, 'names this Redis server (run_id)');
      // A stream lives and expires (ttl 300 ms = emptyEpochTtlMs, the shortest ttl) while a client is away.
      const first = await b.publish(ch, '{}', { history: { size: 10, ttlMs: 300 } });
      assert.match(first.epoch, /^~[0-9a-f]{10}\.150\.\d+$/, 'a stream living at least one bucket gets a bucket epoch');
      await waitForAsync(async () => (await b.position(ch)).offset === 0, 'the stream expires', 10_000);
      const h = await b.history(ch, { since: p0, limit: 10 });
      assert.equal(h.recoverable, false, 'older than emptyEpochTtlMs: a stream may have come and gone');
      assert.equal(h.position.offset, 0);
      // A shorter ttl than a bucket: a random epoch (a bucket epoch could repeat within the bucket).
      const short = await b.publish(uid('short'), '{}', { history: { size: 10, ttlMs: 100 } });
      assert.match(short.epoch, /^[0-9a-f]{12}$/);
      // Nothing was published for a made-up incarnation.
      assert.equal((await b.history(uid('x'), { since: { epoch: '~0123456789.150.1', offset: 0 }, limit: 1 })).recoverable, false);
    } finally {
      await b.close();
    }
  });

  it('onlineUsersPage reads one page without listing every online user', async () => {
    const keyPrefix = `${RUN_PREFIX}${uid('page')}:`;
    const stores = [0, 1].map((i) => new RedisPresenceStore({ url: REDIS_URL, keyPrefix, nodeId: uid(`pn${i}`), presenceTtlMs: 30_000 }));
    const raw = new Redis(REDIS_URL);
    const calls = async (): Promise<Record<string, number>> => {
      const out: Record<string, number> = {};
      for (const m of (await raw.info('commandstats')).matchAll(/^cmdstat_([a-z|]+):calls=(\d+)/gm)) out[m[1]!] = Number(m[2]);
      return out;
    };
    try {
      await Promise.all(stores.map((p) => p.start()));
      for (let i = 0; i < 2500; i += 250) {
        await Promise.all(Array.from({ length: 250 }, (_, j) => stores[(i + j) % 2]!.userConnected(`u${String(i + j).padStart(5, '0')}`, null, `c${i + j}`)));
      }
      const before = await calls();
      const page = await stores[0]!.onlineUsersPage(null, 10);
      const after = await calls();
      const delta = (c: string) => (after[c] ?? 0) - (before[c] ?? 0);
      assert.deepEqual(page.users.map((u) => u.user_id), Array.from({ length: 10 }, (_, i) => `u${String(i).padStart(5, '0')}`));
      assert.equal(page.nextCursor, 'u00009');
      assert.equal(delta('hgetall') + delta('hkeys') + delta('hvals') + delta('keys') + delta('scan') + delta('zrange'), 0, 'nothing lists all users');
      assert.equal(delta('zrangebylex'), 2, 'one bounded range read per presence node');
      assert.ok(delta('hmget') <= 2, 'one bounded count read per presence node');
    } finally {
      raw.disconnect();
      await Promise.all(stores.map((p) => p.close()));
    }
  });

  it('membersPage reads one page without listing the channel', async () => {
    const keyPrefix = `${RUN_PREFIX}${uid('mpage')}:`;
    const stores = [0, 1].map((i) => new RedisPresenceStore({ url: REDIS_URL, keyPrefix, nodeId: uid(`mn${i}`), presenceTtlMs: 30_000 }));
    const raw = new Redis(REDIS_URL);
    const calls = async (): Promise<Record<string, number>> => {
      const out: Record<string, number> = {};
      for (const m of (await raw.info('commandstats')).matchAll(/^cmdstat_([a-z|]+):calls=(\d+)/gm)) out[m[1]!] = Number(m[2]);
      return out;
    };
    try {
      await Promise.all(stores.map((p) => p.start()));
      const ch = uid('big');
      for (let i = 0; i < 2500; i += 250) {
        await Promise.all(Array.from({ length: 250 }, (_, j) => stores[(i + j) % 2]!.join(ch, { connection_id: `c${String(i + j).padStart(5, '0')}`, user_id: null, username: null })));
      }
      const before = await calls();
      const page = await stores[0]!.membersPage(ch, 'c00100', 10);
      const after = await calls();
      const delta = (c: string) => (after[c] ?? 0) - (before[c] ?? 0);
      assert.deepEqual(page.members.map((m) => m.connection_id), Array.from({ length: 10 }, (_, i) => `c${String(101 + i).padStart(5, '0')}`));
      assert.equal(page.nextCursor, 'c00110');
      assert.equal(delta('hgetall') + delta('hkeys') + delta('hvals') + delta('hscan') + delta('keys') + delta('scan') + delta('zrange'), 0, 'nothing lists the channel');
      assert.equal(delta('zrangebylex'), 2, 'one bounded range read per node of the channel');
      assert.equal(delta('hmget'), 2, 'one bounded read of member JSON per node that listed ids of the page');
      assert.equal(delta('evalsha') + delta('eval'), 1, 'one script reads the ids');
    } finally {
      raw.disconnect();
      await Promise.all(stores.map((p) => p.close()));
    }
  });

  it('a channel index Redis lost is rewritten by the refresh (alone, with its hash, or recreated partially by a join)', async () => {
    const keyPrefix = `${RUN_PREFIX}${uid('mlost')}:`;
    const nodeId = uid('ml');
    const store = new RedisPresenceStore({ url: REDIS_URL, keyPrefix, nodeId, presenceTtlMs: 30_000 });
    const raw = new Redis(REDIS_URL);
    const ch = uid('lost');
    // Keys are owned by the store's owner id (node id + instance, new for each process start).
    const hash = `${keyPrefix}{p:${ch}}:h:${store.ownerId}`;
    const index = `${keyPrefix}{p:${ch}}:z:${store.ownerId}`;
    const ids = async () => (await walkMembers(store, ch, 3)).members.map((m) => m.connection_id).sort();
    try {
      await store.start();
      store.stopRefreshing(); // the test runs each refresh itself (refresh() is what the timer calls)
      for (const id of ['a', 'b', 'c', 'd']) await store.join(ch, { connection_id: id, user_id: null, username: id });
      assert.deepEqual(await raw.zrange(index, 0, -1), ['a', 'b', 'c', 'd'], 'the index holds the hash\'s connection ids');
      assert.ok((await raw.pttl(index)) > 0, 'the index expires with the presence ttl');
      await store.leave(ch, 'b');
      assert.deepEqual(await raw.zrange(index, 0, -1), ['a', 'c', 'd'], 'leave removes from the index too');
      await raw.del(index);
      assert.deepEqual(await ids(), [], 'the index alone is gone: pages miss the node until the refresh');
      await store.refresh();
      assert.deepEqual(await ids(), ['a', 'c', 'd'], 'index rewritten');
      await raw.del(index, hash);
      await store.join(ch, { connection_id: 'e', user_id: null, username: 'e' });
      assert.deepEqual(await ids(), ['e'], 'a join after the loss recreates both partially');
      await store.refresh();
      assert.deepEqual(await ids(), ['a', 'c', 'd', 'e'], 'hash and index rewritten');
      assert.deepEqual(await raw.zrange(index, 0, -1), ['a', 'c', 'd', 'e']);
      assert.deepEqual((await raw.hkeys(hash)).sort(), ['a', 'c', 'd', 'e']);
      await store.close();
      assert.deepEqual(await raw.exists(index, hash), 0, 'close removes the index with the hash');
    } finally {
      raw.disconnect();
      await store.close();
    }
  });

  it('start() rejects with BROKER_UNAVAILABLE when Redis is unreachable (no hang, no leftover reconnects)', async () => {
    const port = await freePort();
    const b = new RedisBroker({ url: `redis://127.0.0.1:${port}`, nodeId: uid('n'), commandTimeoutMs: 200, startTimeoutMs: 500 });
    const t0 = Date.now();
    await assert.rejects(b.start(new Recorder()), (e: Error & { code?: string }) => e.code === BROKER_UNAVAILABLE);
    assert.ok(Date.now() - t0 < 1500);
    await b.close();
    const p = new RedisPresenceStore({ url: `redis://127.0.0.1:${port}`, nodeId: uid('n'), startTimeoutMs: 500 });
    await assert.rejects(p.start(), (e: Error & { code?: string }) => e.code === BROKER_UNAVAILABLE);
    await p.close();
  });

  it('node registry: report, list, best (least loaded, not draining), expiry', async () => {
    const keyPrefix = `${RUN_PREFIX}${uid('reg')}:`;
    const a = new RedisNodeRegistry({ url: REDIS_URL, keyPrefix, nodeId: 'a', ttlMs: 60_000 });
    const b = new RedisNodeRegistry({ url: REDIS_URL, keyPrefix, nodeId: 'b', ttlMs: 60_000 });
    const c = new RedisNodeRegistry({ url: REDIS_URL, keyPrefix, nodeId: 'c', ttlMs: 400 });
    try {
      await Promise.all([a.start(), b.start(), c.start()]);
      await a.report({ connections: 10, cpu: 0.2, memoryRss: 1e8, draining: false, address: 'ws://a/ws' });
      await b.report({ connections: 3, cpu: 0.1, memoryRss: 1e8, draining: true });
      await c.report({ connections: 5, cpu: 0.5, memoryRss: 2e8, draining: false });
      const list = await a.list();
      assert.deepEqual(list.map((n) => n.nodeId), ['a', 'b', 'c']);
      assert.equal(list[0]!.address, 'ws://a/ws');
      assert.equal(list[1]!.draining, true);
      assert.equal((await a.best())?.nodeId, 'c', 'b is draining; c has fewer connections than a');
      // c stops reporting: gone after its ttl. Polled: Redis expiry raises no event a client sees.
      let ids = list.map((n) => n.nodeId);
      const t0 = Date.now();
      while (ids.includes('c') && Date.now() - t0 < 3000) {
        await new Promise((r) => setTimeout(r, 25));
        ids = (await a.list()).map((n) => n.nodeId);
      }
      assert.deepEqual(ids, ['a', 'b']);
      assert.equal((await b.best())?.nodeId, 'a');
      // The id set is pruned by the reader (no KEYS anywhere).
      const raw = new Redis(REDIS_URL);
      try {
        assert.deepEqual((await raw.smembers(`${keyPrefix}nodes`)).sort(), ['a', 'b']);
      } finally {
        raw.disconnect();
      }
    } finally {
      await Promise.all([a.close(), b.close(), c.close()]);
    }
  });
});
