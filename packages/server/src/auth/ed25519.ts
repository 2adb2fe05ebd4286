/**
 * Ed25519 challenge-response authentication (seed 001 "Trading Arena"), with node:crypto only.
 *
 * Flow (the transport owns the socket and the timer; ed25519-handshake.ts speaks the frames for it):
 *   1. `issueChallenge(collectiveId)` -> `{ challenge, nonce, expiresAt }`; the server sends it in an
 *      `auth_challenge` frame and arms ONE deadline at `expiresAt` (its own timer wheel / sweep).
 *   2. The client signs the UTF-8 bytes of `challenge` with its private key and answers
 *      `auth_response {nonce, signature}` (signature: 64 bytes, base64 or base64url).
 *   3. `verifyResponse({collectiveId, nonce, signature})` -> identity, or UNAUTHORIZED (4001) for an
 *      unknown/used nonce, another collective, an expired challenge, an unknown collective or a bad signature.
 *      It checks that the nonce is pending, not which connection it was issued to: the caller keeps the nonce
 *      it issued on each connection and verifies with that one (ed25519-handshake.ts refuses an answer naming
 *      another nonce), so a nonce issued to one socket never authenticates another.
 *   4. No answer by the deadline: the transport closes with `authTimeout()` (4004) and calls `cancel(nonce)`.
 *
 * Challenge string (exact format, fields separated by "|"):
 *   `<domain>|<collectiveId>|<nonce: 64 lower-case hex chars>|<expiresAt: ISO-8601 UTC with ms>`
 *   e.g. `switchboard-ed25519-auth-v1|alpha|9f2c…e1|2026-11-22T10:01:00.000Z`
 * A challenge is single-use (consumed by the first answer, right or wrong), expires after `challengeTtlMs`
 * (60 s default), and is bound to the domain string and the collective id, so a signature made for another
 * service (other domain) or another collective never verifies here.
 *
 * Public keys are refused at registration when they are not 32 bytes, not a canonical encoding (y >= p, or
 * x = 0 with the sign bit set), not on the curve, or one of the small-order points (libsodium's blocklist,
 * sign bit ignored; includes the identity point).
 */
