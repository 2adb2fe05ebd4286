import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSqliteStores, SqliteDatabase } from '../../src/store/sqlite/index.js';
import { createStores } from '../../src/store/factory.js';
import { startRetention } from '../../src/store/retention.js';
import { runStoreContract, pub, type OpenOptions, type OpenedStores } from './store-contract.js';

const root = mkdtempSync(join(tmpdir(), 'sb-sqlite-'));
after(() => rmSync(root, { recursive: true, force: true }));

let n = 0;
let current = '';

async function open(path: string, opts: OpenOptions): Promise<OpenedStores> {
  const s = await createSqliteStores({ path, now: opts.now, inboxMaxPerUser: opts.inboxMaxPerUser });
  return {
    messages: s.messages,
    inbox: s.inbox,
    close: async () => {
      await s.messages.close();
      await s.inbox.close();
      await s.documents.close();
    },
  };
}

runStoreContract('sqlite (temp file)', {
  create: (opts) => open((current = join(root, `t${++n}`, 'store.db')), opts),
  reopen: (opts) => open(current, opts),
  destroy: async () => rmSync(join(root, `t${n}`), { recursive: true, force: true }),
});

describe('sqlite specifics', () => {
  it('creates the file (and its directory), uses WAL, and a second opener of a held file gets STORE_UNAVAILABLE', async () => {
    const path = join(root, 'held', 'nested', 'db.sqlite');
    const s = await createSqliteStores({ path });
    assert.ok(existsSync(path));
    assert.equal(s.database.journalMode(), 'wal');
    await s.messages.append(pub('room', 1));
    assert.throws(() => new SqliteDatabase({ path }), (err: unknown) => (err as { code?: string }).code === 'STORE_UNAVAILABLE');
    await s.messages.close();
    await s.inbox.close();
    await s.documents.close();
    assert.equal(s.database.isOpen, false);
    const again = await createSqliteStores({ path });
    assert.equal((await again.messages.latest('room'))?.offset, 1);
    await again.messages.close();
    await again.inbox.close();
    await again.documents.close();
  });

  it('group-commits appends issued in one tick and a read right after sees them', async () => {
    const s = await createSqliteStores({ path: ':memory:' });
    const pending = [1, 2, 3].map((i) => s.messages.append(pub('room', i)));
    const page = await s.messages.history('room', { limit: 10 });
    assert.deepEqual(page.records.map((r) => r.offset), [3, 2, 1]);
    await Promise.all(pending);
    await s.messages.close();
    await s.inbox.close();
    await s.documents.close();
  });

  it('factory: sqlite builds both stores, none builds neither, postgres without a URL is refused', async () => {
    const path = join(root, 'factory', 'db.sqlite');
    const stores = await createStores({ driver: 'sqlite', sqlitePath: path });
    assert.ok(stores.messages && stores.inbox);
    await stores.messages.append(pub('room', 1));
    await stores.close();
    await stores.close();
    const reopened = await createStores({ driver: 'sqlite', sqlitePath: path });
    assert.equal((await reopened.messages!.latest('room'))?.offset, 1);
    await reopened.close();
    const none = await createStores({ driver: 'none' });
    assert.equal(none.messages, null);
    assert.equal(none.inbox, null);
    await none.close();
    await assert.rejects(createStores({ driver: 'postgres' }), (e: unknown) => (e as { code?: string }).code === 'STORE_INVALID_ARGUMENT');
    await assert.rejects(createStores({ driver: 'mysql' as 'none' }), (e: unknown) => (e as { code?: string }).code === 'STORE_INVALID_ARGUMENT');
  });

  it('retention: prunes the archive and purges expired inbox items, on demand and on its interval', async () => {
    let now = 1_000_000;
    const stores = await createStores({ driver: 'sqlite', sqlitePath: ':memory:', now: () => now });
    for (let i = 1; i <= 5; i++) await stores.messages!.append(pub('room', i, { createdAt: now }));
    await stores.inbox!.put('u', { id: 'x', frame: '{}', createdAt: now, expiresAt: now + 10 });
    now += 100;
    const r = startRetention(stores, { keepPerChannel: 2, intervalMs: 20 });
    assert.deepEqual(await r.runOnce(), { pruned: 3, purged: 1, documents: 0 });
    for (let i = 6; i <= 8; i++) await stores.messages!.append(pub('room', i, { createdAt: now }));
    // Wait for the interval's next pass itself (the store's prune, wrapped here), not for a clock: a pass that
    // calls it from here on sees all three new records (earlier passes may have pruned some of them already).
    const messages = stores.messages!;
    const prune = messages.prune.bind(messages);
    const pass = new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no interval pass within 5 s')), 5000);
      messages.prune = async (o) => {
        const pruned = await prune(o);
        clearTimeout(timer);
        resolve(pruned);
        return pruned;
      };
    });
    await pass;
    r.stop();
    assert.deepEqual((await stores.messages!.history('room', { limit: 10 })).records.map((x) => x.offset), [8, 7]);
    await stores.close();
  });
});

describe('SQLite lock after a crash', () => {
  const holder = (path: string) => `
    const { SqliteDatabase } = await import(${JSON.stringify(new URL('../../src/store/sqlite/index.js', import.meta.url).href)});
    new SqliteDatabase({ path: ${JSON.stringify(path)} });
    process.send('open');
    setInterval(() => {}, 1000);`;

  async function startHolder(path: string) {
    const { fork } = await import('node:child_process');
    const child = fork('--input-type=module', [], { execArgv: ['--input-type=module', '-e', holder(path)], stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
    await new Promise<void>((resolve, reject) => {
      child.once('message', () => resolve());
      child.once('exit', (code) => reject(new Error(`holder exited with ${code}`)));
    });
    return child;
  }

  it('a file held by a live process is refused; after that process is killed -9 the file opens again', async () => {
    const path = join(root, 'crash', 'sb.db');
    const child = await startHolder(path);
    assert.throws(() => new SqliteDatabase({ path }), (err: unknown) => (err as { code?: string }).code === 'STORE_UNAVAILABLE');
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
    assert.ok(existsSync(`${path}.lock`), 'the crashed process left its lock behind');
    const db = new SqliteDatabase({ path });
    assert.equal(db.isOpen, true);
    db.close();
    assert.equal(existsSync(`${path}.lock`), false, 'close removes the lock');
  });
});
