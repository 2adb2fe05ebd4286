/**
 * Documents across a broker outage (docs/documents.md "Cluster"): two real server processes on one Redis of
 * this suite's own (killed and restarted on the same port, no persistence), an unmodified y-websocket
 * provider on each. Edits made on both nodes while Redis is down cannot cross; once it is back, each node
 * queries the other holders again (and re-reads the store, when there is one) and both providers converge,
 * also when one node is back well after the other (the first one's query then reaches nobody). With a shared
 * PostgreSQL store, an update whose node died during the outage reaches the others from the store.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { freePort, RedisProcess, requireRedisUrl } from '../redis/redis-process.js';
import { getJson, pollUntil, ServerNode, uniquePrefix } from '../cluster/harness.js';
import { untilNotified } from '../helpers.js';
import { editor, synced, untilSame, type Editor } from './helpers.js';

requireRedisUrl(); // provisioned (redis-server installed); this suite owns a second, killable server
const DATABASE_URL = process.env.DATABASE_URL;
if (!DATABASE_URL) throw new Error('DATABASE_URL is not set: run `eval "$(bash scripts/provision/postgres.sh)"` first (PostgreSQL tests never skip)');

describe('documents: re-sync after a broker outage', () => {
  let redis: RedisProcess;
  const nodes: ServerNode[] = [];
  const editors: Editor[] = [];
  const openAt = (node: ServerNode, room: string): Editor => {
    const e = editor(`${node.ws}/yjs`, room);
    editors.push(e);
    return e;
  };
  /** Polled: a node's broker status is internal to its process; only /health shows it, and no frame does. */
  const brokerIs = (n: ServerNode, status: 'up' | 'down'): Promise<unknown> =>
    pollUntil(() => getJson(`${n.http}/health`), (r) => r.body.broker_status === status, 10_000, `${n.id} broker ${status}`);

  /** Resolves once `n` has logged a failed publish of a document update of `doc` (the broker being down). */
  const publishFailed = (n: ServerNode, doc: string): Promise<void> => {
    const failed = (): boolean => n.output.split('\n').some((l) => l.includes('document message to the other nodes failed') && l.includes(`"channel":"${doc}","kind":"u"`));
    return untilNotified(failed, `${n.id} to fail publishing an update of ${doc}`, 5000, (l) => {
      n.child.stdout!.on('data', l);
      n.child.stderr!.on('data', l);
      return () => {
        n.child.stdout!.off('data', l);
        n.child.stderr!.off('data', l);
      };
    });
  };

  let admin: pg.Pool;
  let storeUrl = '';
  const schema = `docs_outage_${process.pid}_${Date.now().toString(36)}`;

  before(async () => {
    redis = new RedisProcess(await freePort());
    await redis.start();
    admin = new pg.Pool({ connectionString: DATABASE_URL, max: 1 });
    await admin.query(`CREATE SCHEMA ${schema}`);
    const u = new URL(DATABASE_URL!);
    u.searchParams.set('options', `-c search_path=${schema}`);
    storeUrl = u.toString();
  });
  after(async () => {
    for (const e of editors) e.destroy();
    await Promise.all(nodes.map((n) => n.kill9()));
    await redis.kill();
    await admin.query(`DROP SCHEMA ${schema} CASCADE`);
    await admin.end();
  });

  it('without a store: insertions and deletions made on both nodes during the outage converge once Redis is back', async () => {
    const prefix = uniquePrefix('docs-outage');
    const [A, B] = await Promise.all(['node-a', 'node-b'].map((id) => ServerNode.spawn({ id, redisUrl: redis.url, keyPrefix: prefix, settings: { 'store.driver': 'none' } })));
    nodes.push(A!, B!);
    const a = openAt(A!, 'doc:outage');
    const b = openAt(B!, 'doc:outage');
    // Deletions do not change a state vector: only an answer carrying the delete set brings them over.
    const a2 = openAt(A!, 'doc:outage-deletions');
    const b2 = openAt(B!, 'doc:outage-deletions');
    await Promise.all([synced(a), synced(b), synced(a2), synced(b2)]);
    a.text.insert(0, 'shared.');
    a2.text.insert(0, 'one two three four');
    await untilSame(a, b, (x) => x === 'shared.', 10_000);
    await untilSame(a2, b2, (x) => x === 'one two three four', 10_000);

    await redis.kill();
    await Promise.all([brokerIs(A!, 'down'), brokerIs(B!, 'down')]);
    // Both sides edit while the nodes cannot reach each other (the providers stay connected to their node).
    a.text.insert(a.text.length, ' from A');
    b.text.insert(0, 'from B ');
    a2.text.delete(0, 'one '.length);
    b2.text.delete(b2.text.length - ' four'.length, ' four'.length);
    assert.equal(a.text.toString(), 'shared. from A');
    assert.equal(b.text.toString(), 'from B shared.');
    assert.equal(a2.text.toString(), 'two three four');
    assert.equal(b2.text.toString(), 'one two three');
    // Each node has taken its side's edits: it failed to publish them (its log says so; nothing else does).
    for (const n of [A!, B!]) for (const doc of ['doc:outage', 'doc:outage-deletions']) await publishFailed(n, doc);

    // Node B comes back later than A (stopped meanwhile): A's re-sync query goes out while B is not
    // subscribed and is lost; only B's query reaches A, and A must ask back for B's edits.
    B!.child.kill('SIGSTOP');
    try {
      await redis.start();
      await brokerIs(A!, 'up');
    } finally {
      B!.child.kill('SIGCONT');
    }
    await untilSame(a, b, (x) => x.includes('from A') && x.includes('from B'), 10_000);
    assert.equal(a.text.toString(), 'from B shared. from A');
    await untilSame(a2, b2, (x) => x === 'two three', 10_000);
    for (const n of nodes) assert.ok(n.alive, `${n.id} survived the outage:\n${n.output}`);
  });

  it('with a shared PostgreSQL store: an update only the store has (its node died during the outage) reaches the other nodes', async () => {
    // The previous test's nodes are done; a fresh Redis (whatever state the previous test left it in).
    await Promise.all(nodes.splice(0).map((n) => n.kill9()));
    await redis.kill();
    await redis.start();
    const prefix = uniquePrefix('docs-outage-pg');
    const settings = { 'store.driver': 'postgres', 'store.postgresUrl': storeUrl };
    const [A, B, C] = await Promise.all(['node-a', 'node-b', 'node-c'].map((id) => ServerNode.spawn({ id, redisUrl: redis.url, keyPrefix: prefix, settings })));
    nodes.push(A!, B!, C!);
    const a = openAt(A!, 'doc:outage-store');
    const b = openAt(B!, 'doc:outage-store');
    const c = openAt(C!, 'doc:outage-store');
    await Promise.all([synced(a), synced(b), synced(c)]);
    a.text.insert(0, 'shared.');
    await Promise.all([untilSame(a, b, (x) => x === 'shared.', 10_000), untilSame(a, c, (x) => x === 'shared.', 10_000)]);

    await redis.kill();
    await Promise.all([A!, B!, C!].map((n) => brokerIs(n, 'down')));
    c.text.insert(0, 'from C ');
    a.text.insert(a.text.length, ' from A');
    // Stored, then published (which fails): node C's update is in PostgreSQL. Then node C dies, and with it
    // the only other copy of that update.
    await publishFailed(C!, 'doc:outage-store');
    await publishFailed(A!, 'doc:outage-store');
    c.provider.disconnect();
    await C!.kill9();

    await redis.start();
    await untilSame(a, b, (x) => x.includes('from C') && x.includes('from A'), 10_000);
    assert.equal(a.text.toString(), 'from C shared. from A');
    for (const n of [A!, B!]) assert.ok(n.alive, `${n.id} survived the outage:\n${n.output}`);
  });
});
