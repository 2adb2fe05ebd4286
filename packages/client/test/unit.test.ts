// Pure logic of the SDK: backoff bounds, status machine, de-duplication, offline queue, request correlation.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  backoffCap,
  backoffDelay,
  canTransition,
  OfflineQueue,
  StreamTracker,
  SubscriptionError,
  SwitchboardClient,
  SwitchboardError,
  type ClientStatus,
  type Subscription,
  type SwitchboardClientOptions,
} from '@switchboard/client';
import { PendingRequests } from '../src/pending-requests.js';
import { jwtExpiry } from '../src/jwt.js';
import { buildUrl, messageBytes } from '../src/socket.js';
import { decodeDocumentFrame, encodeDocumentFrame } from '../src/binary-frame.js';
import * as lib0enc from 'lib0/encoding';
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

// ---- subscription join retries, with a scripted in-memory socket and mocked timers --------------------

/** A WebSocket stand-in driven by the test: records what the client sends, delivers scripted frames. */
class ScriptedSocket {
  static all: ScriptedSocket[] = [];
  readyState = 0;
  readonly sent: Array<{ type: string; data?: Record<string, unknown>; id?: number }> = [];
  onopen: ((ev: unknown) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onclose: ((ev: { code: number; reason: string }) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;
  private readonly sendWaiters: Array<{ type: string; resolve: (f: { type: string; data?: Record<string, unknown>; id?: number }) => void }> = [];
  constructor(readonly url: string) {
    ScriptedSocket.all.push(this);
  }
  /** Binary frames the client sent (documents). */
  readonly binary: Uint8Array[] = [];
  send(text: string | Uint8Array): void {
    if (typeof text !== 'string') {
      this.binary.push(text);
      return;
    }
    const frame = JSON.parse(text);
    this.sent.push(frame);
    const i = this.sendWaiters.findIndex((w) => w.type === frame.type);
    if (i >= 0) this.sendWaiters.splice(i, 1)[0]!.resolve(frame);
  }
  /** Resolves with the next frame of `type` the client sends (call it before the send can happen). */
  nextSent(type: string): Promise<{ type: string; data?: Record<string, unknown>; id?: number }> {
    return new Promise((resolve) => this.sendWaiters.push({ type, resolve }));
  }
  close(): void {
    this.readyState = 3;
  }
  /** Opens and sends the server's `connect` frame. */
  accept(id: string): void {
    this.readyState = 1;
    this.onopen?.({});
    this.frame({ type: 'connect', data: { connection_id: id, status: 'connected', ping_interval_ms: 0, pong_timeout_ms: 0 } });
  }
  frame(f: Record<string, unknown>): void {
    this.onmessage?.({ data: JSON.stringify({ timestamp: '', message_id: 'm', ...f }) });
  }
  drop(code = 1006): void {
    this.readyState = 3;
    this.onclose?.({ code, reason: '' });
  }
  joins(channel?: string) {
    return this.sent.filter((f) => f.type === 'join_channel' && (channel === undefined || f.data?.channel === channel));
  }
  lastJoin(channel: string) {
    return this.joins(channel).at(-1)!;
  }
  refuse(channel: string, data: Record<string, unknown>): void {
    this.frame({ type: 'error', id: this.lastJoin(channel).id, data: { message: 'no', ...data } });
  }
  grant(channel: string, offset = 0): void {
    this.frame({ type: 'subscribed', id: this.lastJoin(channel).id, channel, data: { channel, offset, epoch: 'e', members: 1 } });
  }
}

function scriptedClient(options: Partial<SwitchboardClientOptions> = {}): SwitchboardClient {
  ScriptedSocket.all = [];
  return new SwitchboardClient({
    url: 'ws://test/ws',
    WebSocket: ScriptedSocket,
    random: () => 0.5, // every delay is half its cap
    reconnect: { baseDelayMs: 100, maxDelayMs: 100 },
    subscribeRetry: { baseDelayMs: 100, maxDelayMs: 1000 },
    requestTimeoutMs: 5000,
    ...options,
  });
}

function recordErrors(sub: Subscription): Array<{ code: string; temporary: boolean; willRetry: boolean; retryInMs: number | null; attempt: number }> {
  const out: Array<{ code: string; temporary: boolean; willRetry: boolean; retryInMs: number | null; attempt: number }> = [];
  sub.on('error', (e: SubscriptionError) => {
    assert.ok(e instanceof SubscriptionError && e instanceof SwitchboardError);
    assert.equal(e.channel, sub.channel);
    out.push({ code: e.code, temporary: e.temporary, willRetry: e.willRetry, retryInMs: e.retryInMs, attempt: e.attempt });
  });
  return out;
}

test('join retry: temporary by flag or registry is retried after min(cap, base*2^n) full jitter; final ends at once', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const client = scriptedClient();
  const [rate, busy, internal, nope, forbidden] = ['rate', 'busy', 'internal', 'nope', 'forbidden'].map((c) => client.subscribe(c)) as Subscription[];
  const errs = new Map([rate, busy, internal, nope, forbidden].map((s) => [s!.channel, recordErrors(s!)]));
  const connected = client.connect();
  const ws = ScriptedSocket.all[0]!;
  ws.accept('c1');
  await connected;
  assert.equal(ws.joins().length, 5);

  ws.refuse('rate', { code: 'RATE_LIMITED', temporary: true });
  ws.refuse('busy', { code: 'APP_BUSY', temporary: true }); // unknown code, the frame says temporary
  ws.refuse('internal', { code: 'INTERNAL' }); // an older server without the flag: the registry says temporary
  ws.refuse('nope', { code: 'APP_NOPE' }); // unknown code without the flag: final
  const forbiddenReady = forbidden!.ready();
  ws.refuse('forbidden', { code: 'FORBIDDEN', temporary: false });
  await assert.rejects(forbiddenReady, (e: SubscriptionError) => e.code === 'FORBIDDEN' && !e.willRetry);
  await assert.rejects(nope!.ready(), (e: SubscriptionError) => e.code === 'APP_NOPE');

  assert.deepEqual(errs.get('rate'), [{ code: 'RATE_LIMITED', temporary: true, willRetry: true, retryInMs: 50, attempt: 1 }]);
  assert.deepEqual(errs.get('busy'), [{ code: 'APP_BUSY', temporary: true, willRetry: true, retryInMs: 50, attempt: 1 }]);
  assert.deepEqual(errs.get('internal'), [{ code: 'INTERNAL', temporary: true, willRetry: true, retryInMs: 50, attempt: 1 }]);
  assert.deepEqual(errs.get('nope'), [{ code: 'APP_NOPE', temporary: false, willRetry: false, retryInMs: null, attempt: 1 }]);
  assert.deepEqual(errs.get('forbidden'), [{ code: 'FORBIDDEN', temporary: false, willRetry: false, retryInMs: null, attempt: 1 }]);
  assert.deepEqual([rate, busy, internal, nope, forbidden].map((s) => s!.state), ['subscribing', 'subscribing', 'subscribing', 'unsubscribed', 'unsubscribed']);
  assert.deepEqual([...client.subscriptions.keys()].sort(), ['busy', 'internal', 'rate']);

  t.mock.timers.tick(49);
  assert.equal(ws.joins().length, 5, 'nothing before the delay');
  t.mock.timers.tick(1);
  assert.deepEqual(ws.joins().slice(5).map((f) => f.data!.channel).sort(), ['busy', 'internal', 'rate']);

  // Caps double: 100, 200, 400, 800, then 1000; with random 0.5 each delay is half the cap.
  const delays: Array<number | null> = [];
  for (let i = 0; i < 5; i++) {
    ws.refuse('rate', { code: 'RATE_LIMITED', temporary: true });
    delays.push(errs.get('rate')!.at(-1)!.retryInMs);
    t.mock.timers.tick(errs.get('rate')!.at(-1)!.retryInMs!);
  }
  assert.deepEqual(delays, [100, 200, 400, 500, 500]);
  assert.deepEqual(errs.get('rate')!.map((e) => e.attempt), [1, 2, 3, 4, 5, 6]);
  assert.equal(ws.joins('rate').length, 7);

  // Success resets the count: the next failure (after a resubscribe) is attempt 1 again.
  const ready = rate!.ready();
  ws.grant('rate');
  await ready;
  assert.equal(rate!.state, 'subscribed');
  ws.grant('busy');
  ws.grant('internal');
  ws.drop();
  t.mock.timers.tick(50); // reconnect delay
  const ws2 = ScriptedSocket.all[1]!;
  ws2.accept('c2');
  ws2.refuse('rate', { code: 'BROKER_UNAVAILABLE', temporary: true });
  assert.deepEqual(errs.get('rate')!.at(-1), { code: 'BROKER_UNAVAILABLE', temporary: true, willRetry: true, retryInMs: 50, attempt: 1 });
  client.close();
});

test('join retry: TIMEOUT is retried; maxAttempts turns the next temporary error final', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const client = scriptedClient({ subscribeRetry: { baseDelayMs: 100, maxDelayMs: 1000, maxAttempts: 2 }, requestTimeoutMs: 1000 });
  const sub = client.subscribe('slow');
  const errs = recordErrors(sub);
  const connected = client.connect();
  const ws = ScriptedSocket.all[0]!;
  ws.accept('c1');
  await connected;
  const ready = sub.ready();
  t.mock.timers.tick(1000); // no reply: client-side TIMEOUT
  assert.deepEqual(errs, [{ code: 'TIMEOUT', temporary: true, willRetry: true, retryInMs: 50, attempt: 1 }]);
  t.mock.timers.tick(50);
  assert.equal(ws.joins('slow').length, 2);
  ws.refuse('slow', { code: 'RATE_LIMITED', temporary: true });
  t.mock.timers.tick(100);
  assert.equal(ws.joins('slow').length, 3);
  ws.refuse('slow', { code: 'RATE_LIMITED', temporary: true });
  await assert.rejects(ready, (e: SubscriptionError) => e.code === 'RATE_LIMITED' && e.temporary && !e.willRetry && e.attempt === 3);
  assert.equal(sub.state, 'unsubscribed');
  t.mock.timers.tick(10_000);
  assert.equal(ws.joins('slow').length, 3, 'retries exhausted: no more joins');
  client.close();
});

