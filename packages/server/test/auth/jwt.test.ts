import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { base64url } from 'jose';
import { AuthConfigError, createJwtVerifier, resolveAuthConfig, type JwtAlgorithm, type JwtResult } from '../../src/auth/index.js';
import { hmacKey, mint, SECRET } from './helpers.js';

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const ec256 = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const ec384 = generateKeyPairSync('ec', { namedCurve: 'P-384' });
const ec521 = generateKeyPairSync('ec', { namedCurve: 'P-521' });
const ed = generateKeyPairSync('ed25519');
const pem = (k: KeyObject) => k.export({ type: 'spki', format: 'pem' }) as string;
const RSA_PEM = pem(rsa.publicKey);

const asym: Record<string, { privateKey: KeyObject; publicKey: KeyObject }> = {
  RS256: rsa, RS384: rsa, RS512: rsa, PS256: rsa, PS384: rsa, PS512: rsa,
  ES256: ec256, ES384: ec384, ES512: ec521, EdDSA: ed, Ed25519: ed,
};

function assertFail(r: JwtResult, code: string, closeCode: number, msg?: RegExp): void {
  assert.equal(r.ok, false, 'expected a failure');
  if (r.ok) return;
  assert.equal(r.failure.code, code);
  assert.equal(r.failure.closeCode, closeCode);
  assert.equal(r.failure.httpStatus, 401);
  if (msg) assert.match(r.failure.message, msg);
}

test('every supported algorithm verifies a token minted with jose', async () => {
  for (const alg of ['HS256', 'HS384', 'HS512'] as JwtAlgorithm[]) {
    const v = createJwtVerifier({ algorithms: [alg], secret: SECRET });
    const r = await v.verify(await mint({ alg, key: hmacKey(), sub: `u-${alg}` }));
    assert.ok(r.ok, `${alg}: ${JSON.stringify(r)}`);
    assert.equal(r.payload.sub, `u-${alg}`);
  }
  for (const [alg, kp] of Object.entries(asym)) {
    const v = createJwtVerifier({ algorithms: [alg as JwtAlgorithm], publicKey: pem(kp.publicKey) });
    const r = await v.verify(await mint({ alg, key: kp.privateKey, sub: `u-${alg}` }));
    assert.ok(r.ok, `${alg}: ${JSON.stringify(r)}`);
    assert.equal(r.header.alg, alg);
  }
});

test('alg "none" is rejected and cannot be configured', async () => {
  const v = createJwtVerifier({ algorithms: ['HS256'], secret: SECRET });
  const enc = (o: object) => base64url.encode(JSON.stringify(o));
  const exp = Math.floor(Date.now() / 1000) + 3600;
  assertFail(await v.verify(`${enc({ alg: 'none' })}.${enc({ sub: 'admin', exp })}.`), 'INVALID_TOKEN', 4002);
  assertFail(await v.verify(`${enc({ alg: 'none', typ: 'JWT' })}.${enc({ sub: 'admin', exp })}.c2ln`), 'INVALID_TOKEN', 4002);
  assert.throws(() => resolveAuthConfig({ jwt: { algorithms: ['none' as JwtAlgorithm], secret: SECRET } }), AuthConfigError);
});

test('HS256 signed with the RSA public key (algorithm confusion) is rejected', async () => {
  const forged = await mint({ alg: 'HS256', key: new TextEncoder().encode(RSA_PEM), sub: 'admin' });
  // RS-only config: HS256 is not pinned.
  assertFail(await createJwtVerifier({ algorithms: ['RS256'], publicKey: RSA_PEM }).verify(forged), 'INVALID_TOKEN', 4002, /algorithm not allowed/);
  // Mixed config: HS* verifies with the secret only, never with the public key.
  assertFail(await createJwtVerifier({ algorithms: ['RS256', 'HS256'], publicKey: RSA_PEM, secret: SECRET }).verify(forged), 'INVALID_TOKEN', 4002, /signature/);
  // Putting the PEM into `secret` is refused at start-up.
  assert.throws(() => resolveAuthConfig({ jwt: { algorithms: ['HS256'], secret: RSA_PEM } }), /PEM/);
});

test('a token whose alg does not fit the configured key type fails cleanly', async () => {
  const v = createJwtVerifier({ algorithms: ['RS256', 'ES256'], publicKey: RSA_PEM });
  assertFail(await v.verify(await mint({ alg: 'ES256', key: ec256.privateKey })), 'INVALID_TOKEN', 4002);
});

test('expired token -> TOKEN_EXPIRED 4003; clock tolerance is honoured', async () => {
  const key = hmacKey();
  const v = createJwtVerifier({ algorithms: ['HS256'], secret: SECRET, clockToleranceSec: 5 });
  assertFail(await v.verify(await mint({ alg: 'HS256', key, expIn: -60 })), 'TOKEN_EXPIRED', 4003, /expired/);
  const justExpired = await mint({ alg: 'HS256', key, expIn: -2 });
  assert.ok((await v.verify(justExpired)).ok, 'within 5 s tolerance');
  const strict = createJwtVerifier({ algorithms: ['HS256'], secret: SECRET, clockToleranceSec: 0 });
  assertFail(await strict.verify(justExpired), 'TOKEN_EXPIRED', 4003);
});

