/**
 * Issue 11.3: a JWKS with one key accepts tokens without `kid` (jose picks the only key that fits the
 * algorithm). That stays the default and is documented; `auth.jwt.requireKid: true` refuses kid-less tokens.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportJWK } from 'jose';
import { AuthConfigError, createAuth, createJwtVerifier, resolveAuthConfig, type JwtConfig } from '../../src/auth/index.js';
import { hmacKey, mint, SECRET } from './helpers.js';

const k1 = generateKeyPairSync('ec', { namedCurve: 'P-256' });

async function withJwks<T>(run: (file: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'sb-kid-'));
  try {
    const file = join(dir, 'jwks.json');
    writeFileSync(file, JSON.stringify({ keys: [{ ...(await exportJWK(k1.publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' }] }));
    return await run(file);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('default (requireKid false): a one-key JWKS accepts a token without kid', async () => {
  await withJwks(async (file) => {
    const v = createJwtVerifier({ algorithms: ['ES256'], jwksFile: file });
    const r = await v.verify(await mint({ alg: 'ES256', key: k1.privateKey, sub: 'no-kid' }));
    assert.ok(r.ok, 'kid-less token accepted by default');
    assert.equal(r.payload.sub, 'no-kid');
  });
});

test('requireKid: true refuses a token without kid (INVALID_TOKEN, 4002) and still accepts one with a kid', async () => {
  await withJwks(async (file) => {
    const cfg = { algorithms: ['ES256'], jwksFile: file, requireKid: true } as JwtConfig;
    const v = createJwtVerifier(cfg);
    const noKid = await v.verify(await mint({ alg: 'ES256', key: k1.privateKey, sub: 'no-kid' }));
    assert.ok(!noKid.ok, 'kid-less token refused');
    assert.equal(noKid.failure.code, 'INVALID_TOKEN');
    assert.equal(noKid.failure.closeCode, 4002);
    assert.match(noKid.failure.message, /kid/);
    const withKid = await v.verify(await mint({ alg: 'ES256', key: k1.privateKey, kid: 'k1', sub: 'kid' }));
    assert.ok(withKid.ok && withKid.payload.sub === 'kid');

    // Through the auth layer (config section) as well.
    const auth = createAuth({ jwt: cfg });
    const r = await auth.verifyToken(await mint({ alg: 'ES256', key: k1.privateKey, sub: 'no-kid' }));
    assert.ok(!r.ok && r.failure.code === 'INVALID_TOKEN');
  });
});

test('requireKid applies to every token, HMAC ones included; must be a boolean', async () => {
  const v = createJwtVerifier({ algorithms: ['HS256'], secret: SECRET, requireKid: true } as JwtConfig);
  const r = await v.verify(await mint({ alg: 'HS256', key: hmacKey() }));
  assert.ok(!r.ok && /kid/.test(r.failure.message));
  assert.ok((await v.verify(await mint({ alg: 'HS256', key: hmacKey(), kid: 'any' }))).ok);
  assert.throws(() => resolveAuthConfig({ jwt: { algorithms: ['HS256'], secret: SECRET, requireKid: 'yes' } as unknown as JwtConfig }), AuthConfigError);
});
