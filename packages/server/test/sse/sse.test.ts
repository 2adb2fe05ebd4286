import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Switchboard } from '../../src/server.js';
import { DEFAULT_CONFIG, mergeConfig } from '../../src/config.js';
import type { Endpoint, HandshakeAuthenticator } from '../../src/core/ports/handshake.js';
import { PositionVector } from '../../src/transport/sse-position.js';
import { startServer, TestClient, within, type WatchedServer } from '../helpers.js';
import { EsClient, RawSseClient, type SseEvent } from './sse-client.js';

const onChannel = (type: string, channel: string) => (e: SseEvent) => e.event === type && e.frame.channel === channel;
const subscribedTo = (channel: string) => (e: SseEvent) => e.event === 'subscribed' && e.frame.data.channel === channel;
const replayDone = (channel: string) => (e: SseEvent) => e.event === 'replay_complete' && e.frame.data.channel === channel;

async function closeAll(srv: WatchedServer, ...clients: Array<{ close(): void }>): Promise<void> {
  for (const c of clients) c.close();
  await srv.close();
}

describe('SSE stream', () => {
  it('eventsource client: connected first, publications with ids, pings without pong expiry', async () => {
    const srv = await startServer({ heartbeat: { pingIntervalMs: 100, pongTimeoutMs: 50 } });
    const es = new EsClient(`${srv.http}/events?channels=news,sport`);
    try {
      const connected = await es.next('connected');
      assert.equal(es.all[0]!.event, 'connected');
      assert.equal(connected.frame.type, 'connected');
      assert.equal(typeof connected.frame.data.connection_id, 'string');
      await es.next(subscribedTo('news'));
      await es.next(subscribedTo('sport'));
      await srv.sb.node.publish('news', { headline: 'rain' });
      await srv.sb.node.publish('sport', { score: '1-0' });
      const m1 = await es.next(onChannel('message', 'news'));
      const m2 = await es.next(onChannel('message', 'sport'));
      assert.equal(m1.frame.data.headline, 'rain');
      assert.equal(m1.frame.seq, 1);
      assert.equal(m2.frame.data.score, '1-0');
      const v1 = PositionVector.decode(m1.lastEventId)!;
      const v2 = PositionVector.decode(m2.lastEventId)!;
      assert.deepEqual(v1.get('news'), { epoch: m1.frame.epoch, offset: 1 });
      assert.deepEqual(v1.get('sport'), { epoch: m2.frame.epoch, offset: 0 });
      assert.deepEqual(v2.get('news'), { epoch: m1.frame.epoch, offset: 1 });
      assert.deepEqual(v2.get('sport'), { epoch: m2.frame.epoch, offset: 1 });
      // Several ping intervals pass: pings arrive as events and the session is not expired (SSE cannot pong).
      for (let i = 0; i < 3; i++) assert.equal((await es.next('ping')).frame.type, 'ping');
      assert.equal(srv.sb.node.stats().connections, 1);
      assert.equal(es.connectionErrors, 0);
    } finally {
      await closeAll(srv, es);
    }
  });

  it('raw HTTP: status, headers, retry hint, id/event/data lines', async () => {
    const srv = await startServer({ sse: { retryMs: 1234 } });
    const c = await RawSseClient.open(`${srv.http}/events?channels=wire`);
    try {
      assert.equal(c.status, 200);
      assert.match(String(c.headers['content-type']), /^text\/event-stream/);
      assert.match(String(c.headers['cache-control']), /no-cache/);
      assert.equal(c.headers['x-accel-buffering'], 'no');
      const first = await c.next('connected');
      assert.equal(c.all[0], first);
      assert.equal(c.retry, 1234);
      assert.ok(c.text.startsWith('retry: 1234\n'), JSON.stringify(c.text.slice(0, 40)));
      const sub = await c.next('subscribed');
      assert.ok(sub.id !== null, 'subscribed carries the starting position');
      await srv.sb.node.publish('wire', { text: 'line1\nline2' });
      const msg = await c.next('message');
      assert.equal(msg.frame.data.text, 'line1\nline2');
      assert.deepEqual(PositionVector.decode(msg.id!)!.get('wire'), { epoch: msg.frame.epoch, offset: 1 });
      assert.match(c.text, /\nid: s1;wire:[^\n]+:1\nevent: message\ndata: \{[^\n]+\}\n\n/);
    } finally {
      await closeAll(srv, c);
    }
  });

  it('delivers presence of its own channels only', async () => {
    const srv = await startServer();
    const sse = await RawSseClient.open(`${srv.http}/events?channels=room-a`);
    const ws = await TestClient.connect(`${srv.ws}/ws`);
    try {
      await sse.next(subscribedTo('room-a'));
      await ws.join('room-b');
      await ws.join('room-a');
      const p = await sse.next('presence');
      assert.equal(p.frame.data.channel, 'room-a');
      assert.equal(p.frame.data.action, 'joined');
      assert.equal(p.frame.data.connection_id, ws.connectionId);
      await ws.request('leave_channel', { channel: 'room-b' });
      await ws.request('leave_channel', { channel: 'room-a' });
      const left = await sse.next('presence');
      assert.equal(left.frame.data.action, 'left');
      assert.equal(left.frame.data.channel, 'room-a');
      assert.deepEqual(sse.frames('presence').map((f) => f.data.channel), ['room-a', 'room-a']);
    } finally {
      await closeAll(srv, sse, ws);
    }
  });

  it('invalid channel: error event, the valid channels still work', async () => {
    const srv = await startServer();
    const c = await RawSseClient.open(`${srv.http}/events?channels=${encodeURIComponent('bad name,ok')}`);
    try {
      const err = await c.next('error');
      assert.equal(err.frame.data.code, 'INVALID_CHANNEL');
      await c.next(subscribedTo('ok'));
      await srv.sb.node.publish('ok', { n: 1 });
      assert.equal((await c.next('message')).frame.data.n, 1);
      assert.equal(srv.sb.node.stats().subscriptions, 1);
    } finally {
      await closeAll(srv, c);
    }
  });

  it('server-side disconnect: close event with the code, stream ends, session gone', async () => {
    const srv = await startServer();
    const c = await RawSseClient.open(`${srv.http}/events?channels=x`);
    try {
      const connected = await c.next('connected');
      await srv.sb.node.disconnectConnection(connected.frame.data.connection_id as string, 4011, 'superseded');
      const close = await c.next('close');
      assert.deepEqual({ ...close.frame.data }, { code: 4011, reason: 'superseded', reconnect: false });
      await c.ended;
      assert.equal(await srv.sessions.closeOf(connected.frame.data.connection_id as string), 4011, 'session removed');
      assert.equal(srv.sb.node.stats().connections, 0);
    } finally {
      await closeAll(srv, c);
    }
  });
});

