// Subscription join retries against a REAL Switchboard server (in-process, memory engine, port 0), over
// real sockets: temporary join errors (RATE_LIMITED under the server's default limits) are retried with
// backoff until the join succeeds, final ones (FORBIDDEN) end the subscription at once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Publication, Subscription, SubscriptionError } from '@switchboard/client';
import { joinsFor, recordingWebSocket, setupProxied as setup, until, type SentFrame, type TestServer } from './helpers.js';
import type { SwitchboardClient } from '@switchboard/client';

const texts = (pubs: readonly Publication[]) => pubs.map((p) => String(p.data.text));


/** Channels of the server session behind `connectionId`. */
function serverChannels(srv: TestServer, connectionId: string): string[] {
  return srv.sb.node.listSessions().find((s) => s.connection_id === connectionId)?.channels ?? [];
}

/** Waits until every subscription is subscribed (true) or one has ended for good (false). */
async function settle(client: SwitchboardClient, subs: readonly Subscription[], what: string, ok: (s: Subscription) => boolean = (s) => s.state === 'subscribed'): Promise<void> {
  await until(client, () => subs.every(ok) || subs.some((s) => s.state === 'unsubscribed'), what, 30_000);
  assert.deepEqual(subs.filter((s) => s.state === 'unsubscribed').map((s) => s.channel), [], 'no subscription may be dropped');
}

test('50 subscriptions under the default server limits all reach subscribed, and again after a forced reconnect', async (t) => {
  // Default limits: on a server where joins share the message bucket (10/s, burst 20), 30 joins are refused
  // RATE_LIMITED on every (re)connect and must be retried.
  const { srv, clients, proxy } = await setup(t);
  const a = clients.make(proxy.url);
  const channels = Array.from({ length: 50 }, (_, i) => `many-${i}`);
  const subs = channels.map((c) => a.subscribe(c));
  const resubscribed = new Set<Subscription>();
  for (const s of subs) s.on('subscribed', (e) => e.resubscribed && resubscribed.add(s));
  await a.connect();

  await settle(a, subs, 'all 50 subscriptions subscribed');
  await Promise.all(subs.map((s) => s.ready()));
  const first = a.connection!.connection_id;
  assert.deepEqual(serverChannels(srv, first).sort(), [...channels].sort());

  // Forced reconnect: the proxy resets the TCP connection (1006 for the client, which reconnects).
  proxy.cut();
  await until(a, () => a.status === 'connected' && a.connection!.connection_id !== first, 'reconnected');
  await settle(a, subs, 'all 50 resubscribed after the reconnect', (s) => s.state === 'subscribed' && resubscribed.has(s));
  assert.deepEqual(serverChannels(srv, a.connection!.connection_id).sort(), [...channels].sort());
});

test('a final refusal (FORBIDDEN by the channel rules) ends the subscription: ready() rejects, no second join', async (t) => {
  const { clients, proxy } = await setup(t, { auth: { channels: { default: 'allow', rules: { 'secret:*': { subscribe: 'none' } } } } });
  const sent: SentFrame[] = [];
  // base = cap = 1 ms makes every backoff delay 0: a wrong retry would be sent at once, before the round trips below.
  const a = clients.make(proxy.url, { WebSocket: recordingWebSocket(sent), subscribeRetry: { baseDelayMs: 1, maxDelayMs: 1 } });
  await a.connect();
  const secret = a.subscribe('secret:plans');
  const lobby = a.subscribe('lobby');
  const errors: SubscriptionError[] = [];
  const ended: string[] = [];
  secret.on('error', (e) => errors.push(e));
  secret.on('unsubscribed', (e) => ended.push(e.channel));
  let lobbyResubscribed = 0;
  lobby.on('subscribed', (e) => (lobbyResubscribed += e.resubscribed ? 1 : 0));

  await assert.rejects(secret.ready(), (e: SubscriptionError) => e.code === 'FORBIDDEN' && e.channel === 'secret:plans' && !e.temporary && !e.willRetry);
  await lobby.ready();
  assert.equal(secret.state, 'unsubscribed');
  assert.equal(a.subscriptions.has('secret:plans'), false);
  assert.deepEqual(errors.map((e) => [e.code, e.temporary, e.willRetry, e.retryInMs, e.attempt]), [['FORBIDDEN', false, false, null, 1]]);
  assert.deepEqual(ended, ['secret:plans']);
  await assert.rejects(secret.ready(), (e: SubscriptionError) => e.code === 'FORBIDDEN', 'a later ready() rejects with the same error');

  // Nothing more is sent for it: not after a round trip, not on the reconnect that resubscribes the rest.
  await a.presence('lobby');
  assert.equal(joinsFor(sent, 'secret:plans').length, 1);
  const first = a.connection!.connection_id;
  proxy.cut();
  await until(a, () => lobbyResubscribed === 1, 'lobby resubscribed after the reconnect');
  assert.notEqual(a.connection!.connection_id, first);
  await a.presence('lobby');
  assert.equal(joinsFor(sent, 'secret:plans').length, 1, 'a final refusal is never retried');
  assert.equal(joinsFor(sent, 'lobby').length, 2);
  assert.equal(errors.length, 1);
});

