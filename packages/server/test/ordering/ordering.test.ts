/**
 * Per-connection command ordering, over the public wire protocol, on both engines.
 *
 * Contract under test: the commands of one connection take effect in the order they were received; a command
 * that waits (authorization hook, broker, store) holds the ones behind it; `ping` / `pong` / `heartbeat` /
 * `response` may pass the queue. The queue is bounded by `limits.maxPendingCommands` (beyond it: `error`
 * RATE_LIMITED, counted towards `limits.rateLimit.closeAfterDropped`, then close 4021). `join_channel` /
 * `leave_channel` draw from their own token bucket (`limits.subscribeRateLimit`), not from the message bucket.
 * Server-initiated joins (`?channels=`) are queued ahead of the client's own frames. Every `error` frame
 * carries `data.temporary`.
 *
 * Each case pipelines its frames in ONE TCP write (RawWsClient.writeFrames), so the server reads them in one
 * chunk and starts handling all of them in the same tick: exactly the situation in which a server that does
 * not serialize a connection's commands lets a later command overtake an earlier one that awaits.
 *
 * Every case runs on the memory engine and on Redis ($REDIS_URL; the Redis variant FAILS when it is not set,
 * it never skips):
 *   eval "$(bash scripts/provision/redis.sh)"; npm run build --silent
 *   node --test --test-concurrency=1 packages/server/dist/test/ordering/ordering.test.js
 */
import { afterEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import { Switchboard, type SwitchboardOptions } from '../../src/server.js';
import { mergeConfig, type DeepPartial, type SwitchboardConfig } from '../../src/config.js';
import type { HubHooks } from '../../src/core/ports/hooks.js';
import { TestClient, type Frame, type TestServer } from '../helpers.js';
import { requireRedisUrl } from '../redis/redis-process.js';
import { RawWsClient, type RawFrame } from './raw-ws.js';

type Engine = 'memory' | 'redis';
const ENGINES: Engine[] = ['memory', 'redis'];

/** Config overrides; may name keys the current config type does not know yet (maxPendingCommands, …). */
type ConfigOverrides = Record<string, unknown>;

const RUN = `${process.pid.toString(36)}${Date.now().toString(36)}`;
let seq = 0;
/** A name unique to this run (several suites share the provisioned Redis). */
function uid(prefix: string): string {
  return `${prefix}-${RUN}-${++seq}`;
}

/** Things to close after each test: raw sockets and ws clients first, servers last. */
const clients: Array<{ close(): unknown }> = [];
const servers: TestServer[] = [];

async function teardown(): Promise<void> {
  const cs = clients.splice(0);
  await Promise.all(cs.map((c) => Promise.resolve(c.close()).catch(() => undefined)));
  const ss = servers.splice(0);
  await Promise.all(ss.map((s) => s.close()));
}

/**
 * Start a server on a free loopback port through `Switchboard.create` (the path that picks the engine from
 * the config). Redis: `broker.type: 'redis'` on $REDIS_URL with a key prefix of its own.
 */
async function startEngine(engine: Engine, config: ConfigOverrides = {}, options: SwitchboardOptions = {}): Promise<TestServer> {
  const base: ConfigOverrides = {
    host: '127.0.0.1',
    port: 0,
    log: { level: 'silent' },
    store: { driver: 'sqlite', sqlitePath: ':memory:' },
    http: { serveDemo: false },
    shutdown: { deadlineMs: 2000 },
  };
  if (engine === 'redis') {
    base.broker = { type: 'redis', redisUrl: requireRedisUrl(), keyPrefix: `sbord-${uid('p')}:`, commandTimeoutMs: 2000 };
  }
  const merged = mergeConfig(base, config) as DeepPartial<SwitchboardConfig>;
  const sb = await Switchboard.create(merged, { defaultMetrics: false, ...options });
  let port: number;
  try {
    port = await sb.listen();
  } catch (err) {
    await sb.close().catch(() => undefined);
    throw err;
  }
  if (engine === 'redis') assert.equal(sb.config.broker.type, 'redis', 'the Redis variant runs on the Redis engine');
  const srv: TestServer = { sb, port, ws: `ws://127.0.0.1:${port}`, http: `http://127.0.0.1:${port}`, close: () => sb.close() };
  servers.push(srv);
  return srv;
}

async function raw(srv: TestServer, query = '', opts: Parameters<typeof RawWsClient.connect>[1] = {}): Promise<RawWsClient> {
  const c = await RawWsClient.connect(`${srv.ws}/ws${query}`, opts);
  clients.push(c);
  return c;
}

async function wsClient(srv: TestServer, query = ''): Promise<TestClient> {
  const c = await TestClient.connect(`${srv.ws}/ws${query}`);
  clients.push(c);
  return c;
}

async function getJson(url: string): Promise<any> {
  const res = await fetch(url);
  assert.equal(res.status, 200, `GET ${url}`);
  return res.json();
}

async function stats(srv: TestServer): Promise<{ channels: number; subscriptions: number; connections: number }> {
  return getJson(`${srv.http}/api/stats`);
}

async function channelsOf(srv: TestServer, connectionId: string): Promise<string[]> {
  const body = (await getJson(`${srv.http}/api/connections`)) as { connections: Array<{ connection_id: string; channels: string[] }> };
  const conn = body.connections.find((c) => c.connection_id === connectionId);
  assert.ok(conn !== undefined, `connection ${connectionId} is listed by /api/connections`);
  return conn.channels;
}

/** An authorizeChannel hook that delays `publish` by `ms()` and allows everything. */
function publishDelayHook(ms: () => number): HubHooks {
  return {
    authorizeChannel: async (_s, action) => {
      if (action === 'publish') await delay(ms());
      return { allowed: true };
    },
  };
}

const join = (channel: string, id: unknown) => ({ type: 'join_channel', data: { channel }, id });
const leave = (channel: string, id: unknown) => ({ type: 'leave_channel', data: { channel }, id });
const message = (channel: string, id: unknown, extra: Record<string, unknown> = {}) => ({ type: 'message', data: { channel, ...extra }, id });

const isPublication = (channel: string) => (f: RawFrame | Frame): boolean => f.type === 'message' && f.channel === channel;

function expectType(c: RawWsClient, f: RawFrame, type: string, what: string): void {
  assert.equal(f.type, type, `${what}: expected ${type}, got ${f.type} ${JSON.stringify(f.data)}; frames: ${c.describe()}`);
}

for (const engine of ENGINES) {
  describe(`command ordering on one connection (${engine} engine)`, () => {
    afterEach(teardown);

    it('1. join_channel then message in one write: the sender gets its own publication right after its subscribed offset; another member gets it too', async () => {
      const srv = await startEngine(engine);
      const ch = uid('c1');
      const b = await wsClient(srv);
      await b.join(ch);
      // One publication before A joins: the stream top is 1, A must not get it (no `since`).
      assert.equal((await b.request('message', { channel: ch, text: 'before' })).type, 'ok');
      await b.next(isPublication(ch));

      const a = await raw(srv);
      a.writeFrames([join(ch, 1), message(ch, 2, { text: 'hello' })]);
      const sub = await a.reply(1);
      expectType(a, sub, 'subscribed', 'reply to join_channel');
      const ok = await a.reply(2);
      expectType(a, ok, 'ok', 'reply to message');
      const own = await a.waitFor((f) => isPublication(ch)(f) && f.data.text === 'hello', { what: 'own publication' });
      assert.equal(own.seq, sub.data.offset + 1, `own publication seq ${own.seq} follows the subscribed offset ${sub.data.offset}`);
      assert.equal(ok.data.offset, own.seq, 'ok offset is the publication seq');
      assert.ok(a.indexOf(sub) < a.indexOf(own), 'subscribed arrives before the publication');
      assert.ok(!a.frames.some((f) => isPublication(ch)(f) && f.data.text === 'before'), 'no publication from before the subscription');

      const atB = await b.next((f) => isPublication(ch)(f) && f.data.text === 'hello');
      assert.equal(atB.seq, own.seq);
    });

    it('2. join_channel then leave_channel in one write: subscribed then unsubscribed; nothing is delivered afterwards', async () => {
      const srv = await startEngine(engine);
      const ch = uid('c2');
      const a = await raw(srv);
      a.writeFrames([join(ch, 'j'), leave(ch, 'l')]);
      const sub = await a.reply('j');
      expectType(a, sub, 'subscribed', 'reply to join_channel');
      assert.equal(sub.data.channel, ch);
      const uns = await a.reply('l');
      expectType(a, uns, 'unsubscribed', 'reply to leave_channel');
      assert.equal(uns.data.channel, ch);
      assert.ok(a.indexOf(sub) < a.indexOf(uns), 'subscribed before unsubscribed');

      const st = await stats(srv);
      assert.equal(st.subscriptions, 0, 'no subscription left on the node');
      assert.equal(st.channels, 0, 'no channel left on the node');
      assert.deepEqual(await channelsOf(srv, a.connectionId), []);

      // A publication on the channel, received by another subscriber, must not reach A: once B got it, a
      // ping/pong round trip on A is a barrier (the fan-out to every local member happens at once).
      const b = await wsClient(srv);
      await b.join(ch);
      assert.equal((await b.request('message', { channel: ch, text: 'after leave' })).type, 'ok');
      await b.next(isPublication(ch));
      const pongAt = await a.roundTrip();
      const leaked = a.frames.slice(0, pongAt).filter(isPublication(ch));
      assert.deepEqual(leaked, [], 'no publication after leave_channel');
      assert.deepEqual(await channelsOf(srv, a.connectionId), []);
    });

    it('3. join_channel then typing in one write: no error; another member gets the typing frame', async () => {
      const srv = await startEngine(engine);
      const ch = uid('c3');
      const b = await wsClient(srv);
      await b.join(ch);
      const user = uid('ua');
      const a = await raw(srv, `?user_id=${user}&username=A`);
      a.writeFrames([join(ch, 1), { type: 'typing', data: { channel: ch, is_typing: true }, id: 2 }]);
      expectType(a, await a.reply(1), 'subscribed', 'reply to join_channel');
      const typingReply = await a.reply(2);
      assert.notEqual(typingReply.type, 'error', `reply to typing is not an error: ${JSON.stringify(typingReply.data)}; frames: ${a.describe()}`);
      const t = await b.next((f) => f.type === 'typing' && f.channel === ch && f.data.is_typing === true);
      assert.equal(t.data.user_id, user);
      await a.roundTrip();
      assert.deepEqual(a.frames.filter((f) => f.type === 'error'), [], 'no error frame');
    });

    it('4. join_channel then message in a publishRequiresMembership namespace: accepted and delivered', async () => {
      const srv = await startEngine(engine, { channels: { namespaces: { members: { publishRequiresMembership: true } } } });
      const ch = `members:${uid('c4')}`;
      const b = await wsClient(srv);
      await b.join(ch);
      const a = await raw(srv);
      a.writeFrames([join(ch, 1), message(ch, 2, { text: 'member post' })]);
      const sub = await a.reply(1);
      expectType(a, sub, 'subscribed', 'reply to join_channel');
      const ok = await a.reply(2);
      expectType(a, ok, 'ok', 'reply to message');
      assert.equal(typeof ok.data.offset, 'number', 'ok carries the offset');
      assert.equal(ok.data.offset, sub.data.offset + 1);
      const own = await a.waitFor((f) => isPublication(ch)(f) && f.data.text === 'member post', { what: 'own publication' });
      assert.equal(own.seq, ok.data.offset);
      const atB = await b.next((f) => isPublication(ch)(f) && f.data.text === 'member post');
      assert.equal(atB.seq, ok.data.offset);
    });

    it('5. two join_channel of one channel in one write: both answered subscribed with their own id; one subscription; one leave leaves', async () => {
      const srv = await startEngine(engine);
      const ch = uid('c5');
      const a = await raw(srv);
      a.writeFrames([join(ch, 1), join(ch, 2)]);
      const r1 = await a.reply(1);
      const r2 = await a.reply(2);
      expectType(a, r1, 'subscribed', 'reply to the first join_channel');
      expectType(a, r2, 'subscribed', 'reply to the second join_channel');
      assert.equal(r1.data.channel, ch);
      assert.equal(r2.data.channel, ch);
      assert.ok(a.indexOf(r1) < a.indexOf(r2), 'replies in order');
      const st = await stats(srv);
      assert.equal(st.subscriptions, 1, 'one subscription');
      assert.equal(st.channels, 1);
      assert.deepEqual(await channelsOf(srv, a.connectionId), [ch]);

      a.send(leave(ch, 3));
      expectType(a, await a.reply(3), 'unsubscribed', 'reply to leave_channel');
      assert.equal((await stats(srv)).subscriptions, 0, 'one leave_channel leaves the channel');
      assert.deepEqual(await channelsOf(srv, a.connectionId), []);
    });

    it('6. 300 join_channel of distinct channels in one write: exactly maxChannelsPerConnection subscribed, the rest TOO_MANY_CHANNELS', async () => {
      const srv = await startEngine(engine, { limits: { rateLimit: { perSecond: 0, burst: 1000 }, subscribeRateLimit: { perSecond: 0, burst: 1000 } } });
      const max = srv.sb.config.limits.maxChannelsPerConnection;
      assert.equal(max, 100);
      const base = uid('c6');
      const n = 300;
      const a = await raw(srv);
      a.writeFrames(Array.from({ length: n }, (_, i) => join(`${base}-${i + 1}`, i + 1)));
      const replies = await a.waitForCount((f) => typeof f.id === 'number', n, { timeoutMs: 15_000, what: `${n} replies` });
      assert.equal(new Set(replies.map((f) => f.id)).size, n, 'one reply per join_channel');
      const subscribed = replies.filter((f) => f.type === 'subscribed');
      const refused = replies.filter((f) => f.type === 'error');
      assert.equal(subscribed.length, max, `exactly ${max} subscribed (got ${subscribed.length})`);
      assert.equal(refused.length, n - max);
      for (const f of refused) assert.equal(f.data.code, 'TOO_MANY_CHANNELS', `error ${JSON.stringify(f.data)}`);
      // In order: the first `max` joins are the ones that took effect.
      assert.deepEqual(subscribed.map((f) => f.id).sort((x, y) => (x as number) - (y as number)), Array.from({ length: max }, (_, i) => i + 1));
      const chans = await channelsOf(srv, a.connectionId);
      assert.equal(chans.length, max, `/api/connections lists ${max} channels (got ${chans.length})`);
      assert.equal((await stats(srv)).subscriptions, max);
    });

    it('7. pipelined publishes through an async authorization hook of varying latency: ok offsets and deliveries in send order', async () => {
      const srv = await startEngine(engine, { limits: { rateLimit: { perSecond: 1000, burst: 1000 } } }, { hooks: publishDelayHook(() => Math.random() * 15) });
      const ch = uid('c7');
      const b = await wsClient(srv);
      await b.join(ch);
      const a = await raw(srv);
      const n = 20;
      a.writeFrames(Array.from({ length: n }, (_, i) => message(ch, `m${i}`, { n: i })));
      const offsets: number[] = [];
      for (let i = 0; i < n; i++) {
        const r = await a.reply(`m${i}`, 5000);
        expectType(a, r, 'ok', `reply to message m${i}`);
        offsets.push(r.data.offset as number);
      }
      for (let i = 1; i < n; i++) assert.ok(offsets[i]! > offsets[i - 1]!, `ok offsets increase in send order: ${offsets.join(',')}`);
      const got: number[] = [];
      for (let i = 0; i < n; i++) got.push((await b.next(isPublication(ch), 5000)).data.n as number);
      assert.deepEqual(got, Array.from({ length: n }, (_, i) => i), 'the subscriber receives the publications in send order');
    });

    it('8. ping passes the queue: message held by the hook, then ping: pong arrives before the ok', async () => {
      const srv = await startEngine(engine, {}, { hooks: publishDelayHook(() => 300) });
      const ch = uid('c8');
      const a = await raw(srv);
      a.writeFrames([message(ch, 'm'), { type: 'ping', id: 'p' }]);
      const pong = await a.reply('p');
      expectType(a, pong, 'pong', 'reply to ping');
      const ok = await a.reply('m');
      expectType(a, ok, 'ok', 'reply to message');
      assert.ok(a.indexOf(pong) < a.indexOf(ok), `pong before ok: ${a.describe()}`);
    });

    it('9a. bounded queue: publishes beyond limits.maxPendingCommands get RATE_LIMITED (temporary) with their ids; the others ok in order; the connection stays open', async () => {
      const bound = 5;
      const srv = await startEngine(engine, { limits: { maxPendingCommands: bound, rateLimit: { perSecond: 1000, burst: 1000, closeAfterDropped: 50 } } }, { hooks: publishDelayHook(() => 200) });
      const ch = uid('c9');
      const a = await raw(srv);
      const n = 12;
      a.writeFrames(Array.from({ length: n }, (_, i) => message(ch, i + 1)));
      const replies = await a.waitForCount((f) => typeof f.id === 'number', n, { timeoutMs: 8000, what: `${n} replies` });
      assert.equal(new Set(replies.map((f) => f.id)).size, n, 'one reply per message');
      const oks = replies.filter((f) => f.type === 'ok');
      const errors = replies.filter((f) => f.type === 'error');
      assert.equal(oks.length + errors.length, n, `only ok and error replies: ${a.describe()}`);
      assert.ok(errors.length > 0, `some publishes beyond the bound of ${bound} are refused: ${a.describe()}`);
      for (const e of errors) {
        assert.equal(e.data.code, 'RATE_LIMITED', `error ${JSON.stringify(e.data)}`);
        assert.equal(e.data.temporary, true, 'RATE_LIMITED is temporary');
      }
      // Accepted: the first k in send order, k = the bound (or the bound plus the one in flight).
      const k = oks.length;
      assert.ok(k === bound || k === bound + 1, `accepted ${k}, expected ${bound} (or ${bound + 1} counting the command in flight)`);
      assert.deepEqual(oks.map((f) => f.id), Array.from({ length: k }, (_, i) => i + 1), 'the accepted ones are answered ok, in send order');
      assert.deepEqual(errors.map((f) => f.id).sort((x, y) => (x as number) - (y as number)), Array.from({ length: n - k }, (_, i) => k + i + 1), 'the refused ones carry their own ids');
      for (let i = 1; i < k; i++) assert.ok((oks[i]!.data.offset as number) > (oks[i - 1]!.data.offset as number), 'ok offsets increase');
      await a.roundTrip();
      assert.equal(a.closeInfo, null, 'the connection stays open');
    });

    it('9b. bounded queue: drops count towards limits.rateLimit.closeAfterDropped: close 4021', async () => {
      const srv = await startEngine(engine, { limits: { maxPendingCommands: 5, rateLimit: { perSecond: 1000, burst: 1000, closeAfterDropped: 3 } } }, { hooks: publishDelayHook(() => 200) });
      const ch = uid('c9b');
      const a = await raw(srv);
      const n = 12;
      a.writeFrames(Array.from({ length: n }, (_, i) => message(ch, i + 1)));
      // Fail fast if the last publish is accepted (then the connection was not closed for the drops).
      const info = await Promise.race([
        a.closed,
        a.waitFor((f) => f.id === n && f.type === 'ok', { timeoutMs: 5000, what: `close 4021 (or the ok of message ${n})` }).then(
          () => {
            throw new Error(`message ${n} was accepted: the queue is not bounded; frames: ${a.describe()}`);
          },
          (err: unknown) => {
            if (a.closeInfo !== null) return a.closeInfo;
            throw err;
          },
        ),
      ]);
      assert.equal(info.code, 4021, `close code (frames: ${a.describe()})`);
    });

    it('9c. a flood closed with 4021: every publication the others received was acknowledged to the flooder before the close frame', async () => {
      const srv = await startEngine(engine, { limits: { rateLimit: { perSecond: 1, burst: 6, closeAfterDropped: 3 } } });
      const ch = uid('c9c');
      const sub = await raw(srv);
      sub.send(join(ch, 's'));
      await sub.reply('s');
      const a = await raw(srv);
      const n = 30;
      a.writeFrames(Array.from({ length: n }, (_, i) => message(ch, i + 1, { n: i + 1 })));
      const info = await a.closed;
      assert.equal(info.code, 4021, `close code (frames: ${a.describe()})`);
      // Barrier: a publication made after the flood reaches the subscriber after every flood publication.
      const marker = await raw(srv);
      marker.send(message(ch, 'mark', { n: 'mark' }));
      await marker.reply('mark');
      await sub.waitFor((f) => isPublication(ch)(f) && f.data.n === 'mark', { what: 'the marker publication' });
      const received = sub.frames.filter((f) => isPublication(ch)(f) && typeof f.data.n === 'number').map((f) => f.data.n as number);
      const acked = new Set(a.frames.filter((f) => f.type === 'ok').map((f) => f.id));
      assert.ok(received.length > 0, `some of the flood was applied: ${sub.describe()}`);
      for (const k of received) assert.ok(acked.has(k), `publication ${k} reached a subscriber but its ok never reached the flooder before the 4021 close; flooder frames: ${a.describe()}`);
      // Nothing unacknowledged was applied: a retry of every message without an ok duplicates nothing.
      assert.deepEqual(received, [...acked].sort((x, y) => (x as number) - (y as number)), 'exactly the acknowledged publications were applied');
    });

    it('10. joins do not starve under the message rate limit: default limits, 50 join_channel in one write are all subscribed', async () => {
      const srv = await startEngine(engine);
      const base = uid('c10');
      const n = 50;
      const a = await raw(srv);
      a.writeFrames(Array.from({ length: n }, (_, i) => join(`${base}-${i + 1}`, i + 1)));
      const replies = await a.waitForCount((f) => typeof f.id === 'number', n, { timeoutMs: 10_000, what: `${n} replies` });
      const notSubscribed = replies.filter((f) => f.type !== 'subscribed');
      assert.equal(notSubscribed.length, 0, `every join_channel answered subscribed; not: ${notSubscribed.length} (first: ${notSubscribed.slice(0, 3).map((f) => `id ${f.id} ${f.type} ${f.data?.code}`).join(', ')})`);
      assert.equal((await channelsOf(srv, a.connectionId)).length, n);
    });

    // 11: the same scenario without and with a subscribe authorization that takes a while (an async
    // permission check): in both, the URL join is queued ahead of the client's first frame.
    for (const slowAuth of [false, true]) {
      it(`11${slowAuth ? 'b' : 'a'}. ?channels= join is queued ahead of the client frames${slowAuth ? ' (subscribe authorization takes 50 ms)' : ''}: a message sent right after the socket opens reaches the sender after its subscribed`, async () => {
        const hooks: HubHooks = {
          authorizeChannel: async (_s, action) => {
            if (slowAuth && action === 'subscribe') await delay(50);
            return { allowed: true };
          },
        };
        const srv = await startEngine(engine, {}, { hooks });
        const ch = uid('room');
        const a = await raw(srv, `?channels=${ch}`, {
          onOpen: (c) => c.writeFrames([message(ch, 'early', { text: 'first words' })]),
        });
        const sub = await a.waitFor((f) => f.type === 'subscribed' && f.data.channel === ch, { what: 'subscribed' });
        const ok = await a.reply('early');
        expectType(a, ok, 'ok', 'reply to message');
        const own = await a.waitFor((f) => isPublication(ch)(f) && f.data.text === 'first words', { what: 'own publication' });
        assert.ok(a.indexOf(sub) < a.indexOf(own), `subscribed before the publication: ${a.describe()}`);
        assert.equal(own.seq, sub.data.offset + 1, 'the subscribed offset is before the message');
        assert.equal(ok.data.offset, own.seq);
      });
    }

    it('12. error frames carry temporary: INVALID_CHANNEL -> false, RATE_LIMITED -> true', async () => {
      const srv = await startEngine(engine, { limits: { rateLimit: { perSecond: 1, burst: 2, closeAfterDropped: 50 } } });
      const ch = uid('c12');
      const a = await raw(srv);
      a.writeFrames([join('bad channel!', 'bad'), ...Array.from({ length: 4 }, (_, i) => message(ch, `m${i}`))]);
      const invalid = await a.reply('bad');
      expectType(a, invalid, 'error', 'reply to join_channel of an invalid name');
      assert.equal(invalid.data.code, 'INVALID_CHANNEL');
      assert.equal(invalid.data.temporary, false);
      const limited = await a.waitFor((f) => f.type === 'error' && f.data.code === 'RATE_LIMITED', { what: 'RATE_LIMITED error' });
      assert.equal(limited.data.temporary, true);
      assert.match(String(limited.id), /^m\d$/, 'RATE_LIMITED carries the id of the dropped message');
    });
  });
}

describe('RawWsClient (test helper)', () => {
  afterEach(teardown);

  it('writeFrames sends several frames in one socket.write; server heartbeats are answered so the connection stays open', async () => {
    const srv = await startEngine('memory', { heartbeat: { pingIntervalMs: 100, pongTimeoutMs: 150 } });
    const a = await raw(srv);
    const write = a.socket.write;
    let calls = 0;
    a.socket.write = function (this: unknown, ...args: unknown[]) {
      calls++;
      return (write as (...x: unknown[]) => boolean).apply(a.socket, args);
    } as typeof a.socket.write;
    a.writeFrames([{ type: 'ping', id: 1 }, { type: 'ping', id: 2 }, { type: 'ping', id: 3 }]);
    assert.equal(calls, 1, 'one socket.write for three frames');
    for (const id of [1, 2, 3]) assert.equal((await a.reply(id)).type, 'pong');
    a.socket.write = write;
    // Several heartbeat periods, each well past the pong timeout: only answering keeps the connection.
    await a.waitForCount((f) => f.type === 'ping', 5, { timeoutMs: 3000, what: '5 server pings' });
    await a.roundTrip();
    assert.equal(a.closeInfo, null, `still open: ${a.describe()}`);
  });
});
