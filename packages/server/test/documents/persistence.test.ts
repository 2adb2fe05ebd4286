/**
 * The document write path with a store: updates are in the store before anyone else sees them, the log is
 * compacted into a snapshot every `documents.compactAfterUpdates` updates, and an idle document is dropped
 * from memory and loaded again from the store.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as Y from 'yjs';
import { createStores, type Stores } from '../../src/store/factory.js';
import { pollUntil, startServer, type WatchedServer } from '../helpers.js';
import { RawYSocket, editor, synced, untilText, type Editor } from './helpers.js';
import type { DocumentStore } from '../../src/core/ports/document-store.js';

describe('document persistence and compaction (SQLite)', () => {
  let stores: Stores;
  let server: WatchedServer;
  const editors: Editor[] = [];
  const open = (room: string): Editor => {
    const e = editor(`${server.ws}/yjs`, room);
    editors.push(e);
    return e;
  };

  before(async () => {
    stores = await createStores({ driver: 'sqlite', sqlitePath: ':memory:' });
    server = await startServer({ documents: { compactAfterUpdates: 5, idleDocuments: 0, idleTtlMs: 0 } }, { stores });
  });
  after(async () => {
    for (const e of editors) e.destroy();
    await server.close();
    await stores.close();
  });

  it('every compactAfterUpdates updates the log is folded into a snapshot; the history keeps every update', async () => {
    const a = open('doc:compact');
    const b = open('doc:compact');
    await Promise.all([synced(a), synced(b)]);
    for (let i = 0; i < 12; i++) a.text.insert(i, String(i % 10));
    await untilText(b, '012345678901');
    // Compaction runs in the background after the store write; nothing announces it to clients.
    await pollUntil(async () => (await stores.documents!.load('doc:compact')).snapshot !== null, 5000, 'a snapshot');
    const stored = await stores.documents!.load('doc:compact');
    assert.ok(stored.updates.length < 12, `uncompacted: ${stored.updates.length}`);
    const d = new Y.Doc();
    for (const u of [stored.snapshot, ...stored.updates]) if (u !== null) Y.applyUpdate(d, u);
    assert.equal(d.getText('t').toString(), '012345678901');
    const page = await server.sb.node.channelHistory('doc:compact', { limit: 100 });
    assert.equal(page.publications.length, 12);
  });

  it('a document nobody has open is dropped from memory and loaded from the store on next use', async () => {
    const a = open('doc:idle');
    await synced(a);
    a.text.insert(0, 'persisted');
    const b = open('doc:idle');
    await untilText(b, 'persisted');
    a.provider.disconnect();
    b.provider.disconnect();
    // idleDocuments 0, idleTtlMs 0: dropped at the next sweep (a timer; nothing to wait on but the count).
    const docs = server.sb.node.documents;
    await pollUntil(() => !docs.holds('doc:idle'), 5000, 'the idle document dropped');
    const c = open('doc:idle');
    await synced(c);
    assert.equal(c.text.toString(), 'persisted');
  });
});

describe('document write path: stored before relayed', () => {
  it('no other client sees an update before the store has committed it', async () => {
    const real = await createStores({ driver: 'sqlite', sqlitePath: ':memory:' });
    // The real store, with a gate on append the test opens (to hold a write "in flight").
    let gate: { opened: Promise<void>; open: () => void } | null = null;
    let appendCalled: () => void = () => undefined;
    const called = new Promise<void>((resolve) => { appendCalled = resolve; });
    const documents: DocumentStore = Object.create(real.documents!) as DocumentStore;
    documents.append = async (doc, updates) => {
      if (gate !== null) {
        appendCalled();
        await gate.opened;
      }
      return real.documents!.append(doc, updates);
    };
    const server = await startServer({}, { stores: { ...real, documents } });
    const a = editor(`${server.ws}/yjs`, 'doc:gate');
    try {
      await synced(a);
      const raw = await RawYSocket.open(`${server.ws}/yjs/doc:gate`);
      await raw.until(() => raw.messages.length >= 1, 'the server sync step 1');
      let open: () => void = () => undefined;
      gate = { opened: new Promise<void>((resolve) => { open = resolve; }), open: () => open() };
      a.text.insert(0, 'x');
      await called; // applied on the server, being stored
      const before = raw.messages.length;
      raw.send(new Uint8Array([3])); // query awareness: the answer comes after anything queued before it
      await raw.until(() => raw.messages.slice(before).some((m) => m[0] === 1), 'the awareness answer');
      const isUpdate = (m: Uint8Array): boolean => m[0] === 0 && m[1] === 2;
      assert.equal(raw.messages.slice(before).filter(isUpdate).length, 0, 'an update was relayed before it was stored');
      gate.open();
      await raw.until(() => raw.messages.slice(before).some(isUpdate), 'the update, once stored');
      raw.ws.close();
    } finally {
      a.destroy();
      await server.close();
      await real.close();
    }
  });

  it('a failed store write is retried every storeRetryMs; the update waits, unrelayed, and is relayed once stored', async () => {
    const real = await createStores({ driver: 'sqlite', sqlitePath: ':memory:' });
    let failures = 0; // appends to fail from now on
    let attempts = 0;
    let failed: () => void = () => undefined;
    const twoFailed = new Promise<void>((resolve) => { failed = resolve; });
    // The retry after the failures waits here until the test has checked that nothing was relayed.
    let reopen: () => void = () => undefined;
    const storeBack = new Promise<void>((resolve) => { reopen = resolve; });
    let down = false;
    const documents: DocumentStore = Object.create(real.documents!) as DocumentStore;
    documents.append = async (doc, updates) => {
      if (failures > 0) {
        attempts++;
        failures--;
        if (failures === 0) failed();
        throw new Error('store down (test)');
      }
      if (down) await storeBack;
      return real.documents!.append(doc, updates);
    };
    const server = await startServer({ documents: { storeRetryMs: 50 } }, { stores: { ...real, documents } });
    const a = editor(`${server.ws}/yjs`, 'doc:retry');
    try {
      await synced(a);
      const raw = await RawYSocket.open(`${server.ws}/yjs/doc:retry`);
      await raw.until(() => raw.messages.length >= 1, 'the server sync step 1');
      const before = raw.messages.length;
      const isUpdate = (m: Uint8Array): boolean => m[0] === 0 && m[1] === 2;
      failures = 2;
      down = true;
      a.text.insert(0, 'kept');
      await twoFailed; // two attempts refused by the store
      raw.send(new Uint8Array([3])); // query awareness: answered after anything queued before it
      await raw.until(() => raw.messages.slice(before).some((m) => m[0] === 1), 'the awareness answer');
      assert.equal(raw.messages.slice(before).filter(isUpdate).length, 0, 'relayed although the store refused it');
      reopen();
      await raw.until(() => raw.messages.slice(before).some(isUpdate), 'the update, once the retry stored it');
      assert.equal(attempts, 2);
      const stored = await real.documents!.load('doc:retry');
      const d = new Y.Doc();
      for (const u of [stored.snapshot, ...stored.updates]) if (u !== null) Y.applyUpdate(d, u);
      assert.equal(d.getText('t').toString(), 'kept');
      raw.ws.close();
    } finally {
      a.destroy();
      await server.close();
      await real.close();
    }
  });
});
