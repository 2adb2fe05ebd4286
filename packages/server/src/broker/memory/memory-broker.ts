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
import { forEachPrefix } from '../../core/patterns.js';

interface Stream {
  epoch: string;
  offset: number;
  /** Retained publications, oldest first, offsets contiguous. */
  items: Publication[];
  /** Epoch ms of the last publish; the stream is forgotten (new epoch) once idle past its ttl. For an empty
   * stream (offset 0): of the last read or unsubscribe. */
  touchedAt: number;
  ttlMs: number;
}

/** What the memory broker holds, for tests and diagnostics. */
export interface MemoryBrokerSizes {
  streams: number;
  idempotencyKeys: number;
  subscribedChannels: number;
}

/**
 * The embedded single-process engine: history in memory (bounded by size and ttl per namespace), delivery by
 * direct callback. A restart loses every stream, so each process start gives every channel a new epoch and
 * clients recovering across it are told `recovered: false`.
 *
 * Memory is bounded by what was published, not by what was read: position()/history() of a channel without a
 * stream create an EMPTY stream (offset 0) only so that the epoch they answer is the one the first publish
 * uses; an empty stream is dropped once no subscriber holds it and nobody read it for `emptyStreamTtlMs`
 * (by the next access or the sweep). Published streams are dropped once idle past their history ttl,
 * idempotency records once past their window.
 */
export class MemoryBroker implements Broker {
  readonly nodeId: string;
  /** One process, one node: nothing published here reaches another node. */
  readonly singleNode = true;
  private handler: BrokerHandler | null = null;
  private readonly streams = new Map<string, Stream>();
  private readonly subscribed = new Set<string>();
  /** Pattern prefixes subscribed (`news:` for `news:*`). */
  private readonly patterns = new Set<string>();
  /** Idempotency records in insertion order; with one window for every publish (the node's), that is expiry
   * order, so expired records are dropped from the front on each publish. */
  private readonly idempotent = new Map<string, { pub: Publication; expiresAt: number }>();
  private sweepTimer: NodeJS.Timeout | null = null;
  private readonly sweepIntervalMs: number;
  private readonly emptyStreamTtlMs: number;

  /**
   * @param options.emptyStreamTtlMs how long an empty stream created by a read outlives its last read or
   *   subscriber (default 60 s); a client recovering from its position later is told `recovered: false`
   *   if the channel got publications meanwhile (a new epoch), never a silent gap.
   * @param options.sweepIntervalMs how often expired streams and idempotency records are dropped (default 10 s).
   */
  constructor(options: { nodeId?: string; now?: () => number; sweepIntervalMs?: number; emptyStreamTtlMs?: number } = {}) {
    this.nodeId = options.nodeId ?? shortId();
    this.now = options.now ?? Date.now;
    this.sweepIntervalMs = options.sweepIntervalMs ?? 10_000;
    this.emptyStreamTtlMs = Math.max(0, options.emptyStreamTtlMs ?? 60_000);
  }

  private readonly now: () => number;

  async subscribePattern(prefix: string): Promise<void> {
    this.patterns.add(prefix);
  }

  async unsubscribePattern(prefix: string): Promise<void> {
    this.patterns.delete(prefix);
  }

  /** Subscribed, or matched by a subscribed pattern (one lookup per `:` of the name). */
  private interested(channel: string): boolean {
    if (this.subscribed.has(channel)) return true;
    if (this.patterns.size === 0) return false;
    let found = false;
    forEachPrefix(channel, (p) => {
      if (!found && this.patterns.has(p)) found = true;
    });
    return found;
  }

  async start(handler: BrokerHandler): Promise<void> {
    this.handler = handler;
    if (this.sweepTimer !== null) clearInterval(this.sweepTimer);
    this.sweepTimer = setInterval(() => this.sweep(), this.sweepIntervalMs);
    this.sweepTimer.unref();
  }

  /** Entries currently held (streams, idempotency records, subscribed channels). */
  sizes(): MemoryBrokerSizes {
    return { streams: this.streams.size, idempotencyKeys: this.idempotent.size, subscribedChannels: this.subscribed.size };
  }

