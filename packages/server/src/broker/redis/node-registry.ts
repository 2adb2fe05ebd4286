import type { Redis } from 'ioredis';
import { connectWithin, createFailFastClient, quitOrDisconnect, DEFAULT_COMMAND_TIMEOUT_MS, resolvePrefix, type RedisConnectionOptions } from './connection.js';
import { BrokerUnavailableError, firstPipelineError, reportEngineError, toBrokerError, type EngineErrorHandler } from './errors.js';
import { RedisKeys } from './keys.js';
import type { NodeInfo, NodeRegistry, NodeStats } from '../../core/ports/node-registry.js';
import { DEFAULT_NODE_TIMEOUT_MS, deadOwners, ownerNodeId, parseHeartbeats } from './redis-presence-store.js';
import { HEARTBEAT_LUA } from './scripts.js';

export type { NodeStats, NodeInfo } from '../../core/ports/node-registry.js';

export interface RedisNodeRegistryOptions extends RedisConnectionOptions {
  nodeId: string;
  /** A report lives this long (default 120 s): a node that stops reporting drops out of list(). */
  ttlMs?: number;
  /** list() leaves out a node whose presence heartbeats (RedisPresenceStore, same prefix) are all older than
   * this (default 3000; 0: only the report ttl counts). A node that never beat is judged by its report alone. */
  nodeTimeoutMs?: number;
  startTimeoutMs?: number;
  /** Called with errors no caller can receive (failed pruning of dead ids, failed cleanup on close); see
   * EngineErrorContext. Default: ignored. */
  onError?: EngineErrorHandler;
}

/**
 * Live node directory for load balancing. Each node calls `report()` periodically (well under ttlMs); the
 * stats hash expires with the TTL, the id set is pruned by readers. No KEYS/SCAN. A killed node drops out
 * before its report expires, as soon as its presence heartbeats are older than nodeTimeoutMs (one extra read
 * of O(nodes) per list(), in the same round trip).
 */
export class RedisNodeRegistry implements NodeRegistry {
  readonly nodeId: string;
  private readonly keys: RedisKeys;
  private readonly cmd: Redis & { sbBeat(...args: (string | number)[]): Promise<Array<string | number>> };
  private readonly ttlMs: number;
  private readonly nodeTimeoutMs: number;
  private readonly startTimeoutMs: number;
  private readonly onError: EngineErrorHandler;

  constructor(opts: RedisNodeRegistryOptions) {
    this.nodeId = opts.nodeId;
    this.keys = new RedisKeys(resolvePrefix(opts.keyPrefix));
    this.ttlMs = opts.ttlMs ?? 120_000;
    this.nodeTimeoutMs = Math.max(0, Math.floor(opts.nodeTimeoutMs ?? DEFAULT_NODE_TIMEOUT_MS));
    this.startTimeoutMs = opts.startTimeoutMs ?? Math.max(5000, opts.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS);
    const onError = opts.onError;
    this.onError = onError === undefined ? () => {} : (err, context, details) => reportEngineError(onError, err, context, details);
    this.cmd = createFailFastClient(opts, `sb:${opts.nodeId}:registry`) as RedisNodeRegistry['cmd'];
    this.cmd.defineCommand('sbBeat', { numberOfKeys: 2, lua: HEARTBEAT_LUA });
  }

  async start(): Promise<void> {
    try {
      await connectWithin(this.cmd, this.startTimeoutMs);
    } catch (err) {
      throw new BrokerUnavailableError('registry start', err);
    }
  }

