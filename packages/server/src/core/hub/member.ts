import type { Publication } from '../ports/broker.js';
import type { SessionIdentity } from '../ports/session-port.js';
import type { ConnectionSink } from '../ports/sink.js';

/**
 * A channel a member is in: `null` when live, or the publications buffered while its join (authorization,
 * recovery read) is still running; they are flushed, de-duplicated by offset, when the join completes.
 */
export type ChannelState = Publication[] | null;

/**
 * A connection as the hub and the features see it: who it is, where its frames go, which channels it is in.
 * The per-connection Client (client/client.ts) is the implementation; features depend on this view only.
 */
export interface Member {
  readonly id: string;
  readonly clientId: string | null;
  readonly remoteAddress: string;
  readonly sink: ConnectionSink;
  readonly identity: SessionIdentity;
  readonly userId: string | null;
  /** Key for typing indicators and sender ids: the user id, or the connection id if anonymous. */
  readonly actorId: string;
  readonly connectedAt: number;
  readonly closed: boolean;
  /** channel -> state; null until the first join. Written by the Hub only. */
  channels: Map<string, ChannelState> | null;
  /** Pattern subscriptions: prefix (`news:` for `news:*`) -> state; null until the first. Written by the Hub. */
  patterns: Map<string, ChannelState> | null;
  /** The last pattern delivery this member got (one publication reaches it once, whatever patterns match). */
  deliveryMark: number;
}
