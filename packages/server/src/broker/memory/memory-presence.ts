import type { OnlineUser, PresenceMember } from '@switchboard/protocol';
import type { PresenceStore } from '../../core/ports/presence-store.js';

/** Presence for a single process. */
export class MemoryPresenceStore implements PresenceStore {
  private readonly channels = new Map<string, Map<string, PresenceMember>>();
  private readonly users = new Map<string, { username: string | null; connections: Set<string> }>();

  async join(channel: string, member: PresenceMember): Promise<void> {
    let members = this.channels.get(channel);
    if (members === undefined) this.channels.set(channel, (members = new Map()));
    members.set(member.connection_id, member);
  }

  async leave(channel: string, connectionId: string): Promise<void> {
    const members = this.channels.get(channel);
    if (members === undefined) return;
    members.delete(connectionId);
    if (members.size === 0) this.channels.delete(channel);
  }

  async members(channel: string): Promise<PresenceMember[]> {
    return [...(this.channels.get(channel)?.values() ?? [])];
  }

  async count(channel: string): Promise<number> {
    return this.channels.get(channel)?.size ?? 0;
  }

  async userConnected(userId: string, username: string | null, connectionId: string): Promise<number> {
    let user = this.users.get(userId);
    if (user === undefined) this.users.set(userId, (user = { username, connections: new Set() }));
    user.connections.add(connectionId);
    return user.connections.size;
  }

  async userDisconnected(userId: string, connectionId: string): Promise<number> {
    const user = this.users.get(userId);
    if (user === undefined) return 0;
    user.connections.delete(connectionId);
    if (user.connections.size === 0) this.users.delete(userId);
    return user.connections.size;
  }

  async onlineUsers(): Promise<OnlineUser[]> {
    return [...this.users].map(([user_id, u]) => ({ user_id, username: u.username, connections: u.connections.size }));
  }

  async close(): Promise<void> {
    this.channels.clear();
    this.users.clear();
  }
}
