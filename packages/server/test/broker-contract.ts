/**
 * Shared contract suite for Broker + PresenceStore engines (core/broker.ts, core/presence-store.ts).
 * Engine-agnostic: imports no engine. Each engine's test file calls `runBrokerContract` with a factory.
 *
 * The factory `makeNodes(n, settings)` returns n nodes of ONE cluster (sharing a backend): brokers NOT yet
 * started (the suite calls `start(handler)` with its recording handler), presence stores ready to use, and a
 * `cleanup()` that closes everything. Every test uses fresh random channel/user names, so nodes of
 * different tests may share one backend.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { Broker, BrokerHandler, BrokerStatus, ControlEnvelope, ControlMessage, Publication, PublishOptions } from '../src/core/ports/broker.js';
import type { OnlineUser, PresenceMember } from '@switchboard/protocol';
import type { PresenceStore } from '../src/core/ports/presence-store.js';

export interface ContractNodes {
  brokers: Broker[];
  presences: PresenceStore[];
  /** Multi-node engines: make node i's presence behave as if its process was killed (no cleanup, no more
   * refreshes); its entries must vanish after the presence ttl. */
  crashPresence?(i: number): Promise<void>;
  cleanup(): Promise<void>;
}

/** Settings a test may ask of the factory (engines ignore what does not apply to them). */
export interface NodeSettings {
  /** Presence entries of a node that stopped refreshing vanish after this long. */
  presenceTtlMs?: number;
}

export type MakeNodes = (n: number, settings?: NodeSettings) => Promise<ContractNodes>;

export interface ContractOptions {
  /** Most nodes the engine can form into one cluster (default 3). A single-process engine passes 1: every
   * multi-node test then runs with all roles on node 0 (same assertions, minus the cross-node part). */
  maxNodes?: number;
}

/** Everything a broker delivered to one node, in arrival order. Each delivery wakes `waitFor` callers. */
export class Recorder implements BrokerHandler {
  readonly pubs: Publication[] = [];
  readonly ephemeral: { channel: string; frame: string; exclude: string | undefined }[] = [];
  readonly control: ControlEnvelope[] = [];
  readonly statuses: BrokerStatus[] = [];
  onPublication(pub: Publication): void { this.pubs.push(pub); changed(); }
  onEphemeral(channel: string, frame: string, excludeConnectionId: string | undefined): void {
    this.ephemeral.push({ channel, frame, exclude: excludeConnectionId });
    changed();
  }
  onControl(msg: ControlEnvelope): void { this.control.push(msg); changed(); }
  onStatus(status: BrokerStatus): void { this.statuses.push(status); changed(); }
  pubsOf(channel: string): Publication[] { return this.pubs.filter((p) => p.channel === channel); }
}

export const uid = (p: string): string => `${p}-${randomBytes(5).toString('hex')}`;

/** Conditions waiting in `waitFor`, re-checked after every delivery to any Recorder. */
const waiting = new Set<() => void>();
function changed(): void {
  for (const w of [...waiting]) w();
}

/**
 * Resolves once `cond` holds: checked now and after every broker callback to any Recorder (a delivery or a
 * status change), never on a timer; fails after `ms` with `what`. `cond` must depend on Recorder state only.
 */
export function waitFor(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  if (cond()) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const check = (): void => {
      if (!cond()) return;
      waiting.delete(check);
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(() => {
      waiting.delete(check);
      reject(new assert.AssertionError({ message: `timed out after ${ms} ms waiting for: ${what}` }));
    }, ms);
    waiting.add(check);
  });
}

