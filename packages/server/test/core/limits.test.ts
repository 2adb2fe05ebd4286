/**
 * Per-connection limits at the hub level: the channel limit under pipelined and server-initiated joins
 * (join reservation), the bound on pending commands (RATE_LIMITED, then 4021), and the two token buckets
 * (messages vs joins/leaves) refilled by a fake clock. Fake broker and sinks; no sockets, no sleeps.
 */
import { afterEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { flush, Harness, NO_RATE_LIMITS, type Frame } from './fakes.js';

function shape(frames: Frame[]): Array<[string, unknown]> {
  return frames.map((f) => [f.type, f.id ?? null]);
}

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

describe('maxChannelsPerConnection', () => {
  it('300 pipelined joins (rate limiters off): exactly maxChannelsPerConnection subscribed, the rest TOO_MANY_CHANNELS', async () => {
    h = await Harness.start({ options: NO_RATE_LIMITS });
    const max = h.options.limits.maxChannelsPerConnection;
    assert.equal(max, 100);
    const a = h.open();
    const mark = a.sink.mark();
    for (let i = 0; i < 300; i++) a.send({ type: 'join_channel', id: i, data: { channel: `ch-${i}` } });
    await flush();

    const got = a.sink.since(mark);
    const subscribed = got.filter((f) => f.type === 'subscribed');
    const refused = got.filter((f) => f.type === 'error');
    assert.equal(got.length, 300, 'every join is answered once');
    assert.deepEqual(subscribed.map((f) => f.id), Array.from({ length: max }, (_, i) => i));
    assert.deepEqual(refused.map((f) => f.id), Array.from({ length: 300 - max }, (_, i) => max + i));
    for (const e of refused) {
      assert.equal(e.data.code, 'TOO_MANY_CHANNELS');
      assert.equal(e.data.temporary, false);
    }
    assert.equal(a.client.channelCount, max);
    assert.equal(h.node.stats().subscriptions, max);
    assert.equal(h.broker.count('subscribe'), max, 'no broker subscription for a refused join');
  });

  it('holds when joins are started by node.subscribe() while a client join is held', async () => {
    h = await Harness.start({ options: { ...NO_RATE_LIMITS, limits: { ...NO_RATE_LIMITS.limits, maxChannelsPerConnection: 3 } } });
    const a = h.open();
    a.send({ type: 'join_channel', id: 1, data: { channel: 'c1' } });
    a.send({ type: 'join_channel', id: 2, data: { channel: 'c2' } });
    await flush();
    assert.equal(a.client.channelCount, 2);

    h.broker.hold('subscribe');
    const mark = a.sink.mark();
    a.send({ type: 'join_channel', id: 3, data: { channel: 'c3' } }); // takes the last slot, then waits
    h.node.subscribe(a.client, 's1'); // server-initiated, while the client's join is held
    h.node.subscribe(a.client, 's2');
    a.send({ type: 'join_channel', id: 4, data: { channel: 'c4' } });
    await flush();
    assert.equal(a.client.channelCount, 3, 'the held join has its slot; nothing else took one');
    assert.deepEqual(a.sink.since(mark), []);

    h.broker.unhold('subscribe');
    h.broker.releaseAll();
    await flush();
    const got = a.sink.since(mark);
    assert.deepEqual(got.map((f) => [f.type, f.id ?? null, f.data.code ?? f.data.channel]), [
      ['subscribed', 3, 'c3'],
      ['error', null, 'TOO_MANY_CHANNELS'], // s1 (server joins have no request id)
      ['error', null, 'TOO_MANY_CHANNELS'], // s2
      ['error', 4, 'TOO_MANY_CHANNELS'],
    ]);
    assert.equal(a.client.channelCount, 3);
    assert.equal(h.node.stats().subscriptions, 3);
  });

  it('holds when a server-initiated join is the one held and client joins are pipelined behind it', async () => {
    h = await Harness.start({ options: { ...NO_RATE_LIMITS, limits: { ...NO_RATE_LIMITS.limits, maxChannelsPerConnection: 2 } } });
    const a = h.open();
    h.broker.hold('subscribe');
    const mark = a.sink.mark();
    h.node.subscribe(a.client, 's1');
    for (let i = 1; i <= 4; i++) a.send({ type: 'join_channel', id: i, data: { channel: `c${i}` } });
    h.broker.unhold('subscribe');
    h.broker.releaseAll();
    await flush();
    assert.deepEqual(shape(a.sink.since(mark)), [['subscribed', null], ['subscribed', 1], ['error', 2], ['error', 3], ['error', 4]]);
    assert.equal(a.client.channelCount, 2);
  });
});

describe('maxPendingCommands', () => {
  const options = { limits: { maxPendingCommands: 3, rateLimit: { perSecond: 0, closeAfterDropped: 4 }, subscribeRateLimit: { perSecond: 0 } } };

  it('overflow is answered RATE_LIMITED (temporary) with the right ids; after closeAfterDropped refusals in a row the sink closes 4021 once the running command replied', async () => {
    h = await Harness.start({ options });
    const a = h.open();
    h.broker.hold('subscribe');
    const mark = a.sink.mark();
    a.send({ type: 'join_channel', id: 0, data: { channel: 'room' } }); // running (not counted as pending)
    for (let i = 1; i <= 3; i++) a.send({ type: 'message', id: i, data: { channel: 'room' } }); // pending: 3 = max
    for (let i = 4; i <= 6; i++) a.send({ type: 'message', id: i, data: { channel: 'room' } }); // refused
    const refused = a.sink.since(mark);
    assert.deepEqual(refused.map((f) => [f.type, f.id, f.data.code, f.data.temporary]), [
      ['error', 4, 'RATE_LIMITED', true],
      ['error', 5, 'RATE_LIMITED', true],
      ['error', 6, 'RATE_LIMITED', true],
    ]);
    assert.equal(a.sink.closes.length, 0);

    a.send({ type: 'message', id: 7, data: { channel: 'room' } }); // 4th refusal in a row: close instead of an error
    assert.equal(a.sink.byId(7).length, 0);
    a.send({ type: 'message', id: 8, data: { channel: 'room' } }); // closing: taken no more, not even refused
    assert.equal(a.sink.byId(8).length, 0);
    // The close waits for the running command (it may be applied already) to reply.
    assert.equal(a.sink.closes.length, 0);
    await flush();
    h.broker.release('subscribe');
    await flush();
    // Then 4021 after its reply; the commands waiting behind it were dropped unapplied and unanswered.
    assert.deepEqual(a.sink.closes.map((c) => c.code), [4021]);
    assert.deepEqual(shape(a.sink.since(mark).filter((f) => f.type !== 'error')), [['subscribed', 0]]);
    assert.equal(h.broker.count('publish'), 0);
  });

  it('only consecutive refusals count: an accepted command (even a passing ping) resets the streak', async () => {
    h = await Harness.start({ options });
    const a = h.open();
    h.broker.hold('subscribe');
    a.send({ type: 'join_channel', id: 0, data: { channel: 'room' } });
    for (let i = 1; i <= 3; i++) a.send({ type: 'message', id: i, data: { channel: 'room' } });
    for (let i = 4; i <= 6; i++) a.send({ type: 'message', id: i, data: { channel: 'room' } }); // 3 refused
    a.send({ type: 'ping', id: 'p' }); // accepted: streak back to 0
    for (let i = 7; i <= 9; i++) a.send({ type: 'message', id: i, data: { channel: 'room' } }); // 3 refused
    assert.equal(a.sink.closes.length, 0);
    assert.deepEqual(a.sink.errors().map((f) => f.id), [4, 5, 6, 7, 8, 9]);
    a.send({ type: 'message', id: 10, data: { channel: 'room' } }); // the 4th in a row
    assert.equal(a.sink.byId(10).length, 0);
    await flush();
    h.broker.releaseAll();
    await flush();
    assert.deepEqual(a.sink.closes.map((c) => c.code), [4021], 'closed once the running join replied');
  });
});

describe('token buckets (default limits, fake clock)', () => {
  it('joins draw from their own bucket: 50 joins pass while 50 messages beyond the message burst are RATE_LIMITED; the clock refills both', async () => {
    h = await Harness.start(); // DEFAULT_NODE_OPTIONS: messages 10/s burst 20, joins+leaves 20/s burst 100, close after 50 drops
    const { rateLimit, subscribeRateLimit } = h.options.limits;
    assert.deepEqual([rateLimit.perSecond, rateLimit.burst, subscribeRateLimit.perSecond, subscribeRateLimit.burst], [10, 20, 20, 100]);
    const a = h.open();

    for (let i = 0; i < 20; i++) a.send({ type: 'message', id: `m${i}`, data: { channel: 'room' } }); // the message burst
    // Interleaved, so the refused messages are never 50 in a row (that would close the connection).
    for (let i = 0; i < 50; i++) {
      a.send({ type: 'join_channel', id: `j${i}`, data: { channel: `ch-${i}` } });
      a.send({ type: 'message', id: `x${i}`, data: { channel: 'room' } });
    }
    await flush();
    const oks = a.sink.ofType('ok');
    assert.deepEqual(oks.map((f) => f.id), Array.from({ length: 20 }, (_, i) => `m${i}`));
    assert.deepEqual(a.sink.ofType('subscribed').map((f) => f.id), Array.from({ length: 50 }, (_, i) => `j${i}`));
    const limited = a.sink.errors();
    assert.deepEqual(limited.map((f) => f.id), Array.from({ length: 50 }, (_, i) => `x${i}`));
    for (const e of limited) {
      assert.equal(e.data.code, 'RATE_LIMITED');
      assert.equal(e.data.temporary, true);
      assert.match(e.data.message, /messages/);
    }
    assert.equal(a.sink.closes.length, 0);

    // 50 leaves take the other 50 subscription tokens; the next join is refused by the join bucket.
    for (let i = 0; i < 50; i++) a.send({ type: 'leave_channel', id: `l${i}`, data: { channel: `ch-${i}` } });
    a.send({ type: 'join_channel', id: 'j-over', data: { channel: 'extra' } });
    a.send({ type: 'message', id: 'm-over', data: { channel: 'room' } });
    await flush();
    assert.equal(a.sink.ofType('unsubscribed').length, 50);
    assert.deepEqual(a.sink.byId('j-over').map((f) => [f.data.code, f.data.temporary]), [['RATE_LIMITED', true]]);
    assert.match(a.sink.byId('j-over')[0]!.data.message, /joins/);
    assert.deepEqual(a.sink.byId('m-over').map((f) => f.data.code), ['RATE_LIMITED'], 'the clock has not moved: nothing refilled');

    // One second later: 10 message tokens and 20 join tokens.
    h.clock.advance(1000);
    const mark = a.sink.mark();
    for (let i = 0; i < 11; i++) a.send({ type: 'message', id: `r${i}`, data: { channel: 'room' } });
    for (let i = 0; i < 21; i++) a.send({ type: 'join_channel', id: `k${i}`, data: { channel: `k-${i}` } });
    await flush();
    const after = a.sink.since(mark);
    assert.deepEqual(after.filter((f) => f.type === 'ok').map((f) => f.id), Array.from({ length: 10 }, (_, i) => `r${i}`));
    assert.deepEqual(after.filter((f) => f.type === 'subscribed').map((f) => f.id), Array.from({ length: 20 }, (_, i) => `k${i}`));
    assert.deepEqual(after.filter((f) => f.type === 'error').map((f) => [f.id, f.data.code]), [['r10', 'RATE_LIMITED'], ['k20', 'RATE_LIMITED']]);

    // Half a second refills half: 5 messages.
    h.clock.advance(500);
    const mark2 = a.sink.mark();
    for (let i = 0; i < 6; i++) a.send({ type: 'message', id: `s${i}`, data: { channel: 'room' } });
    await flush();
    const half = a.sink.since(mark2);
    assert.deepEqual(half.filter((f) => f.type === 'ok').map((f) => f.id), ['s0', 's1', 's2', 's3', 's4']);
    assert.deepEqual(half.filter((f) => f.type === 'error').map((f) => [f.id, f.data.code]), [['s5', 'RATE_LIMITED']]);
  });
});

describe('bad input is rate limited like any frame', () => {
  it('a flood of invalid frames: errors for the burst, then RATE_LIMITED, then 4021 (default limits)', async () => {
    h = await Harness.start();
    const a = h.open();
    const mark = a.sink.mark();
    for (let i = 0; i < 100; i++) a.text(`{not json ${i}`);
    await flush();
    const codes = a.sink.since(mark).filter((f) => f.type === 'error').map((f) => f.data.code);
    assert.deepEqual(codes.slice(0, 20), Array(20).fill('INVALID_JSON'), 'the burst (20) is answered');
    assert.equal(codes[20], 'RATE_LIMITED');
    assert.deepEqual(a.sink.closes.map((c) => c.code), [4021], 'closed after closeAfterDropped refusals in a row');
  });
});