test('missing exp or sub is rejected', async () => {
  const v = createJwtVerifier({ algorithms: ['HS256'], secret: SECRET });
  assertFail(await v.verify(await mint({ alg: 'HS256', key: hmacKey(), expIn: null })), 'INVALID_TOKEN', 4002, /missing exp/);
  assertFail(await v.verify(await mint({ alg: 'HS256', key: hmacKey(), sub: null })), 'INVALID_TOKEN', 4002, /missing sub/);
  assertFail(await v.verify(await mint({ alg: 'HS256', key: hmacKey(), expIn: null, claims: { exp: 'tomorrow' as unknown as number } })), 'INVALID_TOKEN', 4002);
});

test('iss and aud are checked when configured', async () => {
  const key = hmacKey();
  const v = createJwtVerifier({ algorithms: ['HS256'], secret: SECRET, issuer: 'https://idp.example', audience: ['switchboard', 'other'] });
  assert.ok((await v.verify(await mint({ alg: 'HS256', key, iss: 'https://idp.example', aud: 'switchboard' }))).ok);
  assertFail(await v.verify(await mint({ alg: 'HS256', key, iss: 'https://evil.example', aud: 'switchboard' })), 'INVALID_TOKEN', 4002, /iss/);
  assertFail(await v.verify(await mint({ alg: 'HS256', key, iss: 'https://idp.example', aud: 'someone-else' })), 'INVALID_TOKEN', 4002, /aud/);
  assertFail(await v.verify(await mint({ alg: 'HS256', key, aud: 'switchboard' })), 'INVALID_TOKEN', 4002, /iss/);
  // Not configured: not checked.
  const loose = createJwtVerifier({ algorithms: ['HS256'], secret: SECRET });
  assert.ok((await loose.verify(await mint({ alg: 'HS256', key, iss: 'anyone', aud: 'anything' }))).ok);
});

test('bad signature is rejected', async () => {
  const v = createJwtVerifier({ algorithms: ['RS256'], publicKey: RSA_PEM });
  const other = generateKeyPairSync('rsa', { modulusLength: 2048 });
  assertFail(await v.verify(await mint({ alg: 'RS256', key: other.privateKey })), 'INVALID_TOKEN', 4002, /signature/);
  const good = await mint({ alg: 'RS256', key: rsa.privateKey });
  const [h, p, s] = good.split('.') as [string, string, string];
  const flipped = s.slice(0, 10) + (s[10] === 'A' ? 'B' : 'A') + s.slice(11);
  assertFail(await v.verify(`${h}.${p}.${flipped}`), 'INVALID_TOKEN', 4002, /signature/);
  // Payload swapped under a valid signature.
  const evil = base64url.encode(JSON.stringify({ sub: 'admin', exp: Math.floor(Date.now() / 1000) + 3600 }));
  assertFail(await v.verify(`${h}.${evil}.${s}`), 'INVALID_TOKEN', 4002, /signature/);
  assert.ok((await v.verify(good)).ok);
});

test('nbf in the future is rejected', async () => {
  const v = createJwtVerifier({ algorithms: ['HS256'], secret: SECRET });
  assertFail(await v.verify(await mint({ alg: 'HS256', key: hmacKey(), nbfIn: 300 })), 'INVALID_TOKEN', 4002, /nbf/);
  assert.ok((await v.verify(await mint({ alg: 'HS256', key: hmacKey(), nbfIn: 2 }))).ok, 'nbf within tolerance');
});

test('malformed tokens are rejected with INVALID_TOKEN, never a crash', async () => {
  const v = createJwtVerifier({ algorithms: ['HS256', 'RS256'], secret: SECRET, publicKey: RSA_PEM }, { maxTokenBytes: 4096 });
  const enc = (s: string) => Buffer.from(s).toString('base64url');
  const cases = [
    '', 'abc', 'a.b', 'a.b.c.d', '...', 'eyJ.eyJ.x', '!!!.@@@.###',
    `${enc('[]')}.${enc('{}')}.sig`, `${enc('{"alg":"HS256"}')}.${enc('not json')}.sig`,
    `${enc('{"alg":"HS256"}')}.${enc('[1,2]')}.sig`, `${enc('{"alg":"HS256","crit":["x"]}')}.${enc('{}')}.sig`,
    `${enc('{"alg":"HS256"}')}.${'A'.repeat(5000)}.sig`,
    null as unknown as string, 42 as unknown as string,
  ];
  for (const t of cases) assertFail(await v.verify(t), 'INVALID_TOKEN', 4002);
});