test('join retry: pending retries are cancelled by unsubscribe, close and reconnect; resubscribe joins precede queued publishes', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const client = scriptedClient({ subscribeRetry: { baseDelayMs: 1000, maxDelayMs: 1000 }, requestTimeoutMs: 60_000 });
  const [a, b, c] = ['a', 'b', 'c'].map((ch) => client.subscribe(ch)) as Subscription[];
  const errsC = recordErrors(c!);
  const connected = client.connect();
  const ws = ScriptedSocket.all[0]!;
  ws.accept('c1');
  await connected;
  for (const ch of ['a', 'b']) ws.refuse(ch, { code: 'RATE_LIMITED', temporary: true }); // retries armed for 500 ms
  const ended: string[] = [];
  a!.on('unsubscribed', (e) => ended.push(e.channel));
  a!.unsubscribe();
  assert.deepEqual(ended, ['a']);
  t.mock.timers.tick(500);
  assert.equal(ws.joins('a').length, 1, 'unsubscribe cancelled the retry');
  assert.equal(ws.joins('b').length, 2, 'the other one was retried');

  // Reconnect: the armed retry of `b` is dropped (the new connection joins every subscription once), the
  // join of `c` in flight is reported as lost and sent again, and the joins go before the queued publish.
  ws.refuse('b', { code: 'RATE_LIMITED', temporary: true }); // armed again for 500 ms
  ws.drop();
  assert.deepEqual(errsC, [{ code: 'CONNECTION_LOST', temporary: true, willRetry: true, retryInMs: null, attempt: 0 }]);
  assert.equal(c!.state, 'subscribing');
  const queued = client.publish('b', { text: 'queued' });
  t.mock.timers.tick(50); // reconnect delay
  const ws2 = ScriptedSocket.all[1]!;
  ws2.accept('c2');
  assert.deepEqual(ws2.sent.map((f) => `${f.type}:${String(f.data?.channel)}`), ['join_channel:b', 'join_channel:c', 'publish:b']);
  t.mock.timers.tick(5000);
  assert.deepEqual(ws2.sent.map((f) => f.type), ['join_channel', 'join_channel', 'publish'], 'no retry of the old connection fires');
  ws2.frame({ type: 'ok', id: ws2.sent[2]!.id, data: { offset: 1, epoch: 'e' } });
  assert.deepEqual(await queued, { offset: 1, epoch: 'e' });

  // close(): the armed retry is cancelled, subscriptions wait (subscribing) for connect() again.
  ws2.refuse('c', { code: 'RATE_LIMITED', temporary: true });
  ws2.grant('b');
  assert.equal(b!.state, 'subscribed');
  client.close();
  t.mock.timers.tick(5000);
  assert.equal(ws2.joins('c').length, 1);
  assert.deepEqual([b!.state, c!.state], ['subscribing', 'subscribing']);
  assert.equal(ScriptedSocket.all.length, 2);
});

