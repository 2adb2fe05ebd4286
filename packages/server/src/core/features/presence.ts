import type { OnlineUser, PresenceMember } from '@switchboard/protocol';
import type { OnlineUsersPage } from '../ports/presence-store.js';
import { fireAndLog, type CoreContext } from '../context.js';
import type { Member } from '../hub/member.js';

/**
 * Channel presence (who is in a channel, on every node) and user presence (user_online / user_offline).
 * State lives in the PresenceStore port; announcements travel as ephemeral channel events (presence) or
 * control messages (user events) through the broker.
 */
export class Presence {
  constructor(private readonly ctx: Pick<CoreContext, 'broker' | 'presence' | 'namespaces' | 'frames' | 'log'>) {}

  /** A member as presence lists it. */
  member(m: Member): PresenceMember {
    return { connection_id: m.id, user_id: m.userId, username: m.identity.username };
  }

  /** Record a completed join and announce it to the other members (namespaces with presence on). */
  async joined(m: Member, channel: string): Promise<void> {
    if (!this.ctx.namespaces.of(channel).presence) return;
    const member = this.member(m);
    await this.ctx.presence.join(channel, member);
    this.announce(channel, 'joined', member);
  }

  /** Forget a member and announce it (in the background: leaving never waits). */
  left(m: Member, channel: string): void {
    if (!this.ctx.namespaces.of(channel).presence) return;
    fireAndLog(this.ctx.log, this.ctx.presence.leave(channel, m.id), 'presence leave');
    this.announce(channel, 'left', this.member(m));
  }

  private announce(channel: string, action: 'joined' | 'left', member: PresenceMember): void {
    const frame = this.ctx.frames.frame('presence', { action, ...member, channel }, { channel });
    fireAndLog(this.ctx.log, this.ctx.broker.publishEphemeral(channel, frame, member.connection_id), 'presence');
  }

  /** Connections in the channel on every node. */
  count(channel: string): Promise<number> {
    return this.ctx.presence.count(channel);
  }

  members(channel: string): Promise<PresenceMember[]> {
    return this.ctx.presence.members(channel);
  }

  /** An identified connection opened: announce `user_online` when it is the user's first connection. */
  userConnected(m: Member): void {
    const userId = m.userId;
    if (userId === null) return;
    const username = m.identity.username;
    this.ctx.presence.userConnected(userId, username, m.id).then(
      (count) => {
        if (count === 1) this.toAll('user_online', { user_id: userId, username });
      },
      (err: unknown) => this.ctx.log.warn({ err, connection_id: m.id }, 'presence userConnected failed'),
    );
  }

  /** An identified connection closed: announce `user_offline` when it was the user's last connection. */
  userDisconnected(m: Member): void {
    const userId = m.userId;
    if (userId === null) return;
    const username = m.identity.username;
    this.ctx.presence.userDisconnected(userId, m.id).then(
      (left) => {
        if (left === 0) this.toAll('user_offline', { user_id: userId, username });
      },
      (err: unknown) => this.ctx.log.warn({ err, connection_id: m.id }, 'presence userDisconnected failed'),
    );
  }

  private toAll(type: string, data: Record<string, unknown>): void {
    fireAndLog(this.ctx.log, this.ctx.broker.publishControl({ kind: 'all', frame: this.ctx.frames.frame(type, data) }), type);
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
