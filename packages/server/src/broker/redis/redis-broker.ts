import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { StreamPosition } from '@switchboard/protocol';
import type {
  Broker, BrokerHandler, BrokerStatus, ControlMessage, HistoryQuery, HistoryResult, Publication, PublishOptions,
} from '../../core/ports/broker.js';
import { connectWithin, createFailFastClient, quitOrDisconnect, DEFAULT_COMMAND_TIMEOUT_MS, resolvePrefix, type RedisConnectionOptions } from './connection.js';
import { decodeChannelMessage, decodeControl, decodePublication, encodeControl, encodeEphemeral } from './codec.js';
import { BrokerUnavailableError, reportEngineError, toBrokerError, type EngineErrorHandler } from './errors.js';
import { RedisKeys } from './keys.js';
import { HISTORY_LUA, PUBLISH_LUA } from './scripts.js';
import { forEachPrefix } from '../../core/patterns.js';

export interface RedisBrokerOptions extends RedisConnectionOptions {
  /** Unique id of this node (stamped on control messages). */
  nodeId: string;
  /** Use sharded pub/sub (SPUBLISH/SSUBSCRIBE, Redis >= 7) so Redis Cluster routes each channel's messages
   * within its shard only. Default false (PUBLISH/SUBSCRIBE). */
  sharded?: boolean;
  /** The shortest history ttl publishes use (default 60 s; Switchboard.create passes the shortest namespace
   * historyTtlMs). position()/history() of a channel without a stream write nothing and answer offset 0 with a
   * bucket epoch (buckets of half this value; see EPOCH_LUA in scripts.ts): recovering from that position
   * while the channel still has no stream is recoverable for up to this long, and a stream created within the
   * bucket takes that epoch. Set it no higher than the real shortest ttl, or a stream created and expired
   * while a client was away could go unnoticed. */
  emptyEpochTtlMs?: number;
  /** start() rejects with BROKER_UNAVAILABLE if Redis is not reachable within this time (default 5 s). */
  startTimeoutMs?: number;
  /** Called with errors that cannot be returned to a caller (malformed bus message, throwing handler, failed
   * resubscribe); see EngineErrorContext. Default: ignored. */
  onError?: EngineErrorHandler;
}

interface ScriptClient extends Redis {
  sbPublish(...args: (string | number)[]): Promise<[number, string]>;
  sbHistory(...args: (string | number)[]): Promise<(string | number)[]>;
}

/** Channels remembered for the pattern de-duplication (see lastDelivered). */
const LAST_DELIVERED_MAX = 10_000;
const SUBSCRIBE_BATCH = 500;

function newEpoch(): string {
  return randomBytes(6).toString('hex');
}

/**
 * Broker over Redis (see core/broker.ts for the contract, docs/adr/0002-redis-engine.md for the design).
 * Two connections: commands (publish scripts, history, PUBLISH of ephemeral/control) and a dedicated
 * subscriber. Fail fast: no offline queue, `commandTimeoutMs` per command, every failure to reach Redis
 * rejects with code BROKER_UNAVAILABLE. The subscriber connection re-subscribes every channel itself after a
 * reconnect, then reports onStatus('up').
 *
 * Reads never write: position()/history() of a channel without a stream answer offset 0 and a bucket epoch
 * (see EPOCH_LUA in scripts.ts), so client-chosen channel names cost Redis nothing until something is published.
 */
export class RedisBroker implements Broker {
  readonly nodeId: string;
  private readonly keys: RedisKeys;
  private readonly cmd: ScriptClient;
  private readonly sub: Redis;
  private readonly sharded: boolean;
  private readonly publishCommand: string;
  private readonly emptyEpochTtlMs: number;
  private readonly epochBucketMs: number;
  private readonly startTimeoutMs: number;
  private readonly onError: EngineErrorHandler;
  private handler: BrokerHandler | undefined;
  /** Channels this node subscribed (desired state; re-applied after reconnects). */
  private readonly channels = new Set<string>();
  /** Pattern prefixes this node subscribed (desired state; re-applied after reconnects). */
  private readonly patterns = new Set<string>();
  /**
   * While patterns are subscribed a publication can reach this node twice (its channel's SUBSCRIBE and a
   * PSUBSCRIBE, or two overlapping patterns): the last offset delivered per channel drops the second copy.
   * Bounded (oldest entries go first); empty without patterns.
   */
  private readonly lastDelivered = new Map<string, { epoch: string; offset: number }>();
  private status: BrokerStatus = 'down';
  private cmdReady = false;
  private subReady = false;
  private closed = false;
  /** onStatus fires only for transitions after start() resolved. */
  private started = false;
  private resyncing: Promise<void> | undefined;
  /** Retry of a resubscribe that failed on a live connection (e.g. NOPERM), with backoff. */
  private resyncRetry: NodeJS.Timeout | undefined;
  private resyncFailures = 0;

