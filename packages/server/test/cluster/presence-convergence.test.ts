/**
 * Presence convergence after a crash, with the production timings (presenceTtlMs 30 s, nodeTimeoutMs 3 s): a
 * node killed with SIGKILL loses its channel members, its online users and its /api/nodes entry for every
 * reader within the documented bound (nodeTimeoutMs × 4/3 plus a round trip: asserted ≤ 5 s), long before its
 * entries expire; restarted under the same id it does not bring them back; a Redis pause longer than the node
 * timeout hides no live node's members afterwards (grace).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { TestClient } from '../helpers.js';
import { freePort, RedisProcess } from '../redis/redis-process.js';
import { getJson, pollUntil, ServerNode, startNodes, uniquePrefix } from './harness.js';

/** Production defaults for what is under test; the rest of FAST_SETTINGS stays. */
const SETTINGS = { 'broker.presenceTtlMs': '30000', 'broker.nodeTimeoutMs': '3000' };
const BOUND_MS = 5000;

describe('cluster: presence convergence after kill -9', () => {
  let redis: RedisProcess;
  let nodes: ServerNode[] = [];
  let prefix = '';
  const clients: TestClient[] = [];
  const connect = async (node: ServerNode, query = ''): Promise<TestClient> => {
    const c = await TestClient.connect(`${node.ws}/ws${query}`);
    clients.push(c);
    return c;
  };

  before(async () => {
    // A Redis of its own: the last test pauses it.
    redis = new RedisProcess(await freePort());
    await redis.start();
    prefix = uniquePrefix('conv');
    nodes = await startNodes(3, redis.url, prefix, SETTINGS);
  });

  after(async () => {
    for (const c of clients) c.close();
    await Promise.all(nodes.map((n) => n.kill9()));
    await redis.kill();
  });

  it('a killed node\'s members, users and registry entry are gone within the bound; a restart under the same id does not revive them', async () => {
    const [A, B, C] = nodes as [ServerNode, ServerNode, ServerNode];
    const watcher = await connect(A, '?user_id=watcher');
    await watcher.join('conv');
    const other = await connect(B, '?user_id=other');
    await other.join('conv');
    const victims = [await connect(C, '?user_id=victim-1'), await connect(C, '?user_id=victim-2')];
    for (const v of victims) await v.join('conv');
    const victimIds = victims.map((v) => v.connectionId);
    const members = async (): Promise<string[]> =>
      ((await watcher.request('presence', { channel: 'conv', limit: 1000 })).data.members as Array<{ connection_id: string }>).map((m) => m.connection_id);
    const users = async (): Promise<string[]> =>
      ((await watcher.request('online_users', { limit: 1000 })).data.users as Array<{ user_id: string }>).map((u) => u.user_id);
    const registry = async (): Promise<string[]> =>
      (await getJson(`${A.http}/api/nodes`)).body.nodes.map((n: { nodeId: string }) => n.nodeId) as string[];
    assert.deepEqual((await members()).filter((id) => victimIds.includes(id)).sort(), [...victimIds].sort());
    assert.ok((await users()).includes('victim-1'));
    assert.ok((await registry()).includes('node-c'));

    await C.kill9();
    const killedAt = Date.now();
    // Polled: convergence is the heartbeat going stale in Redis, which raises no event.
    await pollUntil(members, (ids) => !ids.some((id) => victimIds.includes(id)), BOUND_MS + 5000, 'the dead node\'s members to go');
    const membersGone = Date.now() - killedAt;
    await pollUntil(users, (ids) => !ids.includes('victim-1') && !ids.includes('victim-2'), BOUND_MS + 5000, 'the dead node\'s users to go');
    const usersGone = Date.now() - killedAt;
    await pollUntil(registry, (ids) => !ids.includes('node-c'), BOUND_MS + 5000, 'node-c to leave /api/nodes');
    const registryGone = Date.now() - killedAt;
    assert.ok(membersGone <= BOUND_MS, `members gone after ${membersGone} ms (bound ${BOUND_MS} ms)`);
    assert.ok(usersGone <= BOUND_MS, `users gone after ${usersGone} ms (bound ${BOUND_MS} ms)`);
    assert.ok(registryGone <= BOUND_MS, `registry entry gone after ${registryGone} ms (bound ${BOUND_MS} ms)`);
    // The live ones were never hidden.
    const now = await members();
    assert.ok(now.includes(watcher.connectionId) && now.includes(other.connectionId), JSON.stringify(now));
    assert.ok((await users()).includes('other'));

    // Restarted under the same id, well within presenceTtlMs of the crash: the old entries stay hidden.
    const C2 = await ServerNode.spawn({ id: 'node-c', redisUrl: redis.url, keyPrefix: prefix, settings: { ...SETTINGS } });
    nodes[2] = C2;
    const fresh = await connect(C2, '?user_id=fresh');
    await fresh.join('conv');
    await pollUntil(members, (ids) => ids.includes(fresh.connectionId), 3000, 'the restarted node\'s new member');
    await pollUntil(registry, (ids) => ids.includes('node-c'), 3000, 'node-c back in /api/nodes');
    // Over two heartbeat intervals: the ghosts would show again by now.
    await new Promise((r) => setTimeout(r, 2500));
    assert.deepEqual((await members()).filter((id) => victimIds.includes(id)), [], 'no ghost members after the restart');
    const u = await users();
    assert.ok(!u.includes('victim-1') && !u.includes('victim-2') && u.includes('fresh'), JSON.stringify(u));
  });

  it('a Redis pause longer than the node timeout hides no live member after it resumes', async () => {
    const [A, B] = nodes as [ServerNode, ServerNode];
    const watcher = await connect(A);
    await watcher.join('pause');
    const member = await connect(B);
    await member.join('pause');
    const members = async (): Promise<string[]> =>
      ((await watcher.request('presence', { channel: 'pause', limit: 1000 }, 5000)).data.members as Array<{ connection_id: string }>).map((m) => m.connection_id);
    assert.ok((await members()).includes(member.connectionId));
    redis.signal('SIGSTOP');
    await new Promise((r) => setTimeout(r, 4500));
    redis.signal('SIGCONT');
    // Polled: the nodes notice Redis is back on their own (commands succeed again).
    await pollUntil(members, (ids) => ids.length > 0, 10_000, 'presence reads to work again');
    // For the next four seconds (more than a node timeout) every read lists B's member.
    const until = Date.now() + 4000;
    while (Date.now() < until) {
      const ids = await members();
      assert.ok(ids.includes(member.connectionId) && ids.includes(watcher.connectionId), `live member hidden after the pause: ${JSON.stringify(ids)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  });
});
