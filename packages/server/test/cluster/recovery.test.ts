/**
 * Recovery across nodes: a client that reconnects to a different node with `since` gets every missed
 * publication exactly once; a node killed with SIGKILL loses its presence within presenceTtlMs and its
 * clients recover on another node.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { TestClient, type Frame } from '../helpers.js';
import { requireRedisUrl } from '../redis/redis-process.js';
import { FAST_SETTINGS, getJson, pollUntil, postJson, startNodes, uniquePrefix, type ServerNode } from './harness.js';

const REDIS_URL = requireRedisUrl();
const PRESENCE_TTL_MS = Number(FAST_SETTINGS['broker.presenceTtlMs']);

/** Offsets of channel publications received by `c` on `channel`, in arrival order. */
function offsets(c: TestClient, channel: string): number[] {
  return c.frames.filter((f: Frame) => f.type === 'message' && f.channel === channel).map((f) => f.seq!);
}

function assertExactly(seqs: number[], from: number, to: number, what: string): void {
  const expected = Array.from({ length: to - from + 1 }, (_, i) => from + i);
  assert.deepEqual(seqs, expected, `${what}: every offset ${from}..${to} once, in order`);
}

describe('cluster: recovery on another node', () => {
  let nodes: ServerNode[] = [];
  let A: ServerNode, B: ServerNode, C: ServerNode;
  const clients: TestClient[] = [];
  const connect = async (node: ServerNode, path = '/ws'): Promise<TestClient> => {
    const c = await TestClient.connect(`${node.ws}${path}`);
    clients.push(c);
    return c;
  };

  before(async () => {
    nodes = await startNodes(3, REDIS_URL, uniquePrefix('rec'));
    [A, B, C] = nodes as [ServerNode, ServerNode, ServerNode];
  });

  after(async () => {
    for (const c of clients) c.close();
    await Promise.all(nodes.map((n) => n.stop()));
  });

  it('reconnecting to a different node with since recovers every missed publication, no gap, no duplicate', async () => {
    const publisher = await connect(C);
    const publish = (n: number) => publisher.request('message', { channel: 'feed', n });
    for (let i = 0; i < 5; i++) assert.equal((await publish(i)).type, 'ok');

    const reader = await connect(A);
    const sub = await reader.join('feed');
    assert.equal(sub.data.offset, 5);
    for (let i = 5; i < 10; i++) await publish(i);
    await reader.until(() => offsets(reader, 'feed').length === 5, 'live publications on A', 5000);
    const seen = offsets(reader, 'feed');
    assertExactly(seen, 6, 10, 'live on A');
    const epoch = sub.data.epoch as string;
    reader.close();
    await reader.closed;

    // Published while the reader is away.
    for (let i = 10; i < 40; i++) await publish(i);
    // Keep publishing while it rejoins on B: live publications race with the recovery read.
    let stop = false;
    let published = 40;
    const background = (async () => {
      while (!stop) { await publish(published); published++; }
    })();
    const back = await connect(B);
    const rejoined = await back.join('feed', { since: { offset: 10, epoch } });
    assert.equal(rejoined.data.recovered, true, JSON.stringify(rejoined.data));
    assert.equal(rejoined.data.epoch, epoch);
    await back.next('replay_complete', 5000);
    await back.until(() => offsets(back, 'feed').length >= 40, 'a few live publications after the replay', 5000);
    stop = true;
    await background;
    const total = published; // offsets 1..total exist
    await back.until(() => offsets(back, 'feed').at(-1) === total, `last offset ${total} on B`, 5000);
    assertExactly(offsets(back, 'feed'), 11, total, 'replay + live on B');
    const replayed = back.frames.filter((f) => f.type === 'message' && f.replayed === true).map((f) => f.seq!);
    assert.ok(replayed.length >= 30 && replayed[0] === 11, `publications made while away are marked replayed (${replayed.length})`);
    for (const f of back.frames.filter((fr) => fr.type === 'message')) assert.equal(f.epoch, epoch);
  });

  it('kill -9 of a node: its presence entries expire within presenceTtlMs, its clients recover on another node', async () => {
    const watcher = await connect(A);
    await watcher.join('k');
    const victims = [await connect(C), await connect(C)];
    const victimIds = victims.map((v) => v.connectionId);
    let position = { offset: 0, epoch: '' };
    for (const v of victims) {
      const s = await v.join('k');
      position = { offset: s.data.offset as number, epoch: s.data.epoch as string };
    }
    const members = async () => ((await watcher.request('presence', { channel: 'k' })).data.members as Array<{ connection_id: string }>).map((m) => m.connection_id);
    assert.deepEqual((await members()).filter((id) => victimIds.includes(id)).sort(), [...victimIds].sort());
    assert.ok((await getJson(`${A.http}/api/nodes`)).body.nodes.some((n: { nodeId: string }) => n.nodeId === 'node-c'));

    await C.kill9();
    const killedAt = Date.now();
    const closes = await Promise.all(victims.map((v) => v.closed));
    for (const c of closes) assert.equal(c.code, 1006, 'abnormal closure: the process died');

    // Published while the victims are disconnected.
    for (let i = 0; i < 12; i++) {
      const r = await postJson(`${B.http}/api/publish`, { channel: 'k', data: { i } });
      assert.equal(r.status, 200);
    }
    // Polled: the dead node's presence goes by Redis expiry (the ttl is the behaviour), which raises no event.
    await pollUntil(members, (ids) => !ids.some((id) => victimIds.includes(id)), PRESENCE_TTL_MS + 2000, 'dead node presence to expire');
    const gone = Date.now() - killedAt;
    assert.ok(gone <= PRESENCE_TTL_MS + 1000, `presence of the dead node expired after ${gone} ms (ttl ${PRESENCE_TTL_MS} ms)`);
    // Polled: a killed node leaves the registry by Redis expiry, which raises no event.
    await pollUntil(async () => (await getJson(`${A.http}/api/nodes`)).body.nodes.map((n: { nodeId: string }) => n.nodeId) as string[],
      (ids) => !ids.includes('node-c'), 5000, 'node-c to leave /api/nodes');

    // The victims reconnect (to A and B) and recover everything published since their position.
    const again = [await connect(A), await connect(B)];
    for (const c of again) {
      const s = await c.join('k', { since: position });
      assert.equal(s.data.recovered, true);
      await c.next('replay_complete', 5000);
      assertExactly(offsets(c, 'k'), position.offset + 1, position.offset + 12, 'recovered after the node died');
    }
    // The survivors still fan out to each other.
    await postJson(`${A.http}/api/publish`, { channel: 'k', data: { after: true } });
    for (const c of [...again, watcher]) await c.next((f) => f.type === 'message' && f.data.after === true, 5000);
    assert.ok(A.alive && B.alive);
  });
});
