import type { OnlineUser, PresenceMember } from '@switchboard/protocol';

/**
 * Cluster-wide presence: who is in which channel, which users are online. The memory engine answers for
 * one process; the Redis engine for all nodes, with entries that expire when a node stops refreshing them.
 */
export interface PresenceStore {
  /** Connect to the backend (optional; the hub calls it once on start). */
  start?(): Promise<void>;
  /** Record a connection in a channel. */
  join(channel: string, member: PresenceMember): Promise<void>;
  leave(channel: string, connectionId: string): Promise<void>;
  /** Every connection in the channel, on every node. */
  members(channel: string): Promise<PresenceMember[]>;
  /** How many connections are in the channel, on every node, without listing them. */
  count(channel: string): Promise<number>;
  /** Count the user's connection; resolves to the user's connection count cluster-wide afterwards
   * (1 means "first connection": the hub announces user_online). */
  userConnected(userId: string, username: string | null, connectionId: string): Promise<number>;
  /** Resolves to the connections the user still has cluster-wide (0: the hub announces user_offline). */
  userDisconnected(userId: string, connectionId: string): Promise<number>;
  onlineUsers(): Promise<OnlineUser[]>;
  close(): Promise<void>;
}
