// Pure logic of the SDK: backoff bounds, status machine, de-duplication, offline queue, request correlation.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backoffCap, backoffDelay, canTransition, OfflineQueue, StreamTracker, SwitchboardClient, SwitchboardError, type ClientStatus } from '@switchboard/client';
import { PendingRequests } from '../src/pending-requests.js';
import { jwtExpiry } from '../src/jwt.js';
import { buildUrl } from '../src/socket.js';
import { within } from './helpers.js';

test('backoff: full jitter stays within [0, min(max, base*2^n)) and the cap grows then saturates', () => {
  const opts = { baseDelayMs: 100, maxDelayMs: 5000 };
  assert.deepEqual([0, 1, 2, 3, 4, 5, 6, 10, 60].map((n) => backoffCap(n, opts)), [100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000]);
  for (let n = 0; n < 12; n++) {
    const cap = backoffCap(n, opts);
    assert.equal(backoffDelay(n, opts, () => 0), 0);
    assert.equal(backoffDelay(n, opts, () => 0.5), Math.floor(cap / 2));
    assert.ok(backoffDelay(n, opts, () => 0.999999) < cap);
    for (let i = 0; i < 50; i++) {
      const d = backoffDelay(n, opts);
      assert.ok(d >= 0 && d < cap, `attempt ${n}: ${d} outside [0, ${cap})`);
    }
  }
  // Jitter really spreads: many draws at a large attempt are not all equal.
  const draws = new Set(Array.from({ length: 50 }, () => backoffDelay(8, opts)));
  assert.ok(draws.size > 10);
});

test('status machine: allowed and refused transitions', () => {
  const allowed: Array<[ClientStatus, ClientStatus]> = [
    ['disconnected', 'connecting'], ['connecting', 'connected'], ['connecting', 'reconnecting'], ['connected', 'reconnecting'],
    ['reconnecting', 'connected'], ['connected', 'disconnected'], ['reconnecting', 'disconnected'], ['connected', 'closed'],
    ['reconnecting', 'closed'], ['closed', 'connecting'], ['disconnected', 'closed'],
  ];
  for (const [a, b] of allowed) assert.ok(canTransition(a, b), `${a} -> ${b} should be allowed`);
  const refused: Array<[ClientStatus, ClientStatus]> = [
    ['disconnected', 'connected'], ['closed', 'connected'], ['closed', 'reconnecting'], ['connected', 'connecting'],
    ['reconnecting', 'connecting'], ['disconnected', 'reconnecting'], ['connected', 'connected'],
  ];
  for (const [a, b] of refused) assert.ok(!canTransition(a, b), `${a} -> ${b} should be refused`);
});

test('stream tracker: drops duplicates and replays already seen, accepts a new epoch and unstored frames', () => {
  const t = new StreamTracker();
  assert.equal(t.position, null);
  t.initialize({ offset: 4, epoch: 'e1' });
  assert.equal(t.accept(4, 'e1'), false, 'the join position itself was already seen');
  assert.equal(t.accept(5, 'e1'), true);
  assert.equal(t.accept(7, 'e1'), true, 'gaps in live traffic (exclude_self) are fine');
  assert.equal(t.accept(6, 'e1'), false, 'late / replayed older frame is a duplicate');
  assert.equal(t.accept(7, 'e1'), false);
  assert.deepEqual(t.position, { offset: 7, epoch: 'e1' });
  assert.equal(t.accept(undefined, undefined), true);
  assert.deepEqual(t.position, { offset: 7, epoch: 'e1' });
  assert.equal(t.accept(1, 'e2'), true, 'a new epoch restarts offsets');
  assert.deepEqual(t.position, { offset: 1, epoch: 'e2' });
  t.initialize({ offset: 99, epoch: 'x' });
  assert.deepEqual(t.position, { offset: 1, epoch: 'e2' }, 'initialize does not override a known position');
  t.reset({ offset: 10, epoch: 'e3' });
  assert.equal(t.accept(10, 'e3'), false);
  assert.equal(t.accept(11, 'e3'), true);
});