describe('SSE resume (Last-Event-ID)', () => {
  it('header: replays exactly the missed publications of every channel, in order, then replay_complete', async () => {
    const srv = await startServer();
    const url = `${srv.http}/events?channels=a,b`;
    const node = srv.sb.node;
    const c1 = await RawSseClient.open(url);
    let c2: RawSseClient | null = null;
    let c3: RawSseClient | null = null;
    try {
      await c1.next(subscribedTo('b'));
      await node.publish('a', { n: 1 });
      await node.publish('b', { n: 1 });
      await c1.next(onChannel('message', 'b'));
      const lastId = c1.lastEventId;
      c1.close();
      await srv.sessions.until(() => node.stats().connections === 0, 'first stream gone');
      await node.publish('a', { n: 2 });
      await node.publish('b', { n: 2 });
      await node.publish('a', { n: 3 });

      c2 = await RawSseClient.open(url, { 'last-event-id': lastId });
      await c2.next(replayDone('b'));
      await node.publish('a', { n: 4 });
      await c2.next((e) => e.event === 'message' && e.frame.data.n === 4);
      const seen = c2.all.filter((e) => e.frame.channel === 'a' || e.frame.channel === 'b' || e.event === 'subscribed' || e.event === 'replay_complete');
      assert.deepEqual(
        seen.map((e) => `${e.event}:${e.frame.channel}:${e.event === 'message' ? e.frame.data.n : ''}:${e.frame.replayed === true ? 'R' : ''}`),
        ['subscribed:a::', 'message:a:2:R', 'message:a:3:R', 'replay_complete:a::', 'subscribed:b::', 'message:b:2:R', 'replay_complete:b::', 'message:a:4:'],
      );
      for (const e of seen.filter((x) => x.event === 'subscribed' || x.event === 'replay_complete')) assert.equal(e.frame.data.recovered, true);
      assert.equal(c2.all.find(replayDone('a'))!.frame.data.replayed_count, 2);
      // Mid-replay ids never run ahead: a recovering `subscribed` carries no id (its offset is the head), and
      // while `a` replays, `b` keeps the position the client resumed from.
      assert.equal(c2.all.find(subscribedTo('a'))!.id, null);
      const a2 = PositionVector.decode(c2.all.find((e) => e.event === 'message' && e.frame.channel === 'a')!.id!)!;
      assert.deepEqual([a2.get('a')!.offset, a2.get('b')!.offset], [2, 1]);
      const v = PositionVector.decode(c2.lastEventId)!;
      assert.equal(v.get('a')!.offset, 4);
      assert.equal(v.get('b')!.offset, 2);

      // The query form, for clients that cannot set headers; nothing missed on `a`, one on `b`.
      const id2 = c2.lastEventId;
      c2.close();
      await srv.sessions.until(() => node.stats().connections === 0, 'second stream gone');
      await node.publish('b', { n: 3 });
      c3 = await RawSseClient.open(`${url}&last_event_id=${encodeURIComponent(id2)}`);
      const doneA = await c3.next(replayDone('a'));
      assert.equal(doneA.frame.data.replayed_count, 0);
      const b3 = await c3.next(onChannel('message', 'b'));
      assert.equal(b3.frame.data.n, 3);
      assert.equal(b3.frame.replayed, true);
      assert.equal((await c3.next(replayDone('b'))).frame.data.recovered, true);
      assert.equal(c3.frames('message').length, 1);
    } finally {
      await closeAll(srv, c1, ...(c2 ? [c2] : []), ...(c3 ? [c3] : []));
    }
  });

  it('eventsource reconnects by itself and resumes with its Last-Event-ID', async () => {
    const srv = await startServer({ sse: { retryMs: 20 } });
    const node = srv.sb.node;
    let calls = 0;
    const sentIds: Array<string | undefined> = [];
    let openGate!: () => void;
    const gate = new Promise<void>((r) => (openGate = r));
    let reconnecting!: () => void;
    const reconnectAttempt = new Promise<void>((r) => (reconnecting = r));
    const es = new EsClient(`${srv.http}/events?channels=feed`, {
      fetch: async (input, init) => {
        calls++;
        sentIds.push(init.headers['Last-Event-ID']);
        if (calls === 2) reconnecting();
        if (calls > 1) await gate; // hold the reconnect until the missed publications exist
        return fetch(input, init);
      },
    });
    try {
      await es.next(subscribedTo('feed'));
      await node.publish('feed', { n: 1 });
      const m1 = await es.next('message');
      const id = node.listSessions()[0]!.connection_id;
      node.getSession(id)!.sink.terminate(); // the connection drops
      await srv.sessions.closeOf(id);
      await within(reconnectAttempt, 3000, 'reconnect attempt');
      assert.equal(calls, 2);
      assert.equal(node.stats().connections, 0);
      await node.publish('feed', { n: 2 });
      await node.publish('feed', { n: 3 });
      openGate();
      const done = await es.next(replayDone('feed'));
      assert.equal(done.frame.data.recovered, true);
      assert.equal(sentIds[1], m1.lastEventId);
      const msgs = es.all.filter((e) => e.event === 'message').map((e) => [e.frame.data.n, e.frame.replayed === true]);
      assert.deepEqual(msgs, [[1, false], [2, true], [3, true]]);
      assert.equal(es.all.filter((e) => e.event === 'connected').length, 2);
    } finally {
      await closeAll(srv, es);
    }
  });

  it('says recovered:false when the window is gone or the id is unusable', async () => {
    const srv = await startServer({ channels: { namespaces: { tiny: { historySize: 2 } } } });
    const node = srv.sb.node;
    const url = `${srv.http}/events?channels=tiny:x`;
    const c1 = await RawSseClient.open(url);
    const later: RawSseClient[] = [];
    try {
      await c1.next(subscribedTo('tiny:x'));
      await node.publish('tiny:x', { n: 1 });
      await c1.next('message');
      const lastId = c1.lastEventId;
      c1.close();
      await srv.sessions.until(() => node.stats().connections === 0, 'stream gone');
      for (let n = 2; n <= 6; n++) await node.publish('tiny:x', { n });

      const c2 = await RawSseClient.open(url, { 'last-event-id': lastId });
      later.push(c2);
      const sub = await c2.next(subscribedTo('tiny:x'));
      assert.equal(sub.frame.data.recovered, false);
      const done = await c2.next(replayDone('tiny:x'));
      assert.equal(done.frame.data.recovered, false);
      assert.equal(done.frame.data.replayed_count, 0);
      assert.equal(c2.frames('message').length, 0);
      // The new id starts from the head, so the next resume can recover again.
      assert.deepEqual(PositionVector.decode(c2.lastEventId)!.get('tiny:x')!.offset, 6);

      const c3 = await RawSseClient.open(url, { 'last-event-id': 'not-a-switchboard-id' });
      later.push(c3);
      assert.equal((await c3.next(subscribedTo('tiny:x'))).frame.data.recovered, false);
      assert.equal((await c3.next(replayDone('tiny:x'))).frame.data.recovered, false);
    } finally {
      await closeAll(srv, c1, ...later);
    }
  });

  it('an id that is garbage, of another version, has an empty epoch or lacks a channel: recovered:false for those channels, nothing replayed', async () => {
    // The window holds every publication (default history), so a resume "from the start of the current epoch"
    // WOULD be recoverable: only an unknown position may give recovered:false here.
    const srv = await startServer();
    const node = srv.sb.node;
    const url = `${srv.http}/events?channels=ka,kb`;
    const c1 = await RawSseClient.open(`${srv.http}/events?channels=ka`);
    const later: RawSseClient[] = [];
    try {
      await c1.next(subscribedTo('ka'));
      await node.publish('ka', { n: 1 });
      await c1.next(onChannel('message', 'ka'));
      const idA = c1.lastEventId; // knows ka only
      await node.publish('ka', { n: 2 });
      await node.publish('kb', { n: 1 });
      const epochB = (await node.publish('kb', { n: 2 })).epoch;

      const unknown = async (lastEventId: string, channels: string[], what: string): Promise<RawSseClient> => {
        const c = await RawSseClient.open(url, { 'last-event-id': lastEventId });
        later.push(c);
        for (const ch of channels) {
          const sub = await c.next(subscribedTo(ch));
          assert.equal(sub.frame.data.recovered, false, `${what}: ${ch} subscribed ${JSON.stringify(sub.frame.data)}`);
          const done = await c.next(replayDone(ch));
          assert.equal(done.frame.data.recovered, false, `${what}: ${ch} replay_complete ${JSON.stringify(done.frame.data)}`);
          assert.equal(done.frame.data.replayed_count, 0, `${what}: ${ch} replays nothing`);
          assert.equal(c.all.filter((e) => e.event === 'message' && e.frame.channel === ch).length, 0, `${what}: no ${ch} publication`);
        }
        return c;
      };
      await unknown('not-a-switchboard-id', ['ka', 'kb'], 'garbage');
      await unknown(`s9;ka:${epochB}:0;kb:${epochB}:0`, ['ka', 'kb'], 'unknown version');
      await unknown('s1;ka::0;kb::0', ['ka', 'kb'], 'empty epochs');

      // A valid id that knows ka but not kb: ka recovers (n=2 replayed), kb is recovered:false.
      const c = await unknown(idA, ['kb'], 'channel missing from the id');
      const done = await c.next(replayDone('ka'));
      assert.equal(done.frame.data.recovered, true);
      assert.deepEqual(c.all.filter((e) => e.event === 'message' && e.frame.channel === 'ka').map((e) => [e.frame.data.n, e.frame.replayed]), [[2, true]]);
      // The ids carry the head of kb from now on, so the next resume can recover it.
      assert.deepEqual(PositionVector.decode(c.lastEventId)!.get('kb'), { epoch: epochB, offset: 2 });
    } finally {
      await closeAll(srv, c1, ...later);
    }
  });
});

