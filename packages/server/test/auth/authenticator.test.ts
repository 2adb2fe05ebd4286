import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createAuth, isExpired, type AuthConfigInput, type AuthHooks, type AuthResult } from '../../src/auth/index.js';
import { ask, hmacKey, mint, SECRET, startAuthServer } from './helpers.js';

const JWT = { algorithms: ['HS256' as const], secret: SECRET };

async function withServer(cfg: AuthConfigInput, hooks: AuthHooks, fn: (base: string) => Promise<void>, opts = {}) {
  const srv = await startAuthServer(createAuth(cfg, hooks), opts);
  try { await fn(srv.url); } finally { await srv.close(); }
}

function failed(r: AuthResult, code: string, closeCode: number, httpStatus: number, rejectAt = 'close') {
  assert.equal(r.ok, false, `expected ${code}, got ${JSON.stringify(r)}`);
  if (r.ok) return;
  assert.deepEqual([r.failure.code, r.failure.closeCode, r.failure.httpStatus, r.failure.rejectAt], [code, closeCode, httpStatus, rejectAt]);
}

function user(r: AuthResult): string | null {
  assert.ok(r.ok, JSON.stringify(r));
  return r.ok ? r.identity.userId : null;
}

test('no credentials: anonymous when allowed, 4001/401 when required', async () => {
  await withServer({ jwt: JWT }, {}, async (base) => {
    const r = await ask(base, '/ws?username=Alice');
    assert.ok(r.ok && r.identity.anonymous && r.identity.userId === null && r.identity.username === 'Alice');
  });
  await withServer({ jwt: JWT, required: true }, {}, async (base) => failed(await ask(base, '/ws'), 'UNAUTHORIZED', 4001, 401));
  // Per-endpoint requirement (/ws/authenticated) overrides auth.required=false.
  await withServer({ jwt: JWT }, {}, async (base) => failed(await ask(base, '/ws'), 'UNAUTHORIZED', 4001, 401), { required: true });
  await withServer({ jwt: JWT, required: true, rejectAt: 'handshake' }, {}, async (base) => failed(await ask(base, '/ws'), 'UNAUTHORIZED', 4001, 401, 'handshake'));
});

test('each token source yields the identity; header > subprotocol > query > cookie', async () => {
  const t = (sub: string) => mint({ alg: 'HS256', key: hmacKey(), sub });
  await withServer({ jwt: JWT }, {}, async (base) => {
    assert.equal(user(await ask(base, '/ws', { authorization: `Bearer ${await t('h')}` })), 'h');
    assert.equal(user(await ask(base, '/ws', { authorization: `bearer   ${await t('h2')}` })), 'h2');
    const sp = await ask(base, '/ws', { 'sec-websocket-protocol': `switchboard.v1, bearer.${await t('sp')}` });
    assert.equal(user(sp), 'sp');
    assert.equal(sp.ok && sp.subprotocol, 'switchboard.v1', 'the server echoes switchboard.v1, never bearer.*');
    assert.equal(user(await ask(base, `/ws?token=${await t('q')}`)), 'q');
    assert.equal(user(await ask(base, '/ws', { cookie: `theme=dark; session_token=${await t('c')}` })), 'c');
    // Precedence.
    assert.equal(user(await ask(base, `/ws?token=${await t('q')}`, { authorization: `Bearer ${await t('h')}` })), 'h');
    assert.equal(user(await ask(base, `/ws?token=${await t('q')}`, { 'sec-websocket-protocol': `switchboard.v1, bearer.${await t('sp')}` })), 'sp');
    // Non-bearer Authorization schemes are ignored.
    assert.equal(user(await ask(base, `/ws?token=${await t('q')}`, { authorization: 'Basic dXNlcjpwYXNz' })), 'q');
  });
});

