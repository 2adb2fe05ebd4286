import type { ConnectionSink } from './sink.js';

/** Who a connection belongs to, as established by authentication (or anonymous). */
export interface SessionIdentity {
  userId: string | null;
  username: string | null;
  anonymous: boolean;
  /** Roles, permissions and claims for authorization hooks; free-form. */
  claims?: Record<string, unknown>;
  /** Epoch ms at which the credentials expire (token exp), if any. */
  expiresAt?: number;
  /** The authentication layer's full identity (roles, permissions, allowlist); opaque to the core. */
  auth?: object;
}

/** Everything a transport supplies to open a session. */
export interface SessionInit {
  sink: ConnectionSink;
  identity: SessionIdentity;
  /** Client-chosen id (`/ws/{client_id}`): a newer session with the same id supersedes this one. */
  clientId?: string | null;
  remoteAddress: string;
  metadata?: Record<string, unknown>;
}