describe('SSE authentication and origin', () => {
  const requireGoodToken: HandshakeAuthenticator = async (_req, url) =>
    url.searchParams.get('token') === 'good'
      ? { ok: true, identity: { userId: 'u1', username: 'Ann', anonymous: false } }
      : { ok: false, closeCode: 4001, httpStatus: 401, code: 'UNAUTHORIZED', message: 'bad or missing token' };

  it('rejects with 401 JSON, admits with a good token, passes the SSE endpoint', async () => {
    const endpoints: Endpoint[] = [];
    const srv = await startServer({}, {
      authenticate: (req, url, endpoint) => {
        endpoints.push(endpoint);
        return requireGoodToken(req, url, endpoint);
      },
    });
    const bad = await RawSseClient.open(`${srv.http}/events?channels=x&token=nope`);
    const es = new EsClient(`${srv.http}/events?channels=x`);
    const good = await RawSseClient.open(`${srv.http}/events?channels=x&token=good`);
    try {
      assert.equal(bad.status, 401);
      assert.match(String(bad.headers['content-type']), /^application\/json/);
      assert.deepEqual(bad.json, { error: { code: 'UNAUTHORIZED', message: 'bad or missing token', temporary: false } });
      assert.deepEqual(endpoints[0], { transport: 'sse', path: '/events', clientId: null, requireAuth: false });
      // A real EventSource gives up on a non-200 answer (no reconnect loop).
      await es.failed();
      assert.equal(es.es.readyState, es.es.CLOSED, 'eventsource closed');
      assert.equal(good.status, 200);
      const connected = await good.next('connected');
      assert.equal(connected.frame.data.user_id, 'u1');
      assert.equal(connected.frame.data.anonymous, false);
      await good.next(subscribedTo('x'));
      assert.equal(srv.sb.node.stats().connections, 1);
    } finally {
      await closeAll(srv, bad, es, good);
    }
  });

  it('rejects a foreign Origin with 403, allows the listed one with CORS headers', async () => {
    const srv = await startServer({ auth: { origins: { allow: ['https://good.example'] } } });
    const evil = await RawSseClient.open(`${srv.http}/events?channels=x`, { origin: 'https://evil.example' });
    const good = await RawSseClient.open(`${srv.http}/events?channels=x`, { origin: 'https://good.example' });
    try {
      assert.equal(evil.status, 403);
      assert.equal(evil.json.error.code, 'ORIGIN_NOT_ALLOWED');
      assert.equal(good.status, 200);
      assert.equal(good.headers['access-control-allow-origin'], 'https://good.example');
      assert.equal(good.headers['access-control-allow-credentials'], 'true');
      await good.next('connected');
    } finally {
      await closeAll(srv, evil, good);
    }
  });

  it('with allow "*" any origin may read, but never with credentials (cookies)', async () => {
    const srv = await startServer();
    const any = await RawSseClient.open(`${srv.http}/events?channels=x`, { origin: 'https://anywhere.example' });
    try {
      assert.equal(any.status, 200);
      assert.equal(any.headers['access-control-allow-origin'], '*');
      assert.equal(any.headers['access-control-allow-credentials'], undefined);
      await any.next('connected');
    } finally {
      await closeAll(srv, any);
    }
  });

  it('auth.required applies to SSE too', async () => {
    const srv = await startServer({ auth: { required: true } });
    const c = await RawSseClient.open(`${srv.http}/events`);
    try {
      assert.equal(c.status, 401);
      assert.equal(c.json.error.code, 'UNAUTHORIZED');
    } finally {
      await closeAll(srv, c);
    }
  });
});

