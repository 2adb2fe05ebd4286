import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import {
  AuthConfigError, checkEd25519PublicKey, defaultAuthConfig, Ed25519Authenticator, Ed25519KeyError, Ed25519KeyRegistry,
  type Ed25519Config,
} from '../../src/auth/index.js';

function keypair() {
  const kp = generateKeyPairSync('ed25519');
  const raw = Buffer.from(kp.publicKey.export({ format: 'jwk' }).x as string, 'base64url');
  return { ...kp, raw, b64: raw.toString('base64'), hex: raw.toString('hex'), pem: kp.publicKey.export({ type: 'spki', format: 'pem' }) as string };
}
const alpha = keypair();
const beta = keypair();

function cfg(over: Partial<Ed25519Config> = {}): Ed25519Config {
  return { ...defaultAuthConfig().ed25519, keys: { alpha: alpha.b64, beta: { publicKey: beta.pem, roles: ['trader'] } }, ...over };
}
const signB64 = (s: string, k: KeyObject) => sign(null, Buffer.from(s, 'utf8'), k).toString('base64');

function issue(a: Ed25519Authenticator, id: string) {
  const r = a.issueChallenge(id);
  assert.ok(r.ok, JSON.stringify(r));
  return r.challenge;
}
function fails(r: { ok: boolean; failure?: { code: string; closeCode: number; message: string } }, closeCode: number, msg: RegExp) {
  assert.equal(r.ok, false);
  assert.equal(r.failure!.closeCode, closeCode);
  assert.match(r.failure!.message, msg);
}

test('happy path: challenge format, signature verified, identity from the registry', async () => {
  let now = 1_800_000_000_000;
  const a = new Ed25519Authenticator(cfg(), { now: () => now });
  const c = issue(a, 'alpha');
  assert.match(c.challenge, /^switchboard-ed25519-auth-v1\|alpha\|[0-9a-f]{64}\|2027-01-15T08:01:00\.000Z$/);
  assert.equal(c.expiresAt, now + 60_000);
  assert.equal(c.challenge.split('|')[2], c.nonce);
  now += 1000;
  const r = await a.verifyResponse({ collectiveId: 'alpha', nonce: c.nonce, signature: signB64(c.challenge, alpha.privateKey) });
  assert.ok(r.ok, JSON.stringify(r));
  if (r.ok) {
    assert.deepEqual([r.identity.userId, r.identity.method, r.identity.anonymous, r.identity.claims['collective']], ['alpha', 'ed25519', false, 'alpha']);
  }
  // PEM-registered key with roles; base64url signature accepted.
  const c2 = issue(a, 'beta');
  const r2 = await a.verifyResponse({ collectiveId: 'beta', nonce: c2.nonce, signature: sign(null, Buffer.from(c2.challenge), beta.privateKey).toString('base64url') });
  assert.ok(r2.ok && r2.identity.roles.includes('trader'));
  assert.equal(a.pendingCount, 0);
});

test('wrong key, replay, malformed signature -> 4001; a challenge allows one attempt', async () => {
  const a = new Ed25519Authenticator(cfg());
  const c = issue(a, 'alpha');
  fails(await a.verifyResponse({ collectiveId: 'alpha', nonce: c.nonce, signature: signB64(c.challenge, beta.privateKey) }), 4001, /signature verification failed/);
  // The right signature after a wrong one: the challenge is gone.
  fails(await a.verifyResponse({ collectiveId: 'alpha', nonce: c.nonce, signature: signB64(c.challenge, alpha.privateKey) }), 4001, /already used/);

  const c2 = issue(a, 'alpha');
  const good = { collectiveId: 'alpha', nonce: c2.nonce, signature: signB64(c2.challenge, alpha.privateKey) };
  assert.ok((await a.verifyResponse(good)).ok);
  fails(await a.verifyResponse(good), 4001, /already used/);

  // Malleated signature (S + L, same R) is refused: node:crypto rejects non-canonical S.
  const c5 = issue(a, 'alpha');
  const sig = sign(null, Buffer.from(c5.challenge), alpha.privateKey);
  const L = (1n << 252n) + 27742317777372353535851937790883648493n;
  let S = 0n;
  for (let i = 63; i >= 32; i--) S = (S << 8n) | BigInt(sig[i]!);
  S += L;
  for (let i = 32; i < 64; i++) { sig[i] = Number(S & 255n); S >>= 8n; }
  fails(await a.verifyResponse({ collectiveId: 'alpha', nonce: c5.nonce, signature: sig.toString('base64') }), 4001, /signature verification failed/);

  const c3 = issue(a, 'alpha');
  fails(await a.verifyResponse({ collectiveId: 'alpha', nonce: c3.nonce, signature: 'not base64!' }), 4001, /malformed signature/);
  fails(await a.verifyResponse({ collectiveId: 'alpha', nonce: 'zz', signature: 'x' }), 4001, /unknown/);
  fails(await a.verifyResponse(null as never), 4001, /unknown/);
  // Signature over another domain's challenge string never verifies here.
  const c4 = issue(a, 'alpha');
  const foreign = c4.challenge.replace('switchboard-ed25519-auth-v1', 'other-service-v1');
  fails(await a.verifyResponse({ collectiveId: 'alpha', nonce: c4.nonce, signature: signB64(foreign, alpha.privateKey) }), 4001, /signature/);
});

