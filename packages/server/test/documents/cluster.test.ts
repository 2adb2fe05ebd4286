/**
 * Documents across real server processes (`switchboard serve`) on one real Redis, with unmodified y-websocket
 * providers: providers on different nodes converge; a killed node's awareness entries disappear on the other
 * node; restarts keep the document (PostgreSQL shared by the nodes; SQLite for one node), including a kill -9
 * right after another client saw the update.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { requireRedisUrl } from '../redis/redis-process.js';
import { ServerNode, uniquePrefix } from '../cluster/harness.js';
import { editor, synced, untilAwareness, untilSame, untilText, type Editor } from './helpers.js';

const REDIS_URL = requireRedisUrl();
const DATABASE_URL = process.env.DATABASE_URL;
if (!DATABASE_URL) throw new Error('DATABASE_URL is not set: run `eval "$(bash scripts/provision/postgres.sh)"` first (PostgreSQL tests never skip)');

const DOC_SETTINGS = { 'documents.nodeTimeoutMs': '1500' };

function openAt(node: ServerNode, room: string, editors: Editor[]): Editor {
  const e = editor(`${node.ws}/yjs`, room);
  editors.push(e);
  return e;
}

function concurrentEdits(a: Editor, b: Editor, n: number): void {
  for (let i = 0; i < n; i++) {
    a.text.insert(a.text.length, 'a');
    b.text.insert(0, 'b');
  }
}

describe('documents on two nodes sharing Redis and PostgreSQL', () => {
  let admin: pg.Pool;
  let url = '';
  const schema = `docs_${process.pid}_${Date.now().toString(36)}`;
  const prefix = uniquePrefix('docs');
  const nodes: ServerNode[] = [];
  const editors: Editor[] = [];
  const spawn = async (id: string): Promise<ServerNode> => {
    const n = await ServerNode.spawn({ id, redisUrl: REDIS_URL, keyPrefix: prefix, settings: { ...DOC_SETTINGS, 'store.driver': 'postgres', 'store.postgresUrl': url } });
    nodes.push(n);
    return n;
  };

  before(async () => {
    admin = new pg.Pool({ connectionString: DATABASE_URL, max: 1 });
    await admin.query(`CREATE SCHEMA ${schema}`);
    const u = new URL(DATABASE_URL!);
    u.searchParams.set('options', `-c search_path=${schema}`);
    url = u.toString();
  });
  after(async () => {
    for (const e of editors) e.destroy();
    await Promise.all(nodes.map((n) => n.kill9()));
    await admin.query(`DROP SCHEMA ${schema} CASCADE`);
    await admin.end();
  });

  it('providers on different nodes converge; a killed node\'s cursors disappear; a restart keeps the document', async () => {
    const A = await spawn('node-a');
    const B = await spawn('node-b');
    const a = openAt(A, 'doc:shared', editors);
    const b = openAt(B, 'doc:shared', editors);
    await Promise.all([synced(a), synced(b)]);
    concurrentEdits(a, b, 25);
    await untilSame(a, b, (x) => x.length === 50, 10_000);
    assert.equal(a.text.toString().replace(/a/g, ''), 'b'.repeat(25));

    // Cursors cross the broker.
    a.provider.awareness.setLocalStateField('cursor', { index: 7 });
    await untilAwareness(b, (s) => (s.get(a.doc.clientID)?.cursor as { index: number } | undefined)?.index === 7, 'a\'s cursor at b (other node)', 10_000);

    // An update b has seen, then node A dies: b keeps the text, A's client's cursor disappears at b.
    a.text.insert(0, '#');
    await untilText(b, a.text.toString(), 10_000);
    const seen = b.text.toString();
    a.provider.disconnect(); // (its process is gone: no reconnect attempts into the void)
    await A.kill9();
    await untilAwareness(b, (s) => !s.has(a.doc.clientID), 'a\'s cursor removed at b after node A died', 10_000);

    // Both nodes restarted (B killed too): the document is served from PostgreSQL.
    await B.kill9();
    b.provider.disconnect();
    const A2 = await spawn('node-a');
    const c = openAt(A2, 'doc:shared', editors);
    await synced(c, 10_000);
    assert.equal(c.text.toString(), seen);
  });
});

describe('documents on one node with SQLite', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sb-docs-'));
  const nodes: ServerNode[] = [];
  const editors: Editor[] = [];
  const spawn = async (): Promise<ServerNode> => {
    const n = await ServerNode.spawn({
      id: 'node-s',
      redisUrl: REDIS_URL,
      keyPrefix: uniquePrefix('docs-sqlite'),
      settings: { ...DOC_SETTINGS, 'store.driver': 'sqlite', 'store.sqlitePath': join(dir, 'switchboard.db') },
    });
    nodes.push(n);
    return n;
  };

  after(async () => {
    for (const e of editors) e.destroy();
    await Promise.all(nodes.map((n) => n.kill9()));
    rmSync(dir, { recursive: true, force: true });
  });

  it('a graceful restart and a kill -9 both keep the document', async () => {
    const first = await spawn();
    const a = openAt(first, 'doc:sqlite', editors);
    const b = openAt(first, 'doc:sqlite', editors);
    await Promise.all([synced(a), synced(b)]);
    a.text.insert(0, 'kept across restarts');
    await untilText(b, 'kept across restarts');
    a.provider.disconnect();
    b.provider.disconnect();
    await first.stop();

    const second = await spawn();
    const c = openAt(second, 'doc:sqlite', editors);
    const d = openAt(second, 'doc:sqlite', editors);
    await synced(c);
    assert.equal(c.text.toString(), 'kept across restarts');
    // Seen by d, then the process is killed without a chance to flush anything.
    await synced(d);
    c.text.insert(c.text.length, ' and crashes');
    await untilText(d, 'kept across restarts and crashes');
    c.provider.disconnect();
    d.provider.disconnect();
    await second.kill9();

    const third = await spawn();
    const e = openAt(third, 'doc:sqlite', editors);
    await synced(e);
    assert.equal(e.text.toString(), 'kept across restarts and crashes');
  });
});
