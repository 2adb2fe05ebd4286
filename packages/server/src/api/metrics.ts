import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { NodeMetrics } from '../core/ports/observability.js';
import type { NodeStats } from '../core/node.js';

/** The engine as `/health` reports it: connected and answering, connection lost, or connected but silent. */
export type BrokerStatusName = 'up' | 'down' | 'unresponsive';

export interface PromMetricsOptions {
  /** Register Node's default process metrics (`process_*`, `nodejs_*`; default true). */
  defaultMetrics?: boolean;
  /** Current engine status, read at scrape time (`switchboard_broker_up`, `switchboard_broker_status`). */
  brokerStatus?: () => Promise<BrokerStatusName> | BrokerStatusName;
  /** Labels of `switchboard_info`. */
  info?: { nodeId: string; broker: string; version: string };
}

/**
 * Seed 002's metric names, still exported (same values) so existing dashboards and alerts keep working:
 * deprecated, use the `switchboard_*` name on the right (docs/operations.md, "Metrics").
 */
export const LEGACY_METRIC_NAMES: Readonly<Record<string, string>> = {
  websocket_connections_total: 'switchboard_connections',
  websocket_messages_total: 'switchboard_messages_total',
  websocket_message_size_bytes: 'switchboard_message_size_bytes',
  websocket_connection_duration_seconds: 'switchboard_connection_duration_seconds',
};

const SIZE_BUCKETS = [100, 500, 1000, 5000, 10000, 50000];
const DURATION_BUCKETS = [1, 10, 60, 300, 1800, 3600, 21600, 86400];
/** Publish-to-delivery latency buckets, seconds (0.5 ms .. 5 s). */
const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

/**
 * Prometheus metrics in a registry of their own, so several servers can live in one process. Names follow the
 * Prometheus conventions: a `switchboard_` prefix, base units (`_seconds`, `_bytes`), `_total` on counters only.
 * Gauges are read from the node at scrape time: nothing is counted per connection on the hot path. Also keeps
 * plain totals for the admin dashboard (`totals()`).
 */
export class PromMetrics implements NodeMetrics {
  readonly registry = new Registry();
  /**
   * Frames by type since start, per direction. Types are the server's names for frames (commands that passed
   * the schema, `invalid`, document message kinds), never client-chosen strings: the maps stay small.
   */
  private readonly inByType = new Map<string, number>();
  private readonly outByType = new Map<string, number>();
  private readonly sizes: Histogram[];
  private readonly durations: Array<Histogram<'code'>>;
  private readonly errors: Counter<'code'>;
  private readonly brokerErrors: Counter<'context'>;
  private readonly delivery: Histogram;
  private totalIn = 0;
  private totalOut = 0;
  private totalErrors = 0;
  /** Called for every error frame sent (the admin dashboard's recent errors). */
  onErrorSent: ((code: string) => void) | null = null;

