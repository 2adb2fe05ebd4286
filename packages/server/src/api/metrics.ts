import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { NodeMetrics } from '../core/ports/observability.js';
import type { NodeStats } from '../core/node.js';

/**
 * Prometheus metrics (seed 002 names) in a registry of their own, so several servers can live in one process.
 * Gauges are read from the node at scrape time: nothing is counted per connection on the hot path.
 */
export class PromMetrics implements NodeMetrics {
  readonly registry = new Registry();
  private readonly messages: Counter<'type' | 'direction'>;
  private readonly sizes: Histogram;
  private readonly durations: Histogram<'code'>;
  private readonly errors: Counter<'code'>;
  private readonly brokerErrors: Counter<'context'>;

  constructor(stats: () => NodeStats, options: { defaultMetrics?: boolean } = {}) {
    const registers = [this.registry];
    new Gauge({
      name: 'websocket_connections_total',
      help: 'Active connections on this node (WebSocket and SSE)',
      registers,
      collect() {
        this.set(stats().connections);
      },
    });
    new Gauge({ name: 'switchboard_channels', help: 'Channels with a local subscriber', registers, collect() { this.set(stats().channels); } });
    new Gauge({ name: 'switchboard_subscriptions', help: 'Channel subscriptions on this node', registers, collect() { this.set(stats().subscriptions); } });
    new Gauge({ name: 'switchboard_users', help: 'Distinct users connected to this node', registers, collect() { this.set(stats().users); } });
    this.messages = new Counter({ name: 'websocket_messages_total', help: 'Messages by type and direction', labelNames: ['type', 'direction'], registers });
    this.sizes = new Histogram({ name: 'websocket_message_size_bytes', help: 'Inbound message size in bytes', buckets: [100, 500, 1000, 5000, 10000, 50000], registers });
    this.durations = new Histogram({
      name: 'websocket_connection_duration_seconds',
      help: 'Connection duration in seconds, by close code',
      labelNames: ['code'],
      buckets: [1, 10, 60, 300, 1800, 3600, 21600, 86400],
      registers,
    });
    this.errors = new Counter({ name: 'switchboard_errors_total', help: 'Error frames sent, by code', labelNames: ['code'], registers });
    this.brokerErrors = new Counter({
      name: 'switchboard_broker_errors_total',
      help: 'Engine (Redis) errors no caller could receive, by where they happened (e.g. broker_message, broker_resubscribe, presence_refresh)',
      labelNames: ['context'],
      registers,
    });
    if (options.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry });
  }

  messageIn(type: string, bytes: number): void {
    this.messages.inc({ type, direction: 'inbound' });
    this.sizes.observe(bytes);
  }

  messagesOut(type: string, count: number): void {
    if (count > 0) this.messages.inc({ type, direction: 'outbound' }, count);
  }

  connectionClosed(durationMs: number, code: number): void {
    this.durations.observe({ code: String(code) }, durationMs / 1000);
  }

  errorSent(code: string): void {
    this.errors.inc({ code });
  }

  /** An engine error reported through the engine's onError (context: a fixed set, see EngineErrorContext). */
  brokerError(context: string): void {
    this.brokerErrors.inc({ context });
  }
}
