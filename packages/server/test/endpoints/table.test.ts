/**
 * Issue 12: the endpoint table. Matching (most specific pattern wins, parameters, client id syntax and
 * reserved names), start-up validation of config `endpoints`, and 404 for every upgrade whose path is no
 * endpoint — in `listen()` and in `attach(server)` mode — instead of an anonymous accept (`/ws/protected`
 * taken as a client id) or no answer at all (`/ws/room/x`).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { SignJWT } from 'jose';
import { Switchboard } from '../../src/server.js';
import { DEFAULT_CONFIG, mergeConfig, resolveEndpoints, type DeepPartial, type SwitchboardConfig } from '../../src/config.js';
import { defaultEndpoints, EndpointConfigError, EndpointTable, type EndpointSpec } from '../../src/transport/endpoints.js';
import { startServer, TestClient } from '../helpers.js';
import { notFound, tryUpgrade } from './helpers.js';

const SECRET = 'test-secret-that-is-at-least-32-bytes-long!!';
const token = (sub: string): Promise<string> =>
  new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(sub).setIssuedAt().setExpirationTime('1h').sign(new TextEncoder().encode(SECRET));

const spec = (pattern: string, extra: Partial<EndpointSpec> = {}): EndpointSpec => ({
  pattern, auth: 'optional', credentials: null, clientId: null, userParam: null, collectiveParam: null, join: [], protocol: 'switchboard', ...extra,
});

/** The pattern and params a path resolves to, or null. */
function route(table: EndpointTable, path: string): [string, Record<string, string>] | null {
  const m = table.match(path);
  return m === null ? null : [m.endpoint.pattern, m.params];
}

const quiet = { log: { level: 'silent' as const }, store: { driver: 'none' as const } };
const build = (config: DeepPartial<SwitchboardConfig>, options: ConstructorParameters<typeof Switchboard>[1] = {}): Switchboard =>
  new Switchboard(mergeConfig(DEFAULT_CONFIG, quiet, config), { defaultMetrics: false, ...options });

describe('endpoint table: matching', () => {
  const table = new EndpointTable([
    ...defaultEndpoints('/ws', '/ws/collective'),
    spec('/ws/room/{room_id}', { join: ['room:{room_id}'] }),
    spec('/ws/notifications/{user_id}', { auth: 'required', userParam: 'user_id' }),
    spec('/ws/authenticated/{connection_id}', { auth: 'required', clientId: 'connection_id' }),
  ]);

  it('the defaults reproduce today: /ws, /ws/{client_id}, /ws/authenticated, the Ed25519 path', () => {
    assert.deepEqual(route(table, '/ws'), ['/ws', {}]);
    assert.deepEqual(route(table, '/ws/device-1'), ['/ws/{client_id}', { client_id: 'device-1' }]);
    assert.deepEqual(route(table, '/ws/authenticated'), ['/ws/authenticated', {}]);
    assert.deepEqual(route(table, '/ws/collective/team-7'), ['/ws/collective/{collective_id}', { collective_id: 'team-7' }]);
  });

  it('a literal beats a parameter, whatever the order of the table', () => {
    const reversed = new EndpointTable([spec('/a/{x}/c'), spec('/a/b/{y}'), spec('/a/{z}', { clientId: 'z' }), spec('/a/lit')]);
    assert.deepEqual(route(reversed, '/a/b/c'), ['/a/b/{y}', { y: 'c' }]);
    assert.deepEqual(route(reversed, '/a/q/c'), ['/a/{x}/c', { x: 'q' }]);
    assert.deepEqual(route(reversed, '/a/lit'), ['/a/lit', {}]);
    assert.deepEqual(route(table, '/ws/authenticated/dev-9'), ['/ws/authenticated/{connection_id}', { connection_id: 'dev-9' }]);
  });

  it('parameters are one percent-decoded segment; a bad escape, an empty or a too long one matches nothing', () => {
    assert.deepEqual(route(table, '/ws/room/caf%C3%A9%20ole'), ['/ws/room/{room_id}', { room_id: 'café ole' }]);
    assert.equal(route(table, '/ws/room/a%2Fb'), null, 'no "/" inside a parameter');
    assert.equal(route(table, '/ws/room/%E0%A4%A'), null);
    assert.equal(route(table, '/ws/room/'), null);
    assert.equal(route(table, '/ws/room/' + 'x'.repeat(129)), null);
    assert.equal(route(table, '/ws/room/a/b'), null);
    assert.equal(route(table, '/ws/'), null);
    assert.equal(route(table, '/ws/authenticat%65d')?.[0], '/ws/authenticated', 'literals compare decoded');
  });

  it('client ids: 1-128 of [A-Za-z0-9_.~-], never a reserved name or a literal of the table (any case)', () => {
    assert.deepEqual(route(table, '/ws/A-z_0.9~'), ['/ws/{client_id}', { client_id: 'A-z_0.9~' }]);
    assert.equal(route(table, '/ws/' + 'x'.repeat(128))?.[0], '/ws/{client_id}');
    for (const bad of ['x'.repeat(129), 'a%20b', 'caf%C3%A9', 'a@b', '..', '.']) assert.equal(route(table, `/ws/${bad}`), null, bad);
    for (const reserved of ['room', 'notifications', 'collective', 'protected', 'cookie-auth', 'json', 'advanced', 'robust', 'Room', 'COLLECTIVE']) {
      assert.equal(route(table, `/ws/${reserved}`), null, `${reserved} is no client id`);
    }
    assert.equal(table.isInvalidClientId('ws'), true, 'literal segments of the table are reserved');
    assert.equal(route(table, '/ws/authenticated/room'), null, 'a client id parameter deeper in a pattern follows the same rules');
  });
});