  constructor(stats: () => NodeStats, options: PromMetricsOptions = {}) {
    const registers = [this.registry];
    const connections = function (this: Gauge) {
      this.set(stats().connections);
    };
    new Gauge({ name: 'switchboard_connections', help: 'Open connections on this node (WebSocket and SSE)', registers, collect: connections });
    new Gauge({ name: 'websocket_connections_total', help: 'Deprecated alias of switchboard_connections (seed name)', registers, collect: connections });
    new Gauge({ name: 'switchboard_channels', help: 'Channels with a local subscriber', registers, collect() { this.set(stats().channels); } });
    new Gauge({ name: 'switchboard_subscriptions', help: 'Channel subscriptions on this node', registers, collect() { this.set(stats().subscriptions); } });
    new Gauge({ name: 'switchboard_users', help: 'Distinct users connected to this node', registers, collect() { this.set(stats().users); } });
    new Gauge({ name: 'switchboard_draining', help: '1 while the node drains or shuts down (refuses new connections)', registers, collect() { this.set(stats().draining ? 1 : 0); } });
    // Counted in plain maps on the hot path (per frame: no label objects, no label hashing), copied into the
    // counters when scraped.
    const tallies = { inbound: this.inByType, outbound: this.outByType };
    const copyTallies = function (this: Counter<'type' | 'direction'>) {
      this.reset();
      for (const [direction, byType] of Object.entries(tallies)) {
        for (const [type, n] of byType) this.inc({ type, direction }, n);
      }
    };
    new Counter({ name: 'switchboard_messages_total', help: 'Frames received (inbound) and delivered (outbound), by type', labelNames: ['type', 'direction'], registers, collect: copyTallies });
    new Counter({ name: 'websocket_messages_total', help: 'Deprecated alias of switchboard_messages_total (seed name)', labelNames: ['type', 'direction'], registers, collect: copyTallies });
    this.sizes = [
      new Histogram({ name: 'switchboard_message_size_bytes', help: 'Inbound frame size in bytes', buckets: SIZE_BUCKETS, registers }),
      new Histogram({ name: 'websocket_message_size_bytes', help: 'Deprecated alias of switchboard_message_size_bytes (seed name)', buckets: SIZE_BUCKETS, registers }),
    ];
    this.durations = [
      new Histogram({ name: 'switchboard_connection_duration_seconds', help: 'Connection duration in seconds, by close code', labelNames: ['code'], buckets: DURATION_BUCKETS, registers }),
      new Histogram({ name: 'websocket_connection_duration_seconds', help: 'Deprecated alias of switchboard_connection_duration_seconds (seed name)', labelNames: ['code'], buckets: DURATION_BUCKETS, registers }),
    ];
    this.errors = new Counter({ name: 'switchboard_errors_total', help: 'Error frames sent, by code', labelNames: ['code'], registers });
    this.brokerErrors = new Counter({
      name: 'switchboard_broker_errors_total',
      help: 'Engine (Redis) errors no caller could receive, by where they happened (e.g. broker_message, broker_resubscribe, presence_refresh)',
      labelNames: ['context'],
      registers,
    });
    this.delivery = new Histogram({
      name: 'switchboard_publication_delivery_seconds',
      help: 'Publish-to-delivery latency: from the broker accepting a publication to this node queuing it on its subscribers (once per publication per node)',
      buckets: LATENCY_BUCKETS,
      registers,
    });
    const brokerStatus = options.brokerStatus;
    if (brokerStatus !== undefined) {
      new Gauge({
        name: 'switchboard_broker_up',
        help: '1 when the engine is connected and answers (broker_status "up" in /health), else 0',
        registers,
        async collect() {
          this.set((await brokerStatus()) === 'up' ? 1 : 0);
        },
      });
      new Gauge({
        name: 'switchboard_broker_status',
        help: 'Engine status as /health reports it: 1 for the current status (up, down, unresponsive), 0 for the others',
        labelNames: ['status'],
        registers,
        async collect() {
          const now = await brokerStatus();
          for (const s of ['up', 'down', 'unresponsive'] as const) this.set({ status: s }, s === now ? 1 : 0);
        },
      });
    }
    if (options.info !== undefined) {
      const info = new Gauge({ name: 'switchboard_info', help: 'Always 1; labels: node id, engine, version', labelNames: ['node_id', 'broker', 'version'], registers });
      info.set({ node_id: options.info.nodeId, broker: options.info.broker, version: options.info.version }, 1);
    }
    // Event-loop lag sampled every 100 ms, not prom-client's default 10 ms: a 10 ms timer is most of an idle
    // node's CPU (0.45 % vs 0.15 % of a core, docs/benchmarks.md), and a scrape's lag percentiles need no more.
    if (options.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: 100 });
  }

  messageIn(type: string, bytes: number): void {
    this.totalIn++;
    this.inByType.set(type, (this.inByType.get(type) ?? 0) + 1);
    for (const h of this.sizes) h.observe(bytes);
  }

  messagesOut(type: string, count: number): void {
    if (count <= 0) return;
    this.totalOut += count;
    this.outByType.set(type, (this.outByType.get(type) ?? 0) + count);
  }

  connectionClosed(durationMs: number, code: number): void {
    for (const h of this.durations) h.observe({ code: String(code) }, durationMs / 1000);
  }

  errorSent(code: string): void {
    this.totalErrors++;
    this.errors.inc({ code });
    this.onErrorSent?.(code);
  }

  publicationDelivered(latencyMs: number): void {
    this.delivery.observe(Math.max(0, latencyMs) / 1000);
  }

  /** An engine error reported through the engine's onError (context: a fixed set, see EngineErrorContext). */
  brokerError(context: string): void {
    this.brokerErrors.inc({ context });
  }

  /** Totals since start: frames received, frames delivered, error frames sent. */
  totals(): { messagesIn: number; messagesOut: number; errors: number } {
    return { messagesIn: this.totalIn, messagesOut: this.totalOut, errors: this.totalErrors };
  }
}