  constructor(opts: RedisBrokerOptions) {
    if (!opts.nodeId) throw new TypeError('RedisBroker: nodeId is required');
    this.nodeId = opts.nodeId;
    this.keys = new RedisKeys(resolvePrefix(opts.keyPrefix));
    this.sharded = opts.sharded ?? false;
    this.publishCommand = this.sharded ? 'SPUBLISH' : 'PUBLISH';
    this.emptyEpochTtlMs = Math.max(0, Math.min(Number.MAX_SAFE_INTEGER, Math.floor(opts.emptyEpochTtlMs ?? 60_000)));
    this.epochBucketMs = Math.max(1, Math.floor(this.emptyEpochTtlMs / 2));
    this.startTimeoutMs = opts.startTimeoutMs ?? Math.max(5000, opts.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS);
    const onError = opts.onError;
    this.onError = onError === undefined ? () => {} : (err, context, details) => reportEngineError(onError, err, context, details);
    this.cmd = createFailFastClient(opts, `sb:${opts.nodeId}:cmd`) as ScriptClient;
    this.cmd.defineCommand('sbPublish', { lua: PUBLISH_LUA });
    this.cmd.defineCommand('sbHistory', { numberOfKeys: 2, lua: HISTORY_LUA });
    this.sub = createFailFastClient(opts, `sb:${opts.nodeId}:sub`);
    this.onMessage = this.onMessage.bind(this);
    this.onPatternMessage = this.onPatternMessage.bind(this);
    if (this.sharded) this.sub.on('smessage', this.onMessage);
    else {
      this.sub.on('message', this.onMessage);
      this.sub.on('pmessage', this.onPatternMessage);
    }
    this.cmd.on('ready', () => { this.cmdReady = true; this.updateStatus(); });
    this.cmd.on('close', () => { this.cmdReady = false; this.updateStatus(); });
    this.sub.on('ready', () => { this.resync(); });
    this.sub.on('close', () => { this.subReady = false; this.updateStatus(); });
  }

  /** Current connection status (both connections ready and every subscription re-applied = 'up'). */
  get currentStatus(): BrokerStatus { return this.status; }

  async start(handler: BrokerHandler): Promise<void> {
    this.handler = handler;
    try {
      await Promise.all([connectWithin(this.cmd, this.startTimeoutMs), connectWithin(this.sub, this.startTimeoutMs)]);
      await this.resyncing;
    } catch (err) {
      this.cmd.disconnect();
      this.sub.disconnect();
      throw new BrokerUnavailableError('start', err);
    }
    if (!this.subReady) {
      this.cmd.disconnect();
      this.sub.disconnect();
      throw new BrokerUnavailableError('start', new Error('subscriber not ready'));
    }
    this.status = this.cmdReady ? 'up' : 'down';
    this.started = true;
  }

  async publish(channel: string, frame: string, options: PublishOptions): Promise<Publication> {
    const exclude = options.excludeConnectionId;
    const idem = options.idempotencyKey;
    const size = Math.max(0, Math.floor(options.history.size));
    const ttl = Math.max(0, Math.floor(options.history.ttlMs));
    const args: (string | number)[] = idem === undefined
      ? [2, this.keys.meta(channel), this.keys.stream(channel)]
      : [3, this.keys.meta(channel), this.keys.stream(channel), this.keys.idempotency(channel, idem)];
    args.push(
      frame, newEpoch(), size, ttl,
      exclude === undefined ? 'null' : JSON.stringify(exclude), exclude ?? '',
      this.keys.pubsub(channel), this.publishCommand,
      Math.max(1, Math.floor(options.idempotencyWindowMs ?? 60_000)),
      this.epochBucketMs,
    );
    let res: [number, string];
    try {
      res = await this.cmd.sbPublish(...args);
    } catch (err) {
      throw toBrokerError('publish', err);
    }
    if (res[0] === 1) return decodePublication(channel, res[1]);
    const h = JSON.parse(res[1]) as [string, number, string, number, string | null];
    const pub: Publication = { channel, offset: h[1], epoch: h[2], frame, time: h[3] };
    if (exclude !== undefined) pub.excludeConnectionId = exclude;
    return pub;
  }

  async publishEphemeral(channel: string, frame: string, excludeConnectionId?: string): Promise<void> {
    try {
      await this.cmd.call(this.publishCommand, this.keys.pubsub(channel), encodeEphemeral(frame, excludeConnectionId));
    } catch (err) {
      throw toBrokerError('publishEphemeral', err);
    }
  }

