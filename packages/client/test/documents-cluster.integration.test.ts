// Yjs documents through the SDK across two real Switchboard nodes sharing a real Redis: an SDK client on each
// node and an unmodified y-websocket provider on the second converge and see each other's awareness; when
// the SDK client of one node leaves, its entry leaves the other node's clients.
// Needs REDIS_URL: eval "$(bash scripts/provision/redis.sh)"
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WebSocket } from 'ws';
import * as Y from 'yjs';
import { Awareness } from 'y-protocols/awareness';
import { WebsocketProvider } from 'y-websocket';
import { openDocument } from '@switchboard/client/yjs';
import { Clients, startServer, within } from './helpers.js';

const REDIS_URL = process.env.REDIS_URL;

/** Resolves once `cond()` holds, checked after every update / awareness change of `sources` (no polling). */
function until(sources: Array<Y.Doc | Awareness>, cond: () => boolean, what: string, timeoutMs = 8000): Promise<void> {
  if (cond()) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const offs: Array<() => void> = [];
    const onEvent = (): void => queueMicrotask(() => {
      if (!cond()) return;
      stop();
      resolve();
    });
    const stop = (): void => {
      clearTimeout(timer);
      for (const off of offs) off();
    };
    for (const s of sources) {
      if (s instanceof Y.Doc) {
        s.on('update', onEvent);
        offs.push(() => s.off('update', onEvent));
      } else {
        s.on('change', onEvent);
        offs.push(() => s.off('change', onEvent));
      }
    }
    const timer = setTimeout(() => {
      stop();
      reject(new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`));
    }, timeoutMs);
  });
}

const text = (doc: Y.Doc): string => doc.getText('t').toString();

test('SDK clients on two nodes (Redis) and a y-websocket provider converge and share awareness', async (t) => {
  assert.ok(REDIS_URL, 'REDIS_URL is not set: run eval "$(bash scripts/provision/redis.sh)" first (Redis tests never skip)');
  const keyPrefix = `sbdoc${process.pid}${Date.now().toString(36)}:`;
  const broker = { type: 'redis' as const, redisUrl: REDIS_URL, keyPrefix };
  const nodeA = await startServer({ nodeId: 'doc-a', broker });
  const nodeB = await startServer({ nodeId: 'doc-b', broker });
  const clients = new Clients();
  const docs = { a: new Y.Doc(), b: new Y.Doc(), p: new Y.Doc() };
  const awA = new Awareness(docs.a);
  const awB = new Awareness(docs.b);
  const provider = new WebsocketProvider(`ws://127.0.0.1:${nodeB.port}/yjs`, 'doc:cluster', docs.p, { WebSocketPolyfill: WebSocket as never, disableBc: true, connect: false });
  t.after(async () => {
    provider.destroy();
    provider.awareness.destroy();
    awA.destroy();
    awB.destroy();
    clients.closeAll();
    await nodeA.close();
    await nodeB.close();
  });

  const ca = clients.make(nodeA.url, { username: 'ann' });
  const cb = clients.make(nodeB.url, { username: 'bob' });
  await Promise.all([ca.connect(), cb.connect()]);
  awA.setLocalState({ user: { name: 'ann' } });
  awB.setLocalState({ user: { name: 'bob' } });
  const ha = openDocument(ca, 'doc:cluster', docs.a, { awareness: awA });
  const hb = openDocument(cb, 'doc:cluster', docs.b, { awareness: awB });
  await within(Promise.all([ha.whenSynced(), hb.whenSynced()]), 8000, 'both SDK clients synced');
  provider.awareness.setLocalState({ user: { name: 'provider' } });
  provider.connect();

  // Concurrent edits on both nodes and from the provider.
  for (let i = 0; i < 30; i++) {
    docs.a.getText('t').insert(docs.a.getText('t').length, 'a');
    docs.b.getText('t').insert(0, 'b');
  }
  docs.p.getText('t').insert(0, '[p]');
  const all = [docs.a, docs.b, docs.p];
  await until(all, () => text(docs.a) === text(docs.b) && text(docs.b) === text(docs.p) && text(docs.a).length === 63, 'three copies converge across the nodes');
  assert.equal((text(docs.a).match(/a/g) ?? []).length, 30);
  assert.equal((text(docs.a).match(/b/g) ?? []).length, 30);

  // Awareness across the nodes: everyone sees everyone.
  const names = (aw: Awareness) => [...aw.getStates().values()].map((s) => (s as { user?: { name?: string } }).user?.name).filter(Boolean).sort();
  await until([awA, awB, provider.awareness], () => [awA, awB, provider.awareness].every((aw) => names(aw).join() === 'ann,bob,provider'), 'awareness on both nodes');

  // Ann's handle closes on node A: her entry leaves node B's clients.
  ha.destroy();
  await until([awB, provider.awareness], () => names(awB).join() === 'bob,provider' && names(provider.awareness).join() === 'bob,provider', 'ann\'s entry removed on node B');
  hb.destroy();
});
