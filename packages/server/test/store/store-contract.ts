/**
 * Shared contract suite for MessageStore + InboxStore. Every implementation runs it through a harness that
 * opens a FRESH, empty, migrated database per test (SQLite: new temp file; PostgreSQL: new schema).
 */
import { describe, it, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import type { InboxStore, MessageStore, StoredPublication } from '../../src/core/ports/store.js';

export interface OpenOptions {
  now: () => number;
  inboxMaxPerUser?: number;
}

export interface OpenedStores {
  messages: MessageStore;
  inbox: InboxStore;
  close(): Promise<void>;
}

export interface StoreHarness {
  /** A fresh empty database (migrated). */
  create(opts: OpenOptions): Promise<OpenedStores>;
  /** Open the SAME database as the last `create` again (after it was closed). */
  reopen(opts: OpenOptions): Promise<OpenedStores>;
  /** Drop whatever `create` made (called after each test). */
  destroy(): Promise<void>;
}

/** A clock the tests move by hand. */
class FakeClock {
  t = 1_700_000_000_000;
  now = (): number => this.t;
}

export function pub(channel: string, offset: number, over: Partial<StoredPublication> = {}): StoredPublication {
  return {
    channel,
    offset,
    epoch: over.epoch ?? 'e1',
    messageId: over.messageId ?? `m-${channel}-${over.epoch ?? 'e1'}-${offset}`,
    senderId: over.senderId === undefined ? 'u1' : over.senderId,
    frame: over.frame ?? JSON.stringify({ type: 'message', channel, data: { content: `msg ${offset}` } }),
    createdAt: over.createdAt ?? 1_700_000_000_000 + offset,
  };
}

async function rejectsWithCode(p: Promise<unknown> | (() => Promise<unknown>), code: string): Promise<void> {
  await assert.rejects(typeof p === 'function' ? p() : p, (err: unknown) => {
    assert.equal((err as { code?: string }).code, code, `expected code ${code}, got ${String(err)}`);
    return true;
  });
}

const offsets = (recs: StoredPublication[]): number[] => recs.map((r) => r.offset);

export function runStoreContract(name: string, harness: StoreHarness): void {
  describe(`store contract: ${name}`, () => {
    let clock: FakeClock;
    let s: OpenedStores;

    beforeEach(async () => {
      clock = new FakeClock();
      s = await harness.create({ now: clock.now, inboxMaxPerUser: 3 });
    });
    afterEach(async () => {
      await s.close();
      await harness.destroy();
    });

    async function fill(channel: string, n: number, epoch = 'e1'): Promise<void> {
      for (let i = 1; i <= n; i++) await s.messages.append(pub(channel, i, { epoch }));
    }

    describe('MessageStore', () => {
      it('migrate is idempotent; an empty channel has no history and no latest', async () => {
        await s.messages.migrate();
        await s.inbox.migrate();
        assert.equal(await s.messages.latest('room'), null);
        assert.deepEqual(await s.messages.history('room', { limit: 10 }), { records: [], hasMore: false });
      });

      it('stores every field verbatim and returns the newest as latest', async () => {
        const rec = pub('room', 1, { senderId: null, frame: '{"type":"message","data":{"t":"é \\" \' ✓"}}' });
        await s.messages.append(rec);
        await s.messages.append(pub('room', 2));
        const page = await s.messages.history('room', { limit: 10, after: 0 });
        assert.deepEqual(page.records[0], rec);
        assert.equal((await s.messages.latest('room'))?.offset, 2);
      });

      it('pages newest first with `before` until the start, with hasMore', async () => {
        await fill('room', 7);
        const p1 = await s.messages.history('room', { limit: 3 });
        assert.deepEqual(offsets(p1.records), [7, 6, 5]);
        assert.equal(p1.hasMore, true);
        const p2 = await s.messages.history('room', { limit: 3, before: 5 });
        assert.deepEqual(offsets(p2.records), [4, 3, 2]);
        assert.equal(p2.hasMore, true);
        const p3 = await s.messages.history('room', { limit: 3, before: 2 });
        assert.deepEqual(offsets(p3.records), [1]);
        assert.equal(p3.hasMore, false);
      });

      it('pages oldest first with `after` (recovery form), bounded by `before` when given', async () => {
        await fill('room', 7);
        const p1 = await s.messages.history('room', { limit: 3, after: 0 });
        assert.deepEqual(offsets(p1.records), [1, 2, 3]);
        assert.equal(p1.hasMore, true);
        const p2 = await s.messages.history('room', { limit: 3, after: 3 });
        assert.deepEqual(offsets(p2.records), [4, 5, 6]);
        const p3 = await s.messages.history('room', { limit: 3, after: 6 });
        assert.deepEqual(offsets(p3.records), [7]);
        assert.equal(p3.hasMore, false);
        const range = await s.messages.history('room', { limit: 10, after: 2, before: 6 });
        assert.deepEqual(offsets(range.records), [3, 4, 5]);
        assert.equal(range.hasMore, false);
      });

      it('serves the seed-000 limit/offset form: skip the N newest', async () => {
        await fill('room', 10);
        assert.deepEqual(offsets((await s.messages.history('room', { limit: 3, skip: 0 })).records), [10, 9, 8]);
        assert.deepEqual(offsets((await s.messages.history('room', { limit: 3, skip: 3 })).records), [7, 6, 5]);
        const last = await s.messages.history('room', { limit: 3, skip: 9 });
        assert.deepEqual(offsets(last.records), [1]);
        assert.equal(last.hasMore, false);
        assert.deepEqual((await s.messages.history('room', { limit: 3, skip: 50 })).records, []);
      });

      it('keeps channels apart and pages within the current epoch unless another is named', async () => {
        await fill('a', 3, 'old');
        await fill('b', 2);
        await fill('a', 2, 'new');
        assert.deepEqual(offsets((await s.messages.history('a', { limit: 10 })).records), [2, 1]);
        const old = await s.messages.history('a', { limit: 10, epoch: 'old', after: 1 });
        assert.deepEqual(offsets(old.records), [2, 3]);
        assert.ok(old.records.every((r) => r.epoch === 'old' && r.channel === 'a'));
        assert.equal((await s.messages.latest('a'))?.epoch, 'new');
        assert.deepEqual(offsets((await s.messages.history('b', { limit: 10 })).records), [2, 1]);
      });

      it('treats a repeated append as a no-op and a different message at a taken position as STORE_CONFLICT', async () => {
        await s.messages.append(pub('room', 1));
        await s.messages.append(pub('room', 1));
        await rejectsWithCode(s.messages.append(pub('room', 1, { messageId: 'other' })), 'STORE_CONFLICT');
        const page = await s.messages.history('room', { limit: 10 });
        assert.equal(page.records.length, 1);
        assert.equal(page.records[0].messageId, pub('room', 1).messageId);
      });

      it('appendMany writes a batch, and writes nothing when one record conflicts', async () => {
        assert.ok(s.messages.appendMany, 'appendMany is implemented');
        await s.messages.appendMany([pub('room', 1), pub('room', 2), pub('room', 3)]);
        assert.deepEqual(offsets((await s.messages.history('room', { limit: 10, after: 0 })).records), [1, 2, 3]);
        await rejectsWithCode(
          s.messages.appendMany([pub('room', 4), pub('room', 2, { messageId: 'clash' })]),
          'STORE_CONFLICT',
        );
        assert.equal((await s.messages.latest('room'))?.offset, 3);
      });

      it('prunes by age and by count per channel', async () => {
        for (let i = 1; i <= 6; i++) await s.messages.append(pub('a', i, { createdAt: clock.t - (7 - i) * 1000 }));
        for (let i = 1; i <= 2; i++) await s.messages.append(pub('b', i, { createdAt: clock.t }));
        // a1..a6 are 6s..1s old: keep the ones younger than 3.5s (a4, a5, a6).
        assert.equal(await s.messages.prune({ olderThanMs: 3500 }), 3);
        assert.deepEqual(offsets((await s.messages.history('a', { limit: 10 })).records), [6, 5, 4]);
        assert.equal(await s.messages.prune({ keepPerChannel: 1 }), 3);
        assert.deepEqual(offsets((await s.messages.history('a', { limit: 10 })).records), [6]);
        assert.deepEqual(offsets((await s.messages.history('b', { limit: 10 })).records), [2]);
        assert.equal(await s.messages.prune({}), 0);
      });

      it('keeps every concurrent append, in offset order, per channel', async () => {
        const channels = ['c0', 'c1', 'c2', 'c3'];
        const jobs: Promise<void>[] = [];
        for (let i = 1; i <= 25; i++) for (const c of channels) jobs.push(s.messages.append(pub(c, i)));
        await Promise.all(jobs);
        for (const c of channels) {
          const page = await s.messages.history(c, { limit: 100, after: 0 });
          assert.deepEqual(offsets(page.records), Array.from({ length: 25 }, (_, i) => i + 1));
        }
      });

      it('stores SQL-injection-looking channel names verbatim and keeps them apart', async () => {
        const names = [
          "x'; DROP TABLE sb_messages; --",
          'room" OR "1"="1',
          "Robert'); DELETE FROM sb_inbox; --",
          '%_\\% LIKE *',
          '$1 ? ?? :name @p',
          'ünï©ødé 🚀',
        ];
        for (const [i, n] of names.entries()) await s.messages.append(pub(n, 1, { frame: JSON.stringify({ n, i }) }));
        await s.inbox.put("u'; DROP TABLE sb_inbox; --", { id: "i' OR 1=1 --", frame: '{}', createdAt: clock.t, expiresAt: null });
        for (const [i, n] of names.entries()) {
          const page = await s.messages.history(n, { limit: 10 });
          assert.equal(page.records.length, 1, n);
          assert.equal(page.records[0].channel, n);
          assert.deepEqual(JSON.parse(page.records[0].frame), { n, i });
        }
        assert.deepEqual((await s.messages.history('%', { limit: 10 })).records, []);
        assert.equal((await s.inbox.pending("u'; DROP TABLE sb_inbox; --", 10))[0]?.id, "i' OR 1=1 --");
        assert.equal(await s.inbox.ack("u'; DROP TABLE sb_inbox; --", ["x' OR '1'='1"]), 0);
        assert.equal((await s.inbox.pending("u'; DROP TABLE sb_inbox; --", 10)).length, 1);
      });

      it('rejects bad arguments with STORE_INVALID_ARGUMENT', async () => {
        await rejectsWithCode(() => s.messages.history('room', { limit: 0 }), 'STORE_INVALID_ARGUMENT');
        await rejectsWithCode(() => s.messages.history('room', { limit: 5, skip: -1 }), 'STORE_INVALID_ARGUMENT');
        await rejectsWithCode(() => s.messages.history('room', { limit: 5, before: 1.5 }), 'STORE_INVALID_ARGUMENT');
        await rejectsWithCode(() => s.messages.history('', { limit: 5 }), 'STORE_INVALID_ARGUMENT');
        await rejectsWithCode(() => s.messages.append(pub('nul\u0000room', 1)), 'STORE_INVALID_ARGUMENT');
        await rejectsWithCode(() => s.messages.append(pub('room', 0)), 'STORE_INVALID_ARGUMENT');
        await rejectsWithCode(() => s.inbox.pending('u', 0), 'STORE_INVALID_ARGUMENT');
      });

      it('clamps huge limits', async () => {
        await fill('room', 3);
        assert.equal((await s.messages.history('room', { limit: 1e9 })).records.length, 3);
      });

      it('persists across close and reopen', async () => {
        await fill('room', 3);
        await s.inbox.put('u1', { id: 'n1', frame: '{"k":1}', createdAt: clock.t, expiresAt: null });
        await s.close();
        s = await harness.reopen({ now: clock.now, inboxMaxPerUser: 3 });
        assert.deepEqual(offsets((await s.messages.history('room', { limit: 10 })).records), [3, 2, 1]);
        assert.deepEqual((await s.inbox.pending('u1', 10)).map((i) => i.id), ['n1']);
        await s.messages.append(pub('room', 4));
        assert.equal((await s.messages.latest('room'))?.offset, 4);
      });

      it('rejects calls after close with STORE_CLOSED', async () => {
        const { messages, inbox } = s;
        await s.close();
        await rejectsWithCode(() => messages.history('room', { limit: 1 }), 'STORE_CLOSED');
        await rejectsWithCode(() => messages.append(pub('room', 1)), 'STORE_CLOSED');
        await rejectsWithCode(() => inbox.pending('u', 1), 'STORE_CLOSED');
        await messages.close();
        s = await harness.reopen({ now: clock.now });
      });
    });

    describe('InboxStore', () => {
      const item = (id: string, createdAt: number, expiresAt: number | null = null) => ({
        id, frame: JSON.stringify({ type: 'notification', data: { id } }), createdAt, expiresAt,
      });

      it('returns pending items oldest first (ties in insertion order), up to limit', async () => {
        await s.inbox.put('u1', item('b', 200));
        await s.inbox.put('u1', item('a', 100));
        await s.inbox.put('u1', item('c', 200));
        assert.deepEqual((await s.inbox.pending('u1', 10)).map((i) => i.id), ['a', 'b', 'c']);
        assert.deepEqual((await s.inbox.pending('u1', 2)).map((i) => i.id), ['a', 'b']);
        assert.deepEqual(await s.inbox.pending('nobody', 10), []);
        const [first] = await s.inbox.pending('u1', 1);
        assert.deepEqual(first, item('a', 100));
      });

      it('is bounded per user: the oldest beyond maxPerUser are dropped, other users untouched', async () => {
        await s.inbox.put('u2', item('keep', 1));
        for (let i = 1; i <= 5; i++) await s.inbox.put('u1', item(`n${i}`, 100 + i));
        assert.deepEqual((await s.inbox.pending('u1', 10)).map((i) => i.id), ['n3', 'n4', 'n5']);
        assert.deepEqual((await s.inbox.pending('u2', 10)).map((i) => i.id), ['keep']);
      });

      it('stays bounded under concurrent puts for one user', async () => {
        await Promise.all(Array.from({ length: 12 }, (_, i) => s.inbox.put('u1', item(`c${i}`, 1000 + i))));
        const left = await s.inbox.pending('u1', 100);
        assert.equal(left.length, 3);
        assert.deepEqual(left.map((i) => i.id), ['c9', 'c10', 'c11']);
      });

      it('ignores a repeated id', async () => {
        await s.inbox.put('u1', item('x', 100));
        await s.inbox.put('u1', { ...item('x', 500), frame: '{"dup":true}' });
        const items = await s.inbox.pending('u1', 10);
        assert.equal(items.length, 1);
        assert.equal(items[0].createdAt, 100);
      });

      it('skips expired items and purges them', async () => {
        await s.inbox.put('u1', item('soon', 1, clock.t + 1000));
        await s.inbox.put('u1', item('later', 2, clock.t + 5000));
        await s.inbox.put('u1', item('never', 3, null));
        assert.deepEqual((await s.inbox.pending('u1', 10)).map((i) => i.id), ['soon', 'later', 'never']);
        clock.t += 1000;
        assert.deepEqual((await s.inbox.pending('u1', 10)).map((i) => i.id), ['later', 'never']);
        clock.t += 10_000;
        assert.deepEqual((await s.inbox.pending('u1', 10)).map((i) => i.id), ['never']);
        assert.equal(await s.inbox.purgeExpired(), 2);
        assert.equal(await s.inbox.purgeExpired(), 0);
      });

      it('acks remove only the named items of that user', async () => {
        await s.inbox.put('u1', item('a', 1));
        await s.inbox.put('u1', item('b', 2));
        await s.inbox.put('u2', item('a', 1));
        assert.equal(await s.inbox.ack('u1', ['a', 'zzz']), 1);
        assert.equal(await s.inbox.ack('u1', []), 0);
        assert.deepEqual((await s.inbox.pending('u1', 10)).map((i) => i.id), ['b']);
        assert.deepEqual((await s.inbox.pending('u2', 10)).map((i) => i.id), ['a']);
        const many = Array.from({ length: 1200 }, (_, i) => `x${i}`).concat('b');
        assert.equal(await s.inbox.ack('u1', many), 1);
        assert.deepEqual(await s.inbox.pending('u1', 10), []);
      });
    });
  });
}
