/**
 * DocumentStore contract (core/ports/document-store.ts) against SQLite (temp file) and PostgreSQL (fresh
 * schema): append order and durability across reopen, load = snapshot + uncompacted updates, compaction
 * keeps the operation log readable, concurrent appends during compaction are not lost, prune.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import * as Y from 'yjs';
import { createStores, type Stores } from '../../src/store/factory.js';
import { mergeUpdates } from '../../src/core/features/documents-holder.js';
import type { DocumentStore } from '../../src/core/ports/document-store.js';

const DATABASE_URL = process.env.DATABASE_URL;
if (!DATABASE_URL) throw new Error('DATABASE_URL is not set: run `eval "$(bash scripts/provision/postgres.sh)"` first (PostgreSQL tests never skip)');

/** Updates of one Y.Doc typing `text` one character at a time. */
function typing(text: string): Uint8Array[] {
  const doc = new Y.Doc();
  const out: Uint8Array[] = [];
  doc.on('update', (u: Uint8Array) => out.push(u));
  for (const ch of text) doc.getText('t').insert(doc.getText('t').length, ch);
  return out;
}

function rebuild(stored: { snapshot: Uint8Array | null; updates: Uint8Array[] }): string {
  const doc = new Y.Doc();
  for (const u of [stored.snapshot, ...stored.updates]) if (u !== null) Y.applyUpdate(doc, u);
  return doc.getText('t').toString();
}

interface Harness {
  open(): Promise<Stores>;
  cleanup(): Promise<void>;
}

function contract(name: string, harness: () => Harness): void {
  describe(`document store: ${name}`, () => {
    let h: Harness;
    let stores: Stores;
    let store: DocumentStore;
    before(async () => {
      h = harness();
      stores = await h.open();
      store = stores.documents!;
    });
    after(async () => {
      await stores.close();
      await h.cleanup();
    });

    it('appends in order, loads them back, and keeps them across a reopen', async () => {
      const updates = typing('hello');
      await store.append('doc:a', updates.slice(0, 2).map((u) => ({ update: u, senderId: 'u1', createdAt: 1 })));
      await store.append('doc:a', updates.slice(2).map((u) => ({ update: u, senderId: null, createdAt: 2 })));
      assert.equal(rebuild(await store.load('doc:a')), 'hello');
      assert.deepEqual(await store.load('doc:unknown'), { snapshot: null, updates: [] });
      await stores.close();
      stores = await h.open();
      store = stores.documents!;
      const loaded = await store.load('doc:a');
      assert.equal(loaded.updates.length, 5);
      assert.equal(rebuild(loaded), 'hello');
    });

    it('compaction folds the log into a snapshot; the log stays readable as history until pruned', async () => {
      const updates = typing('compact me');
      await store.append('doc:c', updates.map((u, i) => ({ update: u, senderId: `u${i % 2}`, createdAt: 1000 + i })));
      assert.equal(await store.compact('doc:c', mergeUpdates), updates.length);
      const loaded = await store.load('doc:c');
      assert.notEqual(loaded.snapshot, null);
      assert.equal(loaded.updates.length, 0);
      assert.equal(rebuild(loaded), 'compact me');
      assert.equal(await store.compact('doc:c', mergeUpdates), 0);

      const page = await store.history('doc:c', { limit: 4 });
      assert.equal(page.records.length, 4);
      assert.equal(page.hasMore, true);
      assert.ok(page.records[0]!.id > page.records[1]!.id, 'newest first');
      const all = await store.history('doc:c', { limit: 100, after: 0 });
      assert.equal(all.records.length, updates.length);
      const replay = new Y.Doc();
      for (const r of all.records) Y.applyUpdate(replay, r.update);
      assert.equal(replay.getText('t').toString(), 'compact me');
      assert.deepEqual(all.records.map((r) => r.senderId), updates.map((_, i) => `u${i % 2}`));

      // Appends after the compaction are loaded on top of the snapshot.
      const more = new Y.Doc();
      Y.applyUpdate(more, loaded.snapshot!);
      const extra: Uint8Array[] = [];
      more.on('update', (u: Uint8Array) => extra.push(u));
      more.getText('t').insert(0, '>');
      await store.append('doc:c', extra.map((u) => ({ update: u, senderId: null, createdAt: 5000 })));
      assert.equal(rebuild(await store.load('doc:c')), '>compact me');

      assert.equal(await store.prune({ keepPerDocument: 3 }), updates.length - 2); // only compacted ones go
      const left = await store.history('doc:c', { limit: 100, after: 0 });
      assert.equal(left.records.length, 3);
      assert.equal(rebuild(await store.load('doc:c')), '>compact me');
    });

    it('appends racing a compaction are never lost', async () => {
      const updates = typing('abcdefghijklmnopqrstuvwxyz');
      await store.append('doc:r', updates.slice(0, 10).map((u) => ({ update: u, senderId: null, createdAt: 1 })));
      await Promise.all([
        store.compact('doc:r', mergeUpdates),
        ...updates.slice(10).map((u) => store.append('doc:r', [{ update: u, senderId: null, createdAt: 2 }])),
      ]);
      assert.equal(rebuild(await store.load('doc:r')), 'abcdefghijklmnopqrstuvwxyz');
      await store.compact('doc:r', mergeUpdates);
      assert.equal(rebuild(await store.load('doc:r')), 'abcdefghijklmnopqrstuvwxyz');
    });
  });
}

contract('sqlite (temp file)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sb-docstore-'));
  return {
    open: () => createStores({ driver: 'sqlite', sqlitePath: join(dir, 'db.sqlite') }),
    cleanup: async () => rmSync(dir, { recursive: true, force: true }),
  };
});

contract('postgres (fresh schema)', () => {
  const schema = `docstore_${process.pid}_${Date.now().toString(36)}`;
  const admin = new pg.Pool({ connectionString: DATABASE_URL, max: 1 });
  const created = admin.query(`CREATE SCHEMA ${schema}`);
  const u = new URL(DATABASE_URL!);
  u.searchParams.set('options', `-c search_path=${schema}`);
  return {
    open: async () => {
      await created;
      return createStores({ driver: 'postgres', postgresUrl: u.toString(), postgresPoolSize: 4 });
    },
    cleanup: async () => {
      await admin.query(`DROP SCHEMA ${schema} CASCADE`);
      await admin.end();
    },
  };
});