  /** Write this node's stats (hash with TTL) and register its id. */
  async report(stats: NodeStats): Promise<void> {
    const key = this.keys.nodeStats(this.nodeId);
    const fields: Record<string, string> = {
      connections: String(stats.connections),
      cpu: String(stats.cpu),
      memoryRss: String(stats.memoryRss),
      draining: stats.draining ? '1' : '0',
      updatedAt: String(Date.now()),
    };
    if (stats.address !== undefined) fields.address = stats.address;
    if (stats.details !== undefined) fields.details = JSON.stringify(stats.details);
    try {
      const res = await this.cmd.multi().del(key).hset(key, fields).pexpire(key, this.ttlMs).sadd(this.keys.nodeSet(), this.nodeId).exec();
      for (const [err] of res ?? []) if (err) throw err;
    } catch (err) {
      throw toBrokerError('registry report', err);
    }
  }

  /** Every node with a live report, sorted by node id. */
  async list(): Promise<NodeInfo[]> {
    try {
      const [ids, dead] = await Promise.all([
        this.cmd.smembers(this.keys.nodeSet()).then((x) => x.sort()),
        this.deadNodes(),
      ]);
      if (ids.length === 0) return [];
      const p = this.cmd.pipeline();
      for (const id of ids) p.hgetall(this.keys.nodeStats(id));
      const res = (await p.exec()) ?? [];
      const out: NodeInfo[] = [];
      const stale: string[] = [];
      res.forEach(([err, v], i) => {
        if (err) throw err;
        const h = v as Record<string, string>;
        if (h.updatedAt === undefined) { stale.push(ids[i]!); return; }
        if (dead.has(ids[i]!)) return; // killed: its report has not expired yet
        const info: NodeInfo = {
          nodeId: ids[i]!,
          connections: Number(h.connections) || 0,
          cpu: Number(h.cpu) || 0,
          memoryRss: Number(h.memoryRss) || 0,
          draining: h.draining === '1',
          updatedAt: Number(h.updatedAt),
        };
        if (h.address !== undefined) info.address = h.address;
        if (h.details !== undefined) {
          try {
            info.details = JSON.parse(h.details) as NodeInfo['details'];
          } catch {
            // A foreign or truncated value: the node is listed without its figures.
          }
        }
        out.push(info);
      });
      if (stale.length) this.cmd.srem(this.keys.nodeSet(), ...stale).catch((err: unknown) => this.onError(err, 'registry_prune'));
      return out;
    } catch (err) {
      throw toBrokerError('registry list', err);
    }
  }

  /** Node ids all of whose presence owners stopped beating more than nodeTimeoutMs ago. */
  private async deadNodes(): Promise<Set<string>> {
    const out = new Set<string>();
    if (this.nodeTimeoutMs <= 0) return out;
    const hb = parseHeartbeats(await this.cmd.sbBeat(this.keys.heartbeats(), this.keys.heartbeatGrace(), '', this.nodeTimeoutMs, 0));
    const dead = new Set(deadOwners(hb, this.nodeTimeoutMs));
    const alive = new Set<string>();
    for (const owner of hb.beats.keys()) {
      const node = ownerNodeId(owner);
      if (dead.has(owner)) out.add(node); else alive.add(node);
    }
    for (const node of alive) out.delete(node);
    return out;
  }

  /** The least-loaded non-draining node (fewest connections, then lower cpu, then node id), or null. */
  async best(): Promise<NodeInfo | null> {
    const nodes = (await this.list()).filter((n) => !n.draining);
    nodes.sort((a, b) => a.connections - b.connections || a.cpu - b.cpu || (a.nodeId < b.nodeId ? -1 : 1));
    return nodes[0] ?? null;
  }

  /** Remove this node's report (graceful shutdown) and disconnect. */
  async close(): Promise<void> {
    if (this.cmd.status === 'ready') {
      try {
        const failed = firstPipelineError(await this.cmd.multi().del(this.keys.nodeStats(this.nodeId)).srem(this.keys.nodeSet(), this.nodeId).exec());
        if (failed) throw failed;
      } catch (err) {
        // Best effort: the entry expires after ttlMs anyway.
        this.onError(err, 'registry_close');
      }
    }
    await quitOrDisconnect(this.cmd);
  }
}
