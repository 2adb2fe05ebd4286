/**
 * The auth layer's entry point: one object built from the `auth` config section and the hooks.
 *
 *   const auth = createAuth(config.auth, hooks);
 *   // at the upgrade / SSE request:
 *   const r = await auth.authenticate(req, url, { required });
 *   // r.ok: accept with r.identity, echo r.subprotocol (if not null)
 *   // !r.ok: r.failure.rejectAt === 'handshake' -> HTTP r.failure.httpStatus
 *   //        else accept (still echoing r.subprotocol) and close with r.failure.closeCode
 *   // later: auth.channels.check(identity, 'publish', channel), auth.refresh(identity, token),
 *   //        auth.ed25519.issueChallenge(collectiveId) / verifyResponse(...)
 *
 * `authenticate` never throws and never hangs longer than `hookTimeoutMs` (+ the JWKS fetch timeout).
 */
import type { IncomingMessage } from 'node:http';
import type { CredentialSource } from '../core/ports/handshake.js';
import { createChannelAuthorizer, type ChannelAuthorizer } from './channel-rules.js';
import { AuthConfigError, resolveAuthConfig, type AuthConfig, type AuthConfigInput, type TokenSourcesConfig } from './config.js';
import { Ed25519Authenticator } from './ed25519.js';
import {
  authUnavailable, invalidToken, originNotAllowed, tokenExpired, unauthorized, withRejectAt, type AuthFailure,
} from './failures.js';
import { HookTimeoutError, withTimeout, type AuthHooks } from './hooks.js';
import { anonymousIdentity, identityFromClaims, identityFromInit, type Identity } from './identity.js';
import { createJwtVerifier, type JwtVerifier } from './jwt.js';
import { createOriginPolicy, type OriginPolicy } from './origin.js';
import { extractCredential } from './token-source.js';

export interface AuthenticateOptions {
  /** Refuse anonymous connections on this endpoint (e.g. `/ws/authenticated`), whatever `auth.required` says. */
  required?: boolean;
  /**
   * Look only at these credential sources (an endpoint's `credentials`): the others are treated as absent,
   * so a credential there neither authenticates nor fails the request. Each source still needs to be
   * enabled in `auth.sources` (its parameter or cookie name comes from there). Default: every enabled source.
   * Empty: no credential is read (the request is anonymous, or 4001 when `required`).
   */
  sources?: readonly CredentialSource[];
}

export type AuthResult =
  | { ok: true; identity: Identity; subprotocol: string | null; origin: string | null }
  /** `subprotocol` is set on failures too: a transport that accepts-then-closes must still echo it. */
  | { ok: false; failure: AuthFailure; subprotocol: string | null };

export type RefreshResult =
  | { ok: true; identity: Identity; expiresAt: number }
  | { ok: false; failure: AuthFailure };

export interface Auth {
  readonly config: AuthConfig;
  readonly origins: OriginPolicy;
  readonly channels: ChannelAuthorizer;
  readonly ed25519: Ed25519Authenticator;
  /**
   * Authenticates an HTTP request (WebSocket upgrade or SSE GET): origin check, then the first credential
   * found (see token-source.ts). `required` (or `auth.required`) refuses anonymous requests with 4001/401.
   * A credential that is present but bad always fails, even when anonymous access is allowed.
   */
  authenticate(req: IncomingMessage, url: URL, opts?: AuthenticateOptions): Promise<AuthResult>;
  /** Verifies a bearer token on its own (e.g. a token sent in a frame after connect). */
  verifyToken(token: string): Promise<{ ok: true; identity: Identity } | { ok: false; failure: AuthFailure }>;
  /**
   * Validates a refresh token for a connected identity: same JWT rules, and `sub` must equal
   * `identity.userId`. On success returns the new identity (claims may have changed) and its expiry (ms).
   * Failures: TOKEN_EXPIRED, INVALID_TOKEN (including "another user"), UNAUTHORIZED (anonymous identity).
   */
  refresh(identity: Identity, token: string): Promise<RefreshResult>;
}

