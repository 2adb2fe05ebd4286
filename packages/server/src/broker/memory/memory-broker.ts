import type { StreamPosition } from '@switchboard/protocol';
import type {
  Broker,
  BrokerHandler,
  ControlMessage,
  HistoryQuery,
  HistoryResult,
  Publication,
  PublishOptions,
} from '../../core/ports/broker.js';
import { shortId } from '../../core/ids.js';

interface Stream {
  epoch: string;
  offset: number;
  /** Retained publications, oldest first, offsets contiguous. */
  items: Publication[];
  /** Epoch ms of the last publish; the stream is forgotten (new epoch) once idle past its ttl. */
  touchedAt: number;
  ttlMs: number;
}

/**
 * The embedded single-process engine: history in memory (bounded by size and ttl per namespace), delivery by
 * direct callback. A restart loses every stream, so each process start gives every channel a new epoch and
 * clients recovering across it are told `recovered: false`.
 */
export class MemoryBroker implements Broker {
  readonly nodeId: string;
  private handler: BrokerHandler | null = null;
  private readonly streams = new Map<string, Stream>();
  private readonly subscribed = new Set<string>();
  private readonly idempotent = new Map<string, { pub: Publication; expiresAt: number }>();
  private sweepTimer: NodeJS.Timeout | null = null;

  constructor(options: { nodeId?: string; now?: () => number } = {}) {
    this.nodeId = options.nodeId ?? shortId();
    this.now = options.now ?? Date.now;
  }

  private readonly now: () => number;

  async start(handler: BrokerHandler): Promise<void> {
    this.handler = handler;
    this.sweepTimer = setInterval(() => this.sweep(), 10_000);
    this.sweepTimer.unref();
  }

  async publish(channel: string, frame: string, options: PublishOptions): Promise<Publication> {
    const now = this.now();
    let idemKey: string | undefined;
    if (options.idempotencyKey !== undefined) {
      idemKey = channel + '\u0000' + options.idempotencyKey;
      const seen = this.idempotent.get(idemKey);
      if (seen !== undefined && seen.expiresAt > now) return seen.pub;
    }
    const stream = this.stream(channel, now, options.history.ttlMs);
    stream.offset += 1;
    stream.touchedAt = now;
    stream.ttlMs = options.history.ttlMs;
    const pub: Publication = { channel, offset: stream.offset, epoch: stream.epoch, frame, time: now };
    if (options.excludeConnectionId !== undefined) pub.excludeConnectionId = options.excludeConnectionId;
    if (options.history.size > 0) {
      stream.items.push(pub);
      if (stream.items.length > options.history.size) stream.items.splice(0, stream.items.length - options.history.size);
    }
    if (idemKey !== undefined) {
      this.idempotent.set(idemKey, { pub, expiresAt: now + (options.idempotencyWindowMs ?? 60_000) });
    }
    if (this.subscribed.has(channel)) this.handler?.onPublication(pub);
    return pub;
  }

  async publishEphemeral(channel: string, frame: string, excludeConnectionId?: string): Promise<void> {
    if (this.subscribed.has(channel)) this.handler?.onEphemeral(channel, frame, excludeConnectionId);
  }

  async publishControl(msg: ControlMessage): Promise<void> {
    this.handler?.onControl({ ...msg, originNode: this.nodeId });
  }

  async subscribe(channel: string): Promise<void> {
    this.subscribed.add(channel);
  }

  async unsubscribe(channel: string): Promise<void> {
    this.subscribed.delete(channel);
  }

  async history(channel: string, query: HistoryQuery): Promise<HistoryResult> {
    const now = this.now();
    const stream = this.stream(channel, now, 0);
    this.expireItems(stream, now);
    const position = { offset: stream.offset, epoch: stream.epoch };
    const items = stream.items;
    if (query.since !== undefined) {
      const since = query.since;
      if (since.epoch !== stream.epoch || since.offset > stream.offset) {
        return { publications: [], position, recoverable: false };
      }
      const first = items.length > 0 ? items[0]!.offset : stream.offset + 1;
      if (since.offset + 1 < first) return { publications: [], position, recoverable: false };
      const start = since.offset + 1 - first;
      return { publications: items.slice(start, start + query.limit), position, recoverable: true };
    }
    const before = query.before ?? Number.MAX_SAFE_INTEGER;
    const out: Publication[] = [];
    for (let i = items.length - 1; i >= 0 && out.length < query.limit; i--) {
      if (items[i]!.offset < before) out.push(items[i]!);
    }
    return { publications: out, position, recoverable: true };
  }

  async restorePosition(channel: string, position: StreamPosition): Promise<void> {
    const stream = this.stream(channel, this.now(), 0);
    if (stream.offset === 0) {
      stream.epoch = position.epoch;
      stream.offset = position.offset;
    }
  }

  async position(channel: string): Promise<StreamPosition> {
    const stream = this.stream(channel, this.now(), 0);
    return { offset: stream.offset, epoch: stream.epoch };
  }

  async close(): Promise<void> {
    if (this.sweepTimer !== null) clearInterval(this.sweepTimer);
    this.sweepTimer = null;
    this.handler = null;
  }

  private stream(channel: string, now: number, ttlMs: number): Stream {
    let stream = this.streams.get(channel);
    if (stream !== undefined && stream.ttlMs > 0 && now - stream.touchedAt > stream.ttlMs && stream.offset > 0) {
      stream = undefined; // history lost: new epoch, offsets restart
    }
    if (stream === undefined) {
      stream = { epoch: shortId(), offset: 0, items: [], touchedAt: now, ttlMs };
      this.streams.set(channel, stream);
    }
    return stream;
  }

  private expireItems(stream: Stream, now: number): void {
    if (stream.ttlMs <= 0) return;
    let drop = 0;
    while (drop < stream.items.length && now - stream.items[drop]!.time > stream.ttlMs) drop++;
    if (drop > 0) stream.items.splice(0, drop);
  }

  private sweep(): void {
    const now = this.now();
    for (const [key, entry] of this.idempotent) if (entry.expiresAt <= now) this.idempotent.delete(key);
    for (const [channel, stream] of this.streams) {
      if (stream.ttlMs > 0 && now - stream.touchedAt > stream.ttlMs && !this.subscribed.has(channel)) {
        this.streams.delete(channel);
      } else {
        this.expireItems(stream, now);
      }
    }
  }
}