// ---- presence at scale (issue 10): diffs, counts, user events, paging, against the scripted socket ------

/** A connected scripted client with `channels` subscribed (granted with `members` members each). */
async function connectedClient(channels: string[], options: Partial<SwitchboardClientOptions> = {}, members = 1) {
  const client = scriptedClient(options);
  const subs = channels.map((c) => client.subscribe(c));
  const connected = client.connect();
  const ws = ScriptedSocket.all[0]!;
  ws.accept('c1');
  await connected;
  for (const c of channels) ws.frame({ type: 'subscribed', id: ws.lastJoin(c).id, channel: c, data: { channel: c, offset: 0, epoch: 'e', members } });
  return { client, subs, ws };
}

const member = (id: string) => ({ connection_id: `conn-${id}`, user_id: id, username: id.toUpperCase() });

test('presence_diff: one presence event per member (leaves, then joins), members +1/-1, one members event', async () => {
  const { client, subs, ws } = await connectedClient(['room', 'other'], {}, 3);
  const room = subs[0]!;
  const events: unknown[] = [];
  const counts: unknown[] = [];
  room.on('presence', (p) => events.push({ ...p, membersNow: room.members }));
  room.on('members', (m) => counts.push(m));
  subs[1]!.on('presence', () => assert.fail('another channel got the diff'));

  ws.frame({ type: 'presence_diff', channel: 'room', data: { channel: 'room', joins: [member('ann'), member('bob'), member('cy')], leaves: [member('dan')] } });
  assert.deepEqual(events, [
    { action: 'left', connection_id: 'conn-dan', user_id: 'dan', username: 'DAN', channel: 'room', membersNow: 2 },
    { action: 'joined', connection_id: 'conn-ann', user_id: 'ann', username: 'ANN', channel: 'room', membersNow: 3 },
    { action: 'joined', connection_id: 'conn-bob', user_id: 'bob', username: 'BOB', channel: 'room', membersNow: 4 },
    { action: 'joined', connection_id: 'conn-cy', user_id: 'cy', username: 'CY', channel: 'room', membersNow: 5 },
  ]);
  assert.deepEqual(counts, [{ channel: 'room', members: 5, source: 'presence' }], 'one members event per diff');

  // A single `presence` frame gives the same event shape, as before.
  events.length = 0;
  ws.frame({ type: 'presence', channel: 'room', data: { action: 'left', ...member('ann'), channel: 'room' } });
  assert.deepEqual(events, [{ action: 'left', connection_id: 'conn-ann', user_id: 'ann', username: 'ANN', channel: 'room', membersNow: 4 }]);
  assert.deepEqual(counts.at(-1), { channel: 'room', members: 4, source: 'presence' });

  // A diff whose joins and leaves cancel out changes nothing: per-member events, no members event.
  events.length = 0;
  counts.length = 0;
  ws.frame({ type: 'presence_diff', channel: 'room', data: { channel: 'room', joins: [member('eve')], leaves: [member('bob')] } });
  assert.deepEqual(events.map((e) => (e as { action: string }).action), ['left', 'joined']);
  assert.deepEqual(counts, []);

  // A late reply to a `presence` request (no action) is not an announcement.
  ws.frame({ type: 'presence', id: 999, channel: 'room', data: { channel: 'room', members: [member('ann')] } });
  assert.equal(events.length, 2);
  client.close();
});

