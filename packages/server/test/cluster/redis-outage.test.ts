/**
 * Redis restarted under a running cluster (our own redis-server, killed and restarted on the same port,
 * without persistence): no node crashes, operations fail fast with BROKER_UNAVAILABLE, /health says
 * `degraded` (503) while Redis is away, service resumes by itself, and streams whose continuity cannot be
 * proven (the restart lost them: new epoch) are reported to clients with `recovered: false`.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { TestClient, within, type Frame } from '../helpers.js';
import { freePort, RedisProcess, requireRedisUrl } from '../redis/redis-process.js';
import { FAST_SETTINGS, getJson, pollUntil, postJson, startNodes, uniquePrefix, type ServerNode } from './harness.js';

requireRedisUrl(); // provisioned (redis-server installed); this suite owns a second, killable server
const COMMAND_TIMEOUT_MS = Number(FAST_SETTINGS['broker.commandTimeoutMs']);

describe('cluster: Redis restarted mid-run', () => {
  let redis: RedisProcess;
  let nodes: ServerNode[] = [];
  let A: ServerNode, B: ServerNode, C: ServerNode;
  const clients: TestClient[] = [];
  const connect = async (node: ServerNode, query = ''): Promise<TestClient> => {
    const c = await TestClient.connect(`${node.ws}/ws${query}`);
    clients.push(c);
    return c;
  };

  before(async () => {
    redis = new RedisProcess(await freePort());
    await redis.start();
    nodes = await startNodes(3, redis.url, uniquePrefix('outage'));
    [A, B, C] = nodes as [ServerNode, ServerNode, ServerNode];
  });

  after(async () => {
    for (const c of clients) c.close();
    await Promise.all(nodes.map((n) => n.stop()));
    await redis.kill();
  });

  it('fails fast while Redis is down, reports degraded, resumes by itself and says recovered:false for lost streams', async () => {
    const subs = [await connect(A, '?user_id=u1'), await connect(B, '?user_id=u2'), await connect(C, '?user_id=u3')];
    for (const s of subs) await s.join('live');
    const away = await connect(A);
    await away.join('live');
    for (let i = 0; i < 3; i++) assert.equal((await postJson(`${A.http}/api/publish`, { channel: 'live', data: { i } })).status, 200);
    let before = { offset: 0, epoch: '' };
    for (const s of [...subs, away]) {
      for (let i = 0; i < 3; i++) {
        const m = await s.next('message', 5000);
        before = { offset: m.seq!, epoch: m.epoch! };
      }
    }
    assert.equal(before.offset, 3);
    away.close();
    await away.closed;

    await redis.kill();
    // Polled: a node's broker status is internal to its process; only /health shows it, and no frame does.
    for (const n of nodes) {
      // The health probe may see the dead Redis (unresponsive) before the connection's own close event (down).
      const h = await pollUntil(() => getJson(`${n.http}/health`), (r) => r.status === 503 && r.body.broker_status === 'down', 5000, `${n.id} /health degraded, broker down`);
      assert.equal(h.body.status, 'degraded');
    }

    // Every Redis-backed operation answers BROKER_UNAVAILABLE quickly instead of hanging.
    const s1 = subs[0]!;
    const requests: Array<[string, Record<string, unknown>]> = [
      ['message', { channel: 'live', text: 'while down' }],
      ['join_channel', { channel: 'other' }],
      ['presence', { channel: 'live' }],
      ['online_users', {}],
      ['private_message', { recipient_id: 'u2', text: 'hi' }],
      ['history', { channel: 'live', limit: 10 }],
    ];
    for (const [type, data] of requests) {
      const t0 = Date.now();
      const reply = await s1.request(type, data, 5000);
      const took = Date.now() - t0;
      assert.equal(reply.type, 'error', `${type}: ${JSON.stringify(reply)}`);
      assert.equal(reply.data.code, 'BROKER_UNAVAILABLE', type);
      assert.ok(took <= COMMAND_TIMEOUT_MS + 500, `${type} failed after ${took} ms`);
    }
    const http = await postJson(`${B.http}/api/publish`, { channel: 'live', data: { text: 'while down' } });
    assert.equal(http.status, 503, JSON.stringify(http.body));
    assert.equal(http.body.error.code, 'BROKER_UNAVAILABLE');
    // Connections and in-process work that needs no Redis keep going.
    const fresh = await connect(C);
    assert.equal((await fresh.request('ping')).type, 'pong');

    await redis.start();
    // Polled, as above.
    for (const n of nodes) {
      const h = await pollUntil(() => getJson(`${n.http}/health`), (r) => r.status === 200, 10_000, `${n.id} /health healthy again`);
      assert.equal(h.body.broker_status, 'up');
    }

    // The restart lost the stream (no persistence): every live subscriber is told it may have a gap.
    let after = '';
    for (const s of subs) {
      const notice = await s.next((f) => f.type === 'replay_complete' && f.channel === 'live', 5000);
      assert.equal(notice.data.recovered, false, JSON.stringify(notice.data));
      assert.notEqual(notice.data.epoch, before.epoch, 'a new epoch');
      after = notice.data.epoch as string;
    }
    // Publications flow again, in the new epoch, to every node.
    const pub = await postJson(`${B.http}/api/publish`, { channel: 'live', data: { text: 'back' } });
    assert.equal(pub.status, 200);
    assert.equal(pub.body.epoch, after);
    for (const s of subs) {
      const m = await s.next((f) => f.type === 'message' && f.data.text === 'back', 5000);
      assert.equal(m.epoch, after);
      assert.equal(m.seq, pub.body.offset);
    }
    // A client that was away during the outage asks to recover from the old epoch: told recovered:false.
    const returning = await connect(C);
    const sub = await returning.join('live', { since: before });
    assert.equal(sub.data.recovered, false);
    assert.equal(sub.data.epoch, after);
    // Presence and online users are rebuilt by the nodes (Redis lost them too). Polled: the rebuild is each
    // node's refresh timer writing to Redis, announced by no frame.
    await pollUntil(async () => (await subs[1]!.request('presence', { channel: 'live' })).data.members as unknown[],
      (m) => m.length === 4, 5000, 'presence rebuilt');
    await pollUntil(async () => (await subs[2]!.request('online_users')).data.users as Array<{ user_id: string }>,
      (u) => ['u1', 'u2', 'u3'].every((id) => u.some((x) => x.user_id === id)), 5000, 'online users rebuilt');
    // The private message path works again.
    assert.equal((await s1.request('private_message', { recipient_id: 'u2', text: 'again' })).data.delivered, true);
    await subs[1]!.next((f) => f.type === 'private' && f.data.text === 'again', 5000);

    for (const n of nodes) assert.ok(n.alive, `${n.id} survived the outage:\n${n.output}`);
  });

  it('a node whose subscriber connection drops re-syncs: publications made meanwhile arrive once, in order', async () => {
    const reader = await connect(A);
    const sub = await reader.join('blip');
    const publisher = await connect(B);
    let stop = false;
    let sent = 0;
    let target = Infinity;
    let reachedTarget!: () => void;
    const reached = new Promise<void>((r) => (reachedTarget = r));
    const background = (async () => {
      while (!stop) {
        const r = await publisher.request('message', { channel: 'blip', n: sent });
        assert.equal(r.type, 'ok', JSON.stringify(r));
        sent++;
        if (sent >= target) reachedTarget();
      }
    })();
    await reader.next('message', 5000);
    // Drop node A's pub/sub connection (Redis stays up; B keeps publishing while A reconnects).
    const admin = new Redis(redis.url);
    try {
      const list = (await admin.call('CLIENT', 'LIST')) as string;
      const line = list.split('\n').find((l) => l.includes('name=sb:node-a:sub'));
      assert.ok(line, 'node-a subscriber connection found');
      const id = /id=(\d+)/.exec(line)![1]!;
      await admin.call('CLIENT', 'KILL', 'ID', id);
    } finally {
      admin.disconnect();
    }
    const notice = await reader.next((f) => f.type === 'replay_complete' && f.channel === 'blip', 5000);
    assert.equal(notice.data.recovered, true, JSON.stringify(notice.data));
    assert.ok((notice.data.replayed_count as number) > 0, 'publications made while A was reconnecting were replayed');
    target = sent + 5;
    await within(Promise.race([reached, background]), 5000, 'a few more live publications');
    stop = true;
    await background;
    const seqs = () => reader.frames.filter((f: Frame) => f.type === 'message' && f.channel === 'blip').map((f) => f.seq!);
    await reader.until(() => seqs().at(-1) === sub.data.offset + sent, 'the last publication on A', 5000);
    const got = seqs();
    const first = got[0]!;
    const runs: string[] = [];
    for (let i = 0; i < got.length; i++) {
      let j = i;
      while (j + 1 < got.length && got[j + 1] === got[j]! + 1) j++;
      runs.push(i === j ? `${got[i]}` : `${got[i]}..${got[j]}`);
      i = j;
    }
    assert.deepEqual(got, Array.from({ length: got.length }, (_, i) => first + i), `no gap, no duplicate, in order; got ${runs.join(' ')}; frames ${reader.frames.filter((f) => f.type !== 'message' && f.type !== 'ping').map((f) => `${f.type}:${JSON.stringify(f.data)}`).join(' ')}`);
    assert.ok(A.alive && B.alive);
  });

  it('supersede: announcements that cross in flight keep the newer connection (control channel order)', async () => {
    // CLIENT PAUSE WRITE holds every node's PUBLISH: the connection on B opens before A's announcement is
    // delivered anywhere, then both announcements go out in order (A's first).
    const admin = new Redis(redis.url);
    let first: TestClient, second: TestClient;
    try {
      await admin.call('CLIENT', 'PAUSE', '250', 'WRITE');
      first = await connect(A, '/crossing-1');
      second = await connect(B, '/crossing-1');
    } finally {
      admin.disconnect();
    }
    assert.equal((await first.closed).code, 4011, 'the older connection (A) is superseded');
    // Barrier: a broadcast published by A after its announcement reaches B after it (one Redis connection per
    // node, in order), so B has handled A's announcement once `second` has the broadcast.
    const token = `after-crossing-${Date.now()}`;
    assert.equal((await postJson(`${A.http}/api/broadcast`, { data: { token } })).status, 200);
    await second.next((f) => f.type === 'broadcast' && f.data.token === token, 5000);
    assert.equal((await second.request('ping', {}, 5000)).type, 'pong', 'the newer connection answers');
    assert.equal(second.closeInfo, null, 'the newer connection (B) stays open');
  });
});
