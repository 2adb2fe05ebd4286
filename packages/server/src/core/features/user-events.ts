import type { CoreContext } from '../context.js';
import { USERS_CHANNEL } from '../namespaces.js';
import { Outbound } from '../outbound.js';
import { KeyedThrottle } from './throttle.js';

/** A user's first connection opened (online) or last one closed (offline) in the cluster. */
interface UserChange {
  username: string | null;
}

/** The part of a single user event a receiver reads (whose own connections to skip). */
interface UsersFrameData {
  user_id?: string;
}

/**
 * `user_online` / `user_offline`, opt-in: only connections in the reserved channel `$users` receive them (join
 * it, or connect with `?user_events=1`; channel rules apply to joining it). Each node coalesces its users'
 * changes per batch (a user who goes offline and online again within one batch produces nothing) and publishes
 * ONE event to `$users`: the seed frame for a single change, `users_diff` {online, offline} for several. The
 * broker routes it only to nodes with `$users` members. A single event is not delivered to the user's own
 * connections (seed 004); a diff is shared by every recipient and may name the recipient's own user.
 */
export class UserEvents {
  private online = new Map<string, UserChange>();
  private offline = new Map<string, UserChange>();
  private readonly throttle: KeyedThrottle;

  constructor(private readonly ctx: Pick<CoreContext, 'broker' | 'hub' | 'frames' | 'log' | 'now' | 'options'>) {
    this.throttle = new KeyedThrottle(() => this.flush(), ctx.now);
  }

  connected(userId: string, username: string | null): void {
    if (!this.offline.delete(userId)) this.online.set(userId, { username });
    this.throttle.request(USERS_CHANNEL, this.ctx.options.presenceBatchMs);
  }

  disconnected(userId: string, username: string | null): void {
    if (!this.online.delete(userId)) this.offline.set(userId, { username });
    this.throttle.request(USERS_CHANNEL, this.ctx.options.presenceBatchMs);
  }

  private flush(): void {
    const online = this.online;
    const offline = this.offline;
    this.online = new Map();
    this.offline = new Map();
    const n = online.size + offline.size;
    if (n === 0) return;
    const list = (m: Map<string, UserChange>) => [...m].map(([user_id, u]) => ({ user_id, username: u.username }));
    const frame = n === 1
      ? this.ctx.frames.frame(online.size === 1 ? 'user_online' : 'user_offline', list(online.size === 1 ? online : offline)[0]!)
      : this.ctx.frames.frame('users_diff', { online: list(online), offline: list(offline) });
    this.ctx.broker.publishEphemeral(USERS_CHANNEL, frame).catch((err: unknown) => this.ctx.log.warn({ err }, 'user events failed'));
  }

  /** User events from any node: deliver to the live local members of `$users`. */
  receive(frame: string): void {
    const type = frame.startsWith('{"type":"users_diff"') ? 'users_diff' : frame.startsWith('{"type":"user_online"') ? 'user_online' : 'user_offline';
    const out = new Outbound(frame, type);
    if (type === 'users_diff') {
      this.ctx.hub.fanOut(USERS_CHANNEL, out, undefined);
      return;
    }
    let data: UsersFrameData;
    try {
      data = (JSON.parse(frame) as { data: UsersFrameData }).data;
    } catch {
      return;
    }
    this.ctx.hub.fanOutExcept(USERS_CHANNEL, out, (m) => m.userId === data.user_id);
  }

  /** Publish what is pending now (shutdown). */
  flushAll(): void {
    this.throttle.flushAll();
  }

  prune(now: number): void {
    this.throttle.prune(now, Math.max(1000, this.ctx.options.presenceBatchMs * 2));
  }

  close(): void {
    this.throttle.close();
  }
}
