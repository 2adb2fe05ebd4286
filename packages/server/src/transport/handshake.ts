import type { IncomingMessage } from 'node:http';
import type { SessionIdentity } from '../core/session.js';

/** Which endpoint a connection came in on. */
export interface Endpoint {
  transport: 'ws' | 'sse';
  /** `/ws`, `/ws/authenticated`, `/ws/{client_id}` or `/events`. */
  path: string;
  /** The `{client_id}` path segment, if any. */
  clientId: string | null;
  /** The endpoint requires authentication (`/ws/authenticated`, or auth.required in config). */
  requireAuth: boolean;
  /** Ed25519 challenge endpoint (`{ed25519Path}/{collective_id}`): the collective to authenticate. */
  collectiveId?: string;
}

export type AuthOutcome =
  | { ok: true; identity: SessionIdentity; subprotocol?: string }
  | {
      ok: false;
      /** Close code when rejected after accept (browsers can read it). */
      closeCode: number;
      /** HTTP status when rejected at the handshake. */
      httpStatus: number;
      /** Error code from the registry. */
      code: string;
      message: string;
    };

/**
 * Decides who a connecting client is. Must not throw (a throw is answered as 1011). The default
 * (`anonymousAuthenticator`) admits everybody as anonymous.
 */
export type HandshakeAuthenticator = (req: IncomingMessage, url: URL, endpoint: Endpoint) => Promise<AuthOutcome>;

/** Decides whether an Origin header value may connect (`undefined`: no Origin header). */
export type OriginCheck = (origin: string | undefined) => boolean;

/**
 * Anonymous identities. With `trustClientIds` (development default when no authentication is configured),
 * `?user_id=` and `?username=` are taken as given so the demo can address users; otherwise user_id is null.
 */
export function anonymousAuthenticator(trustClientIds: boolean): HandshakeAuthenticator {
  return async (_req, url, endpoint) => {
    if (endpoint.requireAuth) {
      return { ok: false, closeCode: 4001, httpStatus: 401, code: 'UNAUTHORIZED', message: 'Authentication required' };
    }
    const username = url.searchParams.get('username')?.slice(0, 64) || null;
    const userId = trustClientIds ? url.searchParams.get('user_id')?.slice(0, 128) || null : null;
    return { ok: true, identity: { userId, username, anonymous: true } };
  };
}

/** Client address, honouring the first X-Forwarded-For hop only when the proxy is trusted. */
export function remoteAddress(req: IncomingMessage, trustProxy: boolean): string {
  if (trustProxy) {
    const xff = req.headers['x-forwarded-for'];
    const first = (Array.isArray(xff) ? xff[0] : xff)?.split(',')[0]?.trim();
    if (first) return first;
  }
  return req.socket.remoteAddress ?? 'unknown';
}