test('presence_count: sets members (authoritative over +1/-1) and emits members; unchanged or unknown channel: no event', async () => {
  const { client, subs, ws } = await connectedClient(['room'], {}, 2);
  const room = subs[0]!;
  const counts: unknown[] = [];
  room.on('members', (m) => counts.push(m));
  assert.equal(room.members, 2);

  ws.frame({ type: 'presence_count', channel: 'room', data: { channel: 'room', members: 123 } });
  assert.equal(room.members, 123);
  assert.deepEqual(counts, [{ channel: 'room', members: 123, source: 'count' }]);

  ws.frame({ type: 'presence', channel: 'room', data: { action: 'joined', ...member('ann'), channel: 'room' } });
  assert.equal(room.members, 124);
  ws.frame({ type: 'presence_count', channel: 'room', data: { channel: 'room', members: 120 } }); // the server knows better
  assert.equal(room.members, 120);
  ws.frame({ type: 'presence_count', channel: 'room', data: { channel: 'room', members: 120 } });
  ws.frame({ type: 'presence_count', channel: 'nowhere', data: { channel: 'nowhere', members: 5 } });
  ws.frame({ type: 'presence_count', channel: 'room', data: { channel: 'room' } });
  assert.deepEqual(counts.map((c) => (c as { members: number }).members), [123, 124, 120]);
  assert.deepEqual(counts.map((c) => (c as { source: string }).source), ['count', 'presence', 'count']);
  assert.equal(room.members, 120);
  client.close();
});