  async publishControl(msg: ControlMessage): Promise<void> {
    try {
      await this.cmd.call(this.publishCommand, this.keys.control(), encodeControl(msg, this.nodeId));
    } catch (err) {
      throw toBrokerError('publishControl', err);
    }
  }

  async subscribe(channel: string): Promise<void> {
    if (this.channels.has(channel)) return;
    this.channels.add(channel);
    try {
      if (this.sharded) await this.sub.ssubscribe(this.keys.pubsub(channel));
      else await this.sub.subscribe(this.keys.pubsub(channel));
    } catch (err) {
      this.channels.delete(channel);
      throw toBrokerError('subscribe', err);
    }
  }

  /** Pattern subscription (`prefix*`): PSUBSCRIBE on the channels' pub/sub names. Not with sharded pub/sub. */
  async subscribePattern(prefix: string): Promise<void> {
    if (this.sharded) throw Object.assign(new Error('pattern subscriptions need broker.sharded = false (sharded pub/sub has no patterns)'), { code: 'UNAVAILABLE' });
    if (this.patterns.has(prefix)) return;
    this.patterns.add(prefix);
    try {
      await this.sub.psubscribe(this.keys.pubsubPattern(prefix));
    } catch (err) {
      this.patterns.delete(prefix);
      throw toBrokerError('psubscribe', err);
    }
  }

  async unsubscribePattern(prefix: string): Promise<void> {
    if (!this.patterns.delete(prefix)) return;
    if (this.patterns.size === 0) this.lastDelivered.clear();
    try {
      await this.sub.punsubscribe(this.keys.pubsubPattern(prefix));
    } catch (err) {
      throw toBrokerError('punsubscribe', err);
    }
  }

  async unsubscribe(channel: string): Promise<void> {
    // Removed from the desired set first: messages still in flight are dropped by onMessage, and a failed
    // UNSUBSCRIBE is not re-subscribed after a reconnect.
    if (!this.channels.delete(channel)) return;
    try {
      if (this.sharded) await this.sub.sunsubscribe(this.keys.pubsub(channel));
      else await this.sub.unsubscribe(this.keys.pubsub(channel));
    } catch (err) {
      throw toBrokerError('unsubscribe', err);
    }
  }

  async history(channel: string, query: HistoryQuery): Promise<HistoryResult> {
    const limit = Math.max(0, Math.floor(query.limit));
    let mode: string, offset: number, sinceEpoch = '';
    if (query.since) { mode = 'since'; offset = query.since.offset; sinceEpoch = query.since.epoch; }
    else { mode = 'before'; offset = query.before ?? Number.MAX_SAFE_INTEGER; }
    const r = await this.runHistory('history', channel, mode, offset, limit, sinceEpoch);
    const epoch = String(r[1]);
    const publications: Publication[] = [];
    for (let i = 3; i + 3 < r.length; i += 4) {
      const pub: Publication = { channel, offset: Number(r[i]), epoch, frame: String(r[i + 1]), time: Number(r[i + 2]) };
      const x = String(r[i + 3]);
      if (x !== '') pub.excludeConnectionId = x;
      publications.push(pub);
    }
    return {
      publications,
      position: { offset: Number(r[0]), epoch },
      recoverable: query.since ? Number(r[2]) === 1 : true,
    };
  }

  async position(channel: string): Promise<StreamPosition> {
    const r = await this.runHistory('position', channel, 'top', 0, 0, '');
    return { offset: Number(r[0]), epoch: String(r[1]) };
  }