/** Builds the auth layer. Throws AuthConfigError for an invalid configuration (at start-up). */
export function createAuth(input: AuthConfigInput | AuthConfig = {}, hooks: AuthHooks = {}): Auth {
  const config = resolveAuthConfig(input as AuthConfigInput);
  const origins = createOriginPolicy(config.origins);
  const jwt: JwtVerifier | null = config.jwt ? createJwtVerifier(config.jwt, { maxTokenBytes: config.maxTokenBytes }) : null;
  const channels = createChannelAuthorizer({
    channels: config.channels,
    messages: config.messages,
    privateMessages: config.privateMessages,
    channelsMode: config.claims.channelsMode,
    hookTimeoutMs: config.hookTimeoutMs,
  }, hooks);
  // A challenge lives no longer than the handshake that waits for its answer (its expires_at says when that ends).
  const challengeTtlMs = Math.min(config.ed25519.challengeTtlMs, config.handshakeTimeoutMs);
  const ed25519 = new Ed25519Authenticator({ ...config.ed25519, challengeTtlMs }, { hooks, hookTimeoutMs: config.hookTimeoutMs });
  const rejectAt = config.rejectAt;
  const cookieMode: 'hook' | 'jwt' | null =
    config.sources.cookieVerify === 'hook' ? 'hook'
    : config.sources.cookieVerify === 'jwt' ? 'jwt'
    : hooks.validateSession ? 'hook' : jwt ? 'jwt' : null;
  if (cookieMode === 'hook' && config.sources.cookie && !hooks.validateSession) {
    throw new AuthConfigError('sources.cookieVerify', '"hook" needs the validateSession hook');
  }

  async function verifyToken(token: string): Promise<{ ok: true; identity: Identity } | { ok: false; failure: AuthFailure }> {
    if (!jwt) return { ok: false, failure: invalidToken('token authentication is not configured') };
    const r = await jwt.verify(token);
    if (!r.ok) return r;
    return { ok: true, identity: identityFromClaims(r.payload, config.claims, 'jwt') };
  }

  async function fromSession(value: string, req: IncomingMessage): Promise<{ ok: true; identity: Identity } | { ok: false; failure: AuthFailure }> {
    const hook = hooks.validateSession!;
    let init;
    try {
      init = await withTimeout('validateSession', config.hookTimeoutMs, () => hook(value, req));
    } catch (e) {
      return { ok: false, failure: authUnavailable(e instanceof HookTimeoutError ? 'session lookup timed out' : 'session lookup failed') };
    }
    if (!init || typeof init.userId !== 'string' || init.userId.length === 0) return { ok: false, failure: unauthorized('invalid session') };
    const identity = identityFromInit(init, 'session');
    if (identity.expiresAt !== null && identity.expiresAt <= Date.now()) return { ok: false, failure: tokenExpired('session expired') };
    return { ok: true, identity };
  }

  async function authenticateInner(req: IncomingMessage, url: URL, opts: AuthenticateOptions): Promise<AuthResult> {
    const o = origins.check(req.headers.origin);
    if (!o.ok) return { ok: false, failure: originNotAllowed(o.reason), subprotocol: null };

    const ex = extractCredential(req, url, opts.sources === undefined ? config.sources : narrowSources(config.sources, opts.sources));
    if (!ex.ok) return { ok: false, failure: withRejectAt(ex.failure, rejectAt), subprotocol: null };
    const subprotocol = ex.subprotocol;
    const fail = (failure: AuthFailure): AuthResult => ({ ok: false, failure: withRejectAt(failure, rejectAt), subprotocol });
    let cred = ex.credential;
    let note = 'authentication required';

    if (cred?.kind === 'cookie') {
      // Browsers attach cookies to cross-site requests: only trust them from an allowlisted Origin, or from
      // a non-browser client (no Origin header). Otherwise the cookie is ignored (CSWSH defence).
      if (o.origin !== null && !o.explicit) { cred = null; note = 'cookie credentials need an allowlisted Origin'; }
      else if (cookieMode === null) { cred = null; }
    }

    if (!cred) {
      if (opts.required ?? config.required) return fail(unauthorized(note));
      return { ok: true, identity: anonymousIdentity(url.searchParams.get('username')), subprotocol, origin: o.origin };
    }

    const r = cred.kind === 'bearer' ? await verifyToken(cred.token)
      : cookieMode === 'hook' ? await fromSession(cred.value, req)
      : await verifyToken(cred.value);
    if (!r.ok) return fail(r.failure);
    return { ok: true, identity: r.identity, subprotocol, origin: o.origin };
  }

  return {
    config,
    origins,
    channels,
    ed25519,
    async authenticate(req, url, opts = {}) {
      try {
        return await authenticateInner(req, url, opts);
      } catch {
        return { ok: false, failure: authUnavailable('authentication failed', rejectAt), subprotocol: null };
      }
    },
    verifyToken,
    async refresh(identity, token) {
      if (identity.anonymous || identity.userId === null) return { ok: false, failure: unauthorized('anonymous connections cannot refresh') };
      try {
        const r = await verifyToken(token);
        if (!r.ok) return r;
        if (r.identity.userId !== identity.userId) return { ok: false, failure: invalidToken('refresh token belongs to another user') };
        return { ok: true, identity: r.identity, expiresAt: r.identity.expiresAt! };
      } catch {
        return { ok: false, failure: authUnavailable('refresh failed') };
      }
    },
  };
}

/** `sources` with only the listed credential sources left enabled. */
function narrowSources(sources: TokenSourcesConfig, only: readonly CredentialSource[]): TokenSourcesConfig {
  return {
    ...sources,
    header: sources.header && only.includes('header'),
    subprotocol: sources.subprotocol && only.includes('subprotocol'),
    query: only.includes('query') ? sources.query : false,
    cookie: only.includes('cookie') ? sources.cookie : false,
  };
}

/** True when the identity's credentials have expired at `now` (ms). The node checks this in its sweep. */
export function isExpired(identity: Identity, now: number = Date.now()): boolean {
  return identity.expiresAt !== null && identity.expiresAt <= now;
}
