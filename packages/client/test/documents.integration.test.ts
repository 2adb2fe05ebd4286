// Yjs documents through the SDK (`@switchboard/client/yjs`) against a REAL Switchboard server over real
// sockets: two SDK clients, an SDK client and the UNMODIFIED y-websocket WebsocketProvider (Node, `ws`),
// offline edits merged on reconnect (TCP proxy cut), read-only refusal, final refusals.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WebSocket } from 'ws';
import * as Y from 'yjs';
import { Awareness } from 'y-protocols/awareness';
import { WebsocketProvider } from 'y-websocket';
import type { Publication, SwitchboardClient, SwitchboardError } from '@switchboard/client';
import { openDocument, type DocumentHandle } from '@switchboard/client/yjs';
import { setupProxied, startServer, Clients, within } from './helpers.js';

/** Anything that tells us something may have changed: doc updates, awareness changes, handle events. */
type Source = Y.Doc | Awareness | DocumentHandle | SwitchboardClient;

/**
 * Resolves once `cond()` holds: checked now and after every event of `sources` (doc `update`, awareness
 * `change`, handle / client events), in a microtask. Event-driven, no polling; fails naming `what`.
 */
function until(sources: Source[], cond: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  if (cond()) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const offs: Array<() => void> = [];
    const stop = (): void => {
      clearTimeout(timer);
      for (const off of offs) off();
    };
    const check = (): void => {
      if (!cond()) return;
      stop();
      resolve();
    };
    const onEvent = (): void => queueMicrotask(check);
    for (const s of sources) {
      if (s instanceof Y.Doc) {
        s.on('update', onEvent);
        offs.push(() => s.off('update', onEvent));
      } else if (s instanceof Awareness) {
        s.on('change', onEvent);
        offs.push(() => s.off('change', onEvent));
      } else if ('whenSynced' in s) {
        for (const e of ['state', 'opened', 'synced', 'error', 'ended'] as const) offs.push(s.on(e, onEvent));
      } else {
        for (const e of ['frame', 'status', 'error'] as const) offs.push(s.on(e, onEvent));
      }
    }
    const timer = setTimeout(() => {
      stop();
      reject(new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`));
    }, timeoutMs);
  });
}

const text = (doc: Y.Doc): string => doc.getText('t').toString();

/** A `ws` constructor counting the sockets it made (the SDK must use one for chat and documents). */
function countingWebSocket(): { Ctor: typeof WebSocket; count: () => number } {
  let n = 0;
  class Counting extends WebSocket {
    constructor(url: string) {
      super(url);
      n++;
    }
  }
  return { Ctor: Counting as unknown as typeof WebSocket, count: () => n };
}

test('two SDK clients: concurrent edits converge, awareness relayed, chat on the same WebSocket', async (t) => {
  const { srv, clients, proxy } = await setupProxied(t);
  const sockets = countingWebSocket();
  const a = clients.make(proxy.url, { username: 'ann', params: { user_id: 'ann' }, WebSocket: sockets.Ctor });
  const b = clients.make(proxy.url, { username: 'bob', params: { user_id: 'bob' }, WebSocket: sockets.Ctor });
  await a.connect();
  await b.connect();

  const docA = new Y.Doc();
  const docB = new Y.Doc();
  const awA = new Awareness(docA);
  const awB = new Awareness(docB);
  t.after(() => {
    awA.destroy();
    awB.destroy();
  });
  awA.setLocalState({ user: { name: 'ann' }, cursor: null });
  awB.setLocalState({ user: { name: 'bob' }, cursor: null });
  docA.getText('t').insert(0, 'hello');
  const ha = openDocument(a, 'doc:two-sdk', docA, { awareness: awA });
  await within(ha.whenSynced(), 5000, 'ann synced');
  assert.equal(ha.writable, true);
  const hb = openDocument(b, 'doc:two-sdk', docB, { awareness: awB });
  await within(hb.whenSynced(), 5000, 'bob synced');
  assert.equal(text(docB), 'hello', 'the second client gets the document on open');

  // Concurrent edits: both type before seeing each other's change.
  docA.getText('t').insert(5, ' from ann');
  docB.getText('t').insert(0, 'bob says: ');
  for (let i = 0; i < 20; i++) {
    docA.getText('t').insert(docA.getText('t').length, String(i % 10));
    docB.getText('t').insert(0, String.fromCharCode(97 + (i % 26)));
  }
  await until([docA, docB], () => text(docA) === text(docB) && text(docA).length === 'hello from ann'.length + 'bob says: '.length + 40, 'both docs converge');
  assert.match(text(docA), /hello from ann/);
  assert.match(text(docA), /bob says: /);

  // Awareness: each sees the other's state, cursor updates included.
  await until([awA, awB], () => awA.getStates().get(docB.clientID)?.user?.name === 'bob' && awB.getStates().get(docA.clientID)?.user?.name === 'ann', 'each sees the other in awareness');
  awB.setLocalStateField('cursor', { anchor: 3, head: 7 });
  await until([awA], () => awA.getStates().get(docB.clientID)?.cursor?.head === 7, 'ann sees bob move his cursor');

  // Chat beside the document on the same connection.
  const sub = b.subscribe('room:side');
  const got: Publication[] = [];
  sub.on('message', (p) => got.push(p));
  await sub.ready();
  await a.publish('room:side', { text: 'see the doc' });
  await until([b], () => got.length === 1, 'bob gets the chat message');
  assert.equal(sockets.count(), 2, 'one WebSocket per client for chat and documents');
  assert.equal(srv.sb.node.stats().connections, 2);

  // The server holds the same document.
  const stored = new Y.Doc();
  Y.applyUpdate(stored, await srv.sb.node.documents.read('doc:two-sdk'));
  assert.equal(text(stored), text(docA));

  // destroy(): the document closes on the server; the other client sees the awareness entry go.
  hb.destroy();
  assert.equal(hb.state, 'destroyed');
  await until([awA], () => !awA.getStates().has(docB.clientID), 'bob leaves ann\'s awareness when his handle is destroyed');
  docB.getText('t').insert(0, 'not sent ');
  docA.getText('t').insert(0, '!');
  await until([docA], () => text(docA).startsWith('!'), 'ann still edits');
  assert.ok(!text(docA).includes('not sent'), 'a destroyed handle sends nothing');
  ha.destroy();
});

test('SDK client and an unmodified y-websocket WebsocketProvider converge on the same document', async (t) => {
  const srv = await startServer();
  const clients = new Clients();
  const providers: WebsocketProvider[] = [];
  t.after(async () => {
    for (const p of providers) p.destroy();
    clients.closeAll();
    await srv.close();
  });
  const client = clients.make(srv.url, { username: 'sdk' });
  await client.connect();
  const sdkDoc = new Y.Doc();
  const sdkAw = new Awareness(sdkDoc);
  t.after(() => sdkAw.destroy()); // its renewal timer would keep the process alive
  sdkAw.setLocalState({ user: { name: 'sdk' } });
  const handle = openDocument(client, 'doc:mixed', sdkDoc, { awareness: sdkAw });
  sdkDoc.getText('t').insert(0, 'from the sdk. ');
  await within(handle.whenSynced(), 5000, 'sdk synced');

  const yDoc = new Y.Doc();
  const provider = new WebsocketProvider(`ws://127.0.0.1:${srv.port}/yjs`, 'doc:mixed', yDoc, { WebSocketPolyfill: WebSocket as never, disableBc: true });
  providers.push(provider);
  provider.awareness.setLocalState({ user: { name: 'provider' } });
  t.after(() => provider.awareness.destroy());
  await within(new Promise<void>((resolve) => (provider.synced ? resolve() : provider.once('sync', (s: boolean) => s && resolve()))), 5000, 'provider synced');
  assert.equal(text(yDoc), 'from the sdk. ');

  // Concurrent edits from both sides.
  yDoc.getText('t').insert(0, '[provider] ');
  sdkDoc.getText('t').insert(sdkDoc.getText('t').length, '[sdk]');
  yDoc.getText('t').insert(yDoc.getText('t').length, ' tail');
  await until([sdkDoc, yDoc], () => text(sdkDoc) === text(yDoc) && text(yDoc).includes('[sdk]') && text(sdkDoc).includes('tail'), 'sdk and provider converge');

  // Awareness both ways.
  await until([sdkAw, provider.awareness], () => sdkAw.getStates().get(yDoc.clientID)?.user?.name === 'provider' && provider.awareness.getStates().get(sdkDoc.clientID)?.user?.name === 'sdk', 'awareness both ways');

  // The provider leaves: its entry disappears from the SDK's awareness.
  provider.disconnect();
  await until([sdkAw], () => !sdkAw.getStates().has(yDoc.clientID), 'the provider\'s awareness entry is removed when it leaves');
  handle.destroy();
});

test('offline edits on both sides merge when the connection comes back', async (t) => {
  const { srv, clients, proxy } = await setupProxied(t);
  const a = clients.make(proxy.url, { username: 'ann' }); // through the proxy: her connection can be cut
  const b = clients.make(srv.url, { username: 'bob', batch: true }); // batch frames and binary frames mixed
  await a.connect();
  await b.connect();
  const docA = new Y.Doc();
  const docB = new Y.Doc();
  const awA = new Awareness(docA);
  const awB = new Awareness(docB);
  t.after(() => {
    awA.destroy();
    awB.destroy();
  });
  awA.setLocalState({ user: { name: 'ann' } });
  awB.setLocalState({ user: { name: 'bob' } });
  const ha = openDocument(a, 'doc:offline', docA, { awareness: awA });
  const hb = openDocument(b, 'doc:offline', docB, { awareness: awB });
  docA.getText('t').insert(0, 'base.');
  await within(Promise.all([ha.whenSynced(), hb.whenSynced()]), 5000, 'both synced');
  await until([docB], () => text(docB) === 'base.', 'bob has the base text');
  await until([awA, awB], () => awA.getStates().has(docB.clientID) && awB.getStates().has(docA.clientID), 'awareness both ways');

  // Ann goes offline (connections cut, new ones refused) and edits; Bob keeps editing online.
  proxy.mode = 'refuse';
  proxy.cut();
  await until([a, ha, awB], () => ha.state === 'opening' && !awB.getStates().has(docA.clientID), 'ann\'s handle sees the drop; bob sees her leave');
  docA.getText('t').insert(0, 'ann offline 1. ');
  docA.getText('t').insert(docA.getText('t').length, ' ann offline 2.');
  docB.getText('t').insert(5, ' bob offline.');
  assert.equal(ha.synced, false);
  assert.deepEqual([...awA.getStates().keys()], [docA.clientID], 'remote awareness states are dropped while offline');

  proxy.mode = 'forward';
  assert.equal(hb.synced, true, 'bob stays online');
  await within(ha.whenSynced(), 10_000, 'ann resynced after reconnect');
  await until([docA, docB], () => text(docA) === text(docB) && text(docA).includes('ann offline 2.') && text(docA).includes('bob offline.'), 'offline edits merged');
  assert.match(text(docA), /^ann offline 1\. base\./);
  // Presence comes back without anyone changing their state (the server had removed both entries).
  await until([awA], () => awA.getStates().get(docB.clientID)?.user?.name === 'bob', 'ann sees bob again after the reconnect');
  await until([awB], () => awB.getStates().get(docA.clientID)?.user?.name === 'ann', 'bob sees ann again after the reconnect');

  // And live editing goes on after the resync.
  docB.getText('t').insert(0, '>');
  await until([docA], () => text(docA).startsWith('>'), 'live edits after the resync');
  ha.destroy();
  hb.destroy();
});

test('read-only: the server drops the changes of a client without publish rights and says so', async (t) => {
  const srv = await startServer({}, {
    hooks: {
      authorizeChannel: (info, action) =>
        action === 'publish' && info.userId === 'reader' ? { allowed: false, code: 'FORBIDDEN', message: 'readers cannot write' } : { allowed: true },
    },
  });
  const clients = new Clients();
  t.after(async () => {
    clients.closeAll();
    await srv.close();
  });
  const writer = clients.make(srv.url, { username: 'writer', params: { user_id: 'writer' } });
  const reader = clients.make(srv.url, { username: 'reader', params: { user_id: 'reader' } });
  await writer.connect();
  await reader.connect();
  const docW = new Y.Doc();
  const docR = new Y.Doc();
  const hw = openDocument(writer, 'doc:ro', docW);
  docW.getText('t').insert(0, 'the original');
  await within(hw.whenSynced(), 5000, 'writer synced');
  const hr = openDocument(reader, 'doc:ro', docR);
  const errors: SwitchboardError[] = [];
  hr.on('error', (e) => errors.push(e));
  await within(hr.whenSynced(), 5000, 'reader synced');
  assert.equal(hw.writable, true);
  assert.equal(hr.writable, false, 'doc_opened says the reader may not write');
  assert.equal(text(docR), 'the original', 'a reader reads');

  docR.getText('t').insert(0, 'VANDALISED ');
  await until([hr], () => errors.some((e) => e.code === 'READ_ONLY'), 'the reader is told its change was dropped');
  assert.equal(errors.find((e) => e.code === 'READ_ONLY')!.temporary, false);

  // The writer's later change reaches the reader; the reader's never reaches the writer or the server.
  docW.getText('t').insert(docW.getText('t').length, ' + more');
  await until([docR], () => text(docR).endsWith(' + more'), 'the reader still receives changes');
  const server = new Y.Doc();
  Y.applyUpdate(server, await srv.sb.node.documents.read('doc:ro'));
  assert.equal(text(server), 'the original + more');
  assert.equal(text(docW), 'the original + more');
  hw.destroy();
  hr.destroy();
});

test('final refusals end the handle; one handle per channel and client', async (t) => {
  const { clients, proxy } = await setupProxied(t);
  const c = clients.make(proxy.url);
  await c.connect();
  const doc = new Y.Doc();
  const h = openDocument(c, 'room:not-a-doc', doc);
  const ended: SwitchboardError[] = [];
  h.on('ended', (e) => ended.push(e));
  await assert.rejects(within(h.whenSynced(), 5000, 'refusal'), (e: SwitchboardError) => e.code === 'NOT_A_DOCUMENT');
  assert.equal(h.state, 'ended');
  assert.equal(ended.length, 1);

  const d2 = new Y.Doc();
  const h2 = openDocument(c, 'doc:once', d2);
  assert.throws(() => openDocument(c, 'doc:once', new Y.Doc()), /already open/);
  await within(h2.whenSynced(), 5000, 'synced');
  h2.destroy();
  // After destroy the channel is free again, and a new handle syncs what the first one wrote.
  d2.getText('t').insert(0, 'x');
  const d3 = new Y.Doc();
  const h3 = openDocument(c, 'doc:once', d3);
  await within(h3.whenSynced(), 5000, 'reopened');
  assert.equal(text(d3), '', 'changes after destroy were not sent');
  h3.destroy();
});

test('a change over the server\'s document frame limit is not sent: INVALID_UPDATE on the handle, the connection stays up', async (t) => {
  // The frame limit of document frames: documents.maxUpdateBytes + 1024 + 3 × limits.maxChannelNameLength.
  const { clients, proxy } = await setupProxied(t, { limits: { maxMessageBytes: 4096 }, documents: { maxUpdateBytes: 8192 } });
  const c = clients.make(proxy.url);
  const statuses: string[] = [];
  c.on('status', ({ status }) => statuses.push(status));
  await c.connect();
  const doc = new Y.Doc();
  const h = openDocument(c, 'doc:big', doc);
  const errors: SwitchboardError[] = [];
  h.on('error', (e) => errors.push(e));
  await within(h.whenSynced(), 5000, 'synced');
  doc.getText('t').insert(0, 'x'.repeat(10_000));
  assert.equal(errors.length, 1);
  assert.equal(errors[0]!.code, 'INVALID_UPDATE');
  assert.match(errors[0]!.message, /frame limit of 9816 bytes/);
  // Still connected and open: a request round trip on the same connection answers.
  const ack = await c.publish('room:beside', { text: 'still here' });
  assert.equal(typeof ack.offset, 'number');
  assert.equal(c.status, 'connected');
  assert.deepEqual(statuses, ['connecting', 'connected'], 'never disconnected');
  assert.equal(h.state, 'synced');
  h.destroy();
});
