/**
 * Wire messages. Every frame is one JSON text frame.
 *
 * Client -> server: `{ "type": T, "data": {...}, "id"?: string|number }`. An `id` is echoed on the reply
 * (`ok`, `subscribed`, `history`, ... or `error`) so clients can correlate requests.
 *
 * Server -> client: the envelope of seed 000 (`type, data, timestamp, message_id, sender_id, recipient_id,
 * channel`) plus `seq` (per-channel offset) and `epoch` on channel publications, and `id` on replies.
 */

/** Identifies a position in a channel stream: a publication offset within one stream epoch. */
export interface StreamPosition {
  /** Offset of the last publication in the stream (0 = empty). Increases by one per publication. */
  offset: number;
  /** Changes whenever the stream's history is lost (restart of a memory broker, expiry): offsets restart. */
  epoch: string;
}

export type RequestId = string | number;

export interface JoinChannelData {
  /** A channel, or a pattern: `prefix:*` (every channel starting with `prefix:`), `*` (every channel, if allowed). */
  channel: string;
  /** Recover publications after this position (see docs/protocol.md "Recovery"). */
  since?: StreamPosition;
  /** Patterns only: the last position seen per concrete channel; each is recovered like `since`. */
  positions?: Record<string, StreamPosition>;
}

export interface ChannelData { channel: string }

export interface PublishData {
  channel: string;
  /** Do not echo the publication back to the sending connection (default false: echoed, as in seed 000). */
  exclude_self?: boolean;
  /** Makes a retried publish a no-op inside the dedupe window. */
  idempotency_key?: string;
  [key: string]: unknown;
}

export interface PrivateMessageData {
  recipient_id: string;
  [key: string]: unknown;
}

export interface TypingData { channel: string; is_typing: boolean }

export interface HistoryData {
  channel: string;
  limit?: number;
  /** Publications with offset < before (newest first pages). */
  before?: number;
  /** Publications with offset > after (oldest first pages). */
  after?: number;
  /** Seed 000 form: skip this many newest publications. */
  offset?: number;
}

/** Union of client message type names accepted by the server. */
export type ClientMessageType =
  | 'join_channel' | 'subscribe'
  | 'leave_channel' | 'unsubscribe'
  | 'message' | 'publish'
  | 'private_message'
  | 'typing'
  | 'heartbeat' | 'ping' | 'pong'
  | 'online_users'
  | 'presence'
  | 'history'
  | 'broadcast'
  | 'refresh'
  | 'auth_response'
  | 'ack'
  | 'response'
  /** Open / close a Yjs document channel on this connection (docs/documents.md). */
  | 'doc_open' | 'doc_close';

export interface ClientMessage<T extends ClientMessageType = ClientMessageType, D = Record<string, unknown>> {
  type: T;
  data?: D;
  id?: RequestId;
}

/** Server frame type names. */
export type ServerFrameType =
  | 'connect'
  | 'message'
  | 'private'
  | 'broadcast'
  | 'presence'
  /** Several channel presence changes coalesced into one frame (PresenceDiffFrameData). */
  | 'presence_diff'
  /** A channel's member count changed (PresenceCountFrameData). */
  | 'presence_count'
  | 'typing'
  | 'user_online'
  | 'user_offline'
  /** Several user_online / user_offline coalesced into one frame (UsersDiffFrameData). */
  | 'users_diff'
  | 'online_users'
  | 'subscribed'
  | 'unsubscribed'
  | 'ok'
  | 'error'
  | 'ping'
  | 'pong'
  | 'history'
  | 'replay_complete'
  | 'snapshot'
  | 'notification'
  | 'auth_challenge'
  | 'request'
  | 'shutdown'
  /** SSE only: the `connect` frame as named on an event stream. */
  | 'connected'
  /** SSE only: last event before the server ends the stream (`code`, `reason`, `reconnect`). */
  | 'close'
  /** `?batch=1` connections: the frames of one server flush, `{"type":"batch","messages":[frame, ...]}`. */
  | 'batch'
  /** Reply to `doc_open` (DocOpenedFrameData); the document's binary frames follow. */
  | 'doc_opened'
  /** A document history entry (history of a document channel: its operation log). */
  | 'doc_update';

