import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import pg from 'pg';
import { createPgStores, numberPlaceholders } from '../../src/store/postgres/index.js';
import { createStores } from '../../src/store/factory.js';
import { runStoreContract, pub, type OpenOptions, type OpenedStores } from './store-contract.js';

const DATABASE_URL = process.env.DATABASE_URL;
if (!DATABASE_URL) {
  throw new Error('DATABASE_URL is not set: run `eval "$(bash scripts/provision/postgres.sh)"` first (PostgreSQL tests never skip)');
}

/** Connection URL whose sessions use `schema` (each test gets a fresh schema). */
function urlFor(schema: string): string {
  const u = new URL(DATABASE_URL!);
  u.searchParams.set('options', `-c search_path=${schema}`);
  return u.toString();
}

let admin: pg.Pool;
let schema = '';
before(() => {
  admin = new pg.Pool({ connectionString: DATABASE_URL, max: 2 });
});
after(async () => {
  await admin.end();
});

async function open(opts: OpenOptions): Promise<OpenedStores> {
  const s = await createPgStores({ connectionString: urlFor(schema), now: opts.now, inboxMaxPerUser: opts.inboxMaxPerUser, max: 5 });
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

runStoreContract('postgres', {
  create: async (opts) => {
    schema = `sbtest_${randomBytes(6).toString('hex')}`;
    await admin.query(`CREATE SCHEMA ${schema}`);
    return open(opts);
  },
  reopen: (opts) => open(opts),
  destroy: async () => {
    await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  },
});

describe('postgres specifics', () => {
  it('numbers placeholders', () => {
    assert.equal(numberPlaceholders('a = ? AND b IN (?, ?)'), 'a = $1 AND b IN ($2, $3)');
  });

  it('migrates once when several pools start at the same time', async () => {
    schema = `sbtest_${randomBytes(6).toString('hex')}`;
    await admin.query(`CREATE SCHEMA ${schema}`);
    try {
      const all = await Promise.all([1, 2, 3].map(() => createPgStores({ connectionString: urlFor(schema), max: 2 })));
      const res = await admin.query(`SELECT version FROM ${schema}.schema_migrations`);
      assert.deepEqual(res.rows.map((r) => r.version), [1, 2]);
      await all[0].messages.append(pub('room', 1));
      assert.equal((await all[2].messages.latest('room'))?.offset, 1);
      for (const s of all) {
        await s.messages.close();
        await s.inbox.close();
        await s.documents.close();
      }
    } finally {
      await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    }
  });

  it('fails fast with STORE_UNAVAILABLE when the server is unreachable', async () => {
    // A port that was free a moment ago: nothing listens there.
    const port = await new Promise<number>((resolve) => {
      const srv = createServer().listen(0, '127.0.0.1', () => {
        const p = (srv.address() as { port: number }).port;
        srv.close(() => resolve(p));
      });
    });
    const started = Date.now();
    await assert.rejects(
      createStores({ driver: 'postgres', postgresUrl: `postgres://x:y@127.0.0.1:${port}/db`, postgresConnectTimeoutMs: 1000 }),
      (e: unknown) => (e as { code?: string }).code === 'STORE_UNAVAILABLE',
    );
    assert.ok(Date.now() - started < 5000, 'bounded by the connect timeout');
  });

  it('factory: postgres driver builds both stores on DATABASE_URL', async () => {
    schema = `sbtest_${randomBytes(6).toString('hex')}`;
    await admin.query(`CREATE SCHEMA ${schema}`);
    try {
      const stores = await createStores({ driver: 'postgres', postgresUrl: urlFor(schema) });
      await stores.messages!.append(pub('room', 1));
      assert.equal((await stores.messages!.history('room', { limit: 5 })).records.length, 1);
      await stores.close();
    } finally {
      await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    }
  });
});
