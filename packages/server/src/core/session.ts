import type { Publication } from './ports/broker.js';
import type { SessionIdentity } from './ports/session-port.js';
import type { ConnectionSink } from './ports/sink.js';

/**
 * One live connection. Kept small (target <= 4 KB heap per idle connection): no timers, no closures;
 * the channel map is created on first join.
 */
export class Session {
  /** channel -> null when live, or the publications buffered while its join/recovery is in flight. */
  channels: Map<string, Publication[] | null> | null = null;
  /** Epoch ms of the last frame or transport pong received. */
  lastSeen: number;
  /** Epoch ms of the last application message (for the idle timeout). */
  lastActivity: number;
  /** Epoch ms the outstanding ping was sent (0: none outstanding). */
  pingSentAt = 0;
  /** Epoch ms of the last ping sent. */
  lastPingAt: number;
  /** Token bucket: tokens left and last refill time. */
  tokens: number;
  tokensAt: number;
  /** Consecutive messages dropped by the rate limiter. */
  dropped = 0;
  closed = false;
  readonly connectedAt: number;

  constructor(
    readonly id: string,
    readonly sink: ConnectionSink,
    public identity: SessionIdentity,
    readonly clientId: string | null,
    readonly remoteAddress: string,
    readonly metadata: Record<string, unknown> | undefined,
    now: number,
    burst: number,
  ) {
    this.connectedAt = now;
    this.lastSeen = now;
    this.lastActivity = now;
    this.lastPingAt = now;
    this.tokens = burst;
    this.tokensAt = now;
  }

  get userId(): string | null {
    return this.identity.userId;
  }

  /** Key used for typing indicators and sender ids: the user id, or the connection id if anonymous. */
  get actorId(): string {
    return this.identity.userId ?? this.id;
  }

  get channelCount(): number {
    return this.channels === null ? 0 : this.channels.size;
  }
}