describe('endpoint table: start-up validation', () => {
  const jwt = { auth: { jwt: { algorithms: ['HS256' as const], secret: SECRET } } };
  const fails = (config: DeepPartial<SwitchboardConfig>, message: RegExp, options: ConstructorParameters<typeof Switchboard>[1] = {}): void => {
    assert.throws(() => build(config, options), (err: unknown) => {
      assert.ok(err instanceof EndpointConfigError, `EndpointConfigError, got ${String(err)}`);
      assert.match(err.message, message);
      return true;
    });
  };

  it('a valid table builds; a removed default is gone', () => {
    const sb = build({ ...jwt, endpoints: { '/ws/room/{room_id}': { join: ['room:{room_id}'] }, '/ws/{client_id}': false } });
    assert.deepEqual(sb.ws.endpoints.all.map((e) => e.pattern).sort(), ['/ws', '/ws/authenticated', '/ws/collective/{collective_id}', '/ws/room/{room_id}', '/yjs/{doc}']);
  });

  it('refuses bad entries with a message naming the entry and the field', () => {
    fails({ endpoints: { '/ws/doc/{doc}': { protocol: 'mqtt' } } }, /endpoints\["\/ws\/doc\/\{doc\}"\]: protocol "mqtt" is not registered/);
    fails({ endpoints: { '/ws/{id}': {} } }, /endpoints\["\/ws\/\{id\}"\]: matches the same paths as "\/ws\/\{client_id\}"/);
    fails({ endpoints: { '/ws/room/{room_id}': { join: ['room:{roomid}'] } } }, /join\[0\] "room:\{roomid\}": the pattern has no parameter \{roomid\}/);
    fails({ endpoints: { '/ws/room/{room_id}': { joins: ['x'] } as never } }, /unknown field "joins"/);
    fails({ endpoints: { '/ws/n/{user_id}': { userParam: 'user_id' } } }, /userParam needs auth "required"/);
    fails({ endpoints: { '/ws/n/{user_id}': { auth: 'required', userParam: 'uid' } } }, /userParam: the pattern has no parameter \{uid\}/);
    fails({ endpoints: { '/ws/x': { auth: 'sometimes' as never } } }, /auth "sometimes"/);
    fails({ endpoints: { '/ws/x': { auth: 'none' } }, auth: { required: true } }, /contradicts auth.required/);
    fails({ ...jwt, endpoints: { '/ws/x': { credentials: ['carrier-pigeon' as never] } } }, /unknown source "carrier-pigeon"/);
    fails({ ...jwt, endpoints: { '/ws/x': { credentials: ['query'] } }, auth: { ...jwt.auth, sources: { query: false } } }, /"query" is disabled in auth.sources.query/);
    fails({ endpoints: { '/ws/x': { credentials: ['cookie'] } } }, /"cookie" needs a session check/);
    fails({ endpoints: { '/ws/x': { credentials: ['query'] } } }, /needs auth.jwt/);
    fails({ ...jwt, endpoints: { '/ws/x': { inbox: false } } }, /inbox: only true/);
    fails({ ...jwt, endpoints: { '/ws/x': { inbox: true } } }, /inbox: needs a store/);
    fails({ endpoints: { 'ws/x': {} } }, /a pattern is a path starting with "\/"/);
    fails({ endpoints: { '/ws/{a}{b}': {} } }, /a parameter takes a whole segment/);
    fails({ endpoints: { '/ws/x': { clientId: 'x' } } }, /clientId: the pattern has no parameter \{x\}/);
    fails({ endpoints: { '/ws/e/{doc}': { protocol: 'echo', join: ['d:{doc}'] } } }, /join: channels are a feature of the "switchboard" protocol/, { protocols: { echo: { accept: () => {} } } });
    fails({}, /"switchboard" is the built-in protocol/, { protocols: { switchboard: { accept: () => {} } } });
  });

  it('resolveEndpoints overlays config on the defaults for http.wsPath / http.ed25519Path', () => {
    const config = mergeConfig(DEFAULT_CONFIG, { http: { wsPath: '/rt', ed25519Path: '/rt/keys' }, endpoints: { '/rt/authenticated': false } });
    const caps = { protocols: [], tokens: false, cookies: false, inbox: false, customAuthenticator: false };
    assert.deepEqual(resolveEndpoints(config, caps).map((e) => [e.pattern, e.auth]), [['/rt', 'optional'], ['/rt/{client_id}', 'optional'], ['/rt/keys/{collective_id}', 'ed25519'], ['/yjs/{doc}', 'optional']]);
    // The y-websocket endpoint is a default only while a namespace is a document namespace.
    const plain = mergeConfig(DEFAULT_CONFIG, { channels: { namespaces: { doc: { documents: null } } } });
    assert.ok(!resolveEndpoints(plain, caps).some((e) => e.protocol === 'y-websocket'));
  });
});

