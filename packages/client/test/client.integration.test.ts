// The SDK against a REAL Switchboard server (in-process, memory engine, port 0), over real sockets.
// Network trouble is made with a TCP proxy (refuse / cut / blackhole / deaf), never with mocks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { SwitchboardClient, SwitchboardError, Publication, DisconnectedEvent, GapEvent, SubscribedEvent } from '@switchboard/client';
import { Clients, recordStatuses, setupProxied as setup, startServer, until, type TestServer } from './helpers.js';

const texts = (pubs: Publication[]) => pubs.map((p) => String(p.data.text));

function collect(client: SwitchboardClient, channel: string) {
  const sub = client.subscribe(channel);
  const messages: Publication[] = [];
  const subscribed: SubscribedEvent[] = [];
  const gaps: GapEvent[] = [];
  sub.on('message', (p) => messages.push(p));
  sub.on('subscribed', (e) => subscribed.push(e));
  sub.on('gap', (g) => gaps.push(g));
  return { sub, messages, subscribed, gaps };
}

/** JSON `pong` frames the server received (websocket_messages_total{type="pong",direction="inbound"}). */
async function pongsReceived(srv: TestServer): Promise<number> {
  const metric = await srv.sb.metrics.registry.getSingleMetric('websocket_messages_total')!.get();
  const v = metric.values.find((x) => x.labels.type === 'pong' && x.labels.direction === 'inbound');
  return v ? v.value : 0;
}


test('connect, publish with ack, history, presence, typing, private messages, online users', async (t) => {
  const { srv, clients } = await setup(t);
  const a = clients.make(srv.url, { username: 'ann', params: { user_id: 'ann' } });
  const b = clients.make(srv.url, { username: 'bob', params: { user_id: 'bob' } });
  const statuses = recordStatuses(a);
  await a.connect();
  await b.connect();
  assert.deepEqual(statuses, ['disconnected', 'connecting', 'connected']);
  assert.equal(a.connection?.user_id, 'ann');

  const ca = collect(a, 'room-1');
  const presence: string[] = [];
  ca.sub.on('presence', (p) => presence.push(`${p.action}:${p.user_id}`));
  await ca.sub.ready();
  assert.equal(ca.sub.state, 'subscribed');
  const r1 = await a.publish('room-1', { text: 'one' });
  const r2 = await a.publish('room-1', { text: 'two' });
  assert.equal(typeof r1.epoch, 'string');
  assert.equal(r2.offset, r1.offset + 1);
  assert.equal(r2.epoch, r1.epoch);

  const cb = collect(b, 'room-1');
  await cb.sub.ready();
  await until(a, () => presence.includes('joined:bob'), 'ann sees bob join');
  assert.equal(ca.sub.members, 2);
  const history = await b.history('room-1', { limit: 10 });
  assert.deepEqual(texts(history.publications), ['one', 'two']);
  assert.deepEqual(history.position, { offset: r2.offset, epoch: r2.epoch });

  await b.publish('room-1', { text: 'three' });
  await until(a, () => ca.messages.length === 3, 'ann receives three messages');
  assert.deepEqual(texts(ca.messages), ['one', 'two', 'three']);
  assert.equal(ca.messages[2]!.senderId, 'bob');
  assert.equal(ca.messages[2]!.seq, r2.offset + 1);

  const typing: Array<{ user: string | null; on: boolean; users: string[] }> = [];
  ca.sub.on('typing', (e) => typing.push({ user: e.user_id, on: e.is_typing, users: e.typing_users }));
  assert.equal(b.typing('room-1', true), true);
  await until(a, () => typing.some((e) => e.user === 'bob' && e.on && e.users.includes('bob')), 'ann sees bob typing');
  b.typing('room-1', false);
  await until(a, () => typing.some((e) => e.user === 'bob' && !e.on), 'ann sees bob stop typing');

  const members = await a.presence('room-1');
  assert.deepEqual(members.map((m) => m.user_id).sort(), ['ann', 'bob']);
  const online = await a.onlineUsers();
  assert.deepEqual(online.map((u) => u.user_id).sort(), ['ann', 'bob']);

  const privates: Array<{ from: string | null; text: unknown }> = [];
  b.on('private', (pm) => privates.push({ from: pm.from, text: pm.data.text }));
  const ok = await a.sendPrivate('bob', { text: 'psst' });
  assert.equal(ok.delivered, true);
  await until(b, () => privates.length === 1, 'bob gets the private message');
  assert.deepEqual(privates[0], { from: 'ann', text: 'psst' });

  // A server refusal surfaces with the server's code.
  await assert.rejects(a.request('history', { channel: 'bad channel name!' }), (e: SwitchboardError) => e.code === 'INVALID_CHANNEL');
  ca.sub.unsubscribe();
  assert.equal(ca.sub.state, 'unsubscribed');
  await until(b, () => presence.length >= 1 && cb.sub.members === 1, 'bob sees ann leave');
});

