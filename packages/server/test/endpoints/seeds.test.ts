/**
 * Issue 12: every seed endpoint, served by a server configured exactly as docs/seeds.md shows (the block
 * between `seeds-config` markers, plus test keys and hooks), and reached the way the seed's own client
 * connects: query token, cookie, path ids, the Ed25519 challenge. Every other JSON snippet of that page must be
 * a valid configuration whose entries agree with the block.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { generateKeyPairSync, sign } from 'node:crypto';
import { SignJWT } from 'jose';
import type { WebSocket } from 'ws';
import { Switchboard, type SwitchboardOptions } from '../../src/server.js';
import { DEFAULT_CONFIG, mergeConfig, type DeepPartial, type SwitchboardConfig } from '../../src/config.js';
import type { WsProtocolHandler } from '../../src/core/ports/wire-protocol.js';
import { startServer, TestClient, userEvent, within, type WatchedServer } from '../helpers.js';
import { tryUpgrade } from './helpers.js';

const doc = readFileSync(new URL('../../../../../docs/seeds.md', import.meta.url), 'utf8');
const blocks = [...doc.matchAll(/```json\n([\s\S]*?)```/g)].map((m) => m[1]!);
const combined = JSON.parse(/<!-- seeds-config:start -->\s*```json\n([\s\S]*?)```\s*<!-- seeds-config:end -->/.exec(doc)![1]!) as DeepPartial<SwitchboardConfig> & {
  auth: { jwt: { secret: string } };
  endpoints: Record<string, unknown>;
};

const secret = new TextEncoder().encode(combined.auth.jwt.secret);
const token = (sub: string, claims: Record<string, unknown> = {}): Promise<string> =>
  new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setSubject(sub).setIssuedAt().setExpirationTime('1h').sign(secret);

const { publicKey, privateKey } = generateKeyPairSync('ed25519');
const alphaKey = (publicKey.export({ format: 'jwk' }) as { x: string }).x;

/** Seed 004 `/ws/json`, as docs/seeds.md writes the handler. */
const jsonEcho: WsProtocolHandler = {
  accept(ws) {
    ws.on('message', (data) => {
      let parsed: unknown;
      try { parsed = JSON.parse(data.toString()); } catch { ws.send(JSON.stringify({ type: 'error', message: 'Invalid JSON format' })); return; }
      ws.send(JSON.stringify({ type: 'echo', data: parsed, timestamp: new Date().toISOString() }));
    });
  },
};

/** Seed 004 `validate_session`: the application's session table. */
const sessionsTable = new Map([['sess-ada', { userId: 'ada', username: 'Ada' }]]);
const options: SwitchboardOptions = {
  protocols: { 'json-echo': jsonEcho },
  authHooks: { validateSession: async (value) => sessionsTable.get(value) ?? null },
};
/** What the deployment adds to the documented block: its keys. */
const deployment: DeepPartial<SwitchboardConfig> = { auth: { ed25519: { keys: { alpha: alphaKey } } } };

describe('docs/seeds.md configuration snippets', () => {
  it('every JSON block is a valid configuration on top of the full table, and agrees with it', () => {
    assert.ok(blocks.length >= 10, `found ${blocks.length} JSON blocks`);
    for (const text of blocks) {
      const block = JSON.parse(text) as DeepPartial<SwitchboardConfig>;
      const config = mergeConfig(DEFAULT_CONFIG, { log: { level: 'silent' } }, combined, deployment, block);
      assert.doesNotThrow(() => new Switchboard(config, { ...options, defaultMetrics: false }), text);
      for (const [pattern, entry] of Object.entries(block.endpoints ?? {})) {
        if (pattern in combined.endpoints) assert.deepEqual(entry, combined.endpoints[pattern], `${pattern} as in the full table`);
        else assert.equal(pattern, '/ws', 'only the seed 001 token variant of /ws is an alternative outside the table');
      }
    }
  });
});

