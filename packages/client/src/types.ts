import type { ConnectFrameData, OnlineUser, PresenceFrameData, PresenceMember, ServerFrame, StreamPosition, TypingFrameData, UserEventData } from '@switchboard/protocol';
import type { SubscriptionError, SwitchboardError } from './errors.js';
import type { ClientStatus } from './status.js';

/** One page of online users (`client.onlineUsersPage`). */
export interface OnlineUsersPage {
  users: OnlineUser[];
  /** Pass back as `cursor` for the next page; null when there are no more. */
  nextCursor: string | null;
}

/** One page of a channel's members (`client.presencePage`). */
export interface PresencePage {
  members: PresenceMember[];
  /** Pass back as `cursor` for the next page; null when there are no more (always null from older servers). */
  nextCursor: string | null;
}

/** Emitted on a subscription whenever `subscription.members` changes. */
export interface MembersEvent {
  channel: string;
  /** Connections in the channel (the new value of `subscription.members`). */
  members: number;
  /**
   * What changed it: `count` = a server `presence_count` frame (authoritative), `presence` = +1/-1 per
   * `presence` event (single frames and `presence_diff`), `subscribed` = the count in a (re)join reply.
   */
  source: 'count' | 'presence' | 'subscribed';
}

/** A channel publication as delivered to the app (after de-duplication). */
export interface Publication<D = Record<string, unknown>> {
  channel: string;
  /** What the publisher sent (includes `channel`). */
  data: D;
  /**
   * The bytes of a binary publication (`client.publishBinary`, or a binary frame of a raw client): set when
   * `data` is exactly `{binary: "<base64>"}` besides the server-added `channel`, `user_id` and `username`.
   * `data` stays as it came.
   */
  binary?: Uint8Array;
  /** Offset in the channel stream (absent on unstored publications). */
  seq?: number;
  epoch?: string;
  senderId: string | null;
  timestamp: string;
  messageId: string;
  /** True if it was missed while disconnected and replayed by the server on resubscribe. */
  replayed: boolean;
  /** The raw frame. */
  frame: ServerFrame<D>;
}

/** A `private` frame: a direct message to this user. */
export interface PrivateMessage<D = Record<string, unknown>> {
  from: string | null;
  to: string | null;
  data: D;
  timestamp: string;
  messageId: string;
  /** Delivered from the server's offline inbox (sent while this user had no connection). */
  fromInbox: boolean;
  frame: ServerFrame<D>;
}

/** Resolved value of `publish()`: position of the publication in the channel stream. */
export interface PublishResult {
  offset: number;
  epoch: string;
}

/** Emitted on a subscription after each successful (re)join. */
export interface SubscribedEvent {
  channel: string;
  /** True if this was a resubscribe after a reconnect. */
  resubscribed: boolean;
  /** `subscribed.data.recovered`: true if every missed publication was (or is being) replayed; undefined on a fresh join. */
  recovered: boolean | undefined;
  /** Connections in the channel, per the server. */
  members: number;
  /** Top of the stream per the server (a pattern subscription has none: `{offset: 0, epoch: ''}`). */
  position: StreamPosition;
  /** A pattern subscription (`news:*`). */
  pattern?: boolean;
}

/** Emitted when a resubscribe could not recover what was missed (`recovered: false`): reload history. */
export interface GapEvent {
  channel: string;
  /** Position the client asked to recover from. */
  since: StreamPosition | null;
  /** The stream's current top (the client continues from here). */
  position: StreamPosition;
}

/** Emitted after a resubscribe once every recovered publication was delivered (server `replay_complete`). */
export interface ReplayCompleteEvent {
  channel: string;
  /** Publications replayed by the server for this resubscribe (duplicates dropped by the client included). */
  replayedCount: number;
  recovered: boolean;
}

export interface SubscriptionEvents {
  message: Publication;
  /**
   * A member joined or left: one event per member, from a `presence` frame or from each entry of a
   * `presence_diff` (its leaves first, then its joins).
   */
  presence: PresenceFrameData;
  /** `members` changed (see MembersEvent.source). */
  members: MembersEvent;
  typing: TypingFrameData & { channel: string };
  subscribed: SubscribedEvent;
  gap: GapEvent;
  replay_complete: ReplayCompleteEvent;
  /**
   * A join failed (`willRetry` says whether it is sent again; if not, the subscription is now
   * `unsubscribed`), or a server `error` frame named this channel (`attempt` 0).
   */
  error: SubscriptionError;
  /** The subscription ended: `unsubscribe()`, or its join was refused for good. */
  unsubscribed: { channel: string };
}

export interface DisconnectedEvent {
  code: number;
  reason: string;
  willReconnect: boolean;
  /** Delay before the next attempt, when `willReconnect`. */
  delayMs?: number;
}

export interface ClientEvents {
  /** Every status change (one `setStatus()`): current and previous. */
  status: { status: ClientStatus; previous: ClientStatus };
  /** The server's `connect` frame: a (re)connection is established. */
  connected: ConnectFrameData;
  /** The socket closed (or was found dead). */
  disconnected: DisconnectedEvent;
  /** A reconnect attempt is about to start (attempt counts from 1). */
  reconnect_attempt: { attempt: number };
  /** Every publication on any channel (after de-duplication). */
  message: Publication;
  private: PrivateMessage;
  broadcast: ServerFrame;
  notification: ServerFrame;
  /**
   * A user's first connection opened / last one closed: one event per user, from a single frame or from each
   * entry of a `users_diff` (its offline entries first, then its online ones). Newer servers send these only
   * to connections that opted in (option `userEvents`), and never about the connection's own user.
   */
  user_online: UserEventData;
  user_offline: UserEventData;
  /** The server is shutting down; the client reconnects by itself. */
  shutdown: { reason: string; reconnect_after_ms?: number };
  /** Server `error` frames not tied to a request, token refresh failures, bad frames. */
  error: SwitchboardError;
  /** A fresh token from `getToken()` was accepted by the server (`refresh`). */
  token_refreshed: { expiresAt: number | null };
  /** Every raw frame from the server, before routing. */
  frame: ServerFrame;
}