test('a dropped connection reconnects, resubscribes with since and recovers missed publications exactly once', async (t) => {
  const { srv, clients, proxy } = await setup(t);
  const a = clients.make(proxy.url);
  const b = clients.make(srv.url);
  const statuses = recordStatuses(a);
  const disconnects: DisconnectedEvent[] = [];
  a.on('disconnected', (e) => disconnects.push(e));
  await Promise.all([a.connect(), b.connect()]);
  const ca = collect(a, 'news');
  await ca.sub.ready();
  await b.publish('news', { text: 'm1' });
  await until(a, () => ca.messages.length === 1, 'm1 live');
  const firstConnection = a.connection!.connection_id;

  proxy.mode = 'refuse';
  proxy.cut();
  await until(a, () => a.status === 'reconnecting', 'client notices the drop');
  assert.equal(disconnects[0]!.willReconnect, true);
  await b.publish('news', { text: 'm2' });
  await b.publish('news', { text: 'm3' });
  await until(a, () => disconnects.length >= 2, 'at least one refused reconnect attempt');
  proxy.mode = 'forward';

  await until(a, () => ca.messages.length === 3, 'missed messages replayed');
  assert.notEqual(a.connection!.connection_id, firstConnection);
  assert.deepEqual(texts(ca.messages), ['m1', 'm2', 'm3']);
  assert.deepEqual(ca.messages.map((m) => m.replayed), [false, true, true]);
  const resub = ca.subscribed.at(-1)!;
  assert.equal(resub.resubscribed, true);
  assert.equal(resub.recovered, true);
  assert.equal(ca.sub.recovered, true);
  assert.equal(ca.gaps.length, 0);

  await b.publish('news', { text: 'm4' });
  await until(a, () => ca.messages.length === 4, 'live after recovery');
  assert.equal(ca.messages[3]!.replayed, false);
  assert.deepEqual(ca.sub.position, { offset: ca.messages[3]!.seq, epoch: ca.messages[3]!.epoch });
  assert.deepEqual(statuses.slice(0, 3), ['disconnected', 'connecting', 'connected']);
  assert.equal(statuses.at(-1), 'connected');
  assert.ok(statuses.includes('reconnecting'));
});

test('a silent dead connection is detected by missing pings; requests time out or fail with CONNECTION_LOST', async (t) => {
  const { srv, clients, proxy } = await setup(t, { heartbeat: { pingIntervalMs: 150, pongTimeoutMs: 150 } });
  const a = clients.make(proxy.url);
  let pings = 0;
  a.on('frame', (f) => {
    if (f.type === 'ping') pings++;
  });
  await a.connect();
  const first = a.connection!.connection_id;
  assert.equal(a.connection!.ping_interval_ms, 150);
  // The client answers the server's JSON pings with pongs (counted by the server's metrics): after two pings,
  // a request round trip on the same connection orders after the two pongs it sent.
  await until(a, () => pings >= 2, 'two server pings');
  assert.equal((await a.request('ping')).type, 'pong');
  assert.ok((await pongsReceived(srv)) >= 2, 'server receives pongs');
  assert.equal(a.status, 'connected');
  assert.equal(a.connection!.connection_id, first);

  const disconnects: DisconnectedEvent[] = [];
  a.on('disconnected', (e) => disconnects.push(e));
  a.on('status', ({ status }) => {
    if (status === 'reconnecting') proxy.mode = 'forward';
  });
  proxy.mode = 'blackhole';
  const timedOut = a.presence('x', { timeoutMs: 100 });
  const lost = a.history('x', { timeoutMs: 10_000 });
  await assert.rejects(timedOut, (e: SwitchboardError) => e.code === 'TIMEOUT');
  await assert.rejects(lost, (e: SwitchboardError) => e.code === 'CONNECTION_LOST');
  assert.equal(disconnects[0]!.code, 4012);
  assert.equal(disconnects[0]!.willReconnect, true);
  await until(a, () => a.status === 'connected' && a.connection!.connection_id !== first, 'reconnected after the dead connection');
});

