/**
 * Durable store contracts: the channel message archive and the per-user offline inbox.
 *
 * Core depends on these interfaces only; `store/sqlite` (embedded default) and `store/postgres` implement them
 * and `store/factory.ts` wires one of them. Every method is async and rejects with a `StoreError`
 * (see ./errors.ts) whose `code` is one of `StoreErrorCode`. The shared contract suite in
 * test/store/store-contract.ts runs against every implementation.
 */

/** Stable codes carried by every error a store rejects with. */
export type StoreErrorCode =
  /** The backend is unreachable, locked by another process, or failed unexpectedly. Retry later. */
  | 'STORE_UNAVAILABLE'
  /** The store was closed; the call was not attempted. */
  | 'STORE_CLOSED'
  /** `append` of (channel, epoch, offset) that already holds a DIFFERENT message_id. */
  | 'STORE_CONFLICT'
  /** An argument is out of range (negative limit, non-integer offset, empty channel, ...). */
  | 'STORE_INVALID_ARGUMENT';

/** One channel publication as archived. All fields are stored and returned verbatim. */
export interface StoredPublication {
  channel: string;
  /** Offset in the channel stream (>= 1), unique per (channel, epoch). */
  offset: number;
  /** Stream epoch the offset belongs to. */
  epoch: string;
  /** Envelope `message_id` of the frame. */
  messageId: string;
  /** Envelope `sender_id` (null for server-originated publications). */
  senderId: string | null;
  /** Server frame JSON text, stored as is (the store never parses it). */
  frame: string;
  /** Milliseconds since the Unix epoch. */
  createdAt: number;
}

/**
 * A history page request. Pages are taken from ONE stream of the channel: `epoch` if given, otherwise the
 * epoch of the channel's newest record (its current stream). Order:
 * - `after` given  -> OLDEST FIRST: records with offset > after (and < before, if also given), ascending.
 *                     This is the recovery form ("everything since my position").
 * - otherwise      -> NEWEST FIRST: records with offset < before (or the newest records when `before` is
 *                     absent), descending. This is the "load older messages" form.
 * `skip` drops that many records from the start of the page order before `limit` applies; with neither
 * cursor it is seed 000's `get_chat_history(channel, limit, offset)`: skip the `offset` newest messages.
 */
export interface MessageHistoryQuery {
  /** 1..1000 (implementations clamp larger values to 1000). */
  limit: number;
  before?: number;
  after?: number;
  skip?: number;
  epoch?: string;
}

export interface MessageHistoryPage {
  /** In the order described on `MessageHistoryQuery`. */
  records: StoredPublication[];
  /** True when more records exist past the last one returned, in the page's direction. */
  hasMore: boolean;
}

/** Retention rule; both parts may be combined (a record goes when either says so). */
export interface PruneOptions {
  /** Delete records created more than this many ms before now. */
  olderThanMs?: number;
  /** Keep at most this many newest records per channel (across epochs, by insertion order). */
  keepPerChannel?: number;
}

/** The durable archive of channel publications (seed 000 ChatService history; durable channels). */
export interface MessageStore {
  /** Create or upgrade the schema (idempotent; safe when several nodes start at once). */
  migrate(): Promise<void>;
  /**
   * Archive one publication. Resolves once it is durable (committed). Appending the same
   * (channel, epoch, offset) again with the same messageId is a no-op (retries are safe); with another
   * messageId it rejects with STORE_CONFLICT.
   */
  append(rec: StoredPublication): Promise<void>;
  /** Archive several publications in one transaction (all or nothing); same duplicate rules as `append`. */
  appendMany?(recs: readonly StoredPublication[]): Promise<void>;
  /** A page of history; see `MessageHistoryQuery` for order and cursors. Unknown channels give an empty page. */
  history(channel: string, query: MessageHistoryQuery): Promise<MessageHistoryPage>;
  /** The channel's most recently appended record (its current stream position), or null. */
  latest(channel: string): Promise<StoredPublication | null>;
  /** Apply retention; resolves to the number of records deleted. */
  prune(options: PruneOptions): Promise<number>;
  /** Release the backend. Later calls reject with STORE_CLOSED. Idempotent. */
  close(): Promise<void>;
}

/** One undelivered notification for a user (seed 004 "pending notifications on connect"). */
export interface InboxItem {
  /** Caller-chosen id, unique per user; putting an existing id again is a no-op. */
  id: string;
  /** Server frame JSON text, delivered as is. */
  frame: string;
  /** Milliseconds since the Unix epoch; defines delivery order (ties: insertion order). */
  createdAt: number;
  /** Milliseconds since the Unix epoch after which the item is never delivered; null = never expires. */
  expiresAt: number | null;
}

/** Per-user offline inbox: items wait here until the user connects and acknowledges them. */
export interface InboxStore {
  migrate(): Promise<void>;
  /**
   * Store an item. The inbox is bounded per user: after the insert, expired items of the user are removed
   * and then the oldest items beyond `maxPerUser` (configured on the store) are dropped.
   */
  put(userId: string, item: InboxItem): Promise<void>;
  /** Up to `limit` unexpired items of the user, oldest first (createdAt, then insertion order). */
  pending(userId: string, limit: number): Promise<InboxItem[]>;
  /** Remove the user's items with these ids; resolves to how many were removed. Unknown ids are ignored. */
  ack(userId: string, ids: readonly string[]): Promise<number>;
  /** Delete every expired item of every user; resolves to how many were removed. */
  purgeExpired(): Promise<number>;
  close(): Promise<void>;
}
