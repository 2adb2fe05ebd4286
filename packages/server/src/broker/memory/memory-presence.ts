import type { OnlineUser, PresenceMember } from '@switchboard/protocol';
import { clampPageLimit, type ClientIdClaim, type MembersPage, type OnlineUsersPage, type PresenceStore } from '../../core/ports/presence-store.js';
import { lowerBound, SortedIds } from './sorted-ids.js';

/** Presence for a single process. */
export class MemoryPresenceStore implements PresenceStore {
  private readonly channels = new Map<string, Map<string, PresenceMember>>();
  /** Connection ids of a channel in order, for membersPage: built on the channel's first page (O(n log n),
   * once), then kept up to date by join / leave (O(log n + bucket)) until the channel empties. Channels
   * nobody pages pay nothing. */
  private readonly memberIds = new Map<string, SortedIds>();
  private readonly users = new Map<string, { username: string | null; connections: Set<string> }>();
  /** Ids of `users`, sorted (UTF-16 code unit order), for onlineUsersPage. */
  private readonly sortedIds: string[] = [];
  /** clientId -> its holder (see ClientIdRegistry). */
  private readonly clientIds = new Map<string, { userId: string | null; connectionId: string; generation: number }>();
  private generation = 0;

  async join(channel: string, member: PresenceMember): Promise<void> {
    let members = this.channels.get(channel);
    if (members === undefined) this.channels.set(channel, (members = new Map()));
    members.set(member.connection_id, member);
    this.memberIds.get(channel)?.add(member.connection_id);
  }

  async leave(channel: string, connectionId: string): Promise<void> {
    const members = this.channels.get(channel);
    if (members === undefined) return;
    members.delete(connectionId);
    this.memberIds.get(channel)?.delete(connectionId);
    if (members.size === 0) {
      this.channels.delete(channel);
      this.memberIds.delete(channel);
    }
  }

  async members(channel: string): Promise<PresenceMember[]> {
    return [...(this.channels.get(channel)?.values() ?? [])];
  }

  /** Members in connection id order after `cursor` (see memberIds: O(log n + limit) per page). */
  async membersPage(channel: string, cursor: string | null, limit: number): Promise<MembersPage> {
    const members = this.channels.get(channel);
    if (members === undefined) return { members: [], nextCursor: null };
    let ids = this.memberIds.get(channel);
    if (ids === undefined) this.memberIds.set(channel, (ids = new SortedIds(members.keys())));
    const page = ids.after(cursor, clampPageLimit(limit));
    return {
      members: page.ids.map((id) => members.get(id)!),
      nextCursor: page.more ? page.ids[page.ids.length - 1]! : null,
    };
  }

  async count(channel: string): Promise<number> {
    return this.channels.get(channel)?.size ?? 0;
  }

  async userConnected(userId: string, username: string | null, connectionId: string): Promise<number> {
    let user = this.users.get(userId);
    if (user === undefined) {
      this.users.set(userId, (user = { username, connections: new Set() }));
      this.sortedIds.splice(lowerBound(this.sortedIds, userId), 0, userId);
    }
    user.connections.add(connectionId);
    return user.connections.size;
  }

  async userDisconnected(userId: string, connectionId: string): Promise<number> {
    const user = this.users.get(userId);
    if (user === undefined) return 0;
    user.connections.delete(connectionId);
    if (user.connections.size === 0) {
      this.users.delete(userId);
      const i = lowerBound(this.sortedIds, userId);
      if (this.sortedIds[i] === userId) this.sortedIds.splice(i, 1);
    }
    return user.connections.size;
  }

  async userOnline(userId: string): Promise<boolean> {
    return this.users.has(userId);
  }

  /** Users in id order after `cursor` (binary search in the sorted ids: O(log n + limit)). */
  async onlineUsersPage(cursor: string | null, limit: number): Promise<OnlineUsersPage> {
    const n = clampPageLimit(limit);
    let start = 0;
    if (cursor !== null) {
      start = lowerBound(this.sortedIds, cursor);
      if (this.sortedIds[start] === cursor) start += 1;
    }
    const ids = this.sortedIds.slice(start, start + n);
    const users = ids.map((user_id) => {
      const u = this.users.get(user_id)!;
      return { user_id, username: u.username, connections: u.connections.size };
    });
    const nextCursor = start + n < this.sortedIds.length ? ids[ids.length - 1]! : null;
    return { users, nextCursor };
  }

  async onlineUsers(): Promise<OnlineUser[]> {
    return [...this.users].map(([user_id, u]) => ({ user_id, username: u.username, connections: u.connections.size }));
  }

  /** Free, or held by the same owner (same user id, or anonymous and anonymous): the connection takes it. */
  async claimClientId(clientId: string, userId: string | null, connectionId: string): Promise<ClientIdClaim> {
    const holder = this.clientIds.get(clientId);
    if (holder !== undefined && holder.userId !== userId) return { ok: false, holderUserId: holder.userId };
    const generation = ++this.generation;
    this.clientIds.set(clientId, { userId, connectionId, generation });
    return { ok: true, generation };
  }

  async releaseClientId(clientId: string, connectionId: string): Promise<void> {
    if (this.clientIds.get(clientId)?.connectionId === connectionId) this.clientIds.delete(clientId);
  }

  async close(): Promise<void> {
    this.clientIds.clear();
    this.channels.clear();
    this.memberIds.clear();
    this.users.clear();
    this.sortedIds.length = 0;
  }
}
