import type { OnlineUser, PresenceMember, RequestId } from '@switchboard/protocol';
import type { Access } from '../client/access.js';
import { whenAllowed } from '../client/access.js';
import type { Client } from '../client/client.js';
import { fireAndLog, type CoreContext } from '../context.js';

/**
 * Channel presence (who is in a channel, on every node) and user presence (user_online / user_offline).
 * State lives in the PresenceStore port; announcements travel as ephemeral channel events (presence) or
 * control messages (user events) through the broker.
 */
export class Presence {
  constructor(
    private readonly ctx: Pick<CoreContext, 'broker' | 'presence' | 'namespaces' | 'frames' | 'log'>,
    private readonly access: Access,
  ) {}

  /** A member as presence lists it. */
  member(c: Client): PresenceMember {
    return { connection_id: c.id, user_id: c.userId, username: c.identity.username };
  }

  /** Record a completed join and announce it to the other members (namespaces with presence on). */
  async joined(c: Client, channel: string): Promise<void> {
    if (!this.ctx.namespaces.of(channel).presence) return;
    const member = this.member(c);
    await this.ctx.presence.join(channel, member);
    this.announce(channel, 'joined', member);
  }

  /** Forget a member and announce it (in the background: leaving never waits). */
  left(c: Client, channel: string): void {
    if (!this.ctx.namespaces.of(channel).presence) return;
    fireAndLog(this.ctx.log, this.ctx.presence.leave(channel, c.id), 'presence leave');
    this.announce(channel, 'left', this.member(c));
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

  /** A client's `presence` request. */
  request(c: Client, channel: string, id: RequestId | undefined): void | Promise<void> {
    if (!this.access.checkChannel(c, channel, id)) return;
    return whenAllowed(this.access.channel(c, 'presence', channel, id), async () => {
      const members = await this.ctx.presence.members(channel);
      this.ctx.frames.send(c, 'presence', { channel, members }, { channel, id });
    });
  }

  /** An identified client opened: announce `user_online` when it is the user's first connection. */
  userConnected(c: Client): void {
    const userId = c.userId;
    if (userId === null) return;
    const username = c.identity.username;
    this.ctx.presence.userConnected(userId, username, c.id).then(
      (count) => {
        if (count === 1) this.toAll('user_online', { user_id: userId, username });
      },
      (err: unknown) => this.ctx.log.warn({ err, connection_id: c.id }, 'presence userConnected failed'),
    );
  }

  /** An identified client closed: announce `user_offline` when it was the user's last connection. */
  userDisconnected(c: Client): void {
    const userId = c.userId;
    if (userId === null) return;
    const username = c.identity.username;
    this.ctx.presence.userDisconnected(userId, c.id).then(
      (left) => {
        if (left === 0) this.toAll('user_offline', { user_id: userId, username });
      },
      (err: unknown) => this.ctx.log.warn({ err, connection_id: c.id }, 'presence userDisconnected failed'),
    );
  }

  private toAll(type: string, data: Record<string, unknown>): void {
    fireAndLog(this.ctx.log, this.ctx.broker.publishControl({ kind: 'all', frame: this.ctx.frames.frame(type, data) }), type);
  }

  /** Every online user of the cluster. */
  onlineUsers(): Promise<OnlineUser[]> {
    return this.ctx.presence.onlineUsers();
  }

  /** A client's `online_users` request. */
  async onlineUsersRequest(c: Client, id: RequestId | undefined): Promise<void> {
    const users = await this.ctx.presence.onlineUsers();
    this.ctx.frames.send(c, 'online_users', { users }, { id });
  }
}