test('ambiguous or broken credentials fail instead of falling back to anonymous', async () => {
  const tok = await mint({ alg: 'HS256', key: hmacKey() });
  await withServer({ jwt: JWT }, {}, async (base) => {
    failed(await ask(base, `/ws?token=${tok}&token=${tok}`), 'INVALID_TOKEN', 4002, 401);
    failed(await ask(base, '/ws?token='), 'INVALID_TOKEN', 4002, 401);
    failed(await ask(base, '/ws', { authorization: 'Bearer ' }), 'INVALID_TOKEN', 4002, 401);
    failed(await ask(base, '/ws', { 'sec-websocket-protocol': `bearer.${tok}` }), 'UNAUTHORIZED', 4001, 401);
    failed(await ask(base, '/ws', { 'sec-websocket-protocol': `switchboard.v1, bearer.${tok}, bearer.${tok}` }), 'INVALID_TOKEN', 4002, 401);
    const bad = await ask(base, '/ws?token=not.a.jwt', { 'sec-websocket-protocol': 'switchboard.v1' });
    failed(bad, 'INVALID_TOKEN', 4002, 401);
    assert.equal(bad.subprotocol, 'switchboard.v1', 'failures still report the subprotocol to echo before closing');
    failed(await ask(base, `/ws?token=${await mint({ alg: 'HS256', key: hmacKey(), expIn: -100 })}`), 'TOKEN_EXPIRED', 4003, 401);
  });
  await withServer({}, {}, async (base) => failed(await ask(base, `/ws?token=${tok}`), 'INVALID_TOKEN', 4002, 401));
  await withServer({ jwt: JWT, sources: { query: false } }, {}, async (base) => {
    const r = await ask(base, `/ws?token=${tok}`);
    assert.ok(r.ok && r.identity.anonymous, 'disabled source is not read');
  });
});

test('origin is checked first and refused at the handshake with 403', async () => {
  const tok = await mint({ alg: 'HS256', key: hmacKey() });
  await withServer({ jwt: JWT, origins: { allow: ['https://app.example.com'] } }, {}, async (base) => {
    failed(await ask(base, `/ws?token=${tok}`, { origin: 'https://app.example.com.evil.com' }), 'ORIGIN_NOT_ALLOWED', 1008, 403, 'handshake');
    assert.equal(user(await ask(base, `/ws?token=${tok}`, { origin: 'https://app.example.com' })), 'user-1');
  });
});

test('cookie + session hook: valid, unknown, expired, failing and hanging hooks', async () => {
  const sessions = new Map([['s-ok', { userId: 'u-sess', username: 'Sam', roles: ['member'], metadata: { plan: 'pro' } }],
    ['s-old', { userId: 'u-old', expiresAt: Date.now() - 1000 }]]);
  const hooks: AuthHooks = {
    async validateSession(v) {
      if (v === 'boom') throw new Error('db down');
      if (v === 'hang') return new Promise(() => {});
      return sessions.get(v) ?? null;
    },
  };
  await withServer({ sources: { cookie: 'sid' }, hookTimeoutMs: 100 }, hooks, async (base) => {
    const r = await ask(base, '/ws', { cookie: 'sid=s-ok' });
    assert.ok(r.ok);
    if (r.ok) {
      assert.deepEqual([r.identity.userId, r.identity.username, r.identity.method, r.identity.roles, r.identity.metadata['plan']], ['u-sess', 'Sam', 'session', ['member'], 'pro']);
    }
    failed(await ask(base, '/ws', { cookie: 'sid=nope' }), 'UNAUTHORIZED', 4001, 401);
    failed(await ask(base, '/ws', { cookie: 'sid=s-old' }), 'TOKEN_EXPIRED', 4003, 401);
    failed(await ask(base, '/ws', { cookie: 'sid=boom' }), 'AUTH_UNAVAILABLE', 4092, 503);
    failed(await ask(base, '/ws', { cookie: 'sid=hang' }), 'AUTH_UNAVAILABLE', 4092, 503);
    const other = await ask(base, '/ws', { cookie: 'session_token=s-ok' });
    assert.ok(other.ok && other.identity.anonymous, 'cookie name is configurable');
  });
});