describe('SSE limits and lifecycle', () => {
  it('disconnects a slow client without hurting the others', async () => {
    const srv = await startServer({ limits: { maxQueuedBytes: 256 * 1024 } });
    const node = srv.sb.node;
    const fast = await RawSseClient.open(`${srv.http}/events?channels=firehose`);
    await fast.next(subscribedTo('firehose'));
    const slow = await RawSseClient.open(`${srv.http}/events?channels=firehose`, {}, { paused: true });
    try {
      // The paused client cannot read its own `subscribed`: its join is announced to the fast one instead.
      await fast.next((e) => e.event === 'presence' && e.frame.data.action === 'joined');
      assert.equal(node.stats().subscriptions, 2, 'both subscribed');
      const pad = 'x'.repeat(64 * 1024);
      // Paced by the fast client, not by event-loop turns: it never has more than WINDOW publications
      // (128 KiB) unread, under the 256 KiB bound however slow the machine; the paused one's backlog only grows.
      const WINDOW = 2;
      let n = 0;
      let fastGot = 0;
      while (node.stats().connections === 2 && n < 400) {
        await node.publish('firehose', { n, pad });
        n++;
        if (n - fastGot > WINDOW) {
          await fast.next('message');
          fastGot++;
        }
      }
      assert.equal(node.stats().connections, 1, `slow client still connected after ${n} publications`);
      slow.resume();
      await slow.ended; // reset by the server: the client sees its connection end
      // The server's response emitted 'close' (and left openStreams) right after the reset, before any I/O.
      assert.equal(srv.sb.sse.openStreams, 1);
      await node.publish('firehose', { n, pad: '' });
      const last = await fast.next((e) => e.event === 'message' && e.frame.data.n === n, 10_000);
      assert.ok(last);
      assert.deepEqual(fast.frames('message').map((f) => f.data.n), Array.from({ length: n + 1 }, (_, i) => i));
    } finally {
      await closeAll(srv, slow, fast);
    }
  });

  it('cleans up when the client goes away', async () => {
    const srv = await startServer();
    const node = srv.sb.node;
    const raw = await RawSseClient.open(`${srv.http}/events?channels=c1,c2&user_id=u7`);
    const es = new EsClient(`${srv.http}/events?channels=c2`);
    try {
      await raw.next(subscribedTo('c2'));
      await es.next(subscribedTo('c2'));
      assert.deepEqual({ ...node.stats(), draining: undefined }, { connections: 2, channels: 2, subscriptions: 3, users: 1, draining: undefined });
      raw.close();
      es.close();
      await srv.sessions.until(() => node.stats().connections === 0, 'both streams closed on the server');
      // Channels, subscriptions and users are released before the session close is reported.
      assert.deepEqual({ ...node.stats(), draining: undefined }, { connections: 0, channels: 0, subscriptions: 0, users: 0, draining: undefined }, 'node stats back to 0');
      assert.equal(srv.sb.sse.openStreams, 0);
      assert.deepEqual(await node.channelPresence('c1'), []);
    } finally {
      await closeAll(srv, raw, es);
    }
  });

  it('an idle timeout closes silent WebSocket clients but never SSE streams (they cannot send)', async () => {
    const srv = await startServer({ heartbeat: { pingIntervalMs: 0, pongTimeoutMs: 1000, idleTimeoutMs: 150 } });
    const raw = await RawSseClient.open(`${srv.http}/events?channels=idle-c`);
    try {
      await raw.next(subscribedTo('idle-c'));
      const ws = await TestClient.connect(`${srv.ws}/ws`);
      assert.equal((await ws.closed).code, 4012);
      await srv.sb.node.publish('idle-c', { still: 'here' });
      const ev = await raw.next((e) => e.event === 'message');
      assert.equal(JSON.parse(ev.data).data.still, 'here');
      assert.equal(srv.sb.node.stats().connections, 1);
    } finally {
      await closeAll(srv, raw);
    }
  });

  it('graceful shutdown delivers what is queued, sends shutdown and close, ends the stream', async () => {
    const srv = await startServer();
    const c = await RawSseClient.open(`${srv.http}/events?channels=last-words`);
    await c.next(subscribedTo('last-words'));
    const n = 100;
    for (let i = 0; i < n; i++) void srv.sb.node.publish('last-words', { i });
    const closing = srv.close();
    await c.ended;
    await closing;
    assert.deepEqual(c.frames('message').map((f) => f.data.i), Array.from({ length: n }, (_, i) => i));
    const tail = c.all.slice(-2).map((e) => e.event);
    assert.deepEqual(tail, ['shutdown', 'close']);
    assert.deepEqual({ ...c.all.at(-1)!.frame.data }, { code: 4091, reason: 'server shutdown', reconnect: true });
    assert.equal(srv.sb.sse.openStreams, 0);
  });

  it('works on a bare http.Server through sse.handler', async () => {
    const sb = new Switchboard(mergeConfig(DEFAULT_CONFIG, { log: { level: 'silent' }, store: { driver: 'none' } }), { defaultMetrics: false });
    await sb.start();
    const server = http.createServer((req, res) => {
      if (!sb.sse.handler(req, res)) res.writeHead(404).end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    const c = await RawSseClient.open(`http://127.0.0.1:${port}/events?channels=bare`);
    try {
      await c.next(subscribedTo('bare'));
      await sb.node.publish('bare', { ok: true });
      assert.equal((await c.next('message')).frame.data.ok, true);
      const other = await RawSseClient.open(`http://127.0.0.1:${port}/elsewhere`);
      assert.equal(other.status, 404);
    } finally {
      c.close();
      await sb.close();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });
});
