import type { DocumentOptions } from './document-options.js';

/** Limits enforced per connection and per node. Every field has a safe default in DEFAULT_NODE_OPTIONS. */
export interface LimitOptions {
  /** Connections on this node (0 = unlimited). Excess closes with 4022. */
  maxConnections: number;
  maxConnectionsPerUser: number;
  maxConnectionsPerIp: number;
  /** Largest accepted frame in bytes; larger WebSocket frames close with 1009. */
  maxMessageBytes: number;
  /** Deepest accepted JSON nesting. */
  maxJsonDepth: number;
  maxChannelsPerConnection: number;
  /** Pattern subscriptions (`news:*`) one connection may hold; 0 turns pattern subscriptions off. */
  maxPatternsPerConnection: number;
  maxChannelNameLength: number;
  /** Allowed channel name characters (a RegExp source, anchored by the server). */
  channelNamePattern: string;
  /** Bytes a connection may have queued unsent before it is closed as a slow consumer (4023). */
  maxQueuedBytes: number;
  rateLimit: {
    /** Token refill rate (messages per second). 0 disables the limiter. */
    perSecond: number;
    /** Bucket size. */
    burst: number;
    /** Close with 4021 after this many consecutive dropped messages. */
    closeAfterDropped: number;
  };
  /**
   * `join_channel` and `leave_channel` draw from this bucket instead of `rateLimit`, so subscribing to many
   * channels at connect never starves under the message limit (and publishing cannot starve joins).
   */
  subscribeRateLimit: {
    /** Token refill rate (joins and leaves per second). 0 disables this limiter. */
    perSecond: number;
    /** Bucket size: joins a fresh connection may send at once. */
    burst: number;
  };
  /**
   * Commands a connection may have waiting behind one that is still running (its commands take effect in the
   * order sent). Beyond it a command is refused with RATE_LIMITED (and counts towards closeAfterDropped).
   */
  maxPendingCommands: number;
}

export interface HeartbeatOptions {
  /** Server `ping` frame and WebSocket ping interval (0 disables heartbeats). */
  pingIntervalMs: number;
  /** Close with 4012 when nothing (pong, any frame) arrives this long after a ping. */
  pongTimeoutMs: number;
  /** Close with 4012 after this long without an application message from the client (0 = never). */
  idleTimeoutMs: number;
}

/** Per-namespace channel behaviour. A namespace is the channel name part before the first `:`. */
export interface NamespaceOptions {
  /** History kept for recovery: number of publications and their lifetime. */
  historySize: number;
  historyTtlMs: number;
  /** Deliver the latest publication to a new subscriber before live ones (snapshot channels). */
  snapshot: boolean;
  /** Store publications durably (needs a configured store). */
  persist: boolean;
  /**
   * Presence state: members are recorded (listed by `presence` requests, counted in `subscribed.members` and
   * in pushed counts). Off: no state, no announcements, no counts for the namespace.
   */
  presence: boolean;
  /** Join/leave announcements to members (`presence` / `presence_diff` frames), coalesced per batch. */
  joinLeave: boolean;
  /** Above this many members (cluster-wide) announcements stop; only counts are pushed. 0 = no cap. */
  maxAnnouncedMembers: number;
  /** Member counts (`presence_count`) are pushed when they changed, at most once per this many ms (0: never). */
  countIntervalMs: number;
  /** Publishing requires having joined the channel. */
  publishRequiresMembership: boolean;
  /**
   * `"yjs"`: every channel of the namespace is a Yjs document (docs/documents.md): opened with `doc_open` or
   * the y-websocket endpoint, not joined or published to. Absent or null: a plain channel namespace.
   */
  documents?: 'yjs' | null;
  /**
   * Binary app payloads (seed 002's binary messages): a binary WebSocket frame `varstring channel + bytes`
   * naming a channel of the namespace is a publish of those bytes, as the publication data
   * `{"binary": "<base64>"}` (docs/protocol.md "Binary frames"). Default false: such frames are refused with
   * BINARY_NOT_SUPPORTED.
   */
  binary?: boolean;
}

export interface NodeOptions {
  limits: LimitOptions;
  heartbeat: HeartbeatOptions;
  /** Typing indicators stop by themselves after this long. */
  typingTimeoutMs: number;
  /** Defaults for every namespace, and overrides by namespace name. */
  channelDefaults: NamespaceOptions;
  namespaces: Record<string, Partial<NamespaceOptions>>;
  /** Window in which a repeated idempotency key is a no-op. */
  idempotencyWindowMs: number;
  /** Max publications replayed in one recovery. */
  maxRecoveryPublications: number;
  /** Whether the pattern `*` (every channel) may be subscribed to (channel rules still apply to it). */
  globalPattern: boolean;
  /**
   * Presence announcements and user events of a channel go out at the end of the event-loop turn; while it keeps
   * changing, at most once per this many ms (one coalesced diff per channel per batch per node).
   */
  presenceBatchMs: number;
  /** Settings of document channels (defaults: DEFAULT_DOCUMENT_OPTIONS). */
  documents?: Partial<DocumentOptions>;
}

export const DEFAULT_NODE_OPTIONS: NodeOptions = {
  limits: {
    maxConnections: 0,
    maxConnectionsPerUser: 100,
    maxConnectionsPerIp: 0,
    maxMessageBytes: 64 * 1024,
    maxJsonDepth: 16,
    maxChannelsPerConnection: 100,
    maxPatternsPerConnection: 10,
    maxChannelNameLength: 200,
    channelNamePattern: '[A-Za-z0-9_\\-:.@/=+,#~$!]+',
    maxQueuedBytes: 1024 * 1024,
    rateLimit: { perSecond: 10, burst: 20, closeAfterDropped: 50 },
    subscribeRateLimit: { perSecond: 20, burst: 100 },
    maxPendingCommands: 512,
  },
  heartbeat: { pingIntervalMs: 25_000, pongTimeoutMs: 10_000, idleTimeoutMs: 0 },
  typingTimeoutMs: 5_000,
  channelDefaults: {
    historySize: 1000,
    historyTtlMs: 300_000,
    snapshot: false,
    persist: false,
    presence: true,
    joinLeave: true,
    maxAnnouncedMembers: 100,
    countIntervalMs: 1000,
    publishRequiresMembership: false,
  },
  namespaces: {},
  idempotencyWindowMs: 60_000,
  maxRecoveryPublications: 1000,
  globalPattern: false,
  presenceBatchMs: 100,
};
