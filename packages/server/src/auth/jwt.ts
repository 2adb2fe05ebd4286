/**
 * JWT verification with `jose`.
 *
 * Contract of `JwtVerifier.verify(token)`: never throws; resolves `{ok:true, payload}` for a token that
 *   - has a header `alg` among the pinned `algorithms` (`none` can never be pinned),
 *   - verifies with the key of its algorithm family: HS* with `secret` only, asymmetric algorithms with the
 *     JWKS (`kid` lookup; file first, then URL) or `publicKey` only — so an HS256 token "signed" with the RSA
 *     public key is rejected. A token without `kid` goes to `publicKey` when one is set, else to the JWKS,
 *     where jose takes the one key that fits its `alg` (a one-key JWKS accepts it; several: "ambiguous");
 *     with `requireKid` a token without `kid` is refused before any key is tried,
 *   - has a numeric `exp` in the future and a non-empty string `sub`; honours `nbf`/`iat`; checks `iss`/`aud`
 *     when configured; all with `clockToleranceSec` leeway;
 * and `{ok:false, failure}` otherwise: TOKEN_EXPIRED (4003) for an expired token, INVALID_TOKEN (4002) for
 * every other token problem, AUTH_UNAVAILABLE (503/4092) when the JWKS URL cannot be fetched.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import {
  createLocalJWKSet, createRemoteJWKSet, errors, jwtVerify,
  type CryptoKey, type JSONWebKeySet, type JWTPayload, type JWTVerifyOptions, type JWSHeaderParameters, type FlattenedJWSInput,
} from 'jose';
import { AuthConfigError, isHmacAlgorithm, type JwtConfig } from './config.js';
import { authUnavailable, invalidToken, tokenExpired, type AuthFailure } from './failures.js';

export type JwtResult =
  | { ok: true; payload: JWTPayload & { sub: string; exp: number }; header: JWSHeaderParameters }
  | { ok: false; failure: AuthFailure };

export interface JwtVerifier {
  /** Verifies a compact JWS token; see the module contract. */
  verify(token: string): Promise<JwtResult>;
}

export interface JwtVerifierOptions {
  /** Tokens longer than this are refused without parsing. Default 8192. */
  maxTokenBytes?: number;
}

/** A key source (JWKS URL) failed; answered as AUTH_UNAVAILABLE, not as a bad token. */
class KeySourceError extends Error {}

/** The token's header names no `kid` while `requireKid` is on; answered as INVALID_TOKEN. */
class MissingKidError extends Error {}

type KeyGetter = (header: JWSHeaderParameters, token: FlattenedJWSInput) => Promise<KeyObject | Uint8Array | CryptoKey>;

const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

/**
 * Builds a verifier. Validates the config and loads `publicKey` / `jwksFile` synchronously; throws
 * AuthConfigError for an unreadable or invalid key. The JWKS URL is fetched lazily on first use.
 */
