/**
 * Three real server processes on one Redis behave as one system: channel fan-out, HTTP publish, private
 * messages, presence, online users, typing and client_id supersede across nodes.
 *   eval "$(bash scripts/provision/redis.sh)"; npx tsc -b packages/server && node --test --test-concurrency=1 packages/server/dist/test/cluster/
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { TestClient, userEvent, within } from '../helpers.js';
import { requireRedisUrl } from '../redis/redis-process.js';
import { getJson, pollUntil, postJson, startNodes, uniquePrefix, type ServerNode } from './harness.js';

const REDIS_URL = requireRedisUrl();

describe('cluster: three nodes on one Redis', () => {
  let nodes: ServerNode[] = [];
  let A: ServerNode, B: ServerNode, C: ServerNode;
  const clients: TestClient[] = [];
  const connect = async (node: ServerNode, path = '/ws', query = ''): Promise<TestClient> => {
    const c = await TestClient.connect(`${node.ws}${path}${query}`);
    clients.push(c);
    return c;
  };

  /** Every node publishes a broadcast; resolves once every observer saw all of them. Control messages a node
   * published before its broadcast reach each observer before it (one Redis connection per node, in order). */
  const barrier = async (observers: TestClient[]): Promise<void> => {
    const token = `barrier-${Math.random().toString(36).slice(2)}`;
    for (const n of nodes) assert.equal((await postJson(`${n.http}/api/broadcast`, { data: { token, from: n.id } })).status, 200);
    await Promise.all(observers.flatMap((o) => nodes.map((n) =>
      o.next((f) => f.type === 'broadcast' && f.data.token === token && f.data.from === n.id, 5000))));
  };

  before(async () => {
    nodes = await startNodes(3, REDIS_URL, uniquePrefix('msg'));
    [A, B, C] = nodes as [ServerNode, ServerNode, ServerNode];
  });

  after(async () => {
    for (const c of clients) c.close();
    await Promise.all(nodes.map((n) => n.stop()));
    for (const n of nodes) assert.deepEqual(n.exitInfo, { code: 0, signal: null }, `${n.id} exits cleanly:\n${n.output}`);
  });

  it('each node says who it is', async () => {
    for (const n of nodes) {
      const health = await getJson(`${n.http}/health`);
      assert.equal(health.status, 200);
      assert.equal(health.body.node_id, n.id);
      assert.equal(health.body.broker, 'redis');
      const c = await connect(n);
      assert.equal(c.frames.length >= 0 && (await c.request('ping')).type, 'pong');
    }
  });

  it('a publication on A reaches subscribers on A, B and C in order; HTTP publish on B reaches A', async () => {
    const subs = await Promise.all([connect(A), connect(B), connect(C)]);
    for (const s of subs) await s.join('fan');
    const pub = await connect(A);
    const count = 25;
    for (let i = 0; i < count; i++) pub.send({ type: 'message', data: { channel: 'fan', n: i } });
    for (const s of subs) {
      const seqs: number[] = [];
      for (let i = 0; i < count; i++) {
        const m = await s.next('message', 5000);
        assert.equal(m.data.n, i, 'publish order preserved');
        seqs.push(m.seq!);
      }
      for (let i = 1; i < seqs.length; i++) assert.equal(seqs[i], seqs[i - 1]! + 1, 'contiguous offsets');
    }
    const res = await postJson(`${B.http}/api/publish`, { channel: 'fan', data: { via: 'http-b' } });
    assert.equal(res.status, 200);
    const onA = await subs[0]!.next((f) => f.type === 'message' && f.data.via === 'http-b', 5000);
    assert.equal(onA.seq, res.body.offset);
    assert.equal(onA.epoch, res.body.epoch);
    await subs[2]!.next((f) => f.type === 'message' && f.data.via === 'http-b', 5000);
  });

  it('a private message reaches every connection of the recipient, on A and on C', async () => {
    const aliceA = await connect(A, '/ws', '?user_id=alice&username=Alice');
    const aliceC = await connect(C, '/ws', '?user_id=alice&username=Alice');
    const bob = await connect(B, '/ws', '?user_id=bob');
    const ok = await bob.request('private_message', { recipient_id: 'alice', text: 'psst' });
    assert.equal(ok.type, 'ok', JSON.stringify(ok));
    assert.equal(ok.data.delivered, true);
    for (const a of [aliceA, aliceC]) {
      const m = await a.next('private', 5000);
      assert.equal(m.data.text, 'psst');
      assert.equal(m.sender_id, 'bob');
      assert.equal(m.recipient_id, 'alice');
    }
    // HTTP send-to-user on C reaches the connection on A too.
    assert.equal((await postJson(`${C.http}/api/users/alice/send`, { data: { note: 'n1' } })).status, 200);
    await aliceA.next((f) => f.type === 'notification' && f.data.note === 'n1', 5000);
    await aliceC.next((f) => f.type === 'notification' && f.data.note === 'n1', 5000);
    aliceA.close();
    aliceC.close();
    await Promise.all([aliceA.closed, aliceC.closed]);
  });

  it('presence: join/leave frames cross nodes and `presence` lists members of every node', async () => {
    const x = await connect(A, '/ws', '?user_id=px');
    const y = await connect(B, '/ws', '?user_id=py');
    const z = await connect(C, '/ws', '?user_id=pz');
    await x.join('room');
    const joinedY = y.join('room');
    const seenByX = await x.next((f) => f.type === 'presence' && f.data.action === 'joined' && f.data.user_id === 'py', 5000);
    assert.equal(seenByX.channel, 'room');
    assert.equal((await joinedY).data.members, 2, 'subscribed counts members on every node');
    const sub = await z.join('room');
    assert.equal(sub.data.members, 3);
    await x.next((f) => f.type === 'presence' && f.data.action === 'joined' && f.data.user_id === 'pz', 5000);
    await y.next((f) => f.type === 'presence' && f.data.action === 'joined' && f.data.user_id === 'pz', 5000);
    for (const c of [x, y, z]) {
      const p = await c.request('presence', { channel: 'room' });
      assert.deepEqual(p.data.members.map((m: { user_id: string }) => m.user_id).sort(), ['px', 'py', 'pz']);
    }
    const http = await getJson(`${A.http}/api/channels/room/presence`);
    assert.equal(http.body.members.length, 3);
    await y.request('leave_channel', { channel: 'room' });
    for (const c of [x, z]) await c.next((f) => f.type === 'presence' && f.data.action === 'left' && f.data.user_id === 'py', 5000);
    const p = await z.request('presence', { channel: 'room' });
    assert.deepEqual(p.data.members.map((m: { user_id: string }) => m.user_id).sort(), ['px', 'pz']);
    // A closed connection on C leaves too.
    z.close();
    await x.next((f) => f.type === 'presence' && f.data.action === 'left' && f.data.user_id === 'pz', 5000);
  });

  it('online users: one user_online when the first connection opens anywhere, one user_offline when the last closes', async () => {
    // Observers opt in to user events (the reserved `$users` channel); nobody else receives them.
    const observers = [await connect(A, '/ws', '?user_events=1'), await connect(B, '/ws', '?user_events=1'), await connect(C, '/ws', '?user_events=1')];
    for (const o of observers) await o.next((f) => f.type === 'subscribed' && f.data.channel === '$users');
    const carol1 = await connect(A, '/ws', '?user_id=carol&username=Carol');
    for (const o of observers) {
      const f = await o.next(userEvent('online', 'carol'), 5000);
      const carol = f.type === 'user_online' ? f.data : f.data.online.find((u: { user_id: string }) => u.user_id === 'carol');
      assert.equal(carol.username, 'Carol');
    }
    const carol2 = await connect(B, '/ws', '?user_id=carol&username=Carol');
    const carol3 = await connect(C, '/ws', '?user_id=carol&username=Carol');
    // Polled: a second and third connection change only a count in Redis, announced by no frame (user_online
    // is for the first connection only), and each node writes it asynchronously after the connect frame.
    for (const o of observers) {
      await pollUntil(async () => (await o.request('online_users')).data.users as Array<{ user_id: string; connections: number }>,
        (users) => users.find((u) => u.user_id === 'carol')?.connections === 3, 5000, 'carol with 3 connections on every node');
    }
    const online = await getJson(`${B.http}/api/users/online`);
    assert.equal(online.body.users.find((u: { user_id: string }) => u.user_id === 'carol').connections, 3);
    carol1.close();
    carol3.close();
    // Polled, as above: no frame announces the count going down while the user stays online.
    await pollUntil(async () => (await observers[0]!.request('online_users')).data.users as Array<{ user_id: string; connections: number }>,
      (users) => users.find((u) => u.user_id === 'carol')?.connections === 1, 5000, 'carol down to 1 connection');
    carol2.close();
    for (const o of observers) await o.next(userEvent('offline', 'carol'), 5000);
    await barrier(observers);
    for (const o of observers) {
      assert.equal(o.frames.filter(userEvent('online', 'carol')).length, 0, 'no further user_online for the 2nd and 3rd connections');
      assert.equal(o.frames.filter(userEvent('offline', 'carol')).length, 0, 'exactly one user_offline');
    }
    const after = (await observers[2]!.request('online_users')).data.users as Array<{ user_id: string }>;
    assert.equal(after.some((u) => u.user_id === 'carol'), false);
  });

  it('typing: typing_users agree on every node, and the auto-stop reaches every node', async () => {
    const t1 = await connect(A, '/ws', '?user_id=t1');
    const t2 = await connect(B, '/ws', '?user_id=t2');
    const t3 = await connect(C, '/ws', '?user_id=t3');
    for (const c of [t1, t2, t3]) await c.join('chat');
    await t1.request('typing', { channel: 'chat', is_typing: true });
    for (const c of [t2, t3]) {
      const f = await c.next((fr) => fr.type === 'typing' && fr.data.user_id === 't1' && fr.data.is_typing === true, 5000);
      assert.deepEqual(f.data.typing_users, ['t1']);
    }
    await t3.request('typing', { channel: 'chat', is_typing: true });
    for (const c of [t1, t2]) {
      const f = await c.next((fr) => fr.type === 'typing' && fr.data.user_id === 't3' && fr.data.is_typing === true, 5000);
      assert.deepEqual([...f.data.typing_users].sort(), ['t1', 't3']);
    }
    // Nobody sends is_typing:false: every node stops both after typing.timeoutMs on its own, and tells all its
    // members (the typer too: an expiry has no sender to leave out). Wait for every node's own expiry, so the
    // explicit stop below meets no node that still lists t1 or t3.
    for (const c of [t1, t2, t3]) {
      for (const who of ['t1', 't3']) {
        await c.next((fr) => fr.type === 'typing' && fr.data.user_id === who && fr.data.is_typing === false, 5000);
      }
    }
    // An explicit stop on B clears it on A and C as well.
    await t2.request('typing', { channel: 'chat', is_typing: true });
    await t1.next((fr) => fr.type === 'typing' && fr.data.user_id === 't2' && fr.data.is_typing === true, 5000);
    await t2.request('typing', { channel: 'chat', is_typing: false });
    for (const c of [t1, t3]) {
      const f = await c.next((fr) => fr.type === 'typing' && fr.data.user_id === 't2' && fr.data.is_typing === false, 5000);
      assert.deepEqual(f.data.typing_users, []);
    }
  });

  it('supersede across nodes: /ws/{client_id} on A then on B closes the A connection with 4011', async () => {
    const first = await connect(A, '/ws/device-42');
    await first.join('sup');
    const second = await connect(B, '/ws/device-42');
    const closed = await within(first.closed, 5000, 'the older connection on A to close');
    assert.equal(closed.code, 4011, 'the older connection on A is closed with 4011');
    // Every node has handled both announcements once it delivered a broadcast sent after them.
    await barrier([second]);
    assert.equal(second.closeInfo, null, 'the newer connection on B stays');
    assert.equal((await second.request('ping')).type, 'pong');
    // And back: a third on C supersedes the one on B.
    const third = await connect(C, '/ws/device-42');
    assert.equal((await second.closed).code, 4011);
    await barrier([third]);
    assert.equal(third.closeInfo, null);
  });
});
