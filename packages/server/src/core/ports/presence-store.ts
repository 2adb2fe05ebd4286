import type { OnlineUser, PresenceMember } from '@switchboard/protocol';
import type { ClientIdRegistry } from './client-ids.js';

export type { ClientIdClaim, ClientIdRegistry } from './client-ids.js';

/** Largest page `onlineUsersPage` (and `membersPage`) returns; larger limits are clamped to it. */
export const MAX_ONLINE_USERS_PAGE = 1000;

/** One page of the cluster's online users (see PresenceStore.onlineUsersPage). */
export interface OnlineUsersPage {
  /** At most `limit` users, in the engine's order of user ids, each with its cluster-wide connection count (>= 1). */
  users: OnlineUser[];
  /** Pass it back to get the next page; null when the walk is complete. Opaque (today: a user id). A non-null
   * cursor may lead to an empty final page. */
  nextCursor: string | null;
}

/** One page of a channel's members (see PresenceStore.membersPage). */
export interface MembersPage {
  /** At most `limit` connections of the channel, on every node, in the engine's order of connection ids. */
  members: PresenceMember[];
  /** Pass it back to get the next page; null when the walk is complete. Opaque (today: a connection id). A
   * non-null cursor may lead to an empty final page. */
  nextCursor: string | null;
}

/**
 * Cluster-wide presence: who is in which channel, which users are online, and who holds which client id
 * (ClientIdRegistry, core/ports/client-ids.ts). The memory engine answers for one process; the Redis engine
 * for all nodes, with entries that expire when a node stops refreshing them.
 * Operations reject with code BROKER_UNAVAILABLE when the backend is unreachable (see Broker).
 */
export interface PresenceStore extends ClientIdRegistry {
  /** Connect to the backend (optional; the node calls it once on start). */
  start?(): Promise<void>;
  /** Record a connection in a channel. */
  join(channel: string, member: PresenceMember): Promise<void>;
  leave(channel: string, connectionId: string): Promise<void>;
  /** Every connection in the channel, on every node. Cost O(members of the channel): for small channels;
   * page with `membersPage` instead. */
  members(channel: string): Promise<PresenceMember[]>;
  /**
   * One page of the channel's members (connections, on every node). Start with `cursor` null and pass each
   * `nextCursor` back until it is null. Contract:
   * - `limit` is clamped to 1..MAX_ONLINE_USERS_PAGE (clampPageLimit); a page holds at most `limit` members;
   * - a full walk returns every member present in the channel throughout it exactly once, with the fields it
   *   joined with (members joining or leaving during the walk may or may not appear, never twice);
   * - an empty (or unknown) channel answers `{ members: [], nextCursor: null }`;
   * - a page costs O(limit) backend work (Redis: O(limit) per node holding members of the channel),
   *   independent of the channel's size;
   * - the members of a node that died without cleanup disappear with its entries (Redis: after the engine's
   *   presence ttl), as they do from `members`.
   */
  membersPage(channel: string, cursor: string | null, limit: number): Promise<MembersPage>;
  /** How many connections are in the channel, on every node, without listing them. */
  count(channel: string): Promise<number>;
  /** Count the user's connection; resolves to the user's connection count cluster-wide afterwards
   * (1 means "first connection": the node announces user_online). */
  userConnected(userId: string, username: string | null, connectionId: string): Promise<number>;
  /** Resolves to the connections the user still has cluster-wide (0: the node announces user_offline). */
  userDisconnected(userId: string, connectionId: string): Promise<number>;
  /**
   * Whether the user has at least one live connection anywhere in the cluster: true after `userConnected`
   * until the matching `userDisconnected` calls, and false once every node holding a connection of the user
   * is gone (a node that dies without cleanup stops counting after the engine's presence ttl).
   * Cost: O(nodes holding the user's connections) — never a listing of all online users; use it instead of
   * searching `onlineUsers()`.
   */
  userOnline(userId: string): Promise<boolean>;
  /**
   * Every online user with its cluster-wide connection count. Cost O(all online users): for small clusters
   * and admin views; page with `onlineUsersPage` instead.
   */
  onlineUsers(): Promise<OnlineUser[]>;
  /**
   * One page of the online users. Start with `cursor` null and pass each `nextCursor` back until it is null.
   * Contract:
   * - `limit` is clamped to 1..MAX_ONLINE_USERS_PAGE; a page holds at most `limit` users;
   * - a full walk returns every user that stays online throughout it exactly once (users connecting or
   *   leaving during the walk may or may not appear, never twice), each with its cluster-wide connection
   *   count at the time its page was read; users whose count is 0 (e.g. their node died) are left out;
   * - a page costs O(limit) backend work (Redis: O(limit) per node holding online users), independent of the
   *   total number of online users.
   */
  onlineUsersPage(cursor: string | null, limit: number): Promise<OnlineUsersPage>;
  close(): Promise<void>;
}

/** `limit` of onlineUsersPage / membersPage clamped to 1..MAX_ONLINE_USERS_PAGE (non-numbers: the maximum). */
export function clampPageLimit(limit: number): number {
  if (!Number.isFinite(limit)) return MAX_ONLINE_USERS_PAGE;
  return Math.min(MAX_ONLINE_USERS_PAGE, Math.max(1, Math.floor(limit)));
}