test('graceful shutdown reconnects immediately; after a restart the lost history is reported as a gap', async (t) => {
  const clients = new Clients();
  let srv = await startServer();
  const port = srv.port;
  t.after(async () => {
    clients.closeAll();
    await srv.close();
  });
  const a = clients.make(srv.url);
  const shutdowns: string[] = [];
  const disconnects: DisconnectedEvent[] = [];
  a.on('shutdown', (s) => shutdowns.push(s.reason));
  a.on('disconnected', (e) => disconnects.push(e));
  await a.connect();
  const ca = collect(a, 'feed');
  await ca.sub.ready();
  const before = await a.publish('feed', { text: 'before' });
  await until(a, () => ca.messages.length === 1, 'own publication echoed');

  await srv.close();
  await until(a, () => disconnects.length >= 1, 'client sees the shutdown close');
  assert.deepEqual(shutdowns, ['server shutdown']);
  assert.equal(disconnects[0]!.code, 4091);
  assert.equal(disconnects[0]!.willReconnect, true);
  assert.equal(disconnects[0]!.delayMs, 0, 'SERVER_SHUTDOWN advises an immediate reconnect');
  await until(a, () => disconnects.length >= 2, 'the immediate attempt fails while the server is down');
  assert.ok(disconnects[1]!.delayMs! > 0 || disconnects[1]!.delayMs === 0);
  assert.equal(a.status, 'reconnecting');

  srv = await startServer({}, {}, port);
  await until(a, () => a.status === 'connected', 'reconnected to the restarted server', 8000);
  await until(a, () => ca.gaps.length === 1, 'gap reported');
  assert.equal(ca.sub.recovered, false);
  assert.deepEqual(ca.gaps[0]!.since, { offset: before.offset, epoch: before.epoch });
  assert.notEqual(ca.gaps[0]!.position.epoch, before.epoch);
  const after = await a.publish('feed', { text: 'after' });
  assert.equal(after.offset, 1);
  await until(a, () => ca.messages.length === 2, 'live in the new epoch');
  assert.deepEqual(texts(ca.messages), ['before', 'after']);
});

test('server-side kill (1011) reconnects with backoff; terminal codes (4001, 4011) do not reconnect', async (t) => {
  const { srv, clients } = await setup(t);
  // Every backoff delay is 0 (random: () => 0), so "no reconnect" can be checked without waiting (see below).
  const a = clients.make(srv.url, { params: { user_id: 'ann' }, random: () => 0 });
  const disconnects: DisconnectedEvent[] = [];
  a.on('disconnected', (e) => disconnects.push(e));
  await a.connect();
  const first = a.connection!.connection_id;
  await srv.sb.node.disconnectConnection(first, 1011, 'boom');
  await until(a, () => a.status === 'connected' && a.connection!.connection_id !== first, 'reconnect after 1011');
  assert.equal(disconnects[0]!.code, 1011);
  assert.equal(disconnects[0]!.willReconnect, true);

  const pendingQueue = new Promise<void>((resolve) => a.once('disconnected', () => resolve()));
  const after4001: string[] = [];
  a.on('status', ({ status }) => after4001.push(status));
  a.on('reconnect_attempt', ({ attempt }) => after4001.push(`attempt ${attempt}`));
  await srv.sb.node.disconnectConnection(a.connection!.connection_id, 4001, 'go away');
  await pendingQueue;
  assert.equal(a.status, 'disconnected');
  assert.equal(disconnects.at(-1)!.code, 4001);
  assert.equal(disconnects.at(-1)!.willReconnect, false);
  await assert.rejects(a.publish('c', { text: 'x' }), (e: SwitchboardError) => e.code === 'NOT_CONNECTED');
  // A reconnect would be a 0 ms timer armed when the close was handled; timers of one delay fire in the order
  // they were armed, so by the time this one fires a reconnect would have started. Nothing did.
  await new Promise((r) => setTimeout(r, 0));
  assert.deepEqual(after4001, ['disconnected'], 'no reconnect after a terminal close');
  assert.equal(a.status, 'disconnected');
  assert.equal(srv.sb.node.stats().connections, 0);

  // Supersede: a second connection with the same client id closes the first with 4011 (terminal).
  const first2 = clients.make(`${srv.url}/device-1`);
  const second = clients.make(`${srv.url}/device-1`);
  const d1: DisconnectedEvent[] = [];
  first2.on('disconnected', (e) => d1.push(e));
  await first2.connect();
  await second.connect();
  await until(first2, () => first2.status === 'disconnected', 'first connection superseded');
  assert.equal(d1[0]!.code, 4011);
  assert.equal(d1[0]!.willReconnect, false);
  assert.equal(second.status, 'connected');
});

