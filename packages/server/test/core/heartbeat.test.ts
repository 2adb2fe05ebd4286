/**
 * The Node's shared sweep (heartbeat pings and pong timeouts, idle timeout, token expiry, typing expiry)
 * without real time. The sweep runs on a real `setInterval` created in `node.start()`; node:test's
 * MockTimers replace `setInterval` before the node starts, so `mock.timers.tick()` fires the sweep, and the
 * FakeClock (NodeDeps.now) is what the sweep reads as "now". `elapse(ms)` moves both in step, one sweep
 * interval at a time. No sleeps.
 */
import { afterEach, beforeEach, describe, it, mock } from 'node:test';
import assert from 'node:assert/strict';
import { Heartbeat } from '../../src/core/client/heartbeat.js';
import type { SessionIdentity } from '../../src/core/ports/session-port.js';
import { flush, Harness, hubOptions, type DeepPartial } from './fakes.js';
import type { NodeOptions } from '../../src/core/options.js';

let h: Harness | undefined;

beforeEach(() => {
  mock.timers.enable({ apis: ['setInterval'] });
});
afterEach(async () => {
  await h?.close(); // clears the node's (mocked) interval
  h = undefined;
  mock.timers.reset();
});

async function start(options: DeepPartial<NodeOptions>): Promise<{ h: Harness; step: number; elapse: (ms: number) => void }> {
  const hx = await Harness.start({ options });
  const step = Heartbeat.tickMs(hubOptions(options));
  /** Advance the fake clock and the mocked timers together, one sweep interval at a time. */
  const elapse = (ms: number): void => {
    assert.equal(ms % step, 0, `elapse in multiples of the sweep interval (${step} ms)`);
    for (let t = 0; t < ms; t += step) {
      hx.clock.advance(step);
      mock.timers.tick(step);
    }
  };
  return { h: hx, step, elapse };
}

const HB = { heartbeat: { pingIntervalMs: 1000, pongTimeoutMs: 500, idleTimeoutMs: 0 }, typingTimeoutMs: 5000 };

describe('heartbeat sweep on the fake clock', () => {
  it('pings every pingIntervalMs; a WebSocket that does not answer within pongTimeoutMs is closed 4012; SSE is not', async () => {
    const s = await start(HB);
    h = s.h;
    assert.equal(s.step, 200);
    const a = h.open();
    const sse = h.open(undefined, 'sse');

    s.elapse(800);
    assert.equal(a.sink.ofType('ping').length, 0, 'no ping before the interval');
    s.elapse(200);
    assert.equal(a.sink.ofType('ping').length, 1);
    assert.equal(sse.sink.ofType('ping').length, 1);
    assert.equal(a.sink.probes, 1, 'a transport-level probe goes with the ping');
    assert.equal(a.sink.ofType('ping')[0]!.data.timestamp, new Date(h.clock.now()).toISOString());

    a.send({ type: 'pong' }); // answered
    s.elapse(1000);
    assert.equal(a.sink.ofType('ping').length, 2);
    assert.deepEqual(a.sink.closes, [], 'an answered ping never times out');

    // The second ping goes unanswered.
    s.elapse(400);
    assert.deepEqual(a.sink.closes, [], 'still within pongTimeoutMs');
    s.elapse(200);
    assert.deepEqual(a.sink.closes, [{ code: 4012, reason: 'heartbeat timeout' }]);
    assert.deepEqual(sse.sink.closes, [], 'SSE clients cannot answer pings and are never closed for it');
  });

  it('a transport pong (markAlive) or any frame answers the ping', async () => {
    const s = await start(HB);
    h = s.h;
    const viaTransport = h.open();
    const viaFrame = h.open();
    const silent = h.open();
    s.elapse(1000); // ping #1
    h.node.markAlive(viaTransport.client);
    viaFrame.send({ type: 'heartbeat' });
    s.elapse(400);
    s.elapse(200); // 600 ms after the ping
    assert.deepEqual(viaTransport.sink.closes, []);
    assert.deepEqual(viaFrame.sink.closes, []);
    assert.deepEqual(silent.sink.closes.map((c) => c.code), [4012]);
  });

  it('idle timeout: a client that only answers pings is closed 4012 after idleTimeoutMs; one that sends messages is not', async () => {
    const s = await start({ heartbeat: { pingIntervalMs: 1000, pongTimeoutMs: 500, idleTimeoutMs: 3000 }, limits: { rateLimit: { perSecond: 0 } } });
    h = s.h;
    const idle = h.open();
    const busy = h.open();
    for (let t = s.step; t <= 3200; t += s.step) {
      s.elapse(s.step);
      if (t <= 3000) assert.deepEqual(idle.sink.closes, [], `not idle yet at ${t} ms`);
      idle.send({ type: 'pong' }); // keeps the heartbeat alive, but is no activity
      idle.send({ type: 'ping' }); // neither is a client ping
      if (t % 1000 === 0) busy.send({ type: 'message', data: { channel: 'room' } });
    }
    assert.deepEqual(idle.sink.closes, [{ code: 4012, reason: 'idle timeout' }]);
    assert.deepEqual(busy.sink.closes, []);
    await flush();
  });

  it('token expiry: the connection is closed 4003 when identity.expiresAt passes', async () => {
    const s = await start({ heartbeat: { pingIntervalMs: 0, pongTimeoutMs: 500, idleTimeoutMs: 0 } });
    h = s.h;
    const identity: SessionIdentity = { userId: 'u1', username: 'alice', anonymous: false, expiresAt: h.clock.now() + 2000 };
    const a = h.open(identity);
    assert.equal(s.step, 1000, 'pings off: one sweep a second');
    s.elapse(1000);
    assert.deepEqual(a.sink.closes, []);
    s.elapse(1000);
    assert.deepEqual(a.sink.closes, [{ code: 4003, reason: 'token expired' }]);
    assert.equal(a.sink.ofType('ping').length, 0, 'pings are off');
  });

  it('typing indicators stop by themselves after typingTimeoutMs', async () => {
    const s = await start({ heartbeat: { pingIntervalMs: 0, pongTimeoutMs: 500, idleTimeoutMs: 0 }, typingTimeoutMs: 1000 });
    h = s.h;
    const typist = h.open();
    const watcher = h.open();
    typist.send({ type: 'join_channel', data: { channel: 'room' } });
    watcher.send({ type: 'join_channel', data: { channel: 'room' } });
    await flush();
    typist.send({ type: 'typing', data: { channel: 'room', is_typing: true } });
    await flush();
    assert.deepEqual(watcher.sink.ofType('typing').map((f) => [f.data.is_typing, f.data.typing_users]), [[true, [typist.client.id]]]);
    s.elapse(1000 - s.step);
    assert.equal(watcher.sink.ofType('typing').length, 1, 'still typing');
    s.elapse(s.step);
    assert.deepEqual(watcher.sink.ofType('typing').map((f) => [f.data.is_typing, f.data.typing_users]), [
      [true, [typist.client.id]],
      [false, []],
    ]);
  });
});
