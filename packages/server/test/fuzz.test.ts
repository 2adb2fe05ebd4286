import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, TestClient } from './helpers.js';

/** Deterministic PRNG (mulberry32) so a failure can be replayed from its seed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const TYPES = ['join_channel', 'leave_channel', 'message', 'private_message', 'typing', 'history', 'presence', 'ack', 'response', 'refresh', 'broadcast', 'ping', 'subscribe', '__proto__', 'constructor', ''];

/** A random JSON-ish value: wrong types, deep nesting, prototype keys, huge and odd strings. */
function randomValue(r: () => number, depth = 0): unknown {
  const k = Math.floor(r() * 10);
  if (depth > 4 || k < 3) return [null, true, -1, 1e308, 'x'.repeat(Math.floor(r() * 300)), '\u0000\ud800', 'chan:nel', 0.5][Math.floor(r() * 8)];
  if (k < 6) return Array.from({ length: Math.floor(r() * 4) }, () => randomValue(r, depth + 1));
  const o: Record<string, unknown> = {};
  for (let i = Math.floor(r() * 4); i > 0; i--) {
    const key = ['channel', 'since', 'offset', 'epoch', 'recipient_id', 'is_typing', 'ids', 'request_id', 'limit', 'before', '__proto__', 'data'][Math.floor(r() * 12)]!;
    o[key] = randomValue(r, depth + 1);
  }
  return o;
}

function randomFrame(r: () => number): string {
  const k = r();
  if (k < 0.15) return Array.from({ length: Math.floor(r() * 64) }, () => String.fromCharCode(Math.floor(r() * 256))).join('');
  if (k < 0.25) return '{'.repeat(Math.floor(r() * 40)) + '"a":1' + '}'.repeat(Math.floor(r() * 40));
  const msg: Record<string, unknown> = { type: TYPES[Math.floor(r() * TYPES.length)], data: randomValue(r) };
  if (r() < 0.5) msg.id = randomValue(r);
  const text = JSON.stringify(msg);
  return r() < 0.1 ? text.slice(0, Math.floor(r() * text.length)) : text;
}

describe('random bad input', () => {
  it('2000 random frames from 4 clients: the server keeps running and a bystander loses nothing', async () => {
    const seed = Number(process.env.FUZZ_SEED ?? 20261122);
    const r = rng(seed);
    const srv = await startServer({ limits: { rateLimit: { perSecond: 0 } } });
    try {
      const bystander = await TestClient.connect(`${srv.ws}/ws`);
      await bystander.join('calm');
      const fuzzers = await Promise.all([0, 1, 2, 3].map(() => TestClient.connect(`${srv.ws}/ws?user_id=f`)));
      for (let i = 0; i < 2000; i++) {
        const c = fuzzers[i % fuzzers.length]!;
        if (c.closeInfo === null) c.send(randomFrame(r));
        if (i % 100 === 0) {
          await srv.sb.node.publish('calm', { i });
          await new Promise((res) => setImmediate(res));
        }
      }
      const got: number[] = [];
      for (let n = 0; n < 20; n++) got.push((await bystander.next('message')).data.i as number);
      assert.deepEqual(got, Array.from({ length: 20 }, (_, n) => n * 100), `seed ${seed}`);
      assert.equal(bystander.closeInfo, null);
      assert.equal((await bystander.request('ping')).type, 'pong');
      for (const c of fuzzers) {
        // A ping round trip orders after whatever the server did with this fuzzer's frames: a connection that
        // survived its fuzz answers, one that did not is closed (by then) with a documented code.
        const answered = await c.barrier({ ping: true }).then(
          () => true,
          (err: unknown) => {
            if (c.closeInfo === null) throw err;
            return false;
          },
        );
        if (answered) assert.equal(c.closeInfo, null, 'fuzzed connections still answer');
        else assert.ok([1009, 4021, 1008].includes(c.closeInfo!.code), `documented close code, got ${c.closeInfo!.code}`);
      }
      const health = await fetch(`${srv.http}/health`);
      assert.equal(health.status, 200);
      for (const c of [bystander, ...fuzzers]) c.close();
    } finally {
      await srv.close();
    }
  });
});
