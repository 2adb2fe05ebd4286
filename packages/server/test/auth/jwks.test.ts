import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportJWK, type JWK } from 'jose';
import { AuthConfigError, createJwtVerifier } from '../../src/auth/index.js';
import { mint } from './helpers.js';

const k1 = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const k2 = generateKeyPairSync('ed25519');
async function jwk(pub: KeyObject, kid: string, alg: string): Promise<JWK> { return { ...(await exportJWK(pub)), kid, alg, use: 'sig' }; }
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A real JWKS endpoint on port 0 counting its requests. */
async function jwksServer(initial: JWK[]) {
  const state = { keys: initial, requests: 0, status: 200 };
  const server = createServer((_req, res) => {
    state.requests++;
    res.writeHead(state.status, { 'content-type': 'application/json' });
    res.end(state.status === 200 ? JSON.stringify({ keys: state.keys }) : '{"error":"boom"}');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/.well-known/jwks.json`;
  return {
    state, url,
    close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}

test('JWKS file: key chosen by kid; unknown kid rejected; unreadable file is a config error', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sb-jwks-'));
  try {
    const file = join(dir, 'jwks.json');
    writeFileSync(file, JSON.stringify({ keys: [await jwk(k1.publicKey, 'k1', 'ES256'), await jwk(k2.publicKey, 'k2', 'EdDSA')] }));
    const v = createJwtVerifier({ algorithms: ['ES256', 'EdDSA'], jwksFile: file });
    const r1 = await v.verify(await mint({ alg: 'ES256', key: k1.privateKey, kid: 'k1', sub: 'a' }));
    assert.ok(r1.ok && r1.payload.sub === 'a');
    const r2 = await v.verify(await mint({ alg: 'EdDSA', key: k2.privateKey, kid: 'k2', sub: 'b' }));
    assert.ok(r2.ok && r2.payload.sub === 'b');
    const unknown = await v.verify(await mint({ alg: 'ES256', key: k1.privateKey, kid: 'nope' }));
    assert.ok(!unknown.ok && unknown.failure.code === 'INVALID_TOKEN' && unknown.failure.closeCode === 4002 && /kid/.test(unknown.failure.message));
    // kid of another key: signature does not verify.
    const wrong = await v.verify(await mint({ alg: 'EdDSA', key: generateKeyPairSync('ed25519').privateKey, kid: 'k2' }));
    assert.ok(!wrong.ok && wrong.failure.code === 'INVALID_TOKEN');
    assert.throws(() => createJwtVerifier({ algorithms: ['ES256'], jwksFile: join(dir, 'missing.json') }), AuthConfigError);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('JWKS URL: fetched once and cached; unknown kid does not refetch inside the cooldown', async () => {
  const srv = await jwksServer([await jwk(k1.publicKey, 'k1', 'ES256')]);
  try {
    const v = createJwtVerifier({ algorithms: ['ES256'], jwksUrl: srv.url, jwksCacheMaxAgeMs: 60_000, jwksCooldownMs: 60_000 });
    for (let i = 0; i < 5; i++) {
      const r = await v.verify(await mint({ alg: 'ES256', key: k1.privateKey, kid: 'k1', sub: `u${i}` }));
      assert.ok(r.ok, JSON.stringify(r));
    }
    assert.equal(srv.state.requests, 1, 'five verifications, one fetch');
    const unknown = await v.verify(await mint({ alg: 'ES256', key: k1.privateKey, kid: 'k9' }));
    assert.ok(!unknown.ok && unknown.failure.code === 'INVALID_TOKEN' && /kid/.test(unknown.failure.message));
    assert.equal(srv.state.requests, 1, 'unknown kid inside the cooldown: no refetch');
  } finally {
    await srv.close();
  }
});

test('JWKS URL: rotated key picked up after the cooldown; cache expiry refetches', async () => {
  const srv = await jwksServer([await jwk(k1.publicKey, 'k1', 'ES256')]);
  try {
    const v = createJwtVerifier({ algorithms: ['ES256', 'EdDSA'], jwksUrl: srv.url, jwksCacheMaxAgeMs: 60_000, jwksCooldownMs: 50 });
    assert.ok((await v.verify(await mint({ alg: 'ES256', key: k1.privateKey, kid: 'k1' }))).ok);
    assert.equal(srv.state.requests, 1);
    srv.state.keys = [...srv.state.keys, await jwk(k2.publicKey, 'k2', 'EdDSA')];
    await sleep(120); // deliberate: past the 50 ms cooldown (the cooldown is the behaviour; jose reads the real clock)
    const r = await v.verify(await mint({ alg: 'EdDSA', key: k2.privateKey, kid: 'k2', sub: 'rotated' }));
    assert.ok(r.ok && r.payload.sub === 'rotated', JSON.stringify(r));
    assert.equal(srv.state.requests, 2);

    const short = createJwtVerifier({ algorithms: ['ES256'], jwksUrl: srv.url, jwksCacheMaxAgeMs: 50, jwksCooldownMs: 10 });
    assert.ok((await short.verify(await mint({ alg: 'ES256', key: k1.privateKey, kid: 'k1' }))).ok);
    assert.equal(srv.state.requests, 3);
    await sleep(120); // deliberate: past the 50 ms max age (the max age is the behaviour)
    assert.ok((await short.verify(await mint({ alg: 'ES256', key: k1.privateKey, kid: 'k1' }))).ok);
    assert.equal(srv.state.requests, 4, 'stale cache refetched');
  } finally {
    await srv.close();
  }
});

test('JWKS URL failing (HTTP 500, or down) -> AUTH_UNAVAILABLE 503/4092, not a token error', async () => {
  const srv = await jwksServer([await jwk(k1.publicKey, 'k1', 'ES256')]);
  const token = await mint({ alg: 'ES256', key: k1.privateKey, kid: 'k1' });
  srv.state.status = 500;
  const v = createJwtVerifier({ algorithms: ['ES256'], jwksUrl: srv.url, jwksTimeoutMs: 2000 });
  const r = await v.verify(token);
  assert.ok(!r.ok && r.failure.code === 'AUTH_UNAVAILABLE' && r.failure.httpStatus === 503 && r.failure.closeCode === 4092, JSON.stringify(r));
  await srv.close();
  const down = createJwtVerifier({ algorithms: ['ES256'], jwksUrl: srv.url, jwksTimeoutMs: 2000 });
  const r2 = await down.verify(token);
  assert.ok(!r2.ok && r2.failure.code === 'AUTH_UNAVAILABLE', JSON.stringify(r2));
});