export function createJwtVerifier(cfg: JwtConfig, opts: JwtVerifierOptions = {}): JwtVerifier {
  const maxTokenBytes = opts.maxTokenBytes ?? 8192;
  const algorithms = [...cfg.algorithms];
  const secret = cfg.secret ? new TextEncoder().encode(cfg.secret) : null;

  let publicKey: KeyObject | null = null;
  if (cfg.publicKey) {
    try {
      publicKey = createPublicKey(cfg.publicKey);
    } catch (e) {
      throw new AuthConfigError('jwt.publicKey', `not a PEM public key or certificate (${(e as Error).message})`);
    }
  }

  let localSet: ReturnType<typeof createLocalJWKSet> | null = null;
  if (cfg.jwksFile) {
    let jwks: JSONWebKeySet;
    try {
      jwks = JSON.parse(readFileSync(cfg.jwksFile, 'utf8')) as JSONWebKeySet;
      localSet = createLocalJWKSet(jwks);
    } catch (e) {
      throw new AuthConfigError('jwt.jwksFile', `cannot load ${cfg.jwksFile}: ${(e as Error).message}`);
    }
  }

  const remoteSet = cfg.jwksUrl
    ? createRemoteJWKSet(new URL(cfg.jwksUrl), {
        cacheMaxAge: cfg.jwksCacheMaxAgeMs ?? 600_000,
        cooldownDuration: cfg.jwksCooldownMs ?? 30_000,
        timeoutDuration: cfg.jwksTimeoutMs ?? 5_000,
      })
    : null;

  const getKey: KeyGetter = async (header, token) => {
    if (cfg.requireKid === true && (typeof header.kid !== 'string' || header.kid === '')) throw new MissingKidError();
    const alg = header.alg ?? '';
    if (isHmacAlgorithm(alg)) {
      if (!secret) throw new errors.JWSSignatureVerificationFailed('no HMAC secret configured');
      return secret;
    }
    if (localSet && (header.kid !== undefined || !publicKey)) {
      try {
        return await localSet(header, token);
      } catch (e) {
        if (!(remoteSet && e instanceof errors.JWKSNoMatchingKey)) throw e;
      }
    }
    if (remoteSet && (header.kid !== undefined || !publicKey)) {
      try {
        return await remoteSet(header, token);
      } catch (e) {
        if (e instanceof errors.JWKSNoMatchingKey || e instanceof errors.JWKSMultipleMatchingKeys) throw e;
        throw new KeySourceError(e instanceof Error ? e.message : String(e));
      }
    }
    if (publicKey) return publicKey;
    throw new errors.JWKSNoMatchingKey();
  };

  const options: JWTVerifyOptions = {
    algorithms,
    requiredClaims: ['exp', 'sub'],
    clockTolerance: cfg.clockToleranceSec ?? 5,
  };
  if (cfg.issuer != null) options.issuer = cfg.issuer;
  if (cfg.audience != null) options.audience = cfg.audience;
  if (cfg.maxTokenAgeSec != null) options.maxTokenAge = cfg.maxTokenAgeSec;

  return {
    async verify(token: string): Promise<JwtResult> {
      if (typeof token !== 'string' || token.length === 0) return { ok: false, failure: invalidToken('empty token') };
      if (token.length > maxTokenBytes) return { ok: false, failure: invalidToken('token too long') };
      if (!COMPACT_JWS.test(token)) return { ok: false, failure: invalidToken('malformed token') };
      try {
        const { payload, protectedHeader } = await jwtVerify(token, getKey, options);
        if (typeof payload.sub !== 'string' || payload.sub.length === 0 || payload.sub.length > 256) {
          return { ok: false, failure: invalidToken('sub must be a non-empty string') };
        }
        if (typeof payload.exp !== 'number') return { ok: false, failure: invalidToken('exp must be a number') };
        return { ok: true, payload: payload as JWTPayload & { sub: string; exp: number }, header: protectedHeader };
      } catch (e) {
        return { ok: false, failure: mapJoseError(e) };
      }
    },
  };
}

/** Maps a jose (or key source) error to an AuthFailure. Exported for tests. */
export function mapJoseError(e: unknown): AuthFailure {
  if (e instanceof KeySourceError) return authUnavailable('JWKS unavailable');
  if (e instanceof MissingKidError) return invalidToken('token has no key id (kid); auth.jwt.requireKid is on');
  if (e instanceof errors.JWTExpired) return tokenExpired('token expired');
  if (e instanceof errors.JWTClaimValidationFailed) {
    if (e.reason === 'missing') return invalidToken(`missing ${e.claim} claim`);
    if (e.claim === 'nbf') return invalidToken('token not yet valid (nbf)');
    return invalidToken(`${e.claim} claim check failed`);
  }
  if (e instanceof errors.JOSEAlgNotAllowed) return invalidToken('algorithm not allowed');
  if (e instanceof errors.JWSSignatureVerificationFailed) return invalidToken('signature verification failed');
  if (e instanceof errors.JWKSNoMatchingKey) return invalidToken('unknown key id (kid)');
  if (e instanceof errors.JWKSMultipleMatchingKeys) return invalidToken('ambiguous key id (kid)');
  if (e instanceof errors.JWKSTimeout) return authUnavailable('JWKS fetch timed out');
  if (e instanceof errors.JOSENotSupported) return invalidToken('unsupported token');
  if (e instanceof errors.JWSInvalid || e instanceof errors.JWTInvalid) return invalidToken('malformed token');
  // Anything else (key type does not fit the algorithm, bad base64 inside, ...) is still the token's fault.
  return invalidToken('invalid token');
}