describe('seed endpoints against the documented configuration', () => {
  let srv: WatchedServer;
  const open: TestClient[] = [];
  /** Connect without waiting: the caller waits for `connect` or the close. */
  const dial = async (path: string, opts: ConstructorParameters<typeof WebSocket>[2] = {}): Promise<TestClient> => {
    const c = await TestClient.connect(srv.ws + path, opts as never, false);
    open.push(c);
    return c;
  };
  const closeCode = async (c: TestClient): Promise<number> => (await within(c.closed, 3000, 'the close')).code;

  before(async () => {
    srv = await startServer(mergeConfig(combined as DeepPartial<SwitchboardConfig>, deployment), options);
  });
  after(async () => {
    for (const c of open) c.close();
    await srv.close();
  });

  it('seed 000 / 004 /ws/authenticated: no token 4001; ?token= connects as the token\'s user', async () => {
    assert.equal(await closeCode(await dial('/ws/authenticated')), 4001);
    const c = await dial(`/ws/authenticated?token=${await token('u-1', { username: 'Una' })}`);
    const connect = await c.next('connect');
    assert.deepEqual([connect.data.user_id, connect.data.username, connect.data.anonymous], ['u-1', 'Una', false]);
  });

  it('seed 001 /ws/protected: the query token only; without it (or with a header token) 4001', async () => {
    assert.equal(await closeCode(await dial('/ws/protected')), 4001);
    const header = await dial('/ws/protected', { headers: { authorization: `Bearer ${await token('u-2')}` } });
    assert.equal(await closeCode(header), 4001, 'a header token is not looked at on this endpoint');
    assert.equal(await closeCode(await dial('/ws/protected?token=garbage')), 4002);
    const c = await dial(`/ws/protected?token=${await token('u-2')}`);
    assert.equal((await c.next('connect')).data.user_id, 'u-2');
  });

  it('seed 001 /ws/{client_id}: /ws/test-client holds its id; reconnecting supersedes (4011)', async () => {
    const first = await dial('/ws/test-client');
    assert.equal((await first.next('connect')).data.client_id, 'test-client');
    const second = await dial('/ws/test-client');
    await second.next('connect');
    assert.equal(await closeCode(first), 4011);
  });

  it('seed 001 Ed25519 /ws/collective/{collective_id}/orders: challenge, then in its orders stream with the snapshot', async () => {
    await srv.sb.node.publish('orders:alpha', { kind: 'orders_snapshot', open: 2 });
    const c = await dial('/ws/collective/alpha/orders');
    const challenge = await c.next('auth_challenge');
    assert.equal(challenge.data.collective_id, 'alpha');
    const signature = sign(null, Buffer.from(challenge.data.challenge as string, 'utf8'), privateKey).toString('base64');
    c.send({ type: 'auth_response', data: { nonce: challenge.data.nonce, signature } });
    assert.equal((await c.next('connect')).data.user_id, 'alpha');
    const subscribed = await c.next('subscribed');
    assert.equal(subscribed.data.channel, 'orders:alpha');
    assert.equal((await c.next((f) => f.type === 'message' && f.channel === 'orders:alpha')).data.kind, 'orders_snapshot');
    await srv.sb.node.publish('orders:alpha', { kind: 'order_filled', order_id: 'o-1' });
    assert.equal((await c.next((f) => f.type === 'message' && f.data.kind === 'order_filled')).data.order_id, 'o-1');
    // The default challenge endpoint is unchanged; another collective's stream is refused by the channel rules.
    const plain = await dial('/ws/collective/alpha');
    assert.equal((await plain.next('auth_challenge')).data.collective_id, 'alpha');
    const denied = await c.join('orders:beta');
    assert.equal(denied.data.code, 'FORBIDDEN');
  });

  it('seed 002 /ws/authenticated/{connection_id}: token required, the segment is the client id', async () => {
    assert.equal(await closeCode(await dial('/ws/authenticated/test_connection')), 4001);
    const c = await dial(`/ws/authenticated/test_connection?token=${await token('u-3')}`);
    const connect = await c.next('connect');
    assert.deepEqual([connect.data.client_id, connect.data.user_id], ['test_connection', 'u-3']);
  });

  it('seed 002 /ws/binary/{connection_id}: the segment is the client id; text and binary messages on one socket', async () => {
    const c = await dial('/ws/binary/binary_connection'); // (test_connection is u-3's, above)
    assert.equal((await c.next('connect')).data.client_id, 'binary_connection');
    assert.equal((await c.join('bin:seed')).type, 'subscribed');
    c.send({ type: 'message', data: { channel: 'bin:seed', text: 'hello' } });
    assert.equal((await c.next('message')).data.text, 'hello');
    const name = Buffer.from('bin:seed');
    c.socket.send(Buffer.concat([Buffer.from([name.length]), name, Buffer.from([1, 2, 3])]), { binary: true });
    assert.equal((await c.next('message')).data.binary, Buffer.from([1, 2, 3]).toString('base64'));
    c.socket.send(Buffer.concat([Buffer.from([7]), Buffer.from('room:no'), Buffer.from([1])]), { binary: true });
    assert.equal((await c.next('error')).data.code, 'BINARY_NOT_SUPPORTED');
  });

  it('seed 002 SSE: GET /events streams; /events/{connection_id} is 404', async () => {
    const ac = new AbortController();
    const res = await fetch(`${srv.http}/events?channels=news`, { signal: ac.signal });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /text\/event-stream/);
    ac.abort();
    assert.equal((await fetch(`${srv.http}/events/test_connection`)).status, 404);
  });

  it('seed 004 /ws/json: the json-echo handler gets the socket (no Switchboard frames)', async () => {
    const c = await dial('/ws/json');
    c.send({ message: 'hi', n: 1 });
    const echo = await c.next('echo');
    assert.deepEqual(echo.data, { message: 'hi', n: 1 });
    assert.equal(typeof echo.timestamp, 'string');
    c.send('not json');
    assert.equal((await c.next('error')).message, 'Invalid JSON format');
    assert.equal(c.frames.some((f) => f.type === 'connect'), false);
  });

  it('seed 004 /ws/{client_id}: /ws/42', async () => {
    const c = await dial('/ws/42');
    assert.equal((await c.next('connect')).data.client_id, '42');
  });

  it('seed 004 /ws/room/{room_id}: joined on connect, pushed presence_count, messages to the room', async () => {
    const a = await dial('/ws/room/lobby');
    const counts: Array<[string, number]> = [];
    a.onFrame = (f) => {
      if (f.type === 'presence_count') counts.push([f.data.channel as string, f.data.members as number]);
    };
    await a.next('connect');
    const joined = await a.next('subscribed');
    assert.deepEqual([joined.data.channel, joined.data.members], ['room:lobby', 1]);
    const b = await dial('/ws/room/lobby');
    assert.equal((await b.next('subscribed')).data.channel, 'room:lobby');
    await a.until(() => counts.at(-1)?.[1] === 2, 'presence_count 2');
    assert.deepEqual(counts.at(-1), ['room:lobby', 2]);
    b.send({ type: 'message', data: { channel: 'room:lobby', message: 'hello room' } });
    assert.equal((await a.next('message')).data.message, 'hello room');
    const seen = counts.length;
    b.close();
    await a.until(() => counts.length > seen && counts.at(-1)?.[1] === 1, 'presence_count 1 after the other left');
    assert.deepEqual(counts.at(-1), ['room:lobby', 1]);
    const other = await dial('/ws/room/kitchen');
    assert.equal((await other.next('subscribed')).data.channel, 'room:kitchen');
  });

  it('seed 004 /ws/cookie-auth: the session cookie (validateSession) and nothing else', async () => {
    const c = await dial('/ws/cookie-auth', { headers: { cookie: 'theme=dark; session_token=sess-ada' } });
    const connect = await c.next('connect');
    assert.deepEqual([connect.data.user_id, connect.data.username], ['ada', 'Ada']);
    const browser = await dial('/ws/cookie-auth', { headers: { cookie: 'session_token=sess-ada', origin: 'https://app.example.com' } });
    assert.equal((await browser.next('connect')).data.user_id, 'ada', 'a browser on the allowlisted origin');
    assert.equal(await closeCode(await dial('/ws/cookie-auth')), 4001);
    assert.equal(await closeCode(await dial('/ws/cookie-auth', { headers: { cookie: 'session_token=unknown' } })), 4001);
    assert.equal(await closeCode(await dial(`/ws/cookie-auth?token=${await token('u-4')}`)), 4001, 'a query token is not looked at');
    const foreign = await tryUpgrade(`${srv.ws}/ws/cookie-auth`, { headers: { cookie: 'session_token=sess-ada', origin: 'https://evil.example' } });
    assert.equal(foreign.kind === 'http' && foreign.status, 403);
  });

  it('seed 004 /ws/advanced: in $users from the start (user_online of others), online_users lists them', async () => {
    const a = await dial(`/ws/advanced?token=${await token('adv-a', { username: 'A' })}`);
    await a.next('connect');
    assert.equal((await a.next('subscribed')).data.channel, '$users');
    const b = await dial(`/ws/advanced?token=${await token('adv-b', { username: 'B' })}`);
    await b.next('connect');
    await a.next(userEvent('online', 'adv-b'));
    const users = (await a.request('online_users')).data.users as Array<{ user_id: string }>;
    assert.ok(['adv-a', 'adv-b'].every((u) => users.some((x) => x.user_id === u)));
  });

  it('seed 004 /ws/robust: invalid JSON is an error frame, the connection stays', async () => {
    const c = await dial('/ws/robust');
    await c.next('connect');
    c.send('{not json');
    assert.equal((await c.next('error')).data.code, 'INVALID_JSON');
    await c.barrier();
    assert.equal(c.closeInfo, null);
  });

  it('seed 004 /ws/notifications/{user_id}: pending notifications on connect; another user\'s token 4031', async () => {
    const stored = await srv.sb.node.sendToUser('u-42', 'notification', { title: 'while you were away' });
    assert.equal(stored.stored, true);
    assert.equal(await closeCode(await dial(`/ws/notifications/u-42?token=${await token('u-7')}`)), 4031);
    assert.equal(await closeCode(await dial('/ws/notifications/u-42')), 4001);
    const c = await dial(`/ws/notifications/u-42?token=${await token('u-42')}`);
    assert.equal((await c.next('connect')).data.user_id, 'u-42');
    const pending = await c.next('notification');
    assert.deepEqual([pending.data.title, pending.inbox, pending.message_id], ['while you were away', true, stored.message_id]);
    assert.equal((await c.request('ack', { ids: [stored.message_id] })).data.removed, 1);
    const live = await srv.sb.node.sendToUser('u-42', 'notification', { title: 'live' });
    assert.equal(live.delivered, true);
    const frame = await c.next('notification');
    assert.deepEqual([frame.data.title, frame.inbox], ['live', undefined]);
    // Acknowledged: a new connection gets nothing from the inbox.
    const again = await dial(`/ws/notifications/u-42?token=${await token('u-42')}`);
    await again.next('connect');
    await again.expectNoFrame((f) => f.type === 'notification', 'no pending notification after the ack');
  });
});