import { createPublicKey, randomBytes, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { AuthConfigError, type Ed25519Config, type Ed25519KeyEntry } from './config.js';
import { authTimeout, authUnavailable, tooManyPending, unauthorized, type AuthFailure } from './failures.js';
import { withTimeout, type AuthHooks } from './hooks.js';
import { identityFromInit, type Identity } from './identity.js';

export type Ed25519KeyErrorCode = 'INVALID_PUBLIC_KEY' | 'NON_CANONICAL_PUBLIC_KEY' | 'SMALL_ORDER_PUBLIC_KEY';

/** A public key refused at registration. */
export class Ed25519KeyError extends Error {
  constructor(readonly code: Ed25519KeyErrorCode, message: string) {
    super(message);
    this.name = 'Ed25519KeyError';
  }
}

const P = (1n << 255n) - 19n;
const D = 37095705934669439343138083508754565189542113879843219016388785533085940283555n;

function hex(s: string): Uint8Array { return Uint8Array.from(Buffer.from(s, 'hex')); }
/** Small-order point encodings (libsodium ge25519_has_small_order), compared with the sign bit masked. */
const SMALL_ORDER: readonly Uint8Array[] = [
  hex('0000000000000000000000000000000000000000000000000000000000000000'), // y=0, order 4
  hex('0100000000000000000000000000000000000000000000000000000000000000'), // y=1, identity (order 1)
  hex('26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05'), // order 8
  hex('c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a'), // order 8
  hex('ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f'), // y=p-1, order 2
  hex('edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f'), // y=p (non-canonical 0), order 4
  hex('eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f'), // y=p+1 (non-canonical 1), order 1
];

function modPow(b: bigint, e: bigint, m: bigint): bigint {
  let r = 1n;
  b %= m;
  while (e > 0n) {
    if (e & 1n) r = (r * b) % m;
    b = (b * b) % m;
    e >>= 1n;
  }
  return r;
}

/** Returns why a raw 32-byte Ed25519 public key is unacceptable, or null when it is fine. */
export function checkEd25519PublicKey(raw: Uint8Array): { code: Ed25519KeyErrorCode; reason: string } | null {
  if (raw.length !== 32) return { code: 'INVALID_PUBLIC_KEY', reason: `public key must be 32 bytes, got ${raw.length}` };
  for (const bad of SMALL_ORDER) {
    let diff = 0;
    for (let i = 0; i < 31; i++) diff |= raw[i]! ^ bad[i]!;
    diff |= (raw[31]! & 0x7f) ^ bad[31]!;
    if (diff === 0) return { code: 'SMALL_ORDER_PUBLIC_KEY', reason: 'public key is a small-order point' };
  }
  let y = 0n;
  for (let i = 31; i >= 0; i--) y = (y << 8n) | BigInt(i === 31 ? raw[i]! & 0x7f : raw[i]!);
  if (y >= P) return { code: 'NON_CANONICAL_PUBLIC_KEY', reason: 'public key encoding is not canonical (y >= p)' };
  const y2 = (y * y) % P;
  const u = (y2 - 1n + P) % P;
  const v = (D * y2 + 1n) % P;
  const x2 = (u * modPow(v, P - 2n, P)) % P;
  if (x2 === 0n) {
    if (raw[31]! & 0x80) return { code: 'NON_CANONICAL_PUBLIC_KEY', reason: 'public key encodes x = 0 with the sign bit set' };
  } else if (modPow(x2, (P - 1n) / 2n, P) !== 1n) {
    return { code: 'INVALID_PUBLIC_KEY', reason: 'public key is not a point on the curve' };
  }
  return null;
}

/**
 * Decodes a public key given as PEM (SPKI), 64 hex chars, or base64/base64url of the raw 32 bytes.
 * Throws Ed25519KeyError when it cannot be decoded.
 */
export function decodeEd25519PublicKey(input: string | Uint8Array): Uint8Array {
  if (input instanceof Uint8Array) return Uint8Array.from(input);
  const s = input.trim();
  if (s.startsWith('-----BEGIN')) {
    let k: KeyObject;
    try { k = createPublicKey(s); } catch { throw new Ed25519KeyError('INVALID_PUBLIC_KEY', 'not a PEM public key'); }
    if (k.asymmetricKeyType !== 'ed25519') throw new Ed25519KeyError('INVALID_PUBLIC_KEY', `PEM key is ${k.asymmetricKeyType}, not ed25519`);
    return Uint8Array.from(Buffer.from(k.export({ format: 'jwk' }).x as string, 'base64url'));
  }
  if (/^[0-9a-fA-F]{64}$/.test(s)) return Uint8Array.from(Buffer.from(s, 'hex'));
  if (/^[A-Za-z0-9+/_-]{43}={0,1}$/.test(s)) return Uint8Array.from(Buffer.from(s.replace(/=+$/, ''), 'base64url'));
  throw new Ed25519KeyError('INVALID_PUBLIC_KEY', 'public key must be PEM, 64 hex chars or base64 of 32 bytes');
}

interface RegisteredKey {
  key: KeyObject;
  username: string | null;
  roles: string[];
  permissions: string[];
}

/** A key with optional roles (config entry, `register` argument or hook answer). */
export interface KeyEntryInput extends Omit<Ed25519KeyEntry, 'publicKey'> { publicKey: string | Uint8Array }

const COLLECTIVE_ID = /^[A-Za-z0-9._:@-]{1,128}$/;

/** Validates and imports a key; throws Ed25519KeyError. */
function importKey(input: string | Uint8Array): KeyObject {
  const raw = decodeEd25519PublicKey(input);
  const bad = checkEd25519PublicKey(raw);
  if (bad) throw new Ed25519KeyError(bad.code, bad.reason);
  return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(raw).toString('base64url') }, format: 'jwk' });
}

/** Collective id -> public key (and optional roles), filled from config and/or `register`. */
export class Ed25519KeyRegistry {
  private readonly keys = new Map<string, RegisteredKey>();

