/**
 * Seed 002 batch frames (`?batch=1`): the frames of one server flush arrive as one `batch` text frame, in
 * order; without the option, as separate frames. Raw sockets, so the WebSocket frames themselves are seen.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { RawWsClient } from './ordering/raw-ws.js';
import { startServer, type TestServer } from './helpers.js';

describe('batch frames', () => {
  let srv: TestServer;
  const clients: RawWsClient[] = [];
  after(async () => {
    for (const c of clients) c.destroy();
    await srv?.close();
  });

  const pipeline = [
    { type: 'join_channel', data: { channel: 'b' }, id: 1 },
    { type: 'message', data: { channel: 'b', text: 'one' }, id: 2 },
    { type: 'message', data: { channel: 'b', text: 'two' }, id: 3 },
  ];

  it('with ?batch=1 the replies to a pipelined join and two publishes come as one batch frame, in order', async () => {
    srv = await startServer({ store: { driver: 'none' } });
    const c = await RawWsClient.connect(`${srv.ws}/ws?batch=1`);
    clients.push(c);
    c.writeFrames(pipeline);
    const batch = await c.waitFor((f) => f.type === 'batch');
    const inside = (batch.messages as Array<{ type: string; id?: unknown; data: { text?: string } }>).map((m) => [m.type, m.id ?? m.data.text]);
    assert.deepEqual(inside, [['subscribed', 1], ['message', 'one'], ['ok', 2], ['message', 'two'], ['ok', 3]]);
    assert.equal(c.frames.filter((f) => f.type === 'subscribed' || f.type === 'ok' || f.type === 'message').length, 0, 'nothing outside the batch');
  });

  it('a flush with a single frame sends it as is', async () => {
    const c = await RawWsClient.connect(`${srv.ws}/ws?batch=1`);
    clients.push(c);
    c.send({ type: 'ping', id: 'p' });
    const pong = await c.waitFor((f) => f.type === 'pong' || f.type === 'batch');
    assert.equal(pong.type, 'pong');
  });

  it('without the option the same replies are separate frames', async () => {
    const c = await RawWsClient.connect(`${srv.ws}/ws`);
    clients.push(c);
    c.writeFrames(pipeline);
    await c.waitFor((f) => f.type === 'ok' && f.id === 3);
    assert.deepEqual(
      c.frames.filter((f) => f.type !== 'connect' && f.type !== 'presence_count').map((f) => [f.type, f.id ?? (f.data as { text?: string }).text]),
      [['subscribed', 1], ['message', 'one'], ['ok', 2], ['message', 'two'], ['ok', 3]],
    );
    assert.equal(c.frames.some((f) => f.type === 'batch'), false);
  });
});