test('a temporary refusal (RATE_LIMITED with a burst of 1) is retried with backoff until the join succeeds; attempts restart after success', async (t) => {
  // Joins draw from the message bucket (`rateLimit`) or, on servers that have it, from their own
  // (`subscribeRateLimit`): both get a burst of 1.
  const tiny = { perSecond: 10, burst: 1 };
  const { srv, clients } = await setup(t, { limits: { rateLimit: tiny, subscribeRateLimit: tiny } });
  const sent: SentFrame[] = [];
  const retry = { baseDelayMs: 50, maxDelayMs: 400 };
  const a = clients.make(srv.url, { WebSocket: recordingWebSocket(sent), subscribeRetry: retry });
  const channels = ['r-0', 'r-1', 'r-2', 'r-3'];
  const subs = channels.map((c) => a.subscribe(c));
  const errors: SubscriptionError[] = [];
  const stateAtError: string[] = [];
  const resubscribed = new Set<Subscription>();
  for (const s of subs) {
    s.on('error', (e) => {
      errors.push(e);
      stateAtError.push(s.state);
    });
    s.on('subscribed', (e) => e.resubscribed && resubscribed.add(s));
  }
  await a.connect();
  await Promise.all(subs.map((s) => s.ready()));
  assert.ok(subs.every((s) => s.state === 'subscribed'));
  assert.deepEqual(serverChannels(srv, a.connection!.connection_id).sort(), channels);

  const checkRetries = (list: readonly SubscriptionError[]): void => {
    assert.ok(list.length >= 3, `with a burst of 1, at least 3 of the 4 joins are refused (saw ${list.length})`);
    for (const e of list) {
      assert.equal(e.code, 'RATE_LIMITED');
      assert.equal(e.temporary, true);
      assert.equal(e.willRetry, true);
      assert.equal(typeof e.retryInMs, 'number');
      const cap = Math.min(retry.maxDelayMs, retry.baseDelayMs * 2 ** (e.attempt - 1));
      assert.ok(e.retryInMs! >= 0 && e.retryInMs! < cap, `retryInMs ${e.retryInMs} outside [0, ${cap}) at attempt ${e.attempt}`);
    }
    for (const c of channels) {
      const attempts = list.filter((e) => e.channel === c).map((e) => e.attempt);
      assert.deepEqual(attempts, attempts.map((_, i) => i + 1), `${c}: attempts count 1, 2, 3... from the last success`);
    }
  };
  checkRetries(errors);
  assert.deepEqual([...new Set(stateAtError)], ['subscribing'], 'a retried subscription stays subscribing');
  for (const c of channels) {
    assert.equal(joinsFor(sent, c).length, errors.filter((e) => e.channel === c).length + 1, `${c}: one join per refusal, plus the one that succeeded`);
  }

  // A reconnect (server API close 1011: reconnect with backoff) is refused again; the counts start over at 1.
  const seen = errors.length;
  const first = a.connection!.connection_id;
  await srv.sb.node.disconnectConnection(first, 1011, 'restart');
  await until(a, () => subs.every((s) => s.state === 'subscribed' && resubscribed.has(s)), 'all resubscribed after the reconnect', 15_000);
  assert.notEqual(a.connection!.connection_id, first);
  checkRetries(errors.slice(seen));
  assert.deepEqual(serverChannels(srv, a.connection!.connection_id).sort(), channels);
});