  async publish(channel: string, frame: string, options: PublishOptions): Promise<Publication> {
    const now = this.now();
    let idemKey: string | undefined;
    if (options.idempotencyKey !== undefined) {
      this.expireIdempotency(now);
      idemKey = channel + '\u0000' + options.idempotencyKey;
      const seen = this.idempotent.get(idemKey);
      if (seen !== undefined && seen.expiresAt > now) return seen.pub;
    }
    const ttlMs = Math.max(0, options.history.ttlMs);
    const stream = this.stream(channel, now);
    stream.offset += 1;
    stream.touchedAt = now;
    stream.ttlMs = ttlMs;
    const pub: Publication = { channel, offset: stream.offset, epoch: stream.epoch, frame, time: now };
    if (options.excludeConnectionId !== undefined) pub.excludeConnectionId = options.excludeConnectionId;
    if (options.history.size > 0) {
      stream.items.push(pub);
      if (stream.items.length > options.history.size) stream.items.splice(0, stream.items.length - options.history.size);
    }
    if (idemKey !== undefined) {
      // Re-inserted at the end (a Map keeps a re-set key at its old place), so insertion order stays expiry order.
      this.idempotent.delete(idemKey);
      this.idempotent.set(idemKey, { pub, expiresAt: now + Math.max(1, options.idempotencyWindowMs ?? 60_000) });
    }
    if (this.interested(channel)) this.handler?.onPublication(pub);
    return pub;
  }

  async publishEphemeral(channel: string, frame: string, excludeConnectionId?: string): Promise<void> {
    if (this.interested(channel)) this.handler?.onEphemeral(channel, frame, excludeConnectionId);
  }

  async publishControl(msg: ControlMessage): Promise<void> {
    this.handler?.onControl({ ...msg, originNode: this.nodeId });
  }

  async subscribe(channel: string): Promise<void> {
    this.subscribed.add(channel);
  }

  async unsubscribe(channel: string): Promise<void> {
    this.subscribed.delete(channel);
    const stream = this.streams.get(channel);
    if (stream !== undefined && stream.offset === 0) stream.touchedAt = this.now(); // lives emptyStreamTtlMs more
  }

  async history(channel: string, query: HistoryQuery): Promise<HistoryResult> {
    const now = this.now();
    const stream = this.stream(channel, now);
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
    const stream = this.stream(channel, this.now());
    if (stream.offset === 0 && position.offset > 0) {
      // Kept (ttl 0) until its first publish sets the namespace's ttl: the archive holds its history.
      stream.epoch = position.epoch;
      stream.offset = position.offset;
      stream.ttlMs = 0;
    }
  }

  async position(channel: string): Promise<StreamPosition> {
    const stream = this.stream(channel, this.now());
    return { offset: stream.offset, epoch: stream.epoch };
  }

  /** Health probe: the engine lives in this process, so it always answers. */
  async ping(_timeoutMs: number): Promise<void> {}

  async close(): Promise<void> {
    if (this.sweepTimer !== null) clearInterval(this.sweepTimer);
    this.sweepTimer = null;
    this.handler = null;
  }

  /** The channel's live stream; an empty one (offset 0, new epoch) if it has none. Touches empty streams. */
  private stream(channel: string, now: number): Stream {
    let stream = this.streams.get(channel);
    if (stream !== undefined && this.expired(channel, stream, now)) stream = undefined; // history lost: new epoch
    if (stream === undefined) {
      stream = { epoch: shortId(), offset: 0, items: [], touchedAt: now, ttlMs: 0 };
      this.streams.set(channel, stream);
    } else if (stream.offset === 0) {
      stream.touchedAt = now;
    }
    return stream;
  }

  /** A published stream idle past its ttl; an empty stream nobody subscribes or read for emptyStreamTtlMs. */
  private expired(channel: string, stream: Stream, now: number): boolean {
    if (stream.offset === 0) return now - stream.touchedAt > this.emptyStreamTtlMs && !this.subscribed.has(channel);
    return stream.ttlMs > 0 && now - stream.touchedAt > stream.ttlMs;
  }

  /** Drop expired idempotency records from the front (insertion = expiry order for one window). */
  private expireIdempotency(now: number): void {
    for (const [key, entry] of this.idempotent) {
      if (entry.expiresAt > now) break;
      this.idempotent.delete(key);
    }
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
      if (this.expired(channel, stream, now)) {
        this.streams.delete(channel);
      } else {
        this.expireItems(stream, now);
      }
    }
  }
}
