/**
 * Error frames at the hub level: every `error` frame carries `data.temporary`, fixed per code by the
 * protocol's TEMPORARY_ERRORS (final: INVALID_CHANNEL, NOT_SUBSCRIBED, FORBIDDEN, ...; temporary:
 * RATE_LIMITED, BROKER_UNAVAILABLE, INTERNAL). Broker failures come from the fake broker. No sockets.
 */
import { afterEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { brokerUnavailable, flush, Harness, NO_RATE_LIMITS, temporaryOf, type Frame } from './fakes.js';

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

/** [id, code, temporary] of a connection's error frames. */
function errorsOf(frames: Frame[]): Array<[unknown, string, unknown]> {
  return frames.filter((f) => f.type === 'error').map((f) => [f.id ?? null, f.data.code, f.data.temporary]);
}

/** Every error frame's flag is a boolean and matches the registry. */
function assertFlagsMatchRegistry(frames: Frame[]): void {
  for (const f of frames.filter((x) => x.type === 'error')) {
    assert.equal(typeof f.data.temporary, 'boolean', `error ${f.data.code} has a boolean temporary`);
    assert.equal(f.data.temporary, temporaryOf(f.data.code), `temporary flag of ${f.data.code}`);
  }
}

describe('error flags', () => {
  it('final errors: INVALID_CHANNEL, NOT_SUBSCRIBED, FORBIDDEN (hook and broadcast), INVALID_JSON, UNKNOWN_TYPE are temporary:false', async () => {
    h = await Harness.start({
      options: NO_RATE_LIMITS,
      hooks: { authorizeChannel: (_s, _a, channel) => (channel === 'secret' ? { allowed: false, code: 'FORBIDDEN', message: 'no' } : { allowed: true }) },
    });
    const a = h.open();
    a.send({ type: 'join_channel', id: 1, data: { channel: 'bad channel!' } });
    a.send({ type: 'message', id: 2, data: { channel: 'x'.repeat(201) } });
    a.send({ type: 'leave_channel', id: 3, data: { channel: 'nowhere' } });
    a.send({ type: 'typing', id: 4, data: { channel: 'nowhere', is_typing: true } });
    a.send({ type: 'join_channel', id: 5, data: { channel: 'secret' } });
    a.send({ type: 'broadcast', id: 6, data: { text: 'all' } }); // no authorizeType hook: denied
    a.text('{not json');
    a.send({ type: 'teleport', id: 8, data: {} });
    await flush();
    const frames = a.sink.replies();
    assert.deepEqual(errorsOf(frames), [
      [1, 'INVALID_CHANNEL', false],
      [2, 'INVALID_CHANNEL', false],
      [3, 'NOT_SUBSCRIBED', false],
      [4, 'NOT_SUBSCRIBED', false],
      [5, 'FORBIDDEN', false],
      [6, 'FORBIDDEN', false],
      [null, 'INVALID_JSON', false],
      [8, 'UNKNOWN_TYPE', false],
    ]);
    assertFlagsMatchRegistry(frames);
  });

  it('RATE_LIMITED is temporary:true', async () => {
    h = await Harness.start({ options: { limits: { rateLimit: { perSecond: 1, burst: 1 } } } });
    const a = h.open();
    a.send({ type: 'message', id: 1, data: { channel: 'room' } });
    a.send({ type: 'message', id: 2, data: { channel: 'room' } });
    await flush();
    assert.deepEqual(errorsOf(a.sink.frames), [[2, 'RATE_LIMITED', true]]);
    assert.deepEqual(a.sink.byId(1).map((f) => f.type), ['ok']);
  });

  it('BROKER_UNAVAILABLE (publish rejected by the broker) is temporary:true, and the next command runs', async () => {
    h = await Harness.start({ options: NO_RATE_LIMITS });
    const a = h.open();
    h.broker.failWith('publish', brokerUnavailable);
    a.send({ type: 'message', id: 1, data: { channel: 'room' } });
    a.send({ type: 'message', id: 2, data: { channel: 'room' } });
    await flush();
    h.broker.failWith('publish', null);
    a.send({ type: 'message', id: 3, data: { channel: 'room' } });
    await flush();
    const frames = a.sink.replies();
    assert.deepEqual(frames.map((f) => [f.type, f.id, f.data.code ?? null, f.data.temporary ?? null]), [
      ['error', 1, 'BROKER_UNAVAILABLE', true],
      ['error', 2, 'BROKER_UNAVAILABLE', true],
      ['ok', 3, null, null],
    ]);
    assert.equal(frames[2]!.data.offset, 1, 'the failed publishes took no offset');
    assertFlagsMatchRegistry(frames);
  });

  it('BROKER_UNAVAILABLE on a join: temporary:true, the reservation is released, a retry succeeds', async () => {
    h = await Harness.start({ options: NO_RATE_LIMITS });
    const a = h.open();
    h.broker.hold('subscribe');
    a.send({ type: 'join_channel', id: 1, data: { channel: 'room' } });
    a.send({ type: 'message', id: 2, data: { channel: 'room' } });
    await flush();
    assert.equal(h.node.stats().subscriptions, 1, 'reserved while the broker call is in flight');
    h.broker.gate.fail(brokerUnavailable(), 'subscribe'); // the broker gives up on that subscribe
    await flush();
    assert.deepEqual(errorsOf(a.sink.frames), [[1, 'BROKER_UNAVAILABLE', true]]);
    assert.deepEqual(a.sink.byId(2).map((f) => f.type), ['ok'], 'the command behind the failed join still runs');
    assert.equal(h.node.stats().subscriptions, 0);
    assert.equal(a.client.inChannel('room'), false);

    h.broker.unhold('subscribe');
    a.send({ type: 'join_channel', id: 3, data: { channel: 'room' } });
    await flush();
    assert.deepEqual(a.sink.byId(3).map((f) => f.type), ['subscribed'], 'a retry subscribes again (the failed interest was forgotten)');
    assert.equal(h.broker.count('subscribe', 'room'), 2);
    assert.equal(h.broker.subscribedChannels.has('room'), true);
  });

  it('an unexpected failure (broker rejects with a plain Error) is INTERNAL, temporary:true, logged; the next command runs', async () => {
    h = await Harness.start({ options: NO_RATE_LIMITS });
    const a = h.open();
    h.broker.failWith('position', () => new Error('boom'));
    a.send({ type: 'join_channel', id: 1, data: { channel: 'room' } });
    a.send({ type: 'ping', id: 2 });
    a.send({ type: 'presence', id: 3, data: { channel: 'room' } });
    await flush();
    assert.deepEqual(a.sink.replies().map((f) => [f.type, f.id, f.data.code ?? null, f.data.temporary ?? null]), [
      ['pong', 2, null, null],
      ['error', 1, 'INTERNAL', true],
      ['presence', 3, null, null],
    ]);
    assert.ok(h.log.at('error').includes('request failed'));
    assert.equal(h.node.stats().subscriptions, 0);
  });
});
