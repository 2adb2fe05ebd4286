import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { startServer, TestClient, type Frame } from './helpers.js';
import type { DeepPartial, SwitchboardConfig } from '../src/config.js';
import { createStores, type StoreDriver } from '../src/store/factory.js';

/** The same durable-channel and inbox behaviour on SQLite (a file) and PostgreSQL (real server). */
function durableSuite(name: string, storeConfig: () => DeepPartial<SwitchboardConfig>['store']) {
  describe(`durable channels and offline inbox on ${name}`, () => {
    const config = (): DeepPartial<SwitchboardConfig> => ({ store: storeConfig(), channels: { namespaces: { chat: { persist: true, historySize: 3 } } } });

    it('archives persisted channels, pages history from the archive, and keeps numbering and recovery across a restart', async () => {
      const room = `chat:${randomUUID().slice(0, 8)}`;
      let srv = await startServer(config());
      let epoch: string;
      try {
        const c = await TestClient.connect(`${srv.ws}/ws`);
        const sub = await c.join(room);
        epoch = sub.data.epoch as string;
        for (let i = 1; i <= 6; i++) assert.equal((await c.request('message', { channel: room, i })).data.offset, i);
        const page = await c.request('history', { channel: room, limit: 4 });
        assert.equal(page.data.source, 'archive');
        assert.deepEqual(page.data.publications.map((p: Frame) => p.seq), [6, 5, 4, 3], 'beyond the 3-item broker window');
        const older = await c.request('history', { channel: room, limit: 10, before: 3 });
        assert.deepEqual(older.data.publications.map((p: Frame) => p.data.i), [2, 1]);
        const seed = await c.request('history', { channel: room, limit: 2, offset: 1 });
        assert.deepEqual(seed.data.publications.map((p: Frame) => p.seq), [5, 4]);
        c.close();
      } finally {
        await srv.close();
      }
      srv = await startServer(config());
      try {
        const pub = await srv.sb.node.publish(room, { i: 7 });
        assert.equal(pub.offset, 7, 'numbering continues after a restart');
        assert.equal(pub.epoch, epoch, 'same stream epoch after a restart');
        const back = await TestClient.connect(`${srv.ws}/ws`);
        const sub = await back.request('join_channel', { channel: room, since: { offset: 2, epoch } });
        assert.equal(sub.data.recovered, true, 'recovered from the archive');
        const replayed: number[] = [];
        for (let i = 0; i < 5; i++) replayed.push((await back.next('message')).seq!);
        assert.deepEqual(replayed, [3, 4, 5, 6, 7]);
        assert.equal((await back.next('replay_complete')).data.replayed_count, 5);
        back.close();
      } finally {
        await srv.close();
      }
    });

    it('archives a retried publish (same idempotency key) whose first archive write failed, exactly once', async () => {
      const room = `chat:${randomUUID().slice(0, 8)}`;
      const sc = storeConfig() ?? {};
      const stores = await createStores({ driver: sc.driver as StoreDriver, sqlitePath: sc.sqlitePath, postgresUrl: sc.postgresUrl });
      const archive = stores.messages!;
      const append = archive.append.bind(archive);
      let failures = 1;
      archive.append = async (rec) => {
        if (failures-- > 0) throw new Error('disk full');
        return append(rec);
      };
      const srv = await startServer(config(), { stores });
      try {
        const c = await TestClient.connect(`${srv.ws}/ws`);
        await c.join(room);
        const first = await c.request('message', { channel: room, text: 'once', idempotency_key: 'k1' });
        assert.equal(first.type, 'error');
        assert.deepEqual([first.data.code, first.data.temporary], ['INTERNAL', true], 'a failed archive write is worth retrying');
        const retry = await c.request('message', { channel: room, text: 'once', idempotency_key: 'k1' });
        assert.equal(retry.type, 'ok');
        const delivered = await c.next('message');
        assert.equal(delivered.seq, retry.data.offset, 'the retry returns the first publication');
        const page = await c.request('history', { channel: room, limit: 10 });
        assert.equal(page.data.source, 'archive');
        assert.deepEqual(page.data.publications.map((p: Frame) => [p.seq, p.data.text]), [[retry.data.offset, 'once']], 'archived once');
        c.close();
      } finally {
        await srv.close();
      }
    });

    it('stores private messages and notifications for offline users and delivers them in order on connect until acked', async () => {
      const user = `u-${randomUUID().slice(0, 8)}`;
      const srv = await startServer(config());
      try {
        const sender = await TestClient.connect(`${srv.ws}/ws?user_id=sender-${user}`);
        const r1 = await sender.request('private_message', { recipient_id: user, text: 'first' });
        assert.deepEqual([r1.data.delivered, r1.data.stored], [false, true]);
        await sender.request('private_message', { recipient_id: user, text: 'second' });
        const api = await fetch(`${srv.http}/api/users/${user}/send`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ data: { title: 'third' } }) });
        assert.equal(((await api.json()) as { stored: boolean }).stored, true);
        const u = await TestClient.connect(`${srv.ws}/ws?user_id=${user}`);
        const got = [await u.next((f) => f.inbox === true), await u.next((f) => f.inbox === true), await u.next((f) => f.inbox === true)];
        assert.deepEqual(got.map((f) => f.data.text ?? f.data.title), ['first', 'second', 'third']);
        assert.deepEqual(got.map((f) => f.type), ['private', 'private', 'notification']);
        const ack = await u.request('ack', { ids: got.slice(0, 2).map((f) => f.message_id as string) });
        assert.equal(ack.data.removed, 2);
        u.close();
        await u.closed;
        const again = await TestClient.connect(`${srv.ws}/ws?user_id=${user}`);
        const left = await again.next((f) => f.inbox === true);
        assert.equal(left.data.title, 'third', 'unacknowledged items come back');
        const live = await sender.request('private_message', { recipient_id: user, text: 'live' });
        assert.equal(live.data.delivered, true);
        assert.equal((await again.next('private')).data.text, 'live');
        again.close();
        sender.close();
      } finally {
        await srv.close();
      }
    });
  });
}

const dir = mkdtempSync(join(tmpdir(), 'sb-durable-'));
after(() => rmSync(dir, { recursive: true, force: true }));
durableSuite('SQLite', () => ({ driver: 'sqlite', sqlitePath: join(dir, 'sb.db') }));

const databaseUrl = process.env.DATABASE_URL;
if (databaseUrl === undefined) {
  describe('durable channels on PostgreSQL', () => {
    it('needs DATABASE_URL (run `npm test`, which provisions PostgreSQL)', () => {
      assert.fail('DATABASE_URL is not set: eval "$(bash scripts/provision/postgres.sh)" first');
    });
  });
} else {
  durableSuite('PostgreSQL', () => ({ driver: 'postgres', postgresUrl: databaseUrl }));
}
