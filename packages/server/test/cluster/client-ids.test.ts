/**
 * Client id ownership across real server processes on one Redis (issue 11): a client id held on one node
 * cannot be taken by another user (or an anonymous connection) on another node, the same user supersedes it
 * from any node, the holder's close releases it for everybody, and a killed node's claims expire with the
 * presence ttl. Users come from `?user_id=` (the nodes run in development mode: trustClientIds).
 *   eval "$(bash scripts/provision/redis.sh)"; npx tsc -b packages/server && node --test --test-concurrency=1 packages/server/dist/test/cluster/client-ids.test.js
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { CloseCode } from '@switchboard/protocol';
import { TestClient, within } from '../helpers.js';
import { requireRedisUrl } from '../redis/redis-process.js';
import { FAST_SETTINGS, pollUntil, postJson, startNodes, uniquePrefix, type ServerNode } from './harness.js';

const REDIS_URL = requireRedisUrl();
/** CloseCode.CLIENT_ID_TAKEN (read through the registry so this file also runs against builds without it). */
const CLIENT_ID_TAKEN = 4013;
const PRESENCE_TTL_MS = Number(FAST_SETTINGS['broker.presenceTtlMs']);

describe('cluster: client ids belong to their user on every node', () => {
  let nodes: ServerNode[] = [];
  let A: ServerNode, B: ServerNode;
  let redis: Redis;
  const prefix = uniquePrefix('cid');
  const clients: TestClient[] = [];
  let n = 0;
  const freshId = (): string => `dev-${++n}-${Date.now().toString(36)}`;
  const connect = async (node: ServerNode, clientId: string, user: string | null): Promise<TestClient> => {
    const c = await TestClient.connect(`${node.ws}/ws/${clientId}${user === null ? '' : `?user_id=${user}`}`);
    clients.push(c);
    return c;
  };
  const closeOf = async (c: TestClient): Promise<number> => (await within(c.closed, 5000, 'the close')).code;
  /** Every live node publishes a broadcast; resolves once `observer` got all of them: control messages each node
   * published before (a supersede) have been handled everywhere by then. */
  const barrier = async (observer: TestClient): Promise<void> => {
    const token = `barrier-${Math.random().toString(36).slice(2)}`;
    const live = nodes.filter((node) => node.alive);
    for (const node of live) assert.equal((await postJson(`${node.http}/api/broadcast`, { data: { token, from: node.id } })).status, 200);
    await Promise.all(live.map((node) => observer.next((f) => f.type === 'broadcast' && f.data.token === token && f.data.from === node.id, 5000)));
  };
  const holderOf = (clientId: string): Promise<string | null> => redis.hget(`${prefix}{c:${clientId}}:o`, 'c');

  before(async () => {
    redis = new Redis(REDIS_URL);
    nodes = await startNodes(2, REDIS_URL, prefix);
    [A, B] = nodes as [ServerNode, ServerNode];
  });

  after(async () => {
    for (const c of clients) c.close();
    await Promise.all(nodes.map((node) => node.stop()));
    redis.disconnect();
  });

  it('another user on B cannot take alice\'s id held on A: 4013, alice stays; nor can an anonymous connection', async () => {
    const id = freshId();
    const alice = await connect(A, id, 'alice');
    await alice.join(`room-${id}`);
    const mallory = await connect(B, id, 'mallory');
    assert.equal(await closeOf(mallory), CLIENT_ID_TAKEN, 'another user is refused');
    assert.equal(mallory.frames.find((f) => f.type === 'connect'), undefined, 'no session was opened for it');
    const anon = await connect(B, id, null);
    assert.equal(await closeOf(anon), CLIENT_ID_TAKEN, 'an anonymous connection is refused');
    await barrier(alice);
    assert.equal(alice.closeInfo, null, 'alice stays connected');
    const sub = await alice.join(`room-${id}`);
    assert.equal(sub.data.members, 1, 'alice is still in her channel');
    assert.equal(await holderOf(id), alice.connectionId, 'the claim in Redis still names alice\'s connection');
  });

  it('the same user supersedes across nodes (4011 for the old one), and then owns the id there', async () => {
    const id = freshId();
    const first = await connect(A, id, 'alice');
    const second = await connect(B, id, 'alice');
    assert.equal(await closeOf(first), CloseCode.SESSION_SUPERSEDED);
    await barrier(second);
    assert.equal(second.closeInfo, null, 'the newer connection on B stays');
    const mallory = await connect(A, id, 'mallory');
    assert.equal(await closeOf(mallory), CLIENT_ID_TAKEN);
    const third = await connect(A, id, 'alice');
    assert.equal(await closeOf(second), CloseCode.SESSION_SUPERSEDED, 'and back to A');
    await barrier(third);
    assert.equal(third.closeInfo, null);
  });

  it('the claim is released when the holder closes: another user may then take the id on the other node', async () => {
    const id = freshId();
    const alice = await connect(A, id, 'alice');
    assert.equal(await holderOf(id), alice.connectionId);
    alice.close();
    // Polled: the release is a Redis write by node A after the socket closed; no frame announces it.
    await pollUntil(async () => holderOf(id), (h) => h === null, 5000, 'alice\'s claim released');
    const bob = await connect(B, id, 'bob');
    await barrier(bob);
    assert.equal(bob.closeInfo, null, 'bob holds the id');
    assert.equal(await holderOf(id), bob.connectionId);
  });

  it('a killed node\'s claims expire with the presence ttl, then the id is free', async () => {
    const id = freshId();
    const alice = await connect(B, id, 'alice');
    assert.equal(await holderOf(id), alice.connectionId);
    await B.kill9();
    await within(alice.closed, 5000, 'the killed node\'s socket to drop');
    const killedAt = Date.now();
    const early = await connect(A, id, 'mallory');
    assert.equal(await closeOf(early), CLIENT_ID_TAKEN, 'right after the kill the claim still holds');
    assert.ok(Date.now() - killedAt < PRESENCE_TTL_MS, 'checked within the ttl');
    // Polled: the claim ends with a Redis key expiry, which nothing announces.
    await pollUntil(async () => holderOf(id), (h) => h === null, PRESENCE_TTL_MS + 5000, 'the dead node\'s claim to expire');
    const mallory = await connect(A, id, 'mallory');
    await barrier(mallory);
    assert.equal(mallory.closeInfo, null, 'the id is free again');
    assert.equal(await holderOf(id), mallory.connectionId);
  });
});