/** Poll an async `cond` until true or fail after `ms` with `what`. */
export async function waitForAsync(cond: () => Promise<boolean>, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) assert.fail(`timed out after ${ms} ms waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Walk onlineUsersPage to the end; fails on a page over `limit` or a walk that does not end. */
export async function walkOnlineUsers(p: PresenceStore, limit: number): Promise<{ users: OnlineUser[]; pages: number }> {
  const users: OnlineUser[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const page = await p.onlineUsersPage(cursor, limit);
    pages += 1;
    assert.ok(page.users.length <= limit, `page of ${page.users.length} users exceeds limit ${limit}`);
    assert.ok(pages < 100_000, 'walk does not end');
    users.push(...page.users);
    if (page.nextCursor !== null) assert.notEqual(page.nextCursor, cursor, 'cursor must advance');
    cursor = page.nextCursor;
  } while (cursor !== null);
  return { users, pages };
}

/** Walk membersPage to the end, calling `between(listedSoFar)` after each non-final page; fails on a page
 * over `limit`, a cursor that does not advance, or a walk that does not end. */
export async function walkMembers(
  p: PresenceStore, channel: string, limit: number, between?: (listed: readonly PresenceMember[]) => Promise<void>,
): Promise<{ members: PresenceMember[]; pages: number }> {
  const members: PresenceMember[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const page = await p.membersPage(channel, cursor, limit);
    pages += 1;
    assert.ok(page.members.length <= limit, `page of ${page.members.length} members exceeds limit ${limit}`);
    assert.ok(pages < 100_000, 'walk does not end');
    members.push(...page.members);
    if (page.nextCursor !== null) assert.notEqual(page.nextCursor, cursor, 'cursor must advance');
    cursor = page.nextCursor;
    if (cursor !== null && between) await between(members);
  } while (cursor !== null);
  return { members, pages };
}

/** Connection ids listed more than once. */
function repeated(members: PresenceMember[]): string[] {
  const seen = new Set<string>();
  const twice: string[] = [];
  for (const m of members) {
    if (seen.has(m.connection_id)) twice.push(m.connection_id);
    seen.add(m.connection_id);
  }
  return twice;
}

const byId = (a: PresenceMember, b: PresenceMember): number => (a.connection_id < b.connection_id ? -1 : a.connection_id > b.connection_id ? 1 : 0);

const HIST: PublishOptions = { history: { size: 100, ttlMs: 60_000 } };
const frameOf = (i: number | string): string => `{"type":"message","data":{"n":${JSON.stringify(i)}}}`;

/** Start n nodes with recorders; run fn; always clean up. */
async function withNodes(
  makeNodes: MakeNodes, n: number, settings: NodeSettings,
  fn: (b: Broker[], r: Recorder[], p: PresenceStore[], nodes: ContractNodes) => Promise<void>,
): Promise<void> {
  const nodes = await makeNodes(n, settings);
  try {
    assert.equal(nodes.brokers.length, n, 'factory returned the wrong number of brokers');
    assert.equal(nodes.presences.length, n, 'factory returned the wrong number of presence stores');
    const recs = nodes.brokers.map(() => new Recorder());
    await Promise.all(nodes.brokers.map((b, i) => b.start(recs[i]!)));
    assert.equal(new Set(nodes.brokers.map((b) => b.nodeId)).size, n, 'node ids must be unique');
    await fn(nodes.brokers, recs, nodes.presences, nodes);
  } finally {
    await nodes.cleanup();
  }
}

/** Publish a marker on a fresh channel every listed node subscribes, and wait until each got it: everything
 * published before it (sequentially, from the same node) has been delivered by then. */
async function barrier(publisher: Broker, brokers: Broker[], recs: Recorder[]): Promise<void> {
  const ch = uid('barrier');
  for (const b of brokers) await b.subscribe(ch);
  await publisher.publish(ch, frameOf('barrier'), HIST);
  await waitFor(() => brokers.every((_, i) => recs[i]!.pubsOf(ch).length === 1), 'barrier publication on every node');
}

/** Node i of a test's cluster; wraps around when the engine formed fewer nodes (see ContractOptions). */
const at = <T>(arr: T[], i: number): T => arr[i % arr.length]!;

/**
 * Register the contract tests (node:test `describe`) for one engine. `makeNodes(n)` is called once per test
 * with n <= maxNodes.
 */
export function runBrokerContract(name: string, makeNodes: MakeNodes, options: ContractOptions = {}): void {
  const maxNodes = Math.max(1, options.maxNodes ?? 3);
  const withCluster = (want: number, fn: (b: Broker[], r: Recorder[], p: PresenceStore[], nodes: ContractNodes) => Promise<void>, settings: NodeSettings = {}) =>
    withNodes(makeNodes, Math.min(want, maxNodes), settings, fn);
  describe(`broker contract: ${name}`, () => {

    it('publish: offsets +1 in one epoch, delivered in order to every subscribed node including self, returned = delivered', async () => {
      await withCluster(3, async (b, r) => {
        const ch = uid('order');
        await b[0]!.subscribe(ch);
        await at(b, 1).subscribe(ch);
        const returned: Publication[] = [];
        for (let i = 0; i < 20; i++) returned.push(await b[0]!.publish(ch, frameOf(i), HIST));
        assert.deepEqual(returned.map((p) => p.offset), Array.from({ length: 20 }, (_, i) => i + 1));
        assert.equal(new Set(returned.map((p) => p.epoch)).size, 1, 'one epoch');
        assert.ok(returned[0]!.epoch.length > 0);
        for (const p of returned) {
          assert.equal(p.channel, ch);
          assert.equal(typeof p.time, 'number');
          assert.ok(Math.abs(p.time - Date.now()) < 60_000, 'time is ms since the Unix epoch');
          assert.equal(p.excludeConnectionId, undefined);
        }
        await waitFor(() => r[0]!.pubsOf(ch).length === 20 && at(r, 1).pubsOf(ch).length === 20, '20 publications on nodes 0 and 1');
        assert.deepEqual(r[0]!.pubsOf(ch), returned, 'self-delivery: same publications, same order');
        assert.deepEqual(at(r, 1).pubsOf(ch), returned, 'remote delivery: same publications, same order');
        const nobody = uid('nobody');
        await b[0]!.publish(nobody, frameOf('x'), HIST);
        await barrier(b[0]!, b, r);
        for (const x of r) assert.equal(x.pubsOf(nobody).length, 0, 'no node receives a channel it did not subscribe');
        if (b.length >= 3) assert.equal(r[2]!.pubsOf(ch).length, 0, 'an unsubscribed node receives nothing');
      });
    });

    it('concurrent publishes from several nodes: unique consecutive offsets, one order everywhere', async () => {
      await withCluster(3, async (b, r) => {
        const ch = uid('conc');
        for (const x of b) await x.subscribe(ch);
        const all = await Promise.all([0, 1, 2].map((i) => at(b, i)).flatMap((x, n) => Array.from({ length: 10 }, (_, i) => x.publish(ch, frameOf(`${n}:${i}`), HIST))));
        assert.deepEqual(all.map((p) => p.offset).sort((a, c) => a - c), Array.from({ length: 30 }, (_, i) => i + 1));
        await waitFor(() => r.every((x) => x.pubsOf(ch).length === 30), '30 publications on every node');
        for (const x of r) assert.deepEqual(x.pubsOf(ch).map((p) => p.offset), Array.from({ length: 30 }, (_, i) => i + 1), 'offset order');
        const byOffset = new Map(all.map((p) => [p.offset, p.frame]));
        for (const p of at(r, 2).pubsOf(ch)) assert.equal(p.frame, byOffset.get(p.offset));
      });
    });

    it('unsubscribe stops delivery; excludeConnectionId is carried', async () => {
      await withCluster(2, async (b, r) => {
        const ch = uid('unsub');
        await at(b, 1).subscribe(ch);
        const p1 = await b[0]!.publish(ch, frameOf(1), { ...HIST, excludeConnectionId: 'conn-7' });
        assert.equal(p1.excludeConnectionId, 'conn-7');
        await waitFor(() => at(r, 1).pubsOf(ch).length === 1, 'first publication');
        assert.equal(at(r, 1).pubsOf(ch)[0]!.excludeConnectionId, 'conn-7');
        await at(b, 1).unsubscribe(ch);
        await b[0]!.publish(ch, frameOf(2), HIST);
        await barrier(b[0]!, [at(b, 1)], [at(r, 1)]);
        assert.equal(at(r, 1).pubsOf(ch).length, 1, 'nothing after unsubscribe');
      });
    });

    it('history: since (oldest first, limit), before (newest first), position', async () => {
      await withCluster(2, async (b) => {
        const ch = uid('hist');
        const pubs: Publication[] = [];
        for (let i = 1; i <= 5; i++) pubs.push(await b[0]!.publish(ch, frameOf(i), HIST));
        const epoch = pubs[0]!.epoch;
        const h = await at(b, 1).history(ch, { since: { epoch, offset: 2 }, limit: 10 });
        assert.deepEqual(h.publications, pubs.slice(2), 'since 2 -> 3,4,5 as published');
        assert.deepEqual(h.position, { epoch, offset: 5 });
        assert.equal(h.recoverable, true);
        const lim = await at(b, 1).history(ch, { since: { epoch, offset: 2 }, limit: 2 });
        assert.deepEqual(lim.publications.map((p) => p.offset), [3, 4]);
        assert.equal(lim.recoverable, true);
        const top = await at(b, 1).history(ch, { since: { epoch, offset: 5 }, limit: 10 });
        assert.deepEqual(top.publications, []);
        assert.equal(top.recoverable, true, 'nothing missed at the top');
        const zero = await at(b, 1).history(ch, { since: { epoch, offset: 0 }, limit: 10 });
        assert.deepEqual(zero.publications.map((p) => p.offset), [1, 2, 3, 4, 5]);
        assert.equal(zero.recoverable, true);
        const before = await at(b, 1).history(ch, { before: 4, limit: 2 });
        assert.deepEqual(before.publications.map((p) => p.offset), [3, 2], 'before 4 -> newest first');
        assert.deepEqual(before.publications[0], pubs[2]);
        assert.deepEqual(before.position, { epoch, offset: 5 });
        assert.deepEqual(await at(b, 1).position(ch), { epoch, offset: 5 });
      });
    });

    it('history: recoverable false on epoch mismatch and on a trimmed window; size 0 stores nothing', async () => {
      await withCluster(1, async (b) => {
        const ch = uid('trim');
        let last: Publication | undefined;
        for (let i = 1; i <= 10; i++) last = await b[0]!.publish(ch, frameOf(i), { history: { size: 3, ttlMs: 60_000 } });
        const epoch = last!.epoch;
        const other = await b[0]!.history(ch, { since: { epoch: `${epoch}x`, offset: 9 }, limit: 10 });
        assert.equal(other.recoverable, false, 'epoch mismatch');
        assert.deepEqual(other.publications, []);
        assert.deepEqual(other.position, { epoch, offset: 10 });
        const gap = await b[0]!.history(ch, { since: { epoch, offset: 2 }, limit: 10 });
        assert.equal(gap.recoverable, false, 'offsets 3..7 were trimmed');
        const ok = await b[0]!.history(ch, { since: { epoch, offset: 7 }, limit: 10 });
        assert.equal(ok.recoverable, true);
        assert.deepEqual(ok.publications.map((p) => p.offset), [8, 9, 10]);
        const newest = await b[0]!.history(ch, { before: 100, limit: 10 });
        assert.deepEqual(newest.publications.map((p) => p.offset), [10, 9, 8], 'at most `size` publications are kept');

        const ch0 = uid('nohist');
        const a = await b[0]!.publish(ch0, frameOf(1), { history: { size: 0, ttlMs: 60_000 } });
        const c = await b[0]!.publish(ch0, frameOf(2), { history: { size: 0, ttlMs: 60_000 } });
        assert.equal(c.offset, a.offset + 1, 'offsets advance without history');
        const none = await b[0]!.history(ch0, { since: { epoch: a.epoch, offset: 0 }, limit: 10 });
        assert.deepEqual(none.publications, []);
        assert.equal(none.recoverable, false);
        assert.equal((await b[0]!.history(ch0, { since: { epoch: a.epoch, offset: 2 }, limit: 10 })).recoverable, true);
      });
    });

    it('position of a channel without publications: offset 0, and recovering from it after publishes returns everything', async () => {
      await withCluster(2, async (b) => {
        const ch = uid('pos');
        const p0 = await b[0]!.position(ch);
        assert.equal(p0.offset, 0);
        assert.ok(typeof p0.epoch === 'string' && p0.epoch.length > 0 && p0.epoch.length <= 64, `epoch: ${p0.epoch}`);
        const p1 = await at(b, 1).position(ch);
        assert.equal(p1.offset, 0);
        // Nothing published yet: recovering from the placeholder is complete and empty, on any node.
        const none = await at(b, 1).history(ch, { since: p0, limit: 10 });
        assert.deepEqual({ pubs: none.publications, recoverable: none.recoverable, offset: none.position.offset }, { pubs: [], recoverable: true, offset: 0 });
        const before = await b[0]!.history(ch, { before: 10, limit: 10 });
        assert.deepEqual({ pubs: before.publications, offset: before.position.offset }, { pubs: [], offset: 0 });
        const pub = await at(b, 1).publish(ch, frameOf(1), HIST);
        assert.equal(pub.offset, 1);
        for (const [name, p] of [['node 0 placeholder', p0], ['node 1 placeholder', p1]] as const) {
          const h = await b[0]!.history(ch, { since: p, limit: 10 });
          assert.equal(h.recoverable, true, `${name}: a client that joined at offset 0 recovers everything`);
          assert.deepEqual(h.publications, [pub], name);
          assert.deepEqual(h.position, { epoch: pub.epoch, offset: 1 }, name);
        }
        assert.deepEqual(await b[0]!.position(ch), { epoch: pub.epoch, offset: 1 });
        // A client that kept that epoch and counted offsets from the publications is at the top.
        const counted = await b[0]!.history(ch, { since: { epoch: p0.epoch, offset: 1 }, limit: 10 });
        assert.deepEqual({ pubs: counted.publications, recoverable: counted.recoverable }, { pubs: [], recoverable: true });
        assert.equal((await b[0]!.history(ch, { since: { epoch: p0.epoch, offset: 2 }, limit: 10 })).recoverable, false, 'beyond the top');
        // A made-up placeholder recovers nothing.
        assert.equal((await b[0]!.history(ch, { since: { epoch: '~0.0', offset: 0 }, limit: 10 })).recoverable, false);
        assert.equal((await b[0]!.history(uid('empty'), { since: { epoch: '~0.0', offset: 0 }, limit: 10 })).recoverable, false);
      });
    });

    it('a position read before a stream that was created and expired does not recover the next stream', async () => {
      await withCluster(2, async (b) => {
        const ch = uid('gap');
        const short = { history: { size: 10, ttlMs: 300 } };
        const p0 = await b[0]!.position(ch);
        const first = await at(b, 1).publish(ch, frameOf(1), short);
        // Wait until the stream has expired (its position is a placeholder again), then start a new one.
        await waitForAsync(async () => (await b[0]!.position(ch)).offset === 0, 'the short-lived stream expires', 10_000);
        const second = await at(b, 1).publish(ch, frameOf(2), short);
        assert.notEqual(second.epoch, first.epoch, 'a new stream, a new epoch');
        assert.equal(second.offset, 1);
        const h = await b[0]!.history(ch, { since: p0, limit: 10 });
        assert.equal(h.recoverable, false, 'the first stream was missed: not recoverable');
        assert.deepEqual(h.publications, []);
      });
    });

    it('idempotency key: a repeat inside the window returns the first publication and delivers nothing', async () => {
      await withCluster(2, async (b, r) => {
        const ch = uid('idem');
        await at(b, 1).subscribe(ch);
        const opts: PublishOptions = { ...HIST, idempotencyKey: 'k1', idempotencyWindowMs: 60_000 };
        const first = await b[0]!.publish(ch, frameOf('a'), opts);
        const again = await at(b, 1).publish(ch, frameOf('a'), opts);
        assert.deepEqual(again, first);
        const other = await b[0]!.publish(ch, frameOf('b'), { ...HIST, idempotencyKey: 'k2', idempotencyWindowMs: 60_000 });
        assert.equal(other.offset, first.offset + 1);
        await barrier(b[0]!, [at(b, 1)], [at(r, 1)]);
        assert.deepEqual(at(r, 1).pubsOf(ch).map((p) => p.offset), [1, 2], 'the repeat was not delivered');
        assert.deepEqual((await b[0]!.position(ch)).offset, 2);
      });
    });

    it('ephemeral: delivered as is to subscribed nodes including self, with exclude; not stored', async () => {
      await withCluster(3, async (b, r) => {
        const ch = uid('eph');
        await b[0]!.subscribe(ch);
        await at(b, 1).subscribe(ch);
        const f = '{"type":"typing","data":{"user_id":"u1","is_typing":true}}';
        await b[0]!.publishEphemeral(ch, f, 'conn-1');
        await b[0]!.publishEphemeral(ch, f);
        await waitFor(() => r[0]!.ephemeral.length === 2 && at(r, 1).ephemeral.length === 2, 'ephemeral on nodes 0 and 1');
        for (const x of [r[0]!, at(r, 1)]) {
          assert.deepEqual(x.ephemeral, [{ channel: ch, frame: f, exclude: 'conn-1' }, { channel: ch, frame: f, exclude: undefined }]);
        }
        await b[0]!.publishEphemeral(uid('nobody'), f);
        await barrier(b[0]!, b, r);
        for (const x of r) assert.deepEqual(x.ephemeral.filter((e) => e.channel !== ch), [], 'no ephemeral from channels a node did not subscribe');
        if (b.length >= 3) assert.equal(r[2]!.ephemeral.length, 0, 'unsubscribed node gets no ephemeral');
        assert.equal((await b[0]!.position(ch)).offset, 0, 'ephemeral events take no offset');
        assert.deepEqual(r[0]!.pubsOf(ch), []);
      });
    });

    it('control messages reach every node, the sender included, stamped with originNode', async () => {
      await withCluster(3, async (b, r) => {
        const f = '{"type":"private_message","data":{"text":"hi"}}';
        const msgs: ControlMessage[] = [
          { kind: 'user', userId: uid('u'), frame: f },
          { kind: 'connection', connectionId: 'c-1', frame: f },
          { kind: 'all', frame: f },
          { kind: 'disconnect_connection', connectionId: 'c-2', code: 4010, reason: 'kicked' },
          { kind: 'disconnect_user', userId: 'u\n"2', code: 4010, reason: 'banned "x"' },
          { kind: 'supersede', clientId: 'cl-1', keepConnectionId: 'c-3' },
        ];
        for (const m of msgs) await at(b, 1).publishControl(m);
        await waitFor(() => r.every((x) => x.control.length >= msgs.length), 'control messages on every node');
        const expected = msgs.map((m) => ({ ...m, originNode: at(b, 1).nodeId }));
        for (const x of r) assert.deepEqual(x.control, expected);
      });
    });

    it('presence: join / members across nodes / leave', async () => {
      await withCluster(2, async (_b, _r, p) => {
        const ch = uid('pres');
        assert.deepEqual(await p[0]!.members(ch), []);
        const m1 = { connection_id: uid('c'), user_id: 'u1', username: 'Ann' };
        const m2 = { connection_id: uid('c'), user_id: null, username: null };
        await p[0]!.join(ch, m1);
        await at(p, 1).join(ch, m2);
        const sort = (a: { connection_id: string }[]) => [...a].sort((x, y) => (x.connection_id < y.connection_id ? -1 : 1));
        assert.deepEqual(sort(await p[0]!.members(ch)), sort([m1, m2]));
        assert.deepEqual(sort(await at(p, 1).members(ch)), sort([m1, m2]));
        assert.equal(await at(p, 1).count(ch), 2);
        await p[0]!.leave(ch, m1.connection_id);
        assert.deepEqual(await at(p, 1).members(ch), [m2]);
        assert.equal(await p[0]!.count(ch), 1);
        await at(p, 1).leave(ch, m2.connection_id);
        assert.deepEqual(await p[0]!.members(ch), []);
        assert.deepEqual(await p[0]!.members(uid('other')), []);
        assert.equal(await p[0]!.count(uid('other')), 0);
      });
    });

    it('presence: user connection counts across nodes and onlineUsers', async () => {
      await withCluster(2, async (_b, _r, p) => {
        const u = uid('user');
        const c = [uid('c'), uid('c'), uid('c')];
        assert.equal(await p[0]!.userConnected(u, 'Bob', c[0]!), 1, 'first connection');
        assert.equal(await at(p, 1).userConnected(u, 'Bob', c[1]!), 2, 'second connection, other node');
        assert.equal(await p[0]!.userConnected(u, 'Bob', c[2]!), 3);
        const online = (await at(p, 1).onlineUsers()).find((x) => x.user_id === u);
        assert.deepEqual(online, { user_id: u, username: 'Bob', connections: 3 });
        assert.equal(await at(p, 1).userDisconnected(u, c[1]!), 2);
        assert.equal(await p[0]!.userDisconnected(u, c[0]!), 1);
        assert.deepEqual((await p[0]!.onlineUsers()).find((x) => x.user_id === u)?.connections, 1);
        assert.equal(await p[0]!.userDisconnected(u, c[2]!), 0, 'last connection gone');
        assert.equal((await at(p, 1).onlineUsers()).find((x) => x.user_id === u), undefined);
      });
    });

    it('presence: userOnline across nodes', async () => {
      await withCluster(2, async (_b, _r, p) => {
        const u = uid('user');
        assert.equal(await p[0]!.userOnline(u), false, 'never connected');
        await p[0]!.userConnected(u, null, 'c1');
        assert.equal(await p[0]!.userOnline(u), true, 'on this node');
        assert.equal(await at(p, 1).userOnline(u), true, 'seen from another node');
        await at(p, 1).userConnected(u, null, 'c2');
        assert.equal(await p[0]!.userDisconnected(u, 'c1'), 1);
        assert.equal(await p[0]!.userOnline(u), true, 'still connected on node 1');
        assert.equal(await at(p, 1).userOnline(u), true);
        assert.equal(await at(p, 1).userDisconnected(u, 'c2'), 0);
        assert.equal(await p[0]!.userOnline(u), false, 'last connection gone');
        assert.equal(await at(p, 1).userOnline(u), false);
        assert.equal(await p[0]!.userOnline(uid('nobody')), false);
      });
    });

    // Only engines with several nodes have a node to kill (the memory engine is one process).
    if (maxNodes >= 2) it('presence: a user whose only node was killed without cleanup is offline after the presence ttl', async () => {
      const ttl = 600;
      await withCluster(2, async (_b, _r, p, nodes) => {
        assert.ok(nodes.crashPresence, 'a multi-node engine must provide crashPresence');
        const gone = uid('gone');
        const stays = uid('stays');
        await p[1]!.userConnected(gone, 'G', 'c-gone');
        await p[1]!.userConnected(stays, 'S', 'c-stays-1');
        await p[0]!.userConnected(stays, 'S', 'c-stays-0');
        assert.equal(await p[0]!.userOnline(gone), true);
        // Alive for longer than one ttl: node 1's refresh keeps its entries.
        const t0 = Date.now();
        await waitForAsync(async () => Date.now() - t0 > ttl * 1.5 && (await p[0]!.userOnline(gone)), 'node 1 kept alive past one ttl', 10_000);
        await nodes.crashPresence(1);
        await waitForAsync(async () => !(await p[0]!.userOnline(gone)), 'the dead node\'s user goes offline', ttl + 5000);
        assert.equal(await p[0]!.userOnline(stays), true, 'a user with a connection on a live node stays online');
        const walk = await walkOnlineUsers(p[0]!, 1000);
        assert.equal(walk.users.find((x) => x.user_id === gone), undefined, 'not listed by onlineUsersPage');
        assert.deepEqual(walk.users.find((x) => x.user_id === stays), { user_id: stays, username: 'S', connections: 1 }, 'only the live node\'s connection counts');
        assert.equal((await p[0]!.onlineUsers()).find((x) => x.user_id === gone), undefined, 'not listed by onlineUsers');
        assert.equal(await p[0]!.userDisconnected(stays, 'c-stays-0'), 0);
      }, { presenceTtlMs: ttl });
    });

    it('presence: onlineUsersPage walks 2,500 users over 2 nodes, each exactly once with its cluster-wide count', async () => {
      await withCluster(2, async (_b, _r, p) => {
        const tag = uid('pg');
        const ids = Array.from({ length: 2500 }, (_, i) => `${tag}-${String(i).padStart(4, '0')}`);
        const expected = new Map<string, number>();
        for (let i = 0; i < ids.length; i += 250) {
          await Promise.all(ids.slice(i, i + 250).map(async (id, j) => {
            const k = i + j;
            // Every user on node k % 2; every 10th also on the other node (2 connections, counted once).
            await at(p, k % 2).userConnected(id, `name-${k}`, `${id}-a`);
            if (k % 10 === 0) await at(p, (k + 1) % 2).userConnected(id, `name-${k}`, `${id}-b`);
            expected.set(id, k % 10 === 0 ? 2 : 1);
          }));
        }
        const walk = await walkOnlineUsers(p[0]!, 1000);
        const ours = walk.users.filter((u) => u.user_id.startsWith(`${tag}-`));
        assert.equal(ours.length, 2500, 'every user listed');
        assert.equal(new Set(walk.users.map((u) => u.user_id)).size, walk.users.length, 'nobody listed twice');
        for (const u of ours) {
          assert.equal(u.connections, expected.get(u.user_id), `connections of ${u.user_id}`);
          assert.equal(u.username, `name-${Number(u.user_id.slice(-4))}`);
        }
        assert.ok(walk.pages >= 3, `2,500 users at 1,000 a page take at least 3 pages (got ${walk.pages})`);
        // Small pages from the other node give the same set.
        const small = await walkOnlineUsers(at(p, 1), 97);
        assert.deepEqual(small.users.filter((u) => u.user_id.startsWith(`${tag}-`)).map((u) => u.user_id).sort(), [...ids].sort());
        // limit is clamped to 1..1000.
        assert.ok((await p[0]!.onlineUsersPage(null, 5000)).users.length <= 1000);
        const one = await p[0]!.onlineUsersPage(null, 0);
        assert.ok(one.users.length <= 1 && one.nextCursor !== null);
        // Users who leave disappear from the walk; the others keep their counts.
        for (let k = 0; k < 100; k++) {
          await at(p, k % 2).userDisconnected(ids[k]!, `${ids[k]}-a`);
          if (k % 10 === 0) await at(p, (k + 1) % 2).userDisconnected(ids[k]!, `${ids[k]}-b`);
        }
        const after = (await walkOnlineUsers(p[0]!, 1000)).users.filter((u) => u.user_id.startsWith(`${tag}-`));
        assert.deepEqual(after.map((u) => u.user_id).sort(), ids.slice(100).sort());
        // In groups of 250 like the connects above: 2,400 pipelines at once can outlast the 1 s command timeout on a
        // busy host (the test is about paging, not about the engine's burst capacity).
        for (let i = 100; i < ids.length; i += 250) {
          await Promise.all(ids.slice(i, i + 250).map(async (id) => {
            const k = Number(id.slice(-4));
            await at(p, k % 2).userDisconnected(id, `${id}-a`);
            if (k % 10 === 0) await at(p, (k + 1) % 2).userDisconnected(id, `${id}-b`);
          }));
        }
        assert.deepEqual((await walkOnlineUsers(p[0]!, 1000)).users.filter((u) => u.user_id.startsWith(`${tag}-`)), []);
      });
    });

    it('presence: membersPage walks 2,500 members over 2 nodes, each exactly once with its fields; limit clamped; empty channel', async () => {
      await withCluster(2, async (_b, _r, p) => {
        const ch = uid('mp');
        assert.deepEqual(await p[0]!.membersPage(ch, null, 10), { members: [], nextCursor: null }, 'unknown channel');
        const all: PresenceMember[] = Array.from({ length: 2500 }, (_, k) => ({
          connection_id: `${ch}-c${String(k).padStart(4, '0')}`,
          user_id: k % 7 === 0 ? null : `u${k % 300}`,
          username: k % 5 === 0 ? null : `name-${k}`,
        }));
        for (let i = 0; i < all.length; i += 250) {
          // Member k on node k % 2.
          await Promise.all(all.slice(i, i + 250).map((m, j) => at(p, (i + j) % 2).join(ch, m)));
        }
        const walk = await walkMembers(p[0]!, ch, 1000);
        assert.deepEqual(repeated(walk.members), [], 'nobody listed twice');
        assert.equal(walk.members.length, 2500, 'every member listed');
        assert.deepEqual([...walk.members].sort(byId), all, 'each with the fields it joined with');
        assert.ok(walk.pages >= 3 && walk.pages <= 4, `2,500 members at 1,000 a page take 3 pages (+ maybe an empty one), got ${walk.pages}`);
        // Small pages from the other node give the same members.
        const small = await walkMembers(at(p, 1), ch, 97);
        assert.deepEqual(repeated(small.members), []);
        assert.deepEqual([...small.members].sort(byId), all);
        assert.ok(small.pages >= 26);
        // limit is clamped to 1..1000.
        const big = await p[0]!.membersPage(ch, null, 5000);
        assert.equal(big.members.length, 1000, 'limit 5000 -> 1000');
        assert.notEqual(big.nextCursor, null);
        const nan = await at(p, 1).membersPage(ch, null, Number.NaN);
        assert.equal(nan.members.length, 1000, 'limit NaN -> 1000');
        for (const limit of [0, -3]) {
          const one = await p[0]!.membersPage(ch, null, limit);
          assert.equal(one.members.length, 1, `limit ${limit} -> 1`);
          assert.notEqual(one.nextCursor, null);
        }
        assert.equal((await p[0]!.membersPage(ch, null, 2.7)).members.length, 2, 'limit 2.7 -> 2');
        // Everybody leaves: the channel is empty again.
        await Promise.all(all.map((m, k) => at(p, k % 2).leave(ch, m.connection_id)));
        assert.deepEqual(await p[0]!.membersPage(ch, null, 1000), { members: [], nextCursor: null }, 'emptied channel');
        assert.deepEqual(await at(p, 1).membersPage(ch, null, 1), { members: [], nextCursor: null });
      });
    });

    it('presence: membersPage during churn: members present throughout appear exactly once, leavers and joiners never twice', async () => {
      await withCluster(2, async (_b, _r, p) => {
        const ch = uid('churn');
        const member = (id: string): PresenceMember => ({ connection_id: id, user_id: `u-${id}`, username: id.slice(-3) });
        // Random ids: leavers and joiners fall before and after the cursor alike.
        const ids = Array.from({ length: 600 }, () => uid('c'));
        const node = new Map<string, number>(ids.map((id, k) => [id, k % 2]));
        await Promise.all(ids.map((id) => at(p, node.get(id)!).join(ch, member(id))));
        const leavers = new Set(ids.filter((_, k) => k % 4 === 1));
        const stayers = ids.filter((id) => !leavers.has(id));
        const pendingLeave = [...leavers];
        const ever = new Map<string, PresenceMember>(ids.map((id) => [id, member(id)]));
        // Stayers that leave and join again with the same connection id during the walk (not present throughout).
        const bounced = new Set<string>();
        const bounce = async (id: string): Promise<void> => {
          bounced.add(id);
          await at(p, node.get(id)!).leave(ch, id);
          await at(p, node.get(id)!).join(ch, member(id));
        };
        let bouncedListed = 0;
        const walk = await walkMembers(p[0]!, ch, 40, async (listed) => {
          // 10 leave, 4 new members join, one already listed member and one not yet listed bounce.
          for (const id of pendingLeave.splice(0, 10)) await at(p, node.get(id)!).leave(ch, id);
          for (let j = 0; j < 4; j++) {
            const id = uid('c');
            node.set(id, j % 2);
            ever.set(id, member(id));
            await at(p, j % 2).join(ch, member(id));
          }
          const listedIds = new Set(listed.map((m) => m.connection_id));
          const done = stayers.find((id) => listedIds.has(id) && !bounced.has(id));
          if (done !== undefined) { await bounce(done); bouncedListed += 1; }
          const ahead = stayers.find((id) => !listedIds.has(id) && !bounced.has(id));
          if (ahead !== undefined) await bounce(ahead);
        });
        assert.ok(walk.pages >= 10, `the walk is long enough to see churn (${walk.pages} pages)`);
        assert.ok(bouncedListed > 0, 'members already listed left and came back');
        assert.deepEqual(repeated(walk.members), [], 'nobody listed twice');
        const listed = new Set(walk.members.map((m) => m.connection_id));
        const present = stayers.filter((id) => !bounced.has(id));
        assert.ok(present.length > 300);
        for (const id of present) assert.ok(listed.has(id), `${id}, present throughout, is listed`);
        for (const m of walk.members) assert.deepEqual(m, ever.get(m.connection_id), 'listed with its fields');
        // Leavers who left before the walk reached them are gone; a fresh walk lists exactly who is there now.
        const now = (await walkMembers(at(p, 1), ch, 1000)).members;
        assert.deepEqual(repeated(now), []);
        assert.deepEqual(now.map((m) => m.connection_id).sort(), (await p[0]!.members(ch)).map((m) => m.connection_id).sort());
        assert.equal(now.length, await p[0]!.count(ch));
        await Promise.all(now.map((m) => at(p, node.get(m.connection_id)!).leave(ch, m.connection_id)));
      });
    });

    it('presence: membersPage orders any connection ids consistently (non-ASCII, prefixes of each other), also one by one', async () => {
      await withCluster(2, async (_b, _r, p) => {
        const ch = uid('order');
        const ids = ['a', 'ab', 'a b', 'B', 'Z', 'z', 'é', 'e\u0301', 'ü', '中文', '中', '😀', '😀x', '\uffee', '~', '(x', '[x', '-', '+', '0', '9', ' '];
        await Promise.all(ids.map((id, k) => at(p, k % 2).join(ch, { connection_id: id, user_id: null, username: null })));
        for (const limit of [1, 2, 3, 1000]) {
          const walk = await walkMembers(at(p, limit), ch, limit);
          assert.deepEqual(repeated(walk.members), [], `limit ${limit}: nobody twice`);
          assert.deepEqual(walk.members.map((m) => m.connection_id).sort(), [...ids].sort(), `limit ${limit}: everybody`);
        }
        await Promise.all(ids.map((id, k) => at(p, k % 2).leave(ch, id)));
      });
    });

    if (maxNodes >= 2) it('presence: membersPage drops the members of a node killed without cleanup after the presence ttl', async () => {
      const ttl = 600;
      await withCluster(2, async (_b, _r, p, nodes) => {
        assert.ok(nodes.crashPresence, 'a multi-node engine must provide crashPresence');
        const ch = uid('mkill');
        const stay = Array.from({ length: 30 }, (_, k) => ({ connection_id: `${ch}-s${k}`, user_id: `s${k}`, username: null }));
        const gone = Array.from({ length: 30 }, (_, k) => ({ connection_id: `${ch}-g${k}`, user_id: null, username: `g${k}` }));
        await Promise.all([...stay.map((m) => p[0]!.join(ch, m)), ...gone.map((m) => p[1]!.join(ch, m))]);
        // Alive for longer than one ttl: node 1's refresh keeps its entries.
        const t0 = Date.now();
        await waitForAsync(async () => Date.now() - t0 > ttl * 1.5 && (await walkMembers(p[0]!, ch, 7)).members.length === 60, 'node 1 kept alive past one ttl', 10_000);
        await nodes.crashPresence(1);
        await waitForAsync(async () => (await walkMembers(p[0]!, ch, 7)).members.length === 30, 'the dead node\'s members go', ttl + 5000);
        const walk = await walkMembers(p[0]!, ch, 7);
        assert.deepEqual([...walk.members].sort(byId), [...stay].sort(byId), 'only the live node\'s members, with their fields');
        assert.deepEqual([...(await p[0]!.members(ch))].sort(byId), [...stay].sort(byId), 'members() agrees');
        await Promise.all(stay.map((m) => p[0]!.leave(ch, m.connection_id)));
        assert.deepEqual(await p[0]!.membersPage(ch, null, 10), { members: [], nextCursor: null });
      }, { presenceTtlMs: ttl });
    });

    it('client ids: free or same owner -> held (later claims larger generations); another owner -> refused, nothing changes', async () => {
      await withCluster(2, async (_b, _r, p) => {
        const id = uid('cid');
        const first = await p[0]!.claimClientId(id, 'alice', 'c-a1');
        assert.equal(first.ok, true, 'a free id is taken');
        assert.deepEqual(await at(p, 1).claimClientId(id, 'mallory', 'c-m'), { ok: false, holderUserId: 'alice' }, 'another user is refused');
        assert.deepEqual(await at(p, 1).claimClientId(id, null, 'c-anon'), { ok: false, holderUserId: 'alice' }, 'anonymous cannot take an identified holder\'s id');
        const second = await at(p, 1).claimClientId(id, 'alice', 'c-a2');
        assert.ok(second.ok && first.ok && second.generation > first.generation, 'the same user takes over with a larger generation');
        // Release is compare-and-delete: the superseded connection releases nothing.
        await p[0]!.releaseClientId(id, 'c-a1');
        assert.deepEqual(await p[0]!.claimClientId(id, 'mallory', 'c-m'), { ok: false, holderUserId: 'alice' }, 'alice\'s newer connection still holds it');
        await at(p, 1).releaseClientId(id, 'c-a2');
        await at(p, 1).releaseClientId(id, 'c-a2'); // idempotent
        const third = await p[0]!.claimClientId(id, 'mallory', 'c-m2');
        assert.ok(third.ok && second.ok && third.generation > second.generation, 'released: free for anybody, generations keep growing');
        await p[0]!.releaseClientId(id, 'c-m2');
      });
    });

    it('client ids: anonymous holders are superseded by anonymous connections only', async () => {
      await withCluster(2, async (_b, _r, p) => {
        const id = uid('cid-anon');
        assert.equal((await p[0]!.claimClientId(id, null, 'c-x1')).ok, true);
        assert.deepEqual(await at(p, 1).claimClientId(id, 'bob', 'c-b'), { ok: false, holderUserId: null }, 'an identified user cannot take an anonymous holder\'s id');
        assert.equal((await at(p, 1).claimClientId(id, null, 'c-x2')).ok, true, 'anonymous supersedes anonymous');
        await at(p, 1).releaseClientId(id, 'c-x2');
        assert.equal((await p[0]!.claimClientId(id, 'bob', 'c-b')).ok, true, 'released: bob may take it');
        await p[0]!.releaseClientId(id, 'c-b');
      });
    });

    it('client ids: of many owners claiming one free id at once on every node, exactly one wins', async () => {
      await withCluster(3, async (_b, _r, p) => {
        for (let round = 0; round < 5; round++) {
          const id = uid('cid-race');
          const claims = await Promise.all(Array.from({ length: 12 }, (_, k) => at(p, k).claimClientId(id, `user-${k}`, `c-${k}`)));
          const winners = claims.flatMap((c, k) => (c.ok ? [k] : []));
          assert.equal(winners.length, 1, `round ${round}: one winner, got ${JSON.stringify(claims)}`);
          const w = winners[0]!;
          for (const c of claims) if (!c.ok) assert.equal(c.holderUserId, `user-${w}`, 'every loser is told the winner');
          await at(p, w).releaseClientId(id, `c-${w}`);
        }
      });
    });

    if (maxNodes >= 2) it('client ids: the claim of a node killed without cleanup expires after the presence ttl', async () => {
      const ttl = 600;
      await withCluster(2, async (_b, _r, p, nodes) => {
        assert.ok(nodes.crashPresence, 'a multi-node engine must provide crashPresence');
        const id = uid('cid-kill');
        assert.equal((await p[1]!.claimClientId(id, 'alice', 'c-a')).ok, true);
        // Alive for longer than one ttl: node 1's refresh keeps its claim.
        const t0 = Date.now();
        await waitForAsync(async () => Date.now() - t0 > ttl * 1.5 && !(await probe(p[0]!, id)), 'node 1 kept its claim past one ttl', 10_000);
        await nodes.crashPresence(1);
        await waitForAsync(() => probe(p[0]!, id), 'the dead node\'s claim expires', ttl + 5000);
        await p[0]!.releaseClientId(id, 'probe');
      }, { presenceTtlMs: ttl });
    });
  });
}

/** Whether another user can take `clientId` (a probe claim, kept when it succeeds: release 'probe'). */
async function probe(p: PresenceStore, clientId: string): Promise<boolean> {
  return (await p.claimClientId(clientId, 'prober', 'probe')).ok;
}
