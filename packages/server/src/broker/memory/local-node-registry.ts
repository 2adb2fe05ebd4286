import type { NodeInfo, NodeRegistry, NodeStats } from '../../core/ports/node-registry.js';

/** The single-process registry: only this node. */
export class LocalNodeRegistry implements NodeRegistry {
  private last: NodeInfo | null = null;
  constructor(private readonly nodeId: string) {}
  async start(): Promise<void> {}
  async report(stats: NodeStats): Promise<void> {
    this.last = { ...stats, nodeId: this.nodeId, updatedAt: Date.now() };
  }
  async list(): Promise<NodeInfo[]> {
    return this.last === null ? [] : [this.last];
  }
  async best(): Promise<NodeInfo | null> {
    return this.last !== null && !this.last.draining ? this.last : null;
  }
  async close(): Promise<void> {}
}
