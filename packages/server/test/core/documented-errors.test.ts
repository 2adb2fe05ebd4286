/**
 * Issue 11.4 (core side): errors as docs/protocol.md documents them.
 * - An empty or over-long channel name is INVALID_CHANNEL, whichever bound catches it (the protocol schema's
 *   1..1024 characters, or limits.maxChannelNameLength), for every command that names a channel.
 * - Every client message with an `id` gets one reply carrying it: a `pong` with an `id` gets `ok`.
 */
import { afterEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { flush, Harness, NO_RATE_LIMITS } from './fakes.js';

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

describe('documented error codes', () => {
  it('empty and over-long channel names answer INVALID_CHANNEL (not INVALID_MESSAGE)', async () => {
    h = await Harness.start({ options: NO_RATE_LIMITS });
    const a = h.open();
    const long = 'x'.repeat(2000);
    const sent: Array<[number, string, Record<string, unknown>]> = [
      [1, 'join_channel', { channel: '' }],
      [2, 'join_channel', { channel: long }],
      [3, 'leave_channel', { channel: '' }],
      [4, 'message', { channel: '' }],
      [5, 'message', { channel: long }],
      [6, 'typing', { channel: '', is_typing: true }],
      [7, 'presence', { channel: long }],
      [8, 'history', { channel: '' }],
      [9, 'subscribe', { channel: '' }],
    ];
    for (const [id, type, data] of sent) a.send({ type, id, data });
    // Not a channel-name problem: still INVALID_MESSAGE.
    a.send({ type: 'join_channel', id: 10, data: { channel: 42 } });
    a.send({ type: 'join_channel', id: 11, data: {} });
    await flush();
    const errors = a.sink.errors().map((f) => [f.id, f.data.code]);
    assert.deepEqual(errors, [
      ...sent.map(([id]) => [id, 'INVALID_CHANNEL']),
      [10, 'INVALID_MESSAGE'],
      [11, 'INVALID_MESSAGE'],
    ]);
    for (const f of a.sink.errors()) assert.equal(typeof f.data.message, 'string');
  });

  it('a pong with an id is answered with ok carrying the id; a bare pong gets nothing', async () => {
    h = await Harness.start({ options: NO_RATE_LIMITS });
    const a = h.open();
    const mark = a.sink.mark();
    a.send({ type: 'pong' });
    a.send({ type: 'pong', id: 'p-1' });
    a.send({ type: 'pong', id: 7, data: {} });
    await flush();
    const replies = a.sink.since(mark).map((f) => [f.type, f.id ?? null]);
    assert.deepEqual(replies, [['ok', 'p-1'], ['ok', 7]]);
  });
});

describe('replies to responses', () => {
  it('a response with an id that settles a server request is answered ok; an unknown one NOT_FOUND', async () => {
    h = await Harness.start({ options: NO_RATE_LIMITS });
    const a = h.open();
    const answer = h.node.request(a.client.id, 'whoami', {}, 5000);
    await flush();
    const request = a.sink.frames.find((f) => f.type === 'request')!;
    const mark = a.sink.mark();
    a.send({ type: 'response', id: 'r1', data: { request_id: request.data.request_id, result: { me: 'a' } } });
    a.send({ type: 'response', id: 'r2', data: { request_id: 'nope', result: {} } });
    await flush();
    assert.deepEqual(await answer, { me: 'a' });
    assert.deepEqual(a.sink.since(mark).map((f) => [f.type, f.id, f.data.code ?? null]), [['ok', 'r1', null], ['error', 'r2', 'NOT_FOUND']]);
  });
});