test('offline queue: publishes made while reconnecting are sent after the resubscribe; a full queue rejects', async (t) => {
  const { srv, clients, proxy } = await setup(t);
  const a = clients.make(proxy.url, { offlineQueueSize: 2 });
  const b = clients.make(srv.url);
  await Promise.all([a.connect(), b.connect()]);
  const cb = collect(b, 'q');
  await cb.sub.ready();
  a.subscribe('q');
  proxy.mode = 'refuse';
  proxy.cut();
  await until(a, () => a.status === 'reconnecting', 'drop noticed');
  const p1 = a.publish('q', { text: 'q1' });
  const p2 = a.publish('q', { text: 'q2' });
  await assert.rejects(a.publish('q', { text: 'q3' }), (e: SwitchboardError) => e.code === 'OFFLINE_QUEUE_FULL');
  assert.equal(a.queuedPublishes, 2);
  proxy.mode = 'forward';
  const [r1, r2] = await Promise.all([p1, p2]);
  assert.equal(r2.offset, r1.offset + 1);
  assert.equal(a.queuedPublishes, 0);
  await until(b, () => cb.messages.length === 2, 'bob receives the queued publishes');
  // Barrier for "applied once": a request from `a` waits on the server behind every publish `a` sent before
  // it, then a round trip on b's connection orders after every copy queued for b.
  await a.onlineUsers();
  assert.equal((await b.request('ping')).type, 'pong');
  assert.deepEqual(texts(cb.messages), ['q1', 'q2']);
});

test('a publish whose ack was lost is resent after the reconnect and applied once (idempotency key)', async (t) => {
  const { srv, clients, proxy } = await setup(t, { heartbeat: { pingIntervalMs: 150, pongTimeoutMs: 150 } });
  const a = clients.make(proxy.url);
  const b = clients.make(srv.url);
  await Promise.all([a.connect(), b.connect()]);
  const cb = collect(b, 'idem');
  await cb.sub.ready();
  a.on('status', ({ status }) => {
    if (status === 'reconnecting') proxy.mode = 'forward';
  });
  // Server -> client bytes are dropped: the publish reaches the server, its ack never comes back.
  proxy.setDeaf(true);
  const p = a.publish('idem', { text: 'once' });
  await until(b, () => cb.messages.length === 1, 'publication delivered to bob');
  const r = await p; // resolved after the reconnect by the resent (deduplicated) publish
  assert.equal(r.offset, cb.messages[0]!.seq);
  await b.publish('idem', { text: 'next' });
  await until(b, () => cb.messages.length === 2, 'next one');
  assert.deepEqual(texts(cb.messages), ['once', 'next']);
});

test('close() rejects pending work with CLIENT_CLOSED; connect() again resubscribes', async (t) => {
  const { srv, clients, proxy } = await setup(t);
  const a = clients.make(proxy.url);
  await a.connect();
  const ca = collect(a, 'c');
  await ca.sub.ready();
  proxy.mode = 'refuse';
  proxy.cut();
  await until(a, () => a.status === 'reconnecting', 'drop noticed');
  const queued = a.publish('c', { text: 'never' });
  const waiting = a.presence('c');
  a.close();
  assert.equal(a.status, 'closed');
  await assert.rejects(queued, (e: SwitchboardError) => e.code === 'CLIENT_CLOSED');
  await assert.rejects(waiting, (e: SwitchboardError) => e.code === 'CLIENT_CLOSED');
  proxy.mode = 'forward';
  await a.connect();
  await until(a, () => ca.sub.state === 'subscribed' && ca.subscribed.length === 2, 'resubscribed after connect()');
  assert.deepEqual(srv.sb.node.listSessions()[0]!.channels, ['c']);
});

