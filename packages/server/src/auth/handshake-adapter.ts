/**
 * Adapters from the auth layer to the transports' handshake port (core/ports/handshake.ts):
 *
 *   const auth = createAuth(config.auth, hooks);
 *   Switchboard.create(cfg, { authenticate: toHandshakeAuthenticator(auth), checkOrigin: toOriginCheck(auth) });
 *
 * The session identity carries the full auth Identity under `auth` so the node's hooks can call
 * `auth.channels.check(session.identity.auth, action, channel)`.
 */
import type { SessionIdentity } from '../core/ports/session-port.js';
import type { HandshakeAuthenticator, OriginCheck } from '../core/ports/handshake.js';
import type { Auth } from './authenticator.js';
import type { Identity } from './identity.js';

/** A SessionIdentity that also carries the auth Identity (roles, permissions, allowlist, claims). */
export type AuthSessionIdentity = SessionIdentity & { auth: Identity };

export function toSessionIdentity(identity: Identity): AuthSessionIdentity {
  const s: AuthSessionIdentity = {
    userId: identity.userId,
    username: identity.username,
    anonymous: identity.anonymous,
    claims: { ...identity.claims, roles: identity.roles, permissions: identity.permissions },
    auth: identity,
  };
  if (identity.expiresAt !== null) s.expiresAt = identity.expiresAt;
  return s;
}

/**
 * `HandshakeAuthenticator` backed by `auth.authenticate` (endpoint.requireAuth -> `required`, the endpoint's
 * accepted credential sources -> `sources`).
 */
export function toHandshakeAuthenticator(auth: Auth): HandshakeAuthenticator {
  return async (req, url, endpoint) => {
    const r = await auth.authenticate(req, url, endpoint.credentials === undefined ? { required: endpoint.requireAuth } : { required: endpoint.requireAuth, sources: endpoint.credentials });
    if (!r.ok) {
      const f = r.failure;
      return { ok: false, closeCode: f.closeCode, httpStatus: f.httpStatus, code: f.code, message: f.message };
    }
    const out: { ok: true; identity: SessionIdentity; subprotocol?: string } = { ok: true, identity: toSessionIdentity(r.identity) };
    if (r.subprotocol !== null) out.subprotocol = r.subprotocol;
    return out;
  };
}

/** `OriginCheck` backed by the exact-match origin policy of `auth.origins`. */
export function toOriginCheck(auth: Auth): OriginCheck {
  return (origin) => auth.origins.check(origin).ok;
}