test('expired challenge -> 4001; no answer -> the caller closes with 4004 at expiresAt', async () => {
  let now = 1_000_000;
  const a = new Ed25519Authenticator(cfg({ challengeTtlMs: 60_000 }), { now: () => now });
  const c = issue(a, 'alpha');
  now += 60_001;
  fails(await a.verifyResponse({ collectiveId: 'alpha', nonce: c.nonce, signature: signB64(c.challenge, alpha.privateKey) }), 4001, /expired/);
  const t = a.timeoutFailure();
  assert.deepEqual([t.code, t.closeCode], ['TIMEOUT', 4004]);
  const c2 = issue(a, 'alpha');
  assert.equal(c2.expiresAt, now + 60_000);
  a.cancel(c2.nonce);
  assert.equal(a.pendingCount, 0);
});

test('challenge bound to its collective: answering as another collective -> 4001', async () => {
  const a = new Ed25519Authenticator(cfg());
  const c = issue(a, 'alpha');
  fails(await a.verifyResponse({ collectiveId: 'beta', nonce: c.nonce, signature: signB64(c.challenge, beta.privateKey) }), 4001, /another collective/);
  const c2 = issue(a, 'ghost');
  fails(await a.verifyResponse({ collectiveId: 'ghost', nonce: c2.nonce, signature: signB64(c2.challenge, alpha.privateKey) }), 4001, /unknown collective/);
  const bad = a.issueChallenge('bad|id');
  assert.ok(!bad.ok && bad.failure.closeCode === 4001);
});

test('pending challenges are bounded (4022) and expired ones are swept', () => {
  let now = 0;
  const a = new Ed25519Authenticator(cfg({ maxPendingChallenges: 3, challengeTtlMs: 1000 }), { now: () => now });
  for (let i = 0; i < 3; i++) issue(a, 'alpha');
  const full = a.issueChallenge('alpha');
  assert.ok(!full.ok && full.failure.closeCode === 4022 && full.failure.code === 'TOO_MANY_CONNECTIONS');
  now = 1001;
  issue(a, 'alpha');
  assert.equal(a.pendingCount, 1);
});

test('small-order, identity, non-canonical and off-curve public keys are refused at registration', () => {
  const hex = (s: string) => Buffer.from(s, 'hex');
  const smallOrder = [
    '0000000000000000000000000000000000000000000000000000000000000000',
    '0100000000000000000000000000000000000000000000000000000000000000', // identity
    '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05',
    'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a',
    'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
    'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
    'eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  ];
  for (const s of smallOrder) {
    const raw = hex(s);
    assert.equal(checkEd25519PublicKey(raw)?.code, 'SMALL_ORDER_PUBLIC_KEY', s);
    raw[31] = raw[31]! | 0x80; // sign-bit variant
    assert.equal(checkEd25519PublicKey(raw)?.code, 'SMALL_ORDER_PUBLIC_KEY', `${s} with sign bit`);
  }
  assert.equal(checkEd25519PublicKey(hex('f0ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f'))?.code, 'NON_CANONICAL_PUBLIC_KEY');
  assert.equal(checkEd25519PublicKey(hex('0200000000000000000000000000000000000000000000000000000000000000'))?.code, 'INVALID_PUBLIC_KEY'); // y=2 is not on the curve
  assert.equal(checkEd25519PublicKey(hex('00'))?.code, 'INVALID_PUBLIC_KEY');
  for (let i = 0; i < 20; i++) assert.equal(checkEd25519PublicKey(keypair().raw), null, 'real keys pass');

  const reg = new Ed25519KeyRegistry();
  assert.throws(() => reg.register('evil', '0100000000000000000000000000000000000000000000000000000000000000'), (e: unknown) => e instanceof Ed25519KeyError && e.code === 'SMALL_ORDER_PUBLIC_KEY');
  assert.throws(() => reg.register('evil', 'bm90IGEga2V5'), Ed25519KeyError);
  assert.throws(() => reg.register('evil', generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' }) as string), /not ed25519/);
  reg.register('ok', alpha.hex);
  assert.equal(reg.size, 1);
  assert.throws(() => new Ed25519Authenticator(cfg({ keys: { evil: Buffer.alloc(32).toString('base64') } })), AuthConfigError);
});

test('resolveEd25519Key hook: used for unknown collectives, its keys are checked too, failures fail closed', async () => {
  const a = new Ed25519Authenticator(cfg({ keys: {} }), {
    hookTimeoutMs: 100,
    hooks: {
      async resolveEd25519Key(id) {
        if (id === 'gamma') return { publicKey: alpha.raw, roles: ['viewer'] };
        if (id === 'weak') return Buffer.alloc(32);
        if (id === 'down') throw new Error('db down');
        if (id === 'slow') return new Promise(() => {});
        return null;
      },
    },
  });
  const run = async (id: string) => {
    const c = issue(a, id);
    return a.verifyResponse({ collectiveId: id, nonce: c.nonce, signature: signB64(c.challenge, alpha.privateKey) });
  };
  const ok = await run('gamma');
  assert.ok(ok.ok && ok.identity.userId === 'gamma' && ok.identity.roles.includes('viewer'));
  fails(await run('weak'), 4001, /SMALL_ORDER/);
  fails(await run('nobody'), 4001, /unknown collective/);
  const down = await run('down');
  assert.ok(!down.ok && down.failure.code === 'AUTH_UNAVAILABLE');
  const slow = await run('slow');
  assert.ok(!slow.ok && slow.failure.code === 'AUTH_UNAVAILABLE');
});
