import type { Session } from '../session.js';

export type ChannelAction = 'subscribe' | 'publish' | 'presence' | 'history';

export type Decision = { allowed: true } | { allowed: false; code: string; message: string };

/**
 * Application extension points. All optional; all may be async. A hook that throws is treated as a denial
 * with code INTERNAL (logged), never as a crash.
 */
export interface HubHooks {
  /** May this session perform `action` on `channel`? Default: allowed. */
  authorizeChannel?(session: Session, action: ChannelAction, channel: string): Decision | Promise<Decision>;
  /** May this session send a private message to `recipientId`? Default: allowed. */
  authorizePrivate?(session: Session, recipientId: string): Decision | Promise<Decision>;
  /** May this session send a message of a permission-guarded type (e.g. `broadcast`)? Default: denied. */
  authorizeType?(session: Session, type: string): Decision | Promise<Decision>;
  /** Validate a refreshed token for the session; resolves to the new expiry (epoch ms) or a denial. */
  refreshToken?(session: Session, token: string): Promise<{ ok: true; expiresAt: number | undefined } | { ok: false; code: string; message: string }>;
  /** Snapshot for a snapshot channel, sent to a new subscriber before live publications (data object). */
  snapshot?(channel: string): Promise<Record<string, unknown> | null>;
  /** Called after the connect frame was queued (offline inbox delivery, welcome messages). */
  onSessionOpen?(session: Session): Promise<void> | void;
  onSessionClose?(session: Session, code: number): void;
}
