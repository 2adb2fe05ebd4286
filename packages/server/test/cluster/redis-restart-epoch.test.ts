/**
 * Redis restarted without persistence (our own redis-server, killed and restarted on the same port): the
 * streams are lost and the next publication starts a new epoch at offset 1. Publications made in the new
 * epoch before a node re-synced, or before a client came back, must still reach the subscribers: after the
 * `recovered: false` notice, the node delivers the new epoch from offset 1 (its window holds it).
 *
 * Node A is held with SIGSTOP while Redis comes back, so node B publishes in the new epoch before A can
 * re-sync (deterministic, no race on reconnect timers). A long pong timeout keeps A's clients connected
 * across the pause.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { TestClient, type Frame } from '../helpers.js';
import { freePort, RedisProcess, requireRedisUrl } from '../redis/redis-process.js';
import { getJson, pollUntil, postJson, startNodes, uniquePrefix, type ServerNode } from './harness.js';

requireRedisUrl(); // provisioned (redis-server installed); this suite owns a second, killable server

describe('cluster: the new epoch after a Redis restart is delivered from offset 1', () => {
  let redis: RedisProcess;
  let nodes: ServerNode[] = [];
  let A: ServerNode, B: ServerNode;
  const clients: TestClient[] = [];
  const connect = async (node: ServerNode, query = ''): Promise<TestClient> => {
    const c = await TestClient.connect(`${node.ws}/ws${query}`);
    clients.push(c);
    return c;
  };

  before(async () => {
    redis = new RedisProcess(await freePort());
    await redis.start();
    nodes = await startNodes(2, redis.url, uniquePrefix('epoch'), { 'heartbeat.pongTimeoutMs': '30000' });
    [A, B] = nodes as [ServerNode, ServerNode];
  });

  after(async () => {
    for (const n of nodes) if (n.alive) n.child.kill('SIGCONT');
    for (const c of clients) c.close();
    await Promise.all(nodes.map((n) => n.stop()));
    await redis.kill();
  });

  it('a node that re-syncs late and a client that rejoins from the old epoch both get the new epoch from offset 1', async () => {
    const live = await connect(A);
    await live.join('feed');
    const seen: Frame[] = [];
    live.onFrame = (f) => {
      if ((f.type === 'message' || f.type === 'replay_complete') && f.channel === 'feed') seen.push(f);
    };
    const away = await connect(B);
    await away.join('feed');
    for (let i = 1; i <= 3; i++) assert.equal((await postJson(`${B.http}/api/publish`, { channel: 'feed', data: { text: `old-${i}` } })).status, 200);
    let oldPosition = { offset: 0, epoch: '' };
    for (const c of [live, away]) {
      for (let i = 1; i <= 3; i++) {
        const m = await c.next((f) => f.type === 'message' && f.data.text === `old-${i}`, 5000);
        oldPosition = { offset: m.seq!, epoch: m.epoch! };
      }
    }
    assert.equal(oldPosition.offset, 3);
    seen.length = 0; // from here on: what the restart brings
    away.close();
    await away.closed;

    await redis.kill();
    // Polled: a node's broker status is internal to its process; only /health shows it.
    for (const n of nodes) await pollUntil(() => getJson(`${n.http}/health`), (r) => r.status === 503, 5000, `${n.id} /health degraded`);
    A.child.kill('SIGSTOP');
    try {
      await redis.start();
      await pollUntil(() => getJson(`${B.http}/health`), (r) => r.status === 200, 10_000, `${B.id} /health healthy again`);
      // Published while A is still away from Redis: the first publications of the new epoch.
      for (let i = 1; i <= 2; i++) {
        const r = await postJson(`${B.http}/api/publish`, { channel: 'feed', data: { text: `new-${i}` } });
        assert.equal(r.status, 200, JSON.stringify(r.body));
        assert.equal(r.body.offset, i, 'a new epoch starts at offset 1');
        assert.notEqual(r.body.epoch, oldPosition.epoch, 'a new epoch');
      }
    } finally {
      A.child.kill('SIGCONT');
    }
    await live.until(() => seen.some((f) => f.type === 'replay_complete'), 'the re-sync notice on A', 10_000);
    const third = await postJson(`${B.http}/api/publish`, { channel: 'feed', data: { text: 'new-3' } });
    assert.equal(third.status, 200);
    const newEpoch = third.body.epoch as string;
    await live.until(() => seen.some((f) => f.type === 'message' && f.data.text === 'new-3'), 'new-3 on A', 5000);

    const shape = seen.map((f) => f.type === 'message'
      ? `message:${f.data.text}:${f.epoch === newEpoch ? 'new' : f.epoch}:${f.seq}${f.replayed === true ? ':R' : ''}`
      : `replay_complete:${f.data.recovered}:${f.data.epoch === newEpoch ? 'new' : f.data.epoch}:${f.data.offset}`);
    assert.deepEqual(shape, [
      // The gap notice (the old epoch's stream is gone), from the start of the new epoch ...
      'replay_complete:false:new:0',
      // ... then the publications made before A re-synced, replayed, then live ones, each once, in order.
      'message:new-1:new:1:R',
      'message:new-2:new:2:R',
      'message:new-3:new:3',
    ], `frames on A: ${JSON.stringify(shape)}`);

    // A client that was away during the restart rejoins from the old epoch: told recovered:false, then given
    // the new epoch from offset 1.
    const returning = await connect(A);
    const sub = await returning.join('feed', { since: oldPosition });
    assert.equal(sub.data.recovered, false);
    assert.equal(sub.data.epoch, newEpoch);
    assert.equal(sub.data.offset, 0, 'delivery continues from the start of the new epoch');
    const replayed: Frame[] = [];
    for (let i = 1; i <= 3; i++) replayed.push(await returning.next((f) => f.type === 'message' && f.channel === 'feed', 5000));
    assert.deepEqual(replayed.map((f) => [f.data.text, f.seq, f.epoch === newEpoch, f.replayed]), [
      ['new-1', 1, true, true], ['new-2', 2, true, true], ['new-3', 3, true, true],
    ]);
    const done = await returning.next('replay_complete', 5000);
    assert.deepEqual([done.data.recovered, done.data.replayed_count, done.data.offset, done.data.epoch], [false, 3, 3, newEpoch]);

    for (const n of nodes) assert.ok(n.alive, `${n.id} survived:\n${n.output}`);
  });
});
