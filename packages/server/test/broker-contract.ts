/**
 * Shared contract suite for Broker + PresenceStore engines (core/broker.ts, core/presence-store.ts).
 * Engine-agnostic: imports no engine. Each engine's test file calls `runBrokerContract` with a factory.
 *
 * The factory `makeNodes(n)` returns n nodes of ONE cluster (sharing a backend): brokers NOT yet started
 * (the suite calls `start(handler)` with its recording handler), presence stores ready to use, and a
 * `cleanup()` that closes everything. Every test uses fresh random channel/user names, so nodes of
 * different tests may share one backend.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { Broker, BrokerHandler, BrokerStatus, ControlEnvelope, ControlMessage, Publication, PublishOptions } from '../src/core/ports/broker.js';
import type { PresenceStore } from '../src/core/ports/presence-store.js';

export interface ContractNodes {
  brokers: Broker[];
  presences: PresenceStore[];
  cleanup(): Promise<void>;
}

export type MakeNodes = (n: number) => Promise<ContractNodes>;

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

const HIST: PublishOptions = { history: { size: 100, ttlMs: 60_000 } };
const frameOf = (i: number | string): string => `{"type":"message","data":{"n":${JSON.stringify(i)}}}`;

/** Start n nodes with recorders; run fn; always clean up. */
async function withNodes(makeNodes: MakeNodes, n: number, fn: (b: Broker[], r: Recorder[], p: PresenceStore[]) => Promise<void>): Promise<void> {
  const nodes = await makeNodes(n);
  try {
    assert.equal(nodes.brokers.length, n, 'factory returned the wrong number of brokers');
    assert.equal(nodes.presences.length, n, 'factory returned the wrong number of presence stores');
    const recs = nodes.brokers.map(() => new Recorder());
    await Promise.all(nodes.brokers.map((b, i) => b.start(recs[i]!)));
    assert.equal(new Set(nodes.brokers.map((b) => b.nodeId)).size, n, 'node ids must be unique');
    await fn(nodes.brokers, recs, nodes.presences);
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
  const withCluster = (want: number, fn: (b: Broker[], r: Recorder[], p: PresenceStore[]) => Promise<void>) =>
    withNodes(makeNodes, Math.min(want, maxNodes), fn);
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

    it('position of a channel without publications: offset 0, an epoch that the first publish keeps', async () => {
      await withCluster(2, async (b) => {
        const ch = uid('pos');
        const p0 = await b[0]!.position(ch);
        assert.equal(p0.offset, 0);
        assert.ok(typeof p0.epoch === 'string' && p0.epoch.length > 0);
        assert.deepEqual(await at(b, 1).position(ch), p0, 'stable across calls and nodes');
        const pub = await at(b, 1).publish(ch, frameOf(1), HIST);
        assert.deepEqual({ epoch: pub.epoch, offset: pub.offset }, { epoch: p0.epoch, offset: 1 });
        const h = await b[0]!.history(ch, { since: p0, limit: 10 });
        assert.equal(h.recoverable, true, 'a client that joined at offset 0 recovers everything');
        assert.deepEqual(h.publications, [pub]);
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
  });
}