test('offline queue: bounded push, requeue in front beyond the bound, drain empties', () => {
  const q = new OfflineQueue<number>(2);
  assert.equal(q.push(1), true);
  assert.equal(q.push(2), true);
  assert.equal(q.push(3), false);
  assert.equal(q.size, 2);
  q.requeue([8, 9]);
  assert.equal(q.size, 4);
  assert.deepEqual(q.drain(), [8, 9, 1, 2]);
  assert.equal(q.size, 0);
  assert.equal(q.push(5), true);
  assert.throws(() => new OfflineQueue(-1), RangeError);
});

test('pending requests: reply by id, error reply with server code, timeout, late reply ignored', async () => {
  const p = new PendingRequests<string>();
  const results: string[] = [];
  let timedOut!: () => void;
  const request3Failed = new Promise<void>((r) => (timedOut = r));
  p.add(1, 0, { onReply: (f) => results.push(`reply:${f.type}`), onFail: (e) => results.push(`fail:${e.code}`) });
  p.add('b', 0, { onReply: (f) => results.push(`reply:${f.type}`), onFail: (e) => results.push(`fail:${e.code}`) });
  p.add(3, 30, {
    onReply: (f) => results.push(`reply:${f.type}`),
    onFail: (e) => {
      results.push(`fail:${e.code}`);
      timedOut();
    },
    tag: 'pub',
  });
  const frame = (type: string, id: string | number, data: Record<string, unknown> = {}) => ({ type, id, data, timestamp: '', message_id: '' }) as never;
  assert.equal(p.settle(frame('ok', 1)), true);
  assert.equal(p.settle(frame('error', 'b', { code: 'FORBIDDEN', message: 'no' })), true);
  assert.equal(p.settle(frame('ok', 999)), false);
  await within(request3Failed, 2000, 'timeout of request 3'); // its own 30 ms timeout (the behaviour under test) fails it
  assert.deepEqual(results, ['reply:ok', 'fail:FORBIDDEN', 'fail:TIMEOUT']);
  assert.equal(p.settle(frame('ok', 3)), false, 'a reply after the timeout is ignored');
  p.add(4, 0, { onReply: () => {}, onFail: () => results.push('fail4'), tag: 'pub' });
  p.add(5, 0, { onReply: () => {}, onFail: (e) => results.push(`fail5:${e.code}`), tag: 'other' });
  assert.deepEqual(p.takeWhere((t) => t === 'pub'), ['pub']);
  p.failAll(new SwitchboardError('CONNECTION_LOST', 'x'));
  assert.deepEqual(results.slice(3), ['fail5:CONNECTION_LOST']);
  assert.equal(p.size, 0);
});

test('jwt expiry is read from the payload; non-JWTs give null', () => {
  const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  assert.equal(jwtExpiry(`${b64({ alg: 'HS256' })}.${b64({ sub: 'u', exp: 1_900_000_000 })}.sig`), 1_900_000_000);
  assert.equal(jwtExpiry(`${b64({ alg: 'HS256' })}.${b64({ sub: 'ü' })}.sig`), null);
  assert.equal(jwtExpiry('opaque-token'), null);
  assert.equal(jwtExpiry('a.!!!.c'), null);
});

test('connection url carries token, username and extra params and keeps existing ones', () => {
  assert.equal(buildUrl('ws://h/ws', { token: 'a b', username: undefined }), 'ws://h/ws?token=a+b');
  assert.equal(buildUrl('ws://h/ws?x=1', { user_id: 'u1', username: 'ann' }), 'ws://h/ws?x=1&user_id=u1&username=ann');
  assert.equal(buildUrl('ws://h/ws', {}), 'ws://h/ws');
});

test('client without any WebSocket implementation ends disconnected with NO_WEBSOCKET', async () => {
  const g = globalThis as { WebSocket?: unknown };
  const saved = g.WebSocket;
  delete g.WebSocket;
  try {
    const client = new SwitchboardClient({ url: 'ws://127.0.0.1:1/ws' });
    const errors: string[] = [];
    client.on('error', (e) => errors.push(e.code));
    await assert.rejects(client.connect(), (e: SwitchboardError) => e.code === 'NOT_CONNECTED');
    assert.equal(client.status, 'disconnected');
    assert.deepEqual(errors, ['NO_WEBSOCKET']);
    await assert.rejects(client.publish('c', {}), (e: SwitchboardError) => e.code === 'NOT_CONNECTED');
  } finally {
    if (saved !== undefined) g.WebSocket = saved;
  }
});