/** The server envelope (seed 000 WebSocketMessage) with Switchboard's additions. */
export interface ServerFrame<D = Record<string, unknown>> {
  type: ServerFrameType;
  data: D;
  /** ISO-8601 time the server created the frame. */
  timestamp: string;
  message_id: string;
  sender_id?: string | null;
  recipient_id?: string | null;
  channel?: string | null;
  /** Channel offset of a publication (channel `message` frames only). */
  seq?: number;
  /** Stream epoch the `seq` belongs to. */
  epoch?: string;
  /** True on publications sent as part of a recovery replay. */
  replayed?: boolean;
  /** Echo of the client request id on replies. */
  id?: RequestId;
}

export interface ErrorFrameData {
  code: string;
  message: string;
  /** Retrying can succeed (RATE_LIMITED, BROKER_UNAVAILABLE, TIMEOUT, ...): see TEMPORARY_ERRORS. */
  temporary: boolean;
  details?: unknown;
}

export interface ConnectFrameData {
  connection_id: string;
  status: 'connected';
  server_time: string;
  user_id: string | null;
  username: string | null;
  anonymous: boolean;
  node_id: string;
  /** Server ping interval in ms; the client must answer `ping` with `pong` within pong_timeout_ms. */
  ping_interval_ms: number;
  pong_timeout_ms: number;
}

export interface PresenceMember {
  connection_id: string;
  user_id: string | null;
  username: string | null;
}

export interface PresenceFrameData extends PresenceMember {
  action: 'joined' | 'left';
  channel: string;
}

/**
 * `presence_diff`: several presence changes of one channel in one frame (a single change is sent as a
 * `presence` frame). Above the namespace's announced-member cap the server sends no announcements, only
 * `presence_count`.
 */
export interface PresenceDiffFrameData {
  channel: string;
  joins: PresenceMember[];
  leaves: PresenceMember[];
}

/** `presence_count`: connections in the channel, pushed when it changed (at most once per count interval). */
export interface PresenceCountFrameData {
  channel: string;
  members: number;
}

/** `presence` request: one page of a channel's members (`cursor` from the previous reply's `next_cursor`). */
export interface PresenceRequestData {
  channel: string;
  cursor?: string;
  /** Members per page (server default 100, max 1000). */
  limit?: number;
}

/** Reply to a `presence` request. */
export interface PresenceReplyData {
  channel: string;
  members: PresenceMember[];
  /** Pass back as `cursor` for the next page; null (or absent, from older servers) when complete. */
  next_cursor?: string | null;
}

/** Data of `user_online` / `user_offline`, and one entry of a `users_diff`. */
export interface UserEventData {
  user_id: string;
  username: string | null;
}

/**
 * `users_diff`: several user events in one frame (a single one is sent as `user_online` / `user_offline`).
 * Sent only to connections that opted in (joined `$users`, or connected with `?user_events=1`).
 */
export interface UsersDiffFrameData {
  online: UserEventData[];
  offline: UserEventData[];
}

export interface TypingFrameData {
  user_id: string | null;
  username: string | null;
  is_typing: boolean;
  typing_users: string[];
}

export interface OnlineUser { user_id: string; username: string | null; connections: number }

export interface SubscribedFrameData {
  channel: string;
  offset: number;
  epoch: string;
  /** Present when the join asked for recovery: true if every missed publication was replayed. */
  recovered?: boolean;
  members: number;
}

/** `doc_opened`: the reply to `doc_open`. Binary document frames of the channel follow (docs/documents.md). */
export interface DocOpenedFrameData {
  channel: string;
  /** False: the connection may read the document, not change it (its updates are dropped, READ_ONLY). */
  writable: boolean;
  /**
   * Largest binary frame of this document the server accepts on this connection: room for an update of
   * documents.maxUpdateBytes plus the channel name, and at least limits.maxMessageBytes. Larger frames close
   * the connection with 1009.
   */
  max_message_bytes: number;
}
