/** Load figures a node publishes about itself (seed 000 `ws:server:{id}:stats`). */
export interface NodeStats {
  connections: number;
  /** CPU use of the process over the last report interval, 0..1 per core. */
  cpu: number;
  memoryRss: number;
  draining: boolean;
  /** Public address clients should use for this node (http.publicUrl), if configured. */
  address?: string;
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