test('users_diff: one user_offline / user_online client event per user; single frames unchanged', async () => {
  const { client, ws } = await connectedClient([]);
  const seen: string[] = [];
  client.on('user_online', (u) => seen.push(`online:${u.user_id}:${u.username}`));
  client.on('user_offline', (u) => seen.push(`offline:${u.user_id}:${u.username}`));
  ws.frame({ type: 'user_online', data: { user_id: 'ann', username: 'Ann' } });
  ws.frame({ type: 'users_diff', data: { online: [{ user_id: 'bob', username: 'Bob' }, { user_id: 'cy', username: null }], offline: [{ user_id: 'ann', username: 'Ann' }, { user_id: 'bob', username: 'Bob' }] } });
  ws.frame({ type: 'user_offline', data: { user_id: 'cy', username: null } });
  assert.deepEqual(seen, ['online:ann:Ann', 'offline:ann:Ann', 'offline:bob:Bob', 'online:bob:Bob', 'online:cy:null', 'offline:cy:null']);
  client.close();
});

test('userEvents: $users is joined on connect and after a reconnect (never with since), kept out of subscriptions', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const client = scriptedClient({ userEvents: true });
  const room = client.subscribe('room');
  const users = client.userEventsSubscription!;
  assert.ok(users);
  assert.equal(users.channel, '$users');
  assert.equal(client.subscribe('$users'), users, 'subscribe("$users") is the same subscription');
  assert.deepEqual([...client.subscriptions.keys()], ['room']);

  const connected = client.connect();
  const ws = ScriptedSocket.all[0]!;
  ws.accept('c1');
  await connected;
  assert.deepEqual(ws.joins().map((f) => f.data), [{ channel: '$users' }, { channel: 'room' }]);
  const ready = users.ready();
  ws.frame({ type: 'subscribed', id: ws.lastJoin('$users').id, channel: '$users', data: { channel: '$users', offset: 7, epoch: 'e', members: 40 } });
  ws.grant('room', 3);
  await ready;
  assert.deepEqual([users.state, room.state], ['subscribed', 'subscribed']);

  ws.drop();
  t.mock.timers.tick(50); // reconnect delay
  const ws2 = ScriptedSocket.all[1]!;
  ws2.accept('c2');
  assert.deepEqual(ws2.joins().map((f) => f.data), [{ channel: '$users' }, { channel: 'room', since: { offset: 3, epoch: 'e' } }]);

  // Retried like any subscription when refused with a temporary error.
  ws2.refuse('$users', { code: 'RATE_LIMITED', temporary: true });
  t.mock.timers.tick(50);
  assert.equal(ws2.joins('$users').length, 2);
  assert.deepEqual([...client.subscriptions.keys()], ['room']);
  client.close();

  // Without the option nothing joins $users.
  const plain = scriptedClient();
  assert.equal(plain.userEventsSubscription, null);
  const c2 = plain.connect();
  ScriptedSocket.all[0]!.accept('c3');
  await c2;
  assert.equal(ScriptedSocket.all[0]!.joins().length, 0);
  plain.close();
});