test('cookies are only trusted from an allowlisted Origin or without one (CSWSH)', async () => {
  const hooks: AuthHooks = { validateSession: (v) => (v === 's1' ? { userId: 'u1' } : null) };
  await withServer({ origins: { allow: ['https://app.example.com'] } }, hooks, async (base) => {
    assert.equal(user(await ask(base, '/ws', { cookie: 'session_token=s1', origin: 'https://app.example.com' })), 'u1');
    assert.equal(user(await ask(base, '/ws', { cookie: 'session_token=s1' })), 'u1');
  });
  await withServer({ origins: { allow: '*' } }, hooks, async (base) => {
    const r = await ask(base, '/ws', { cookie: 'session_token=s1', origin: 'https://evil.example' });
    assert.ok(r.ok && r.identity.anonymous, 'cross-site page does not get the user');
  });
  await withServer({ origins: { allow: '*' }, required: true }, hooks, async (base) => {
    const r = await ask(base, '/ws', { cookie: 'session_token=s1', origin: 'https://evil.example' });
    failed(r, 'UNAUTHORIZED', 4001, 401);
    assert.ok(!r.ok && /allowlisted Origin/.test(r.failure.message));
  });
});

test('claims map to the identity (configurable claim names, dot paths, bounded lists)', async () => {
  const auth = createAuth({ jwt: JWT, claims: { username: 'nick', roles: 'realm_access.roles', permissions: 'scope' } });
  const token = await mint({ alg: 'HS256', key: hmacKey(), sub: 'u42', claims: {
    nick: 'Neo', realm_access: { roles: ['admin', 7, 'ops'] }, scope: 'admin:broadcast chat:write',
    channels: ['team:1', 'news:*'], metadata: JSON.parse('{"tz":"UTC","__proto__":{"polluted":true}}') as Record<string, unknown>, collective: 'alpha',
  } });
  const r = await auth.verifyToken(token);
  assert.ok(r.ok);
  if (!r.ok) return;
  const id = r.identity;
  assert.equal(id.userId, 'u42');
  assert.equal(id.username, 'Neo');
  assert.deepEqual(id.roles, ['admin', 'ops']);
  assert.deepEqual(id.permissions, ['admin:broadcast', 'chat:write']);
  assert.deepEqual(id.channels, ['team:1', 'news:*']);
  assert.equal(id.metadata['tz'], 'UTC');
  assert.equal(Object.prototype.hasOwnProperty.call(id.metadata, '__proto__'), false, '__proto__ key dropped');
  assert.equal((id.metadata as Record<string, unknown>)['polluted'], undefined);
  assert.equal(id.claims['collective'], 'alpha');
  assert.ok(id.expiresAt! > Date.now() && !isExpired(id));
  assert.ok(Object.isFrozen(id));
});

test('refresh: same sub -> new expiry; other sub, expired, invalid or anonymous -> refused', async () => {
  const auth = createAuth({ jwt: JWT });
  const key = hmacKey();
  const first = await auth.verifyToken(await mint({ alg: 'HS256', key, sub: 'u1', expIn: 60 }));
  assert.ok(first.ok);
  if (!first.ok) return;
  const r = await auth.refresh(first.identity, await mint({ alg: 'HS256', key, sub: 'u1', expIn: 7200, claims: { roles: ['vip'] } }));
  assert.ok(r.ok, JSON.stringify(r));
  if (r.ok) {
    assert.ok(r.expiresAt > first.identity.expiresAt! + 3_000_000);
    assert.equal(r.identity.expiresAt, r.expiresAt);
    assert.deepEqual(r.identity.roles, ['vip']);
  }
  const other = await auth.refresh(first.identity, await mint({ alg: 'HS256', key, sub: 'u2' }));
  assert.ok(!other.ok && other.failure.code === 'INVALID_TOKEN' && /another user/.test(other.failure.message));
  const expired = await auth.refresh(first.identity, await mint({ alg: 'HS256', key, sub: 'u1', expIn: -60 }));
  assert.ok(!expired.ok && expired.failure.code === 'TOKEN_EXPIRED' && expired.failure.closeCode === 4003);
  const garbage = await auth.refresh(first.identity, 'garbage');
  assert.ok(!garbage.ok && garbage.failure.code === 'INVALID_TOKEN');
  const anon = await auth.authenticate({ headers: {} } as never, new URL('http://x/ws'));
  assert.ok(anon.ok);
  if (anon.ok) {
    const a = await auth.refresh(anon.identity, await mint({ alg: 'HS256', key, sub: 'u1' }));
    assert.ok(!a.ok && a.failure.code === 'UNAUTHORIZED');
  }
});
