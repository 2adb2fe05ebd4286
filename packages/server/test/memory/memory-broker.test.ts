import { afterEach, beforeEach, describe, it, mock } from 'node:test';
import assert from 'node:assert/strict';
import { runBrokerContract } from '../broker-contract.js';
import { MemoryBroker } from '../../src/broker/memory/memory-broker.js';
import { MemoryPresenceStore } from '../../src/broker/memory/memory-presence.js';

// The memory engine is single-process: every multi-node role of the shared contract runs on node 0.
runBrokerContract(
  'memory',
  async () => {
    const broker = new MemoryBroker();
    const presence = new MemoryPresenceStore();
    return {
      brokers: [broker],
      presences: [presence],
      cleanup: async () => {
        await broker.close();
        await presence.close();
      },
    };
  },
  { maxNodes: 1 },
);

describe('memory engine: memory is bounded by what was published, not by what was read', () => {
  const handler = { onPublication() {}, onEphemeral() {}, onControl() {} };
  const empty = { streams: 0, idempotencyKeys: 0, subscribedChannels: 0 };
  // The engine's sweep runs on setInterval: mocked timers run it exactly when the test says (mock.timers.tick).
  beforeEach(() => mock.timers.enable({ apis: ['setInterval'] }));
  afterEach(() => mock.timers.reset());

  it('position() and history() of 100,000 distinct never-published channels leave nothing once swept', async () => {
    let now = 1_000_000;
    const broker = new MemoryBroker({ now: () => now, sweepIntervalMs: 5, emptyStreamTtlMs: 1000 });
    await broker.start(handler);
    try {
      await broker.subscribe('kept');
      const kept = await broker.position('kept');
      for (let i = 0; i < 100_000; i++) {
        const ch = `probe-${i}`;
        const pos = await broker.position(ch);
        assert.equal(pos.offset, 0);
        if (i % 4 === 0) await broker.history(ch, { since: pos, limit: 10 });
        else if (i % 4 === 1) await broker.history(ch, { before: 5, limit: 10 });
        else if (i % 4 === 2) await broker.history(ch, { since: { epoch: 'made-up', offset: 7 }, limit: 10 });
      }
      now += 1001;
      mock.timers.tick(5); // one sweep
      assert.deepEqual(broker.sizes(), { streams: 1, idempotencyKeys: 0, subscribedChannels: 1 }, 'the sweep drops every empty stream nobody subscribes');
      assert.deepEqual(await broker.position('kept'), kept, 'a subscribed empty stream keeps its epoch');
      await broker.unsubscribe('kept');
      now += 1001;
      mock.timers.tick(5);
      assert.deepEqual(broker.sizes(), empty, 'dropped after its last subscriber left');
    } finally {
      await broker.close();
    }
  });

  it('an empty stream read by a client keeps its epoch for the first publish; once dropped, recovery from it says so', async () => {
    let now = 1_000_000;
    const broker = new MemoryBroker({ now: () => now, emptyStreamTtlMs: 1000, sweepIntervalMs: 3_600_000 });
    await broker.start(handler);
    const policy = { history: { size: 10, ttlMs: 60_000 } };
    try {
      const p0 = await broker.position('a');
      now += 900;
      assert.deepEqual(await broker.position('a'), p0, 'stable while read');
      now += 900; // 1800 ms after creation, 900 after the last read
      const pub = await broker.publish('a', '{}', policy);
      assert.deepEqual({ epoch: pub.epoch, offset: pub.offset }, { epoch: p0.epoch, offset: 1 }, 'the first publish keeps the epoch');

      const q0 = await broker.position('b');
      now += 1001; // nobody read or subscribed 'b' meanwhile: its empty stream is gone
      const first = await broker.publish('b', '{}', policy);
      assert.notEqual(first.epoch, q0.epoch);
      const h = await broker.history('b', { since: q0, limit: 10 });
      assert.equal(h.recoverable, false, 'a position from the dropped empty stream is not silently continued');
    } finally {
      await broker.close();
    }
  });

  it('published streams are dropped once idle past their ttl (read or swept), and reading them does not revive them', async () => {
    let now = 1_000_000;
    const broker = new MemoryBroker({ now: () => now, sweepIntervalMs: 5, emptyStreamTtlMs: 500 });
    await broker.start(handler);
    try {
      const policy = { history: { size: 10, ttlMs: 1000 } };
      for (let i = 0; i < 100; i++) await broker.publish(`ch-${i}`, '{}', policy);
      assert.equal(broker.sizes().streams, 100);
      now += 1001;
      // An expired stream read before the sweep is replaced by an empty one (new epoch), which goes too.
      const pos = await broker.position('ch-0');
      assert.equal(pos.offset, 0);
      assert.equal((await broker.history('ch-1', { before: 10, limit: 10 })).publications.length, 0);
      now += 501;
      assert.ok(broker.sizes().streams > 0, 'nothing dropped before the sweep runs');
      mock.timers.tick(5);
      assert.deepEqual(broker.sizes(), empty, 'the sweep drops every expired stream');
    } finally {
      await broker.close();
    }
  });

  it('idempotency records are bounded by their window, also when a key is reused after its window', async () => {
    let now = 1_000_000;
    const broker = new MemoryBroker({ now: () => now, sweepIntervalMs: 3_600_000 }); // no sweep during the test
    await broker.start(handler);
    const opts = (key: string) => ({ history: { size: 0, ttlMs: 0 }, idempotencyKey: key, idempotencyWindowMs: 1000 });
    try {
      for (let i = 0; i < 5000; i++) await broker.publish('idem', '{}', opts(`k${i}`));
      assert.equal(broker.sizes().idempotencyKeys, 5000);
      now += 1001;
      await broker.publish('idem', '{}', opts('fresh'));
      assert.equal(broker.sizes().idempotencyKeys, 1, 'records past the window are dropped on publish, without waiting for a sweep');

      // A key reused after its window moves to the back: it does not shield older records from expiry.
      now += 2000;
      await broker.publish('idem', '{}', opts('a')); // t0, expires t0+1000
      now += 500;
      await broker.publish('idem', '{}', opts('b')); // expires t0+1500
      now += 700;
      const a2 = await broker.publish('idem', '{}', opts('a')); // a expired: new record, expires t0+2200
      assert.equal(a2.offset, 5004, 'a key past its window publishes again');
      now += 400; // t0+1600: b expired, a not
      await broker.publish('idem', '{}', opts('c'));
      assert.equal(broker.sizes().idempotencyKeys, 2, 'b dropped; a (reused) and c kept');
      const again = await broker.publish('idem', '{}', opts('a'));
      assert.equal(again.offset, a2.offset, 'a is still deduplicated inside its new window');
    } finally {
      await broker.close();
    }
  });
});