test('userEvents: a final refusal of $users ends it and is a client error; subscribe("$users") joins again', async () => {
  const client = scriptedClient({ userEvents: true });
  const errors: string[] = [];
  client.on('error', (e) => errors.push(`${e.code}:${(e as SubscriptionError).channel}`));
  const connected = client.connect();
  const ws = ScriptedSocket.all[0]!;
  ws.accept('c1');
  await connected;
  const first = client.userEventsSubscription!;
  ws.refuse('$users', { code: 'FORBIDDEN', temporary: false });
  assert.equal(first.state, 'unsubscribed');
  assert.deepEqual(errors, ['FORBIDDEN:$users']);
  assert.equal(client.userEventsSubscription, first, 'the ended subscription stays readable');

  const again = client.subscribe('$users');
  assert.notEqual(again, first);
  assert.equal(client.userEventsSubscription, again);
  assert.equal(ws.joins('$users').length, 2);
  assert.equal(client.subscriptions.size, 0);

  // unsubscribe() stops the user events: leave sent, not joined on the next connection.
  again.unsubscribe();
  assert.equal(ws.sent.at(-1)!.type, 'leave_channel');
  client.close();
  const reconnected = client.connect();
  ScriptedSocket.all[1]!.accept('c2');
  await reconnected;
  assert.equal(ScriptedSocket.all[1]!.joins().length, 0);
  client.close();
});

test('presence paging: presencePage sends cursor/limit and returns nextCursor; presence() walks every page', async () => {
  const { client, ws } = await connectedClient([]);
  const reply = (id: number | undefined, members: unknown[], next?: string | null) =>
    ws.frame({ type: 'presence', id, channel: 'room', data: next === undefined ? { channel: 'room', members } : { channel: 'room', members, next_cursor: next } });

  const page = client.presencePage('room', { limit: 2 });
  const req = ws.sent.at(-1)!;
  assert.deepEqual(req.data, { channel: 'room', limit: 2 });
  reply(req.id, [member('ann'), member('bob')], 'c-2');
  assert.deepEqual(await page, { members: [member('ann'), member('bob')], nextCursor: 'c-2' });

  const next = client.presencePage('room', { cursor: 'c-2', limit: 2 });
  const req2 = ws.sent.at(-1)!;
  assert.deepEqual(req2.data, { channel: 'room', cursor: 'c-2', limit: 2 });
  reply(req2.id, [member('cy')], null);
  assert.deepEqual(await next, { members: [member('cy')], nextCursor: null });

  // presence(): pages of the server's maximum (1000) until next_cursor is null.
  const all = client.presence('room');
  const p1 = ws.sent.at(-1)!;
  assert.deepEqual(p1.data, { channel: 'room', limit: 1000 });
  let sent = ws.nextSent('presence');
  reply(p1.id, [member('ann')], 'k1');
  const p2 = await sent;
  assert.deepEqual(p2.data, { channel: 'room', cursor: 'k1', limit: 1000 });
  sent = ws.nextSent('presence');
  reply(p2.id, [member('bob')], 'k2');
  const p3 = await sent;
  assert.deepEqual(p3.data, { channel: 'room', cursor: 'k2', limit: 1000 });
  reply(p3.id, [member('cy')], null);
  assert.deepEqual(await all, [member('ann'), member('bob'), member('cy')]);

  // A server without paging (no next_cursor): one page.
  const old = client.presence('room');
  reply(ws.sent.at(-1)!.id, [member('ann'), member('bob')]);
  assert.deepEqual(await old, [member('ann'), member('bob')]);
  client.close();
});

// ---- batch frames (seed 002) ------------------------------------------------------------------------------

