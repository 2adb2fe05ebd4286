import type { ChannelState, Member } from '../hub/member.js';
import type { ConnectionInfo } from '../ports/hooks.js';
import type { SessionHandle, SessionIdentity } from '../ports/session-port.js';
import type { ConnectionSink } from '../ports/sink.js';
import type { Command } from './inbound.js';

/**
 * One live connection (centrifuge's Client): identity, channel states, heartbeat clock, token buckets and the
 * queue of commands waiting behind a running one. Kept small (target <= 4 KB heap per idle connection): no
 * timers, closures or promises at rest; the channel map and the command queue exist only while used.
 *
 * The Hub is the only writer of `channels` (it keeps them in step with its member index); the command
 * pipeline is the only writer of `queue`.
 */
export class Client implements SessionHandle, ConnectionInfo, Member {
  /** channel -> state; null until the first join. */
  channels: Map<string, ChannelState> | null = null;
  /** Pattern subscriptions by prefix; null until the first. */
  patterns: Map<string, ChannelState> | null = null;
  /** Cached authorization of concrete channels reached through patterns (bounded); null until needed. */
  patternAuth: Map<string, boolean> | null = null;
  /** See Member.deliveryMark. */
  deliveryMark = 0;
  /**
   * Commands received while an earlier one is still running, in arrival order; null when none is running
   * (the common case: a command that completes synchronously never allocates a queue).
   */
  queue: Command[] | null = null;
  /** Epoch ms of the last frame or transport pong received. */
  lastSeen: number;
  /** Epoch ms of the last application message (for the idle timeout). */
  lastActivity: number;
  /** Epoch ms the outstanding ping was sent (0: none outstanding). */
  pingSentAt = 0;
  /** Epoch ms of the last ping sent. */
  lastPingAt: number;
  /** Message token bucket: tokens left and last refill time. */
  tokens: number;
  tokensAt: number;
  /** Subscription (join/leave) token bucket. */
  subTokens: number;
  subTokensAt: number;
  /** Consecutive commands refused by a rate limiter or the pending-command bound. */
  dropped = 0;
  /**
   * Flooded (closeAfterDropped reached) while a command was running: the pipeline takes nothing more, lets
   * the running command finish and reply, then closes with 4021.
   */
  floodClosing = false;
  /** Binary frames received so far: the n-th binary app publish is answered with id `bin-<n>`. */
  binaryFrames = 0;
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
    subscribeBurst: number,
  ) {
    this.connectedAt = now;
    this.lastSeen = now;
    this.lastActivity = now;
    this.lastPingAt = now;
    this.tokens = burst;
    this.tokensAt = now;
    this.subTokens = subscribeBurst;
    this.subTokensAt = now;
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

  /** In the channel (live, or joining). */
  inChannel(channel: string): boolean {
    return this.channels !== null && this.channels.has(channel);
  }
}