test('a publish queued while reconnecting reaches the publisher and another client once, in order with the ones before and after', async (t) => {
  const { srv, clients, proxy } = await setup(t);
  const a = clients.make(proxy.url);
  const b = clients.make(srv.url);
  await Promise.all([a.connect(), b.connect()]);
  const subA = a.subscribe('ordered');
  const subB = b.subscribe('ordered');
  const gotA: Publication[] = [];
  const gotB: Publication[] = [];
  subA.on('message', (p) => gotA.push(p));
  subB.on('message', (p) => gotB.push(p));
  await Promise.all([subA.ready(), subB.ready()]);

  const acked = [await a.publish('ordered', { text: 'before-1' }), await a.publish('ordered', { text: 'before-2' })];
  proxy.mode = 'refuse';
  proxy.cut();
  await until(a, () => a.status === 'reconnecting', 'drop noticed');
  const queued = [a.publish('ordered', { text: 'queued-1' }), a.publish('ordered', { text: 'queued-2' })];
  assert.equal(a.queuedPublishes, 2);
  proxy.mode = 'forward';
  acked.push(...(await Promise.all(queued)));
  acked.push(await a.publish('ordered', { text: 'after-1' }));
  acked.push(await a.publish('ordered', { text: 'end' }));

  const expected = ['before-1', 'before-2', 'queued-1', 'queued-2', 'after-1', 'end'];
  assert.deepEqual(acked.map((r) => r.offset), acked.map((_, i) => acked[0]!.offset + i), 'applied once each, in order');
  await until([a, b], () => texts(gotB).includes('end'), 'the other client receives the last publish');
  await until([a, b], () => texts(gotA).includes('end'), 'the publisher receives its own last publish');
  assert.deepEqual(texts(gotB), expected);
  assert.deepEqual(texts(gotA), expected, 'the publisher gets its queued publishes too, once, in order');
  assert.deepEqual(gotA.map((p) => p.seq), acked.map((r) => r.offset));
  assert.deepEqual(gotB.map((p) => p.seq), acked.map((r) => r.offset));
});

// Needs the server to apply a connection's commands in order: the SDK sends the join of a subscription made
// while reconnecting before the queued publish, so the publisher must get its own publication live (there
// is no `since` to recover it from on a first join). A server that runs the join and the publish
// concurrently loses it.
test('a subscription made while reconnecting is joined before the queued publishes: the publisher gets its own, once, in order', async (t) => {
  const { srv, clients, proxy } = await setup(t);
  const a = clients.make(proxy.url);
  const b = clients.make(srv.url);
  await Promise.all([a.connect(), b.connect()]);
  const subB = b.subscribe('fresh');
  const gotB: Publication[] = [];
  subB.on('message', (p) => gotB.push(p));
  await subB.ready();
  await b.publish('fresh', { text: 'before' });

  proxy.mode = 'refuse';
  proxy.cut();
  await until(a, () => a.status === 'reconnecting', 'drop noticed');
  const subA = a.subscribe('fresh');
  const gotA: Publication[] = [];
  subA.on('message', (p) => gotA.push(p));
  const queued = [a.publish('fresh', { text: 'queued-1' }), a.publish('fresh', { text: 'queued-2' })];
  proxy.mode = 'forward';
  const acked = await Promise.all(queued);
  await subA.ready();
  acked.push(await a.publish('fresh', { text: 'after-1' }));
  acked.push(await a.publish('fresh', { text: 'end' }));

  const expected = ['queued-1', 'queued-2', 'after-1', 'end'];
  await until([a, b], () => texts(gotB).includes('end'), 'the other client receives the last publish');
  await until([a, b], () => texts(gotA).includes('end'), 'the publisher receives its own last publish');
  assert.deepEqual(texts(gotB), ['before', ...expected]);
  assert.deepEqual(texts(gotA), expected, 'the publisher gets its queued publishes, once, in order');
  assert.deepEqual(gotA.map((p) => p.seq), acked.map((r) => r.offset));
});

test('replay_complete after a reconnect counts what the client missed, not its own queued publishes', async (t) => {
  const { srv, clients, proxy } = await setup(t);
  const a = clients.make(proxy.url);
  const b = clients.make(srv.url);
  await Promise.all([a.connect(), b.connect()]);
  const subA = a.subscribe('missed');
  const subB = b.subscribe('missed');
  await Promise.all([subA.ready(), subB.ready()]);
  await a.publish('missed', { text: 'seen' });
  await until(a, () => subA.position?.offset === 1, 'a saw its first publication');

  proxy.mode = 'refuse';
  proxy.cut();
  await until(a, () => a.status === 'reconnecting', 'drop noticed');
  for (const text of ['b1', 'b2', 'b3']) await b.publish('missed', { text });
  const queued = [a.publish('missed', { text: 'a1' }), a.publish('missed', { text: 'a2' })];
  const replays: Array<{ replayedCount: number; recovered: boolean }> = [];
  subA.on('replay_complete', (e) => replays.push(e));
  proxy.mode = 'forward';
  await Promise.all(queued);
  await until(a, () => replays.length === 1, 'replay_complete after the resubscribe');
  assert.deepEqual(replays[0], { channel: 'missed', replayedCount: 3, recovered: true }, 'the three publications of b, not a\'s own two');
});
