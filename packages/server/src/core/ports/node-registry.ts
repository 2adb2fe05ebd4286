/** Load figures a node publishes about itself (seed 000 `ws:server:{id}:stats`). */
export interface NodeStats {
  connections: number;
  /** CPU use of the process over the last report interval, 0..1 per core. */
  cpu: number;
  memoryRss: number;
  draining: boolean;
  /** Public address clients should use for this node (http.publicUrl), if configured. */
  address?: string;
  /** Figures for the admin dashboard and `/api/nodes` (absent from nodes that report none). */
  details?: NodeDetails;
}

/** One entry of a node's recent errors: an error frame sent to a client, or a warning/error it logged. */
export interface RecentError {
  /** Epoch ms. */
  time: number;
  kind: 'error_frame' | 'log';
  /** Error code of an error frame, or the log entry's `context` / error code when it has one. */
  code?: string;
  /** `warn` or `error` for log entries. */
  level?: string;
  message: string;
}

/** What a node reports about itself beyond its load (every `broker.nodeReportIntervalMs`). */
export interface NodeDetails {
  version: string;
  /** Epoch ms at which the node started. */
  startedAt: number;
  /** `broker.type`, and whether the engine's connection is up. */
  broker: string;
  brokerUp: boolean;
  channels: number;
  subscriptions: number;
  users: number;
  /** Totals since start: frames received, frames delivered, error frames sent. */
  messagesIn: number;
  messagesOut: number;
  errors: number;
  /** One sample per second, oldest first: [epoch ms, connections, frames received per s, frames delivered per s]. */
  series: Array<[number, number, number, number]>;
  /** The channels with the most local members, largest first: [channel, local members]. */
  topChannels: Array<[string, number]>;
  /** Latest errors, newest last. */
  recentErrors: RecentError[];
}

export interface NodeInfo extends NodeStats {
  nodeId: string;
  /** Epoch ms of the node's last report. */
  updatedAt: number;
}

/**
 * Registry of live nodes, for `GET /api/nodes` and `GET /api/best-node` (least-loaded, not draining).
 * Entries of a node that stops reporting disappear after the registry's TTL.
 */
export interface NodeRegistry {
  start(): Promise<void>;
  report(stats: NodeStats): Promise<void>;
  list(): Promise<NodeInfo[]>;
  best(): Promise<NodeInfo | null>;
  close(): Promise<void>;
}
