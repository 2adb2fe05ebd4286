import type { IncomingMessage } from 'node:http';
import type { SessionIdentity } from './session-port.js';

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