  /**
   * Health probe: PING on the command connection (the one publishes use), rejected with BROKER_UNAVAILABLE
   * after `timeoutMs` (or the command timeout, whichever comes first). A stalled Redis (paused, overloaded)
   * keeps its sockets open, so no connection event reports it; this does.
   */
  async ping(timeoutMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.cmd.ping(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), Math.max(1, timeoutMs));
        }),
      ]);
    } catch (err) {
      throw toBrokerError('ping', err);
    } finally {
      if (timer !== undefined) clearTimeout(timer);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.channels.clear();
    if (this.resyncRetry !== undefined) clearTimeout(this.resyncRetry);
    this.resyncRetry = undefined;
    await Promise.all([quitOrDisconnect(this.cmd), quitOrDisconnect(this.sub)]);
    this.setStatus('down');
  }

  private async runHistory(op: string, channel: string, mode: string, offset: number, limit: number, sinceEpoch: string) {
    try {
      return await this.cmd.sbHistory(
        this.keys.meta(channel), this.keys.stream(channel), mode, offset, limit, this.epochBucketMs, sinceEpoch, this.emptyEpochTtlMs);
    } catch (err) {
      throw toBrokerError(op, err);
    }
  }

  /** Delivery from the subscriber connection, synchronous and in arrival order. */
  private onMessage(name: string, raw: string): void {
    const handler = this.handler;
    if (handler === undefined) return;
    try {
      if (name === this.keys.control()) {
        handler.onControl(decodeControl(raw));
        return;
      }
      const channel = this.keys.channelOfPubsub(name);
      if (channel === undefined || !this.channels.has(channel)) return;
      const m = decodeChannelMessage(channel, raw);
      if (m.t === 'p') this.deliverPublication(handler, m.pub);
      else if (m.t === 'e') handler.onEphemeral(channel, m.frame, m.exclude);
    } catch (err) {
      this.onError(err, 'broker_message', { pubsub: name });
    }
  }

  /** Delivery through a pattern subscription (PSUBSCRIBE). Ephemeral events of channels this node also
   * subscribed come through that subscription only. */
  private onPatternMessage(_pattern: string, name: string, raw: string): void {
    const handler = this.handler;
    if (handler === undefined || this.patterns.size === 0) return;
    try {
      const channel = this.keys.channelOfPubsub(name);
      if (channel === undefined || !this.coveredByPattern(channel)) return;
      const m = decodeChannelMessage(channel, raw);
      if (m.t === 'p') this.deliverPublication(handler, m.pub);
      else if (m.t === 'e' && !this.channels.has(channel)) handler.onEphemeral(channel, m.frame, m.exclude);
    } catch (err) {
      this.onError(err, 'broker_message', { pubsub: name });
    }
  }

  private coveredByPattern(channel: string): boolean {
    let found = false;
    forEachPrefix(channel, (p) => {
      if (!found && this.patterns.has(p)) found = true;
    });
    return found;
  }

  /** Hand a publication to the node once, even when a subscription and patterns both deliver it. */
  private deliverPublication(handler: BrokerHandler, pub: Publication): void {
    if (this.patterns.size > 0) {
      const last = this.lastDelivered.get(pub.channel);
      if (last !== undefined && last.epoch === pub.epoch && pub.offset <= last.offset) return;
      this.lastDelivered.delete(pub.channel);
      this.lastDelivered.set(pub.channel, { epoch: pub.epoch, offset: pub.offset });
      if (this.lastDelivered.size > LAST_DELIVERED_MAX) this.lastDelivered.delete(this.lastDelivered.keys().next().value as string);
    }
    handler.onPublication(pub);
  }

  /** (Re)subscribe the control channel and every desired channel after the subscriber (re)connects. A failure
   * on a connection that stays up (e.g. the ACL no longer allows the channels) is reported and retried with
   * backoff; a failure because the connection dropped is retried by the next 'ready'. */
  private resync(): void {
    if (this.resyncRetry !== undefined) clearTimeout(this.resyncRetry);
    this.resyncRetry = undefined;
    const run = async () => {
      const names = [this.keys.control(), ...[...this.channels].map((c) => this.keys.pubsub(c))];
      try {
        if (this.sharded) {
          await Promise.all(names.map((n) => this.sub.ssubscribe(n)));
        } else {
          for (let i = 0; i < names.length; i += SUBSCRIBE_BATCH) await this.sub.subscribe(...names.slice(i, i + SUBSCRIBE_BATCH));
          const patterns = [...this.patterns].map((p) => this.keys.pubsubPattern(p));
          if (patterns.length > 0) await this.sub.psubscribe(...patterns);
        }
        if (this.sub.status === 'ready') { this.subReady = true; this.resyncFailures = 0; this.updateStatus(); }
      } catch (err) {
        if (this.closed) return;
        this.onError(err, 'broker_resubscribe');
        // Redis went away again: the next 'ready' retries. Still connected: retry here.
        if (this.sub.status === 'ready') {
          this.resyncRetry = setTimeout(() => { this.resyncRetry = undefined; if (!this.closed && this.sub.status === 'ready') this.resync(); }, Math.min(30_000, 250 * 2 ** Math.min(this.resyncFailures++, 7)));
          this.resyncRetry.unref();
        }
      }
    };
    this.resyncing = run();
  }

  private updateStatus(): void {
    if (this.closed || !this.started) return;
    this.setStatus(this.cmdReady && this.subReady ? 'up' : 'down');
  }

  private setStatus(s: BrokerStatus): void {
    if (s === this.status) return;
    this.status = s;
    try {
      this.handler?.onStatus?.(s);
    } catch (err) {
      this.onError(err, 'broker_status_handler');
    }
  }
}
