// Binary app payloads through the SDK against a REAL server over real sockets: `client.publishBinary` sends
// one binary frame; SDK subscribers get `publication.binary`, a raw JSON subscriber the `{binary: base64}`
// message frame; history carries it; a namespace without `binary`, an unauthorized channel and an oversized
// payload are refused. And a 200 KiB document change over `/ws` (the SDK handle) converging with an
// unmodified y-websocket provider: the document frame limit follows documents.maxUpdateBytes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WebSocket } from 'ws';
import * as Y from 'yjs';
import { WebsocketProvider } from 'y-websocket';
import type { Publication, SwitchboardError } from '@switchboard/client';
import { openDocument } from '@switchboard/client/yjs';
import { startServer, Clients, until, within } from './helpers.js';

const CONFIG = {
  channels: { namespaces: { bin: { binary: true } } },
  auth: { channels: { default: 'allow' as const, rules: { 'bin:ro:*': { subscribe: 'any' as const, publish: 'none' as const } } } },
};

/** A raw `ws` subscriber: the JSON frames it got, and an event-driven wait on them. */
async function rawSubscriber(url: string, channel: string) {
  const ws = new WebSocket(url);
  const frames: Array<Record<string, any>> = [];
  const listeners = new Set<() => void>();
  ws.on('message', (data, isBinary) => {
    if (!isBinary) frames.push(JSON.parse(data.toString()) as Record<string, any>);
    for (const l of [...listeners]) l();
  });
  const until = (cond: () => boolean, what: string): Promise<void> =>
    within(new Promise<void>((resolve) => {
      const check = (): void => {
        if (!cond()) return;
        listeners.delete(check);
        resolve();
      };
      listeners.add(check);
      check();
    }), 5000, what);
  await until(() => frames.some((f) => f.type === 'connect'), 'connect');
  ws.send(JSON.stringify({ type: 'join_channel', data: { channel }, id: 'j' }));
  await until(() => frames.some((f) => f.id === 'j' && f.type === 'subscribed'), 'subscribed');
  return { frames, ws, until };
}

test('publishBinary: SDK and JSON subscribers get the bytes, history returns them, refusals reject', async (t) => {
  const srv = await startServer(CONFIG);
  const clients = new Clients();
  const raws: WebSocket[] = [];
  t.after(async () => {
    clients.closeAll();
    for (const w of raws) w.close();
    await srv.close();
  });
  const a = clients.make(srv.url, { params: { user_id: 'ann' } });
  const b = clients.make(srv.url, { params: { user_id: 'bob' } });
  await a.connect();
  await b.connect();
  const got: Publication[] = [];
  const sub = b.subscribe('bin:x');
  sub.on('message', (p) => got.push(p));
  await sub.ready();
  const raw = await rawSubscriber(srv.url, 'bin:x');
  raws.push(raw.ws);

  const bytes = new Uint8Array([0, 1, 2, 3, 250, 255]);
  const r1 = await a.publishBinary('bin:x', bytes);
  await a.publish('bin:x', { text: 'between' });
  const r2 = await a.publishBinary('bin:x', new Uint8Array([7]));
  assert.equal(r2.offset, r1.offset + 2);
  await until(b, () => got.length === 3, 'bob gets three publications');
  assert.deepEqual(got[0]!.binary, bytes);
  assert.equal(got[0]!.data.binary, Buffer.from(bytes).toString('base64'), '`data` stays as it came');
  assert.equal(got[1]!.binary, undefined, 'a JSON message has no `binary`');
  assert.deepEqual(got[2]!.binary, new Uint8Array([7]));
  const rawMessages = (): Array<Record<string, any>> => raw.frames.filter((f) => f.type === 'message');
  await raw.until(() => rawMessages().length === 3, 'the raw subscriber gets three messages');
  const rawData = rawMessages().map((f) => f.data.binary ?? f.data.text);
  assert.deepEqual(rawData, [Buffer.from(bytes).toString('base64'), 'between', Buffer.from([7]).toString('base64')]);

  const history = await b.history('bin:x', { limit: 10 });
  assert.deepEqual(history.publications.map((p) => (p.binary ? [...p.binary] : p.data.text)), [[...bytes], 'between', [7]]);

  await assert.rejects(a.publishBinary('room:plain', bytes), (e: SwitchboardError) => e.code === 'BINARY_NOT_SUPPORTED' && e.temporary === false);
  await assert.rejects(a.publishBinary('bin:ro:y', bytes), (e: SwitchboardError) => e.code === 'FORBIDDEN');
  assert.equal(a.status, 'connected', 'refusals leave the connection up');
  assert.equal((await a.publishBinary('bin:x', new Uint8Array([1]))).offset, r2.offset + 1);
});

test('publishBinary over limits.maxMessageBytes: the server closes 1009, the promise rejects, the client reconnects', async (t) => {
  const srv = await startServer({ ...CONFIG, limits: { maxMessageBytes: 4096 } });
  const clients = new Clients();
  t.after(async () => {
    clients.closeAll();
    await srv.close();
  });
  const a = clients.make(srv.url);
  await a.connect();
  const closes: number[] = [];
  a.on('disconnected', (e) => closes.push(e.code));
  await assert.rejects(a.publishBinary('bin:big', new Uint8Array(5000)), (e: SwitchboardError) => e.code === 'CONNECTION_LOST');
  assert.deepEqual(closes, [1009]);
  await until(a, () => a.status === 'connected', 'reconnected');
  const ok = await a.publishBinary('bin:big', new Uint8Array(4000));
  assert.equal(typeof ok.offset, 'number');
});

test('a 200 KiB document change over /ws (SDK handle) converges with a y-websocket provider', async (t) => {
  const srv = await startServer();
  const clients = new Clients();
  const docP = new Y.Doc();
  const provider = new WebsocketProvider(`ws://127.0.0.1:${srv.port}/yjs`, 'doc:large', docP, {
    WebSocketPolyfill: WebSocket as unknown as typeof globalThis.WebSocket,
    disableBc: true,
  });
  t.after(async () => {
    provider.destroy();
    provider.awareness.destroy(); // its renewal timer would keep the process alive
    clients.closeAll();
    await srv.close();
  });
  const c = clients.make(srv.url);
  await c.connect();
  const doc = new Y.Doc();
  const h = openDocument(c, 'doc:large', doc);
  const errors: SwitchboardError[] = [];
  let announced = 0;
  h.on('error', (e) => errors.push(e));
  h.on('opened', (e) => (announced = e.maxMessageBytes));
  await within(h.whenSynced(), 5000, 'handle synced');
  assert.ok(announced > 200 * 1024, `the announced frame limit (${announced}) takes a 200 KiB change`);
  const big = 'x'.repeat(200 * 1024);
  doc.getText('t').insert(0, big);
  const ready = (): boolean => docP.getText('t').length === big.length;
  await within(new Promise<void>((resolve) => {
    const check = (): void => {
      if (!ready()) return;
      docP.off('update', check);
      resolve();
    };
    docP.on('update', check);
    check();
  }), 10_000, 'the provider receives the 200 KiB change');
  assert.equal(docP.getText('t').toString(), big);
  assert.deepEqual(errors, []);
  assert.equal(c.status, 'connected');
  h.destroy();
});