test('batch option: asks for ?batch=1 and unpacks a batch frame into its frames, in order', async () => {
  const { client, subs, ws } = await connectedClient(['room'], { batch: true });
  assert.match(ws.url, /[?&]batch=1(&|$)/);
  const got: string[] = [];
  subs[0]!.on('message', (p) => got.push(String(p.data.text)));
  subs[0]!.on('presence', (p) => got.push(`presence:${p.action}:${p.user_id}`));
  ws.frame({
    type: 'batch',
    messages: [
      { type: 'message', channel: 'room', seq: 1, epoch: 'e', data: { channel: 'room', text: 'one' }, timestamp: '', message_id: 'a' },
      { type: 'presence', channel: 'room', data: { action: 'joined', ...member('ann'), channel: 'room' }, timestamp: '', message_id: 'b' },
      { type: 'message', channel: 'room', seq: 2, epoch: 'e', data: { channel: 'room', text: 'two' }, timestamp: '', message_id: 'c' },
    ],
  });
  assert.deepEqual(got, ['one', 'presence:joined:ann', 'two']);
  const plain = scriptedClient();
  plain.connect().catch(() => undefined); // closed below, before it connects
  assert.doesNotMatch(ScriptedSocket.all[0]!.url, /batch=/, 'not asked for without the option');
  client.close();
  plain.close();
});

test('document frames: varstring channel + message, byte-identical to lib0 (the server\'s encoder), malformed input refused', () => {
  const message = new Uint8Array([0, 2, 5, 1, 2, 3, 4, 5]);
  for (const channel of ['doc:a', 'doc:' + 'é'.repeat(100), 'doc:' + 'x'.repeat(20_000)]) {
    const e = lib0enc.createEncoder();
    lib0enc.writeVarString(e, channel);
    lib0enc.writeUint8Array(e, message);
    const frame = encodeDocumentFrame(channel, message);
    assert.deepEqual(frame, lib0enc.toUint8Array(e));
    const back = decodeDocumentFrame(frame);
    assert.equal(back?.channel, channel);
    assert.deepEqual(back?.message, message);
  }
  assert.equal(decodeDocumentFrame(new Uint8Array([])), null, 'empty');
  assert.equal(decodeDocumentFrame(new Uint8Array([10, 100, 111])), null, 'truncated channel');
  assert.equal(decodeDocumentFrame(new Uint8Array([0x80, 0x80, 0x80, 0x80, 0x80, 0x80])), null, 'endless varuint');
  assert.equal(decodeDocumentFrame(new Uint8Array([2, 0xff, 0xfe])), null, 'invalid UTF-8');
  // Binary message events: ArrayBuffer (binaryType 'arraybuffer') and views are bytes; strings are text.
  assert.deepEqual(messageBytes(new Uint8Array([1, 2]).buffer), new Uint8Array([1, 2]));
  assert.deepEqual(messageBytes(Buffer.from([3, 4])), new Uint8Array([3, 4]));
  assert.equal(messageBytes('{"type":"ping"}'), null);
});