describe('paths that match no endpoint answer 404', () => {
  // The seed paths issue 12 saw accepted anonymously as client ids, and two-segment paths that got no answer.
  const unknown = ['/ws/protected', '/ws/cookie-auth', '/ws/json', '/ws/advanced', '/ws/room', '/ws/room/x', '/ws/notifications/42',
    '/ws/Authenticated', '/ws/', '/ws/bad%20id', '/ws/collective', '/ws/collective/a/b', '/nope', '/events', '/wsx'];

  it('listen(): an HTTP 404 with the JSON error body; the default endpoints still open', async () => {
    const srv = await startServer({ ...quiet, auth: { jwt: { algorithms: ['HS256'], secret: SECRET } } });
    try {
      for (const path of unknown) assert.deepEqual(notFound(await tryUpgrade(srv.ws + path)), { status: 404, code: 'NOT_FOUND' }, path);
      const body = await tryUpgrade(`${srv.ws}/ws/room/x`);
      assert.ok(body.kind === 'http' && JSON.parse(body.body).error.temporary === false);
      const opened = await Promise.all(['/ws', '/ws/device-1', `/ws/authenticated?token=${await token('u1')}`].map(async (path) => {
        const c = await TestClient.connect(srv.ws + path, {}, false);
        return { c, connect: await c.next('connect') };
      }));
      assert.deepEqual(opened.map((o) => [o.connect.data.client_id, o.connect.data.user_id]), [[null, null], ['device-1', null], [null, 'u1']]);
      for (const o of opened) o.c.close();
    } finally {
      await srv.close();
    }
  });

  it('attach(server): the same 404 on an application http.Server', async () => {
    const sb = build({});
    await sb.start();
    const server = createServer((_req, res) => res.end('app'));
    sb.attach(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const base = `ws://127.0.0.1:${(server.address() as { port: number }).port}`;
    try {
      for (const path of unknown) assert.deepEqual(notFound(await tryUpgrade(base + path)), { status: 404, code: 'NOT_FOUND' }, path);
      const c = await TestClient.connect(`${base}/ws/device-2`, {}, false);
      assert.equal((await c.next('connect')).data.client_id, 'device-2');
      c.close();
    } finally {
      await sb.close();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});

describe('userParam refusal at the handshake', () => {
  it('auth.rejectAt "handshake": another user\'s token is HTTP 403 FORBIDDEN; the owner gets in', async () => {
    const srv = await startServer({
      auth: { jwt: { algorithms: ['HS256'], secret: SECRET }, rejectAt: 'handshake' },
      endpoints: { '/ws/notifications/{user_id}': { auth: 'required', credentials: ['query'], userParam: 'user_id' } },
    });
    try {
      const r = await tryUpgrade(`${srv.ws}/ws/notifications/u-42?token=${await token('u-7')}`);
      assert.ok(r.kind === 'http', JSON.stringify(r));
      assert.equal(r.status, 403);
      assert.equal(JSON.parse(r.body).error.code, 'FORBIDDEN');
      assert.equal((await tryUpgrade(`${srv.ws}/ws/notifications/u-42`)).kind === 'http', true, 'no token: 401 at the handshake');
      const owner = await TestClient.connect(`${srv.ws}/ws/notifications/u-42?token=${await token('u-42')}`, {}, false);
      assert.equal((await owner.next('connect')).data.user_id, 'u-42');
      owner.close();
    } finally {
      await srv.close();
    }
  });
});