  /** Registers (or replaces) a key. Throws Ed25519KeyError for a refused key, TypeError for a bad id. */
  register(collectiveId: string, key: string | Uint8Array | KeyEntryInput): void {
    if (!COLLECTIVE_ID.test(collectiveId)) throw new TypeError(`invalid collective id ${JSON.stringify(collectiveId)}`);
    const entry: KeyEntryInput = typeof key === 'object' && !(key instanceof Uint8Array) ? key : { publicKey: key };
    this.keys.set(collectiveId, {
      key: importKey(entry.publicKey),
      username: entry.username ?? null,
      roles: [...(entry.roles ?? [])],
      permissions: [...(entry.permissions ?? [])],
    });
  }

  unregister(collectiveId: string): boolean { return this.keys.delete(collectiveId); }
  get(collectiveId: string): RegisteredKey | undefined { return this.keys.get(collectiveId); }
  get size(): number { return this.keys.size; }

  /** Builds a registry from `ed25519.keys` and `ed25519.keysFile`; a refused key is an AuthConfigError. */
  static fromConfig(cfg: Ed25519Config): Ed25519KeyRegistry {
    const reg = new Ed25519KeyRegistry();
    const load = (keys: Record<string, string | Ed25519KeyEntry>, where: string) => {
      for (const [id, k] of Object.entries(keys)) {
        try { reg.register(id, k); } catch (e) { throw new AuthConfigError(`${where}.${id}`, (e as Error).message); }
      }
    };
    if (cfg.keysFile) {
      let parsed: unknown;
      try { parsed = JSON.parse(readFileSync(cfg.keysFile, 'utf8')); } catch (e) {
        throw new AuthConfigError('ed25519.keysFile', `cannot load ${cfg.keysFile}: ${(e as Error).message}`);
      }
      if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new AuthConfigError('ed25519.keysFile', 'must hold a JSON object');
      load(parsed as Record<string, string | Ed25519KeyEntry>, 'ed25519.keysFile');
    }
    load(cfg.keys, 'ed25519.keys');
    return reg;
  }
}

export interface Ed25519Challenge {
  collectiveId: string;
  nonce: string;
  /** The exact string to sign. */
  challenge: string;
  /** ms since epoch; the transport's deadline for the answer. */
  expiresAt: number;
}

export interface Ed25519Response {
  /** The collective the connection claims (e.g. from the `/ws/{collective_id}` path). */
  collectiveId: string;
  nonce: string;
  /** 64-byte signature, base64 or base64url. */
  signature: string;
}

export type Ed25519Result = { ok: true; identity: Identity } | { ok: false; failure: AuthFailure };

export interface Ed25519AuthenticatorOptions {
  registry?: Ed25519KeyRegistry;
  hooks?: Pick<AuthHooks, 'resolveEd25519Key'>;
  hookTimeoutMs?: number;
  /** Clock (ms); tests may inject one. Default Date.now. */
  now?: () => number;
}

/** Issues and verifies challenges. All state is one bounded Map of pending challenges (no timers). */
export class Ed25519Authenticator {
  readonly registry: Ed25519KeyRegistry;
  private readonly pending = new Map<string, { collectiveId: string; challenge: string; expiresAt: number }>();
  private readonly now: () => number;

  constructor(private readonly cfg: Ed25519Config, private readonly opts: Ed25519AuthenticatorOptions = {}) {
    this.registry = opts.registry ?? Ed25519KeyRegistry.fromConfig(cfg);
    this.now = opts.now ?? Date.now;
  }

  /** Number of outstanding challenges. */
  get pendingCount(): number { return this.pending.size; }