test('document channels: doc_open on every connection, temporary refusal retried, binary routing, lost / final refusal / close', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const client = scriptedClient();
  const events: string[] = [];
  const messages: number[][] = [];
  const channel = client.openDocumentChannel('doc:x', {
    opened: (info) => events.push(`opened:${info.writable}`),
    message: (m) => messages.push([...m]),
    error: (e) => events.push(`error:${e.code}`),
    ended: (e) => events.push(`ended:${e.code}`),
    lost: () => events.push('lost'),
  });
  assert.throws(() => client.openDocumentChannel('doc:x', { opened() {}, message() {}, error() {}, ended() {}, lost() {} }), /already open/);
  assert.equal(channel.send(new Uint8Array([1])), false, 'not open before connecting');
  const connected = client.connect();
  const ws = ScriptedSocket.all[0]!;
  ws.accept('c1');
  await connected;
  const opens = () => ws.sent.filter((f) => f.type === 'doc_open');
  assert.equal(opens().length, 1);
  assert.deepEqual(opens()[0]!.data, { channel: 'doc:x' });
  ws.frame({ type: 'error', id: opens()[0]!.id, data: { code: 'RATE_LIMITED', message: 'slow down', temporary: true } });
  assert.deepEqual(events, ['error:RATE_LIMITED']);
  t.mock.timers.tick(49);
  assert.equal(opens().length, 1);
  t.mock.timers.tick(1);
  assert.equal(opens().length, 2, 'retried after the subscribeRetry backoff');
  // A binary frame before doc_opened is not delivered.
  ws.onmessage?.({ data: encodeDocumentFrame('doc:x', new Uint8Array([9])).slice().buffer });
  assert.deepEqual(messages, []);
  ws.frame({ type: 'doc_opened', id: opens()[1]!.id, data: { channel: 'doc:x', writable: true, max_message_bytes: 1000 } });
  assert.deepEqual(events, ['error:RATE_LIMITED', 'opened:true']);
  assert.equal(channel.isOpen, true);
  assert.equal(channel.send(new Uint8Array([0, 1, 2])), true);
  assert.deepEqual(ws.binary.at(-1), encodeDocumentFrame('doc:x', new Uint8Array([0, 1, 2])));
  ws.onmessage?.({ data: encodeDocumentFrame('doc:x', new Uint8Array([1, 2, 3])).slice().buffer });
  ws.onmessage?.({ data: encodeDocumentFrame('doc:other', new Uint8Array([7])).slice().buffer });
  assert.deepEqual(messages, [[1, 2, 3]], 'routed by channel; other channels ignored');
  ws.frame({ type: 'error', data: { code: 'READ_ONLY', message: 'read only', channel: 'doc:x', temporary: false } });
  assert.deepEqual(events.at(-1), 'error:READ_ONLY');

  // The connection drops: lost, nothing sent; the next connection opens it again.
  ws.drop();
  assert.deepEqual(events.at(-1), 'lost');
  assert.equal(channel.isOpen, false);
  assert.equal(channel.send(new Uint8Array([1])), false);
  t.mock.timers.tick(100);
  const ws2 = ScriptedSocket.all[1]!;
  ws2.accept('c2');
  await client.connect();
  const opens2 = ws2.sent.filter((f) => f.type === 'doc_open');
  assert.equal(opens2.length, 1);
  ws2.frame({ type: 'doc_opened', id: opens2[0]!.id, data: { channel: 'doc:x', writable: false, max_message_bytes: 1000 } });
  assert.deepEqual(events.at(-1), 'opened:false');
  channel.close();
  assert.deepEqual(ws2.sent.at(-1)?.type, 'doc_close');
  assert.equal(channel.send(new Uint8Array([1])), false);

  // A final refusal ends a channel; it is not opened again.
  const other = client.openDocumentChannel('doc:y', { opened() {}, message() {}, error() {}, ended: (e) => events.push(`ended:${e.code}`), lost() {} });
  const openY = ws2.sent.filter((f) => f.type === 'doc_open' && f.data?.channel === 'doc:y');
  assert.equal(openY.length, 1, 'opened at once when connected');
  ws2.frame({ type: 'error', id: openY[0]!.id, data: { code: 'FORBIDDEN', message: 'no', temporary: false } });
  assert.deepEqual(events.at(-1), 'ended:FORBIDDEN');
  assert.equal(other.isOpen, false);
  ws2.drop();
  t.mock.timers.tick(100);
  ScriptedSocket.all[2]!.accept('c3');
  await client.connect();
  assert.equal(ScriptedSocket.all[2]!.sent.filter((f) => f.type === 'doc_open').length, 0, 'closed and ended channels are not reopened');
  client.close();
});

test('document channels: a doc_open that timed out is retried, and a late doc_opened cancels the retry', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const client = scriptedClient({ requestTimeoutMs: 1000 });
  const events: string[] = [];
  client.openDocumentChannel('doc:slow', {
    opened: () => events.push('opened'),
    message() {},
    error: (e) => events.push(`error:${e.code}`),
    ended: (e) => events.push(`ended:${e.code}`),
    lost() {},
  });
  const connected = client.connect();
  const ws = ScriptedSocket.all[0]!;
  ws.accept('c1');
  await connected;
  const opens = () => ws.sent.filter((f) => f.type === 'doc_open');
  t.mock.timers.tick(1000);
  assert.deepEqual(events, ['error:TIMEOUT'], 'TIMEOUT is temporary: an error event, not the end');
  ws.frame({ type: 'doc_opened', id: opens()[0]!.id, data: { channel: 'doc:slow', writable: true, max_message_bytes: 1000 } });
  assert.deepEqual(events, ['error:TIMEOUT', 'opened']);
  t.mock.timers.tick(10_000);
  assert.equal(opens().length, 1, 'no retry once the late reply opened it');
  client.close();
});
