import type { NodeDetails, RecentError } from '../core/ports/node-registry.js';

/** What NodeFigures reads from the node, every second and at each report. */
export interface FigureSources {
  version: string;
  broker: string;
  stats(): { connections: number; channels: number; subscriptions: number; users: number };
  brokerUp(): boolean;
  totals(): { messagesIn: number; messagesOut: number; errors: number };
  /** Local members per channel, largest first, at most `limit`. */
  channelSizes(limit: number): Array<[string, number]>;
  now?: () => number;
}

/** Samples kept (one per second): the admin dashboard's plots span 10 minutes of this node. */
const KEEP_SAMPLES = 600;
/** Samples in a registry report: enough for report intervals up to a minute. */
const REPORT_SAMPLES = 60;
const REPORT_CHANNELS = 100;
const KEEP_ERRORS = 100;
const REPORT_ERRORS = 20;

/**
 * This node's figures for the admin dashboard: a per-second sample of connections and frame rates (one timer,
 * a few additions per tick, nothing per connection), and the latest errors. `details()` is what the node
 * reports to the node registry (so every node's figures reach whichever node serves the dashboard).
 */
export class NodeFigures {
  readonly startedAt: number;
  private readonly samples: Array<[number, number, number, number]> = [];
  private readonly errors: RecentError[] = [];
  private last: { at: number; messagesIn: number; messagesOut: number } | null = null;
  private timer: NodeJS.Timeout | null = null;
  private readonly now: () => number;

  constructor(private readonly sources: FigureSources) {
    this.now = sources.now ?? Date.now;
    this.startedAt = this.now();
  }

  start(): void {
    if (this.timer !== null) return;
    this.sample();
    this.timer = setInterval(() => this.sample(), 1000);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  /** Take one sample now (the timer calls it every second). */
  sample(): void {
    const at = this.now();
    const totals = this.sources.totals();
    const connections = this.sources.stats().connections;
    const prev = this.last;
    this.last = { at, messagesIn: totals.messagesIn, messagesOut: totals.messagesOut };
    if (prev === null || at <= prev.at) return;
    const seconds = (at - prev.at) / 1000;
    const rate = (a: number, b: number) => Math.round(((a - b) / seconds) * 10) / 10;
    this.samples.push([at, connections, rate(totals.messagesIn, prev.messagesIn), rate(totals.messagesOut, prev.messagesOut)]);
    if (this.samples.length > KEEP_SAMPLES) this.samples.splice(0, this.samples.length - KEEP_SAMPLES);
  }

  /** Record an error for the dashboard's "recent errors" (the latest KEEP_ERRORS are kept). */
  recordError(e: Omit<RecentError, 'time'> & { time?: number }): void {
    this.errors.push({ ...e, time: e.time ?? this.now() });
    if (this.errors.length > KEEP_ERRORS) this.errors.splice(0, this.errors.length - KEEP_ERRORS);
  }

  /** Samples newer than `since` (epoch ms), oldest first. */
  series(since = 0): Array<[number, number, number, number]> {
    let i = this.samples.length;
    while (i > 0 && this.samples[i - 1]![0] > since) i--;
    return this.samples.slice(i);
  }

  recentErrors(limit = KEEP_ERRORS): RecentError[] {
    return this.errors.slice(-limit);
  }

  /**
   * The figures as reported to the registry (`full`: every kept sample, channel and error, for this node's own
   * dashboard answer; otherwise the last minute, top channels and latest errors).
   */
  details(full = false): NodeDetails {
    const stats = this.sources.stats();
    return {
      version: this.sources.version,
      startedAt: this.startedAt,
      broker: this.sources.broker,
      brokerUp: this.sources.brokerUp(),
      channels: stats.channels,
      subscriptions: stats.subscriptions,
      users: stats.users,
      ...this.sources.totals(),
      series: full ? this.samples.slice() : this.samples.slice(-REPORT_SAMPLES),
      topChannels: this.sources.channelSizes(full ? 1000 : REPORT_CHANNELS),
      recentErrors: this.recentErrors(full ? KEEP_ERRORS : REPORT_ERRORS),
    };
  }
}
