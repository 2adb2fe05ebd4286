import type { SessionIdentity } from './session-port.js';

export type ChannelAction = 'subscribe' | 'publish' | 'presence' | 'history';

export type Decision = { allowed: true } | { allowed: false; code: string; message: string };

/** A connection as hooks see it. `identity` may be replaced (token refresh); the rest is fixed. */
export interface ConnectionInfo {
  readonly id: string;
  identity: SessionIdentity;
  readonly userId: string | null;
  readonly clientId: string | null;
  readonly remoteAddress: string;
  readonly metadata: Record<string, unknown> | undefined;
  readonly connectedAt: number;
}

/**
 * Application extension points. All optional. A hook may answer synchronously or with a promise: a
 * synchronous answer is used synchronously (the publish hot path never awaits it). A hook that throws or
 * rejects is treated as a denial with code INTERNAL (logged), never as a crash. While a hook's promise is
 * pending, later commands of the same connection wait (commands take effect in the order sent).
 */
export interface HubHooks {
  /** May this connection perform `action` on `channel`? Default: allowed. */
  authorizeChannel?(session: ConnectionInfo, action: ChannelAction, channel: string): Decision | Promise<Decision>;
  /**
   * Optional fast path for pattern fan-out (the hot path: one decision per matched connection and publication).
   * The decision `authorizeChannel` gives on (`action`, `channel`) to every connection for which
   * `hasOwnChannelDecisions` is false, when it is the same for all of them: `true` or `false`; `null` when it
   * depends on who asks (roles, owner, claims, an asynchronous check). Must agree with `authorizeChannel`.
   */
  channelDecisionForAll?(action: ChannelAction, channel: string): boolean | null;
  /**
   * Whether this connection's channel decisions may differ from `channelDecisionForAll` (e.g. its token carries
   * its own channel list); such connections are always asked through `authorizeChannel`. Called per delivery:
   * keep it a property read. Default (with `channelDecisionForAll` set): false.
   */
  hasOwnChannelDecisions?(session: ConnectionInfo): boolean;
  /** May this connection send a private message to `recipientId`? Default: allowed. */
  authorizePrivate?(session: ConnectionInfo, recipientId: string): Decision | Promise<Decision>;
  /** May this connection send a message of a permission-guarded type (e.g. `broadcast`)? Default: denied. */
  authorizeType?(session: ConnectionInfo, type: string): Decision | Promise<Decision>;
  /** Validate a refreshed token for the connection; resolves to the new expiry (epoch ms) or a denial. */
  refreshToken?(session: ConnectionInfo, token: string): Promise<{ ok: true; expiresAt: number | undefined } | { ok: false; code: string; message: string }>;
  /** Snapshot for a snapshot channel, sent to a new subscriber before live publications (data object). */
  snapshot?(channel: string): Promise<Record<string, unknown> | null>;
  /** Called after the connect frame was queued (offline inbox delivery, welcome messages). */
  onSessionOpen?(session: ConnectionInfo): Promise<void> | void;
  onSessionClose?(session: ConnectionInfo, code: number): void;
}

/** The same hooks under the name the Node API documents. */
export type NodeHooks = HubHooks;
