import type { OnlineUser, PresenceMember } from '@switchboard/protocol';
import { fireAndLog, type CoreContext } from '../context.js';
import type { Member } from '../hub/member.js';
import type { MembersPage, OnlineUsersPage } from '../ports/presence-store.js';
import type { PresenceAnnouncer } from './announcements.js';
import type { UserEvents } from './user-events.js';

/**
 * Presence state — who is in which channel, which users are online — kept in the PresenceStore port (every
 * node's view), with the announcements it causes handed to the announcer (channel joins/leaves) and to user
 * events (first connection / last connection of a user).
 */
export class Presence {
  /** User-presence writes not settled yet (shutdown waits for them before flushing user events). */
  private readonly userWrites = new Set<Promise<void>>();

  constructor(
    private readonly ctx: Pick<CoreContext, 'presence' | 'namespaces' | 'log'>,
    private readonly announcer: PresenceAnnouncer,
    private readonly users: UserEvents,
  ) {}

  /** A member as presence lists it. */
  member(m: Member): PresenceMember {
    return { connection_id: m.id, user_id: m.userId, username: m.identity.username };
  }

  /** Record a completed join (namespaces with presence on) and queue its announcement. */
  async joined(m: Member, channel: string): Promise<void> {
    if (!this.ctx.namespaces.of(channel).presence) return;
    const member = this.member(m);
    await this.ctx.presence.join(channel, member);
    this.announcer.joined(channel, member);
  }

  /** Forget a member (in the background: leaving never waits) and queue its announcement. */
  left(m: Member, channel: string): void {
    if (!this.ctx.namespaces.of(channel).presence) return;
    fireAndLog(this.ctx.log, this.ctx.presence.leave(channel, m.id), 'presence leave');
    this.announcer.left(channel, this.member(m));
  }

  /** Connections in the channel on every node. */
  count(channel: string): Promise<number> {
    return this.ctx.presence.count(channel);
  }

  members(channel: string): Promise<PresenceMember[]> {
    return this.ctx.presence.members(channel);
  }

  /** One page of a channel's members (cursor null: the first page). */
  membersPage(channel: string, cursor: string | null, limit: number): Promise<MembersPage> {
    return this.ctx.presence.membersPage(channel, cursor, limit);
  }

  /** An identified connection opened: user_online when it is the user's first connection in the cluster. */
  userConnected(m: Member): void {
    const userId = m.userId;
    if (userId === null) return;
    const username = m.identity.username;
    this.track(this.ctx.presence.userConnected(userId, username, m.id).then(
      (count) => {
        if (count === 1) this.users.connected(userId, username);
      },
      (err: unknown) => this.ctx.log.warn({ err, connection_id: m.id }, 'presence userConnected failed'),
    ));
  }

  /** An identified connection closed: user_offline when it was the user's last connection in the cluster. */
  userDisconnected(m: Member): void {
    const userId = m.userId;
    if (userId === null) return;
    const username = m.identity.username;
    this.track(this.ctx.presence.userDisconnected(userId, m.id).then(
      (left) => {
        if (left === 0) this.users.disconnected(userId, username);
      },
      (err: unknown) => this.ctx.log.warn({ err, connection_id: m.id }, 'presence userDisconnected failed'),
    ));
  }

  private track(p: Promise<void>): void {
    this.userWrites.add(p);
    void p.then(() => this.userWrites.delete(p));
  }

  /** Resolves once every user-presence write started so far has settled (shutdown). */
  async settled(): Promise<void> {
    await Promise.all(this.userWrites);
  }

  /** Every online user of the cluster (O(all users): prefer onlineUsersPage). */
  onlineUsers(): Promise<OnlineUser[]> {
    return this.ctx.presence.onlineUsers();
  }

  /** One page of the cluster's online users (cursor null: the first page). */
  onlineUsersPage(cursor: string | null, limit: number): Promise<OnlineUsersPage> {
    return this.ctx.presence.onlineUsersPage(cursor, limit);
  }
}
