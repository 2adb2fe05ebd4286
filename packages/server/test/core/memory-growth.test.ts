import { describe, it, mock } from 'node:test';
import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { MemoryBroker } from '../../src/broker/memory/memory-broker.js';
import { MemoryPresenceStore } from '../../src/broker/memory/memory-presence.js';
import { Node } from '../../src/core/node.js';
import { DEFAULT_NODE_OPTIONS, type NodeOptions } from '../../src/core/options.js';
import type { Outbound } from '../../src/core/outbound.js';
import type { ConnectionSink } from '../../src/core/ports/sink.js';
import { Durability } from '../../src/core/durability.js';
import { createStores } from '../../src/store/factory.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** A sink that keeps nothing: it only reports replies carrying an id. */
class ReplySink implements ConnectionSink {
  readonly kind = 'ws' as const;
  readonly queuedBytes = 0;
  onReply: ((id: string) => void) | null = null;
  send(frame: Outbound): void {
    const m = /"id":"([^"]+)"}$/.exec(frame.json);
    if (m !== null) this.onReply?.(m[1]!);
  }
  close(): void {}
  terminate(): void {}
}

/** The smallest of three readings, each after full collections and a turn of the event loop (settles noise). */
async function heapUsed(): Promise<number> {
  let min = Infinity;
  for (let i = 0; i < 3; i++) {
    await new Promise<void>((resolve) => setImmediate(resolve));
    gc();
    gc();
    min = Math.min(min, process.memoryUsage().heapUsed);
  }
  return min;
}

describe('client-chosen channel names do not grow memory', () => {
  it('100,000 distinct names probed by join/leave/history/presence leave the heap within 10 % after one sweep', async () => {
    mock.timers.enable({ apis: ['setInterval'] });
    let now = 1_700_000_000_000;
    const clock = (): number => now;
    const stores = await createStores({ driver: 'sqlite', sqlitePath: ':memory:' });
    const options: NodeOptions = {
      ...DEFAULT_NODE_OPTIONS,
      limits: { ...DEFAULT_NODE_OPTIONS.limits, rateLimit: { ...DEFAULT_NODE_OPTIONS.limits.rateLimit, perSecond: 0 }, subscribeRateLimit: { perSecond: 0, burst: 0 } },
      namespaces: { arch: { persist: true } },
    };
    const broker = new MemoryBroker({ now: clock, sweepIntervalMs: 1000 });
    const node = new Node({
      broker,
      presence: new MemoryPresenceStore(),
      options,
      durability: new Durability(stores.messages, stores.inbox, { inboxTtlMs: 0, inboxDeliverLimit: 100 }),
      now: clock,
    });
    try {
      await node.start();
      const sink = new ReplySink();
      const client = node.openSession({ sink, identity: { userId: 'prober', username: null, anonymous: true }, remoteAddress: '127.0.0.1' });
      assert.ok(!('rejected' in client));
      let seq = 0;
      /** Probe names [from, to): join, leave, history, presence; resolves when the last reply arrived. */
      const probe = async (from: number, to: number): Promise<void> => {
        for (let start = from; start < to; start += 100) {
          const end = Math.min(to, start + 100); // 400 commands: within maxPendingCommands
          let last = '';
          for (let i = start; i < end; i++) {
            const channel = i % 10 === 0 ? `arch:probe-${i}` : `probe-${i}`; // every 10th in a persisted namespace
            for (const type of ['join_channel', 'leave_channel', 'history', 'presence']) {
              last = `p${++seq}`;
              node.handleText(client, JSON.stringify({ type, data: { channel }, id: last }));
            }
          }
          await new Promise<void>((resolve) => {
            sink.onReply = (id) => { if (id === last) resolve(); };
          });
          // Let the event loop turn, as it does between a real server's socket reads: the memory engine answers
          // in microtasks, so without this the whole probe would be one turn and end-of-turn work never ran.
          await new Promise<void>((resolve) => setImmediate(resolve));
        }
      };
      // Warm up twice (probe, idle, sweep): code paths compiled and optimized, pools sized, so the heap
      // measured before the real probe holds what a steady server holds.
      for (const [from, to] of [[0, 10_000], [10_000, 20_000]] as const) {
        await probe(from, to);
        now += 120_000;
        mock.timers.tick(1000);
      }
      const before = await heapUsed();
      await probe(20_000, 120_000);
      const grown = await heapUsed();
      now += 120_000; // everything probed is idle now
      mock.timers.tick(1000); // one sweep of the node and of the engine
      const after = await heapUsed();
      const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;
      assert.ok(after <= before * 1.1, `heap ${mb(before)} before, ${mb(grown)} after probing, ${mb(after)} after one sweep`);
      assert.deepEqual(node.stats(), { connections: 1, channels: 0, subscriptions: 0, users: 1, draining: false });
    } finally {
      mock.timers.reset();
      await node.shutdown(0);
      await node.stopEngine();
      await stores.close();
    }
  });
});