  /**
   * Issues a challenge for `collectiveId`. Unknown collectives get one too (and fail at verification), so
   * the answer does not reveal which collectives exist. Fails with 4001 for a malformed id and 4022 when
   * `maxPendingChallenges` are outstanding.
   */
  issueChallenge(collectiveId: string): { ok: true; challenge: Ed25519Challenge } | { ok: false; failure: AuthFailure } {
    if (typeof collectiveId !== 'string' || !COLLECTIVE_ID.test(collectiveId)) return { ok: false, failure: unauthorized('invalid collective id') };
    const now = this.now();
    this.sweep(now);
    if (this.pending.size >= this.cfg.maxPendingChallenges) return { ok: false, failure: tooManyPending() };
    const nonce = randomBytes(32).toString('hex');
    const expiresAt = now + this.cfg.challengeTtlMs;
    const challenge = `${this.cfg.domain}|${collectiveId}|${nonce}|${new Date(expiresAt).toISOString()}`;
    this.pending.set(nonce, { collectiveId, challenge, expiresAt });
    return { ok: true, challenge: { collectiveId, nonce, challenge, expiresAt } };
  }

  /** Forgets a challenge (connection closed or timed out). */
  cancel(nonce: string): void { this.pending.delete(nonce); }

  /** The failure to close with when the deadline passes without an answer (4004). */
  timeoutFailure(): AuthFailure { return authTimeout('no challenge response in time'); }

  /** Verifies an answer; consumes the challenge whatever the outcome. Never throws. */
  async verifyResponse(res: Ed25519Response): Promise<Ed25519Result> {
    const nonce = typeof res?.nonce === 'string' ? res.nonce : '';
    const entry = /^[0-9a-f]{64}$/.test(nonce) ? this.pending.get(nonce) : undefined;
    if (!entry) return { ok: false, failure: unauthorized('unknown or already used challenge') };
    this.pending.delete(nonce);
    if (entry.collectiveId !== res.collectiveId) return { ok: false, failure: unauthorized('challenge was issued for another collective') };
    if (this.now() > entry.expiresAt) return { ok: false, failure: unauthorized('challenge expired') };
    const sig = typeof res.signature === 'string' && /^[A-Za-z0-9+/_-]{86}(==)?$/.test(res.signature)
      ? Buffer.from(res.signature.replace(/=+$/, ''), 'base64url') : null;
    if (!sig || sig.length !== 64) return { ok: false, failure: unauthorized('malformed signature') };

    let found: RegisteredKey | null;
    try {
      found = await this.lookup(entry.collectiveId);
    } catch (e) {
      if (e instanceof Ed25519KeyError) return { ok: false, failure: unauthorized(`registered key refused: ${e.code}`) };
      return { ok: false, failure: authUnavailable('key lookup failed') };
    }
    if (!found) return { ok: false, failure: unauthorized('unknown collective') };
    let good = false;
    try { good = cryptoVerify(null, Buffer.from(entry.challenge, 'utf8'), found.key, sig); } catch { good = false; }
    if (!good) return { ok: false, failure: unauthorized('signature verification failed') };
    return {
      ok: true,
      identity: identityFromInit({
        userId: entry.collectiveId,
        username: found.username ?? entry.collectiveId,
        roles: found.roles,
        permissions: found.permissions,
        claims: { sub: entry.collectiveId, collective: entry.collectiveId },
        expiresAt: null,
      }, 'ed25519'),
    };
  }

  private async lookup(collectiveId: string): Promise<RegisteredKey | null> {
    const known = this.registry.get(collectiveId);
    if (known) return known;
    const hook = this.opts.hooks?.resolveEd25519Key;
    if (!hook) return null;
    const got = await withTimeout('resolveEd25519Key', this.opts.hookTimeoutMs ?? 5000, () => hook(collectiveId));
    if (got == null) return null;
    const entry: KeyEntryInput = typeof got === 'object' && !(got instanceof Uint8Array) ? got : { publicKey: got };
    return {
      key: importKey(entry.publicKey),
      username: entry.username ?? null,
      roles: [...(entry.roles ?? [])],
      permissions: [...(entry.permissions ?? [])],
    };
  }

  /** Drops expired challenges from the front (insertion order == expiry order: the TTL is constant). */
  private sweep(now: number): void {
    for (const [nonce, e] of this.pending) {
      if (e.expiresAt >= now) break;
      this.pending.delete(nonce);
    }
  }
}
