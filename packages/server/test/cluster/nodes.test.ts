/**
 * Node registry across processes: /api/nodes lists the live nodes, /api/best-node picks the least-loaded
 * non-draining one, a drained node is not chosen and refuses new WebSocket connections with 503.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { TestClient } from '../helpers.js';
import { requireRedisUrl } from '../redis/redis-process.js';
import { getJson, pollUntil, postJson, startNodes, uniquePrefix, type ServerNode } from './harness.js';

const REDIS_URL = requireRedisUrl();

interface NodeInfo { nodeId: string; connections: number; draining: boolean; cpu: number; memoryRss: number; updatedAt: number }

describe('cluster: node registry, best node, drain', () => {
  let nodes: ServerNode[] = [];
  let A: ServerNode, B: ServerNode, C: ServerNode;
  const clients: TestClient[] = [];

  before(async () => {
    nodes = await startNodes(3, REDIS_URL, uniquePrefix('nodes'));
    [A, B, C] = nodes as [ServerNode, ServerNode, ServerNode];
  });

  after(async () => {
    for (const c of clients) c.close();
    await Promise.all(nodes.map((n) => n.stop()));
  });

  const list = async (via: ServerNode): Promise<NodeInfo[]> => (await getJson(`${via.http}/api/nodes`)).body.nodes as NodeInfo[];
  const load = (infos: NodeInfo[]) => Object.fromEntries(infos.map((n) => [n.nodeId, n.connections]));

  it('GET /api/nodes on any node lists the three live nodes with their load', async () => {
    for (const via of nodes) {
      const infos = await list(via);
      assert.deepEqual(infos.map((n) => n.nodeId), ['node-a', 'node-b', 'node-c']);
      for (const n of infos) {
        assert.equal(n.draining, false);
        assert.ok(n.memoryRss > 0 && Number.isFinite(n.cpu) && n.updatedAt > 0, JSON.stringify(n));
      }
    }
  });

  it('GET /api/best-node returns the least-loaded node; a drained node is not chosen and refuses WebSockets', async () => {
    for (let i = 0; i < 3; i++) clients.push(await TestClient.connect(`${A.ws}/ws`));
    for (let i = 0; i < 2; i++) clients.push(await TestClient.connect(`${C.ws}/ws`));
    clients.push(await TestClient.connect(`${B.ws}/ws`));
    // Polled: each node reports its load to the registry on its own timer (nodeReportIntervalMs); no event.
    await pollUntil(async () => load(await list(A)), (l) => l['node-a'] === 3 && l['node-b'] === 1 && l['node-c'] === 2, 5000, 'reported loads 3/1/2');
    for (const via of nodes) {
      const best = await getJson(`${via.http}/api/best-node`);
      assert.equal(best.status, 200);
      assert.equal(best.body.nodeId, 'node-b', 'fewest connections');
    }

    const drained = await postJson(`${B.http}/api/drain`, {});
    assert.deepEqual(drained.body, { draining: true });
    // The drain is reported at once: the very next best-node answer already avoids B.
    const next = await getJson(`${A.http}/api/best-node`);
    assert.equal(next.body.nodeId, 'node-c', 'least-loaded among the non-draining nodes');
    assert.equal((await list(C)).find((n) => n.nodeId === 'node-b')?.draining, true);
    await assert.rejects(TestClient.connect(`${B.ws}/ws`), /HTTP 503/, 'a draining node refuses new WebSocket connections');
    const health = await getJson(`${B.http}/health`);
    assert.equal(health.status, 503);
    assert.equal(health.body.status, 'draining');
    // Existing connections on the drained node keep working.
    const onB = clients[5]!;
    assert.equal((await onB.request('ping')).type, 'pong');

    // Undrain: B accepts again and is chosen again.
    assert.deepEqual((await postJson(`${B.http}/api/drain`, { enabled: false })).body, { draining: false });
    assert.equal((await getJson(`${C.http}/api/best-node`)).body.nodeId, 'node-b');
    clients.push(await TestClient.connect(`${B.ws}/ws`));
  });

  it('with every node drained, /api/best-node answers 503', async () => {
    for (const n of nodes) await postJson(`${n.http}/api/drain`, {});
    const best = await getJson(`${A.http}/api/best-node`);
    assert.equal(best.status, 503);
    assert.equal(best.body.error.code, 'UNAVAILABLE');
    for (const n of nodes) await postJson(`${n.http}/api/drain`, { enabled: false });
  });

  it('a node that shuts down gracefully leaves /api/nodes at once', async () => {
    await C.stop();
    assert.deepEqual(C.exitInfo, { code: 0, signal: null }, C.output);
    assert.deepEqual((await list(A)).map((n) => n.nodeId), ['node-a', 'node-b']);
  });
});
