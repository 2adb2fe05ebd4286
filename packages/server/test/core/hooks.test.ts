/**
 * Authorization hooks and ordering (ADR 0006 "Sync-first authorization"): an async hook holds the
 * connection's later commands (offsets follow send order even when decisions resolve out of order); a
 * synchronous decision is used synchronously (never an extra turn); a hook that throws or rejects is a
 * denial with INTERNAL (temporary) and the connection goes on. Fake broker and sinks; no sockets, no sleeps.
 */
import { afterEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { ChannelAction, Decision, HubHooks } from '../../src/core/ports/hooks.js';
import { flush, Harness, NO_RATE_LIMITS, turnsUntil, type Frame } from './fakes.js';

function shape(frames: Frame[]): Array<[string, unknown]> {
  return frames.map((f) => [f.type, f.id ?? null]);
}

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const ALLOW: Decision = { allowed: true };

describe('async authorization hook', () => {
  it('decisions resolved in REVERSE order: subscribed first, then offsets and ok replies in send order', async () => {
    const waiting: Array<{ action: ChannelAction; channel: string; resolve: (d: Decision) => void }> = [];
    let mostWaiting = 0;
    h = await Harness.start({
      options: NO_RATE_LIMITS,
      hooks: {
        authorizeChannel: (_s, action, channel) =>
          new Promise<Decision>((resolve) => {
            waiting.push({ action, channel, resolve });
            mostWaiting = Math.max(mostWaiting, waiting.length);
          }),
      },
    });
    const a = h.open();
    const mark = a.sink.mark();
    a.send({ type: 'join_channel', id: 'j', data: { channel: 'room' } });
    for (let i = 1; i <= 5; i++) a.send({ type: 'message', id: i, data: { channel: 'room', n: i } });

    // Round after round, resolve every decision that is waiting, newest first. A server that ran the commands
    // concurrently would have all six waiting in the first round and publish them in reverse.
    const decided: string[] = [];
    for (let round = 0; round < 50; round++) {
      await flush();
      if (waiting.length === 0) break;
      for (const w of waiting.splice(0).reverse()) {
        decided.push(w.action);
        w.resolve(ALLOW);
      }
    }
    assert.deepEqual(decided, ['subscribe', 'publish', 'publish', 'publish', 'publish', 'publish']);
    assert.equal(mostWaiting, 1, 'one decision at a time: the later commands wait behind the pending one');

    const got = a.sink.since(mark);
    assert.deepEqual(shape(got), [['subscribed', 'j'], ...[1, 2, 3, 4, 5].flatMap((i) => [['message', null], ['ok', i]] as Array<[string, unknown]>)]);
    const oks = got.filter((f) => f.type === 'ok');
    assert.deepEqual(oks.map((f) => f.data.offset), [1, 2, 3, 4, 5]);
    const msgs = got.filter((f) => f.type === 'message');
    assert.deepEqual(msgs.map((f) => [f.seq, f.data.n]), [[1, 1], [2, 2], [3, 3], [4, 4], [5, 5]]);
  });
});

describe('synchronous authorization decision', () => {
  /**
   * Microtask turns from one burst of two `message` frames (two handleText calls in the same synchronous
   * block, as when they arrive in one TCP read) until the first and the second reach broker.publish.
   *
   * Why this check: the publish path always waits for the broker, so the second message necessarily waits
   * for the first; "both published before the test's first await" cannot hold. What must hold is that a
   * hook answering synchronously costs NOTHING: the same number of promise hops as no hook at all. If the
   * pipeline (or Access/whenAllowed) awaited a synchronous decision, e.g. `await hook(...)` or
   * `Promise.resolve(decision).then(...)`, every publish would reach the broker at least one microtask turn
   * later than without a hook, and the second one later still (it starts only after the first completes):
   * the counts would differ from the no-hook baseline and the assertion below fails. The async-hook run
   * shows the meter does see one extra hop.
   */
  async function turnsToPublish(hooks: HubHooks): Promise<[number, number]> {
    const hx = await Harness.start({ hooks, options: NO_RATE_LIMITS });
    try {
      const a = hx.open();
      await flush();
      const base = hx.broker.count('publish');
      a.send({ type: 'message', id: 1, data: { channel: 'room' } });
      a.send({ type: 'message', id: 2, data: { channel: 'room' } });
      const first = await turnsUntil(() => hx.broker.count('publish') >= base + 1);
      const second = first + (await turnsUntil(() => hx.broker.count('publish') >= base + 2));
      await flush();
      assert.deepEqual(shape(a.sink.ofType('ok', 'error')), [['ok', 1], ['ok', 2]]);
      return [first, second];
    } finally {
      await hx.close();
    }
  }

  it('a publish decided synchronously reaches the broker in exactly as many microtask turns as with no hook', async () => {
    const none = await turnsToPublish({});
    const sync = await turnsToPublish({ authorizeChannel: () => ALLOW });
    const async = await turnsToPublish({ authorizeChannel: async () => ALLOW });
    assert.deepEqual(sync, none, `sync hook ${sync} vs no hook ${none}`);
    assert.ok(async[0] > sync[0] && async[1] > sync[1], `the meter sees an async hook's extra hop: async ${async} vs sync ${sync}`);
  });

  it('a synchronous denial is answered before handleText returns, and no queue is left behind', async () => {
    h = await Harness.start({
      options: NO_RATE_LIMITS,
      hooks: { authorizeChannel: (_s, _a, channel) => (channel === 'secret' ? { allowed: false, code: 'FORBIDDEN', message: 'no' } : ALLOW) },
    });
    const a = h.open();
    const mark = a.sink.mark();
    a.send({ type: 'message', id: 1, data: { channel: 'secret' } });
    a.send({ type: 'join_channel', id: 2, data: { channel: 'secret' } });
    // No await in between: both decided and answered synchronously.
    assert.deepEqual(a.sink.since(mark).map((f) => [f.type, f.id, f.data.code]), [['error', 1, 'FORBIDDEN'], ['error', 2, 'FORBIDDEN']]);
    assert.equal(a.client.queue, null, 'nothing waited, so no queue exists');
    assert.equal(h.node.stats().subscriptions, 0, 'the denied join released its reservation');
    assert.equal(h.broker.count('publish'), 0);
  });
});

describe('a hook that throws or rejects', () => {
  it('is a denial with INTERNAL (temporary: true), logged; the connection goes on with the next command', async () => {
    h = await Harness.start({
      options: NO_RATE_LIMITS,
      hooks: {
        authorizeChannel: (_s, _action, channel) => {
          if (channel === 'throws') throw new Error('hook bug');
          if (channel === 'rejects') return Promise.reject(new Error('hook backend down'));
          return ALLOW;
        },
      },
    });
    const a = h.open();
    const mark = a.sink.mark();
    a.send({ type: 'message', id: 1, data: { channel: 'throws' } });
    a.send({ type: 'message', id: 2, data: { channel: 'rejects' } });
    a.send({ type: 'message', id: 3, data: { channel: 'room' } });
    a.send({ type: 'join_channel', id: 4, data: { channel: 'rejects' } });
    a.send({ type: 'join_channel', id: 5, data: { channel: 'throws' } });
    a.send({ type: 'join_channel', id: 6, data: { channel: 'room' } });
    a.send({ type: 'message', id: 7, data: { channel: 'room' } });
    await flush();

    const got = a.sink.since(mark);
    assert.deepEqual(shape(got), [['error', 1], ['error', 2], ['ok', 3], ['error', 4], ['error', 5], ['subscribed', 6], ['message', null], ['ok', 7]]);
    for (const e of got.filter((f) => f.type === 'error')) {
      assert.equal(e.data.code, 'INTERNAL');
      assert.equal(e.data.temporary, true);
    }
    assert.equal(h.broker.count('publish'), 2, 'only the allowed messages were published');
    assert.equal(h.node.stats().subscriptions, 1, 'the failed joins released their reservations');
    assert.equal(a.client.inChannel('throws') || a.client.inChannel('rejects'), false);
    assert.equal(h.log.at('error').filter((m) => m === 'authorization hook failed').length, 4);
  });

  it('authorizePrivate and authorizeType failures are INTERNAL too', async () => {
    h = await Harness.start({
      options: NO_RATE_LIMITS,
      hooks: {
        authorizePrivate: () => Promise.reject(new Error('down')),
        authorizeType: () => {
          throw new Error('bug');
        },
      },
    });
    const a = h.open();
    a.send({ type: 'private_message', id: 1, data: { recipient_id: 'u2', text: 'x' } });
    a.send({ type: 'broadcast', id: 2, data: { text: 'x' } });
    a.send({ type: 'ping', id: 3 });
    await flush();
    assert.deepEqual(a.sink.replies().map((f) => [f.type, f.id, f.data.code ?? null, f.data.temporary ?? null]), [
      ['pong', 3, null, null], // passes the private message waiting on its hook
      ['error', 1, 'INTERNAL', true],
      ['error', 2, 'INTERNAL', true],
    ]);
  });
});