test('getToken is called for every connection attempt, again after 4003, and before expiry (refresh)', async (t) => {
  const seen: string[] = [];
  const refreshed: string[] = [];
  const srv = await startServer(
    {},
    {
      authenticate: async (_req, url) => {
        const token = url.searchParams.get('token') ?? '';
        seen.push(token);
        return token.endsWith('-ok')
          ? { ok: true, identity: { userId: 'tok-user', username: 'tok', anonymous: false } }
          : { ok: false, closeCode: 4001, httpStatus: 401, code: 'UNAUTHORIZED', message: 'bad token' };
      },
      hooks: {
        refreshToken: async (_s, token) => {
          refreshed.push(token);
          return { ok: true, expiresAt: undefined };
        },
      },
    },
  );
  const clients = new Clients();
  t.after(async () => {
    clients.closeAll();
    await srv.close();
  });
  const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  let n = 0;
  const getToken = async (): Promise<string> => {
    n += 1;
    // A JWT-shaped token expiring in 2 s: with a 1.5 s margin the client refreshes after ~0.5-1 s.
    return `${b64({ alg: 'none' })}.${b64({ exp: Math.floor(Date.now() / 1000) + 2 })}.t${n}-ok`;
  };
  const a = clients.make(srv.url, { getToken, tokenRefreshMarginMs: 1500 });
  const refreshedEvents: unknown[] = [];
  a.on('token_refreshed', (e) => refreshedEvents.push(e));
  await a.connect();
  assert.equal(a.connection!.user_id, 'tok-user');
  assert.equal(seen.length, 1);
  assert.ok(seen[0]!.endsWith('.t1-ok'));

  await srv.sb.node.disconnectConnection(a.connection!.connection_id, 4003, 'token expired');
  await until(a, () => seen.length === 2 && a.status === 'connected', 'reconnected with a fresh token');
  assert.ok(seen[1]!.endsWith('.t2-ok'));
  await until(a, () => refreshedEvents.length >= 1, 'token refreshed before expiry', 4000);
  assert.ok(refreshed[0]!.endsWith('.t3-ok'));

  // A static token has no way to get fresh: 4003 is then terminal.
  const s = clients.make(srv.url, { token: 'static-ok' });
  await s.connect();
  await srv.sb.node.disconnectConnection(s.connection!.connection_id, 4003, 'token expired');
  await until(s, () => s.status === 'disconnected', 'static token client stops');
});

test('offline inbox: private messages sent while away arrive once on connect and are acknowledged', async (t) => {
  const { srv, clients } = await setup(t);
  const sender = clients.make(srv.url, { params: { user_id: 'sam' } });
  await sender.connect();
  const r1 = await sender.sendPrivate('olive', { text: 'while you were out' });
  const r2 = await sender.sendPrivate('olive', { text: 'second' });
  assert.deepEqual([r1.delivered, r1.stored, r2.stored], [false, true, true]);

  const got: Array<{ text: unknown; fromInbox: boolean }> = [];
  const olive = clients.make(srv.url, { params: { user_id: 'olive' } });
  olive.on('private', (pm) => got.push({ text: pm.data.text, fromInbox: pm.fromInbox }));
  await olive.connect();
  await until(olive, () => got.length === 2, 'inbox delivery', 3000);
  assert.deepEqual(got, [{ text: 'while you were out', fromInbox: true }, { text: 'second', fromInbox: true }]);

  // The automatic ack removed them: a second connection of the same user gets nothing from the inbox.
  // The ack was sent as the items arrived; a request from olive waits on the server behind it.
  await olive.onlineUsers();
  const again = clients.make(srv.url, { params: { user_id: 'olive' }, autoAckInbox: false });
  const seen: unknown[] = [];
  again.on('private', (pm) => seen.push(pm.data.text));
  await again.connect();
  // Inbox items are queued right after the connect frame (the SQLite store reads synchronously, in the same
  // turn), so a round trip on this connection orders after them.
  assert.equal((await again.request('ping')).type, 'pong');
  again.close();
  assert.deepEqual(seen, [], 'inbox emptied by the ack');
  const live = await sender.sendPrivate('olive', { text: 'live now' });
  assert.equal(live.delivered, true);
  await until(olive, () => got.length === 3, 'live private message', 3000);
  assert.deepEqual(got[2], { text: 'live now', fromInbox: false });
});

test('answers server-to-client requests with onRequest handlers (result, thrown error, unknown method)', async (t) => {
  const { srv, clients } = await setup(t);
  const c = clients.make(srv.url);
  c.onRequest('get_location', async (params) => ({ city: 'Oslo', precise: params.precise === true }));
  c.onRequest('fail', () => {
    throw Object.assign(new Error('not today'), { code: 'DENIED' });
  });
  await c.connect();
  const id = c.connection!.connection_id;
  assert.deepEqual(await srv.sb.node.request(id, 'get_location', { precise: true }, 2000), { city: 'Oslo', precise: true });
  await assert.rejects(srv.sb.node.request(id, 'fail', {}, 2000), (e: { code: string; message: string }) => e.code === 'DENIED' && e.message === 'not today');
  await assert.rejects(srv.sb.node.request(id, 'nobody_home', {}, 2000), (e: { code: string }) => e.code === 'NOT_FOUND');
});
