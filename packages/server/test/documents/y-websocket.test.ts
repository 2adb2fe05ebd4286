/**
 * Yjs documents through the y-websocket endpoint (`/yjs/{doc}`), with the unmodified y-websocket
 * WebsocketProvider: convergence, offline edits, read-only clients, awareness, history.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as Y from 'yjs';
import { CloseCode } from '@switchboard/protocol';
import { TestClient, startServer, within, type WatchedServer } from '../helpers.js';
import { SECRET, hmacKey, mint } from '../auth/helpers.js';
import { editor, synced, untilAwareness, untilSame, untilText, type Editor } from './helpers.js';

describe('y-websocket endpoint with unmodified WebsocketProvider', () => {
  let server: WatchedServer;
  const editors: Editor[] = [];
  const open = (room: string, opts: Parameters<typeof editor>[2] = {}): Editor => {
    const e = editor(`${server.ws}/yjs`, room, opts);
    editors.push(e);
    return e;
  };

  before(async () => {
    server = await startServer({
      auth: {
        jwt: { algorithms: ['HS256'], secret: SECRET },
        channels: { default: 'allow', rules: { 'doc:ro:*': { subscribe: 'any', publish: 'role:editor' }, 'doc:secret:*': { subscribe: 'none' } } },
      },
    });
  });
  after(async () => {
    for (const e of editors) e.destroy();
    await server.close();
  });

  it('two providers converge to identical text with concurrent edits', async () => {
    const a = open('doc:converge');
    const b = open('doc:converge');
    await Promise.all([synced(a), synced(b)]);
    // Concurrent: both edit before either sees the other's change.
    for (let i = 0; i < 20; i++) {
      a.text.insert(a.text.length, 'a');
      b.text.insert(0, 'b');
    }
    await untilSame(a, b, (x) => x.length === 40);
    assert.equal(a.text.toString(), b.text.toString());
    assert.equal(a.text.toString().replace(/b/g, '').length, 20);
    // The server holds the same document.
    const state = await server.sb.node.documents.read('doc:converge');
    const copy = new Y.Doc();
    Y.applyUpdate(copy, state);
    assert.equal(copy.getText('t').toString(), a.text.toString());
  });

  it('a client offline for a while merges its edits on reconnect', async () => {
    const a = open('doc:offline');
    const b = open('doc:offline');
    await Promise.all([synced(a), synced(b)]);
    a.text.insert(0, 'hello');
    await untilText(b, 'hello');
    b.provider.disconnect();
    a.text.insert(5, ' world');
    b.text.insert(0, '>> ');
    b.text.insert(b.text.length, ' (offline)');
    assert.equal(a.text.toString(), 'hello world');
    b.provider.connect();
    await untilSame(a, b, (x) => x.includes('world') && x.includes('offline'));
    // Both sides' edits are in, in an order both agree on.
    const merged = a.text.toString();
    assert.ok(merged.startsWith('>> hello'), merged);
    assert.deepEqual([...merged.matchAll(/ world| \(offline\)/g)].map((m) => m[0]).sort(), [' (offline)', ' world']);
    assert.equal(merged.length, '>> hello world (offline)'.length);
  });

  it('read-only clients (channel rules deny publish) cannot change the document and are told so', async () => {
    const token = await mint({ alg: 'HS256', key: hmacKey(), sub: 'writer', claims: { roles: ['editor'] } });
    const writer = open('doc:ro:1', { params: { token } });
    const reader = open('doc:ro:1');
    await Promise.all([synced(writer), synced(reader)]);
    writer.text.insert(0, 'from the writer');
    await untilText(reader, 'from the writer');

    // The provider reports y-protocols' "permission denied" message with console.warn.
    const warnings: string[] = [];
    const warn = console.warn;
    const warned = new Promise<void>((resolve) => {
      console.warn = (...args: unknown[]) => {
        warnings.push(args.join(' '));
        resolve();
      };
    });
    try {
      reader.text.insert(0, 'VANDAL ');
      await within(warned, 5000, 'the permission-denied warning');
    } finally {
      console.warn = warn;
    }
    assert.match(warnings[0]!, /Permission denied/);
    assert.match(warnings[0]!, /read-only/);
    // The writer never gets it, the server does not have it; a new reader sees the writer's text only.
    writer.text.insert(writer.text.length, '!');
    await untilText(reader, 'VANDAL from the writer!');
    const fresh = open('doc:ro:1');
    await synced(fresh);
    await untilText(fresh, 'from the writer!');
    assert.equal(writer.text.toString(), 'from the writer!');
  });

  it('a client channel rules do not let read the document is closed with 4403 and the provider stops', async () => {
    const e = open('doc:secret:1');
    const closed = new Promise<{ code: number }>((resolve) => e.provider.once('closed', (ev) => resolve(ev)));
    const warn = console.warn;
    console.warn = () => undefined; // the provider logs the permission-denied reason
    try {
      assert.equal((await within(closed, 5000, 'the provider to give up')).code, CloseCode.DOCUMENT_FORBIDDEN);
    } finally {
      console.warn = warn;
    }
    assert.equal(e.provider.shouldConnect, false);
  });

  it('awareness: a provider sees the other one\'s cursor, and it disappears when that one leaves', async () => {
    const a = open('doc:cursors');
    const b = open('doc:cursors');
    await Promise.all([synced(a), synced(b)]);
    a.provider.awareness.setLocalStateField('cursor', { index: 3 });
    await untilAwareness(b, (s) => (s.get(a.doc.clientID)?.cursor as { index: number } | undefined)?.index === 3, 'a\'s cursor at b');
    a.provider.destroy();
    await untilAwareness(b, (s) => !s.has(a.doc.clientID), 'a\'s entry gone at b');
  });

  it('the update log is the operation history, readable through the history API', async () => {
    const a = open('doc:history');
    await synced(a);
    a.text.insert(0, 'one');
    a.text.insert(3, ' two');
    const b = open('doc:history');
    await untilText(b, 'one two');
    const client = await TestClient.connect(`${server.ws}/ws`);
    const page = await client.request('history', { channel: 'doc:history', limit: 10 });
    client.close();
    assert.equal(page.type, 'history', JSON.stringify(page));
    const body = page.data as { publications: Array<{ type: string; seq: number; data: { update: string } }> };
    assert.ok(body.publications.length >= 2, JSON.stringify(body));
    const replay = new Y.Doc();
    for (const p of body.publications) {
      assert.equal(p.type, 'doc_update');
      Y.applyUpdate(replay, Buffer.from(p.data.update, 'base64'));
    }
    assert.equal(replay.getText('t').toString(), 'one two');
  });
});

describe('y-websocket endpoint without a store', () => {
  it('every update reaches another peer exactly once (no store: relayed as received, before the server applies it)', async () => {
    const server = await startServer({ store: { driver: 'none' } });
    const a = editor(`${server.ws}/yjs`, 'doc:once');
    const b = editor(`${server.ws}/yjs`, 'doc:once');
    await Promise.all([synced(a), synced(b)]);
    // A plain socket on the same document: it sees the update messages themselves.
    const raw = new (await import('ws')).WebSocket(`${server.ws}/yjs/doc:once`);
    const seen = new Y.Doc();
    let updates = 0;
    raw.on('message', (data: Buffer) => {
      const m = new Uint8Array(data);
      if (m[0] !== 0 || m[1] !== 2) return; // sync / update
      updates++;
      Y.applyUpdate(seen, m.subarray(3 + (m[2]! >= 128 ? 1 : 0)));
    });
    try {
      await within(new Promise((r) => raw.once('open', r)), 5000, 'the raw socket to open');
      // Its arrival is an awareness/sync exchange only; from now on every change of a and b is one update.
      for (let i = 0; i < 20; i++) a.text.insert(a.text.length, String(i % 10));
      await untilText(b, '01234567890123456789');
      b.text.insert(0, 'Z'); // the sentinel: everything before it has arrived once it has
      const hasSentinel = () => seen.getText('t').toString().startsWith('Z');
      await within(new Promise<void>((resolve) => {
        const check = () => { if (hasSentinel()) { raw.off('message', check); resolve(); } };
        raw.on('message', check);
        check();
      }), 5000, 'the sentinel at the raw socket');
      assert.equal(seen.getText('t').toString(), 'Z01234567890123456789');
      assert.equal(updates, 21, 'one update message per change, none twice');
    } finally {
      raw.terminate();
      a.destroy();
      b.destroy();
      await server.close();
    }
  });
});
