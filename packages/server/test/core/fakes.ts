/**
 * Fakes for the hub-level unit layer (test/core/*.test.ts): a Node built from a broker whose operations the
 * test can HOLD and release one by one, fake sinks that record frames, and a clock advanced by hand. No
 * sockets, no timers, no sleeps: a test drives the node with `handleText`, releases held broker / presence
 * operations, and waits with `flush()` (a few `setImmediate` turns, which run every pending microtask).
 */
import { TEMPORARY_ERRORS, type OnlineUser, type PresenceMember, type StreamPosition } from '@switchboard/protocol';
import { MemoryBroker } from '../../src/broker/memory/memory-broker.js';
import { MemoryPresenceStore } from '../../src/broker/memory/memory-presence.js';
import type { Client } from '../../src/core/client/client.js';
import { Node, type NodeDeps } from '../../src/core/node.js';
import { DEFAULT_NODE_OPTIONS, type NodeOptions } from '../../src/core/options.js';
import type { Outbound } from '../../src/core/outbound.js';
import type {
  Broker,
  BrokerHandler,
  ControlMessage,
  HistoryQuery,
  HistoryResult,
  Publication,
  PublishOptions,
} from '../../src/core/ports/broker.js';
import type { HubHooks } from '../../src/core/ports/hooks.js';
import type { Logger } from '../../src/core/ports/observability.js';
import type { ClientIdClaim, MembersPage, OnlineUsersPage, PresenceStore } from '../../src/core/ports/presence-store.js';
import type { SessionIdentity } from '../../src/core/ports/session-port.js';
import type { ConnectionSink } from '../../src/core/ports/sink.js';

/** A server frame as the client would parse it. */
export type Frame = {
  type: string;
  data: Record<string, any>;
  id?: string | number;
  seq?: number;
  epoch?: string;
  channel?: string | null;
  sender_id?: string | null;
  replayed?: boolean;
  [k: string]: unknown;
};

// ------------------------------------------------------------------------------------------------ sink

/** Frames the node sends on its own schedule, not in answer to a command (see FakeSink.replies). */
const BACKGROUND = new Set(['connect', 'user_online', 'user_offline', 'users_diff', 'presence_count']);

/** A ConnectionSink that records every frame (parsed) and every close; never blocks, never throws. */
export class FakeSink implements ConnectionSink {
  readonly frames: Frame[] = [];
  readonly sent: Outbound[] = [];
  readonly closes: Array<{ code: number; reason: string }> = [];
  terminated = 0;
  probes = 0;
  queuedBytes = 0;
  /** Called on `close` (e.g. to play the transport and call node.closeSession). */
  onClose: ((code: number, reason: string) => void) | null = null;

  constructor(readonly kind: 'ws' | 'sse' = 'ws') {}

  send(frame: Outbound): void {
    this.sent.push(frame);
    this.frames.push(JSON.parse(frame.json) as Frame);
  }

  close(code: number, reason: string): void {
    this.closes.push({ code, reason });
    this.onClose?.(code, reason);
  }

  terminate(): void {
    this.terminated += 1;
  }

  probe(): void {
    this.probes += 1;
  }

  /** Frames of these types, in arrival order. */
  ofType(...types: string[]): Frame[] {
    return this.frames.filter((f) => types.includes(f.type));
  }

  /** Frames answering request id `id` (replies carry the request's id). */
  byId(id: string | number): Frame[] {
    return this.frames.filter((f) => f.id === id);
  }

  /** `error` frames. */
  errors(): Frame[] {
    return this.ofType('error');
  }

  /** Index to pass to `since` later. */
  mark(): number {
    return this.frames.length;
  }

  /** Frames received after `mark`, but for those the node sends on its own schedule (BACKGROUND). */
  since(mark: number): Frame[] {
    return this.frames.slice(mark).filter((f) => !BACKGROUND.has(f.type));
  }

  /** The frames a test usually reasons about: everything but the connect frame, user events and pushed counts. */
  replies(): Frame[] {
    return this.frames.filter((f) => !BACKGROUND.has(f.type));
  }

  get lastClose(): { code: number; reason: string } | undefined {
    return this.closes[this.closes.length - 1];
  }
}

// ------------------------------------------------------------------------------------------------ clock

/** `now()` that moves only when the test says so (pass as NodeDeps.now). */
export class FakeClock {
  constructor(private t = Date.UTC(2030, 0, 1, 12, 0, 0)) {}

  readonly now = (): number => this.t;

  advance(ms: number): number {
    this.t += ms;
    return this.t;
  }
}

// ------------------------------------------------------------------------------------------------ holding

interface HeldCall<Op extends string> {
  readonly op: Op;
  readonly channel: string | null;
  /** Perform the real operation now and settle the caller's promise with its outcome. */
  release(): Promise<void>;
  /** Reject the caller's promise without performing the operation. */
  fail(err: unknown): void;
}

/**
 * The holding machinery shared by ControllableBroker and ControllablePresence. An operation that is held
 * does NOT happen when it is called: the call is parked, and `release()` performs it (on the wrapped memory
 * engine) and settles the caller's promise with its real result. Released in call order (FIFO) unless an
 * op is named, so effects land in the order the core issued them, as with a real backend connection.
 */
export class Gate<Op extends string> {
  /** Every call, in call order, when it was made (held or not). */
  readonly calls: Array<{ op: Op; channel: string | null }> = [];
  private readonly holding = new Set<Op>();
  private readonly failing = new Map<Op, () => unknown>();
  private readonly parked: Array<HeldCall<Op>> = [];

  /** Park every later call of these ops until released. */
  hold(...ops: Op[]): void {
    for (const op of ops) this.holding.add(op);
  }

  /** Stop parking new calls of these ops (calls already parked stay parked). */
  unhold(...ops: Op[]): void {
    for (const op of ops) this.holding.delete(op);
  }

  /** Make every later call of `op` reject with `make()` (null: stop). */
  failWith(op: Op, make: (() => unknown) | null): void {
    if (make === null) this.failing.delete(op);
    else this.failing.set(op, make);
  }

  /** Parked calls (of `op`). */
  held(op?: Op): ReadonlyArray<HeldCall<Op>> {
    return op === undefined ? [...this.parked] : this.parked.filter((h) => h.op === op);
  }

  /** How many calls of `op` were made so far. */
  count(op: Op, channel?: string): number {
    return this.calls.filter((c) => c.op === op && (channel === undefined || c.channel === channel)).length;
  }

  /** Perform the oldest parked call (of `op`); throws if there is none. Returns what was released. */
  release(op?: Op): HeldCall<Op> {
    const i = this.parked.findIndex((h) => op === undefined || h.op === op);
    if (i < 0) throw new Error(`nothing held${op === undefined ? '' : ` for ${op}`}`);
    const [h] = this.parked.splice(i, 1);
    void h!.release();
    return h!;
  }

  /** Release every parked call (of `op`), oldest first; returns how many. */
  releaseAll(op?: Op): number {
    let n = 0;
    while (this.parked.some((h) => op === undefined || h.op === op)) {
      this.release(op);
      n++;
    }
    return n;
  }

  /** Reject the oldest parked call (of `op`) with `err` without performing it. */
  fail(err: unknown, op?: Op): void {
    const i = this.parked.findIndex((h) => op === undefined || h.op === op);
    if (i < 0) throw new Error('nothing held');
    const [h] = this.parked.splice(i, 1);
    h!.fail(err);
  }

  run<T>(op: Op, channel: string | null, perform: () => Promise<T>): Promise<T> {
    this.calls.push({ op, channel });
    const failure = this.failing.get(op);
    if (failure !== undefined) return Promise.reject(failure());
    if (!this.holding.has(op)) return perform();
    return new Promise<T>((resolve, reject) => {
      this.parked.push({
        op,
        channel,
        release: () => perform().then(resolve, reject),
        fail: reject,
      });
    });
  }
}

/** An error as engines reject with when their backend is unreachable. */
export function brokerUnavailable(): Error {
  return Object.assign(new Error('broker unavailable (fake)'), { code: 'BROKER_UNAVAILABLE' });
}

// ------------------------------------------------------------------------------------------------ broker

export type BrokerOp =
  | 'publish'
  | 'publishEphemeral'
  | 'publishControl'
  | 'subscribe'
  | 'unsubscribe'
  | 'history'
  | 'position'
  | 'restorePosition';

/**
 * A Broker with the memory engine's semantics (it wraps a MemoryBroker: history, offsets, epochs,
 * idempotency, delivery through the handler to this node) whose operations the test can hold, release
 * one by one, or make fail. See Gate. `subscribedChannels` is the set of channels the engine is
 * subscribed to, as the engine sees it (updated when a subscribe/unsubscribe is actually performed).
 */
export class ControllableBroker implements Broker {
  readonly inner: MemoryBroker;
  readonly gate = new Gate<BrokerOp>();
  readonly subscribedChannels = new Set<string>();
  handler: BrokerHandler | null = null;

  constructor(now: () => number = Date.now, nodeId = 'node-test') {
    this.inner = new MemoryBroker({ nodeId, now });
  }

  get nodeId(): string {
    return this.inner.nodeId;
  }

  // Test controls (delegating to the gate).
  hold(...ops: BrokerOp[]): void {
    this.gate.hold(...ops);
  }
  unhold(...ops: BrokerOp[]): void {
    this.gate.unhold(...ops);
  }
  release(op?: BrokerOp): void {
    this.gate.release(op);
  }
  releaseAll(op?: BrokerOp): number {
    return this.gate.releaseAll(op);
  }
  held(op?: BrokerOp): number {
    return this.gate.held(op).length;
  }
  count(op: BrokerOp, channel?: string): number {
    return this.gate.count(op, channel);
  }
  failWith(op: BrokerOp, make: (() => unknown) | null): void {
    this.gate.failWith(op, make);
  }

  // Broker port.
  async start(handler: BrokerHandler): Promise<void> {
    this.handler = handler;
    await this.inner.start(handler);
  }

  publish(channel: string, frame: string, options: PublishOptions): Promise<Publication> {
    return this.gate.run('publish', channel, () => this.inner.publish(channel, frame, options));
  }

  publishEphemeral(channel: string, frame: string, excludeConnectionId?: string): Promise<void> {
    return this.gate.run('publishEphemeral', channel, () => this.inner.publishEphemeral(channel, frame, excludeConnectionId));
  }

  publishControl(msg: ControlMessage): Promise<void> {
    return this.gate.run('publishControl', null, () => this.inner.publishControl(msg));
  }

  subscribe(channel: string): Promise<void> {
    return this.gate.run('subscribe', channel, () => {
      this.subscribedChannels.add(channel);
      return this.inner.subscribe(channel);
    });
  }

  unsubscribe(channel: string): Promise<void> {
    return this.gate.run('unsubscribe', channel, () => {
      this.subscribedChannels.delete(channel);
      return this.inner.unsubscribe(channel);
    });
  }

  history(channel: string, query: HistoryQuery): Promise<HistoryResult> {
    return this.gate.run('history', channel, () => this.inner.history(channel, query));
  }

  restorePosition(channel: string, position: StreamPosition): Promise<void> {
    return this.gate.run('restorePosition', channel, () => this.inner.restorePosition(channel, position));
  }

  position(channel: string): Promise<StreamPosition> {
    return this.gate.run('position', channel, () => this.inner.position(channel));
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

// ------------------------------------------------------------------------------------------------ presence

export type PresenceOp = 'join' | 'leave' | 'members' | 'count' | 'userConnected' | 'userDisconnected' | 'userOnline' | 'onlineUsers' | 'onlineUsersPage' | 'membersPage'
  | 'claimClientId' | 'releaseClientId';

/** MemoryPresenceStore whose operations can be held like the broker's (see Gate). */
export class ControllablePresence implements PresenceStore {
  readonly inner = new MemoryPresenceStore();
  readonly gate = new Gate<PresenceOp>();

  join(channel: string, member: PresenceMember): Promise<void> {
    return this.gate.run('join', channel, () => this.inner.join(channel, member));
  }
  leave(channel: string, connectionId: string): Promise<void> {
    return this.gate.run('leave', channel, () => this.inner.leave(channel, connectionId));
  }
  members(channel: string): Promise<PresenceMember[]> {
    return this.gate.run('members', channel, () => this.inner.members(channel));
  }
  membersPage(channel: string, cursor: string | null, limit: number): Promise<MembersPage> {
    return this.gate.run('membersPage', channel, () => this.inner.membersPage(channel, cursor, limit));
  }
  count(channel: string): Promise<number> {
    return this.gate.run('count', channel, () => this.inner.count(channel));
  }
  userConnected(userId: string, username: string | null, connectionId: string): Promise<number> {
    return this.gate.run('userConnected', null, () => this.inner.userConnected(userId, username, connectionId));
  }
  userDisconnected(userId: string, connectionId: string): Promise<number> {
    return this.gate.run('userDisconnected', null, () => this.inner.userDisconnected(userId, connectionId));
  }
  userOnline(userId: string): Promise<boolean> {
    return this.gate.run('userOnline', null, () => this.inner.userOnline(userId));
  }
  onlineUsers(): Promise<OnlineUser[]> {
    return this.gate.run('onlineUsers', null, () => this.inner.onlineUsers());
  }
  onlineUsersPage(cursor: string | null, limit: number): Promise<OnlineUsersPage> {
    return this.gate.run('onlineUsersPage', null, () => this.inner.onlineUsersPage(cursor, limit));
  }
  claimClientId(clientId: string, userId: string | null, connectionId: string): Promise<ClientIdClaim> {
    return this.gate.run('claimClientId', clientId, () => this.inner.claimClientId(clientId, userId, connectionId));
  }
  releaseClientId(clientId: string, connectionId: string): Promise<void> {
    return this.gate.run('releaseClientId', clientId, () => this.inner.releaseClientId(clientId, connectionId));
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

// ------------------------------------------------------------------------------------------------ logger

/** A Logger that keeps what was logged (tests assert on errors the core swallowed). */
export class RecordingLogger implements Logger {
  readonly entries: Array<{ level: 'debug' | 'info' | 'warn' | 'error'; fields: object; msg: string }> = [];
  debug(fields: object, msg: string): void {
    this.entries.push({ level: 'debug', fields, msg });
  }
  info(fields: object, msg: string): void {
    this.entries.push({ level: 'info', fields, msg });
  }
  warn(fields: object, msg: string): void {
    this.entries.push({ level: 'warn', fields, msg });
  }
  error(fields: object, msg: string): void {
    this.entries.push({ level: 'error', fields, msg });
  }
  at(level: 'debug' | 'info' | 'warn' | 'error'): string[] {
    return this.entries.filter((e) => e.level === level).map((e) => e.msg);
  }
}

// ------------------------------------------------------------------------------------------------ waiting

/**
 * Let everything that can run, run: `turns` setImmediate turns. Every microtask (settled promises, the
 * memory engine's async methods, the pipeline's drain loop) runs before the next setImmediate, so with
 * nothing held one turn is enough; a few guard against chains that hop through a macrotask.
 */
export async function flush(turns = 3): Promise<void> {
  for (let i = 0; i < turns; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

/**
 * Microtask turns from now until `done()` holds (checked before each turn), at most `max`. Each turn is one
 * `await` of a non-promise, i.e. one trip through the microtask queue, which runs whatever the core queued
 * before it: the count measures how many promise hops the core takes to reach a point.
 */
export async function turnsUntil(done: () => boolean, max = 200): Promise<number> {
  for (let turns = 0; turns < max; turns++) {
    if (done()) return turns;
    await null;
  }
  throw new Error(`condition not reached within ${max} microtask turns`);
}

// ------------------------------------------------------------------------------------------------ options

export type DeepPartial<T> = { [K in keyof T]?: T[K] extends object ? DeepPartial<T[K]> : T[K] };

function merge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    out[k] = v !== null && typeof v === 'object' && !Array.isArray(v) && b !== null && typeof b === 'object' ? merge(b as Record<string, unknown>, v as Record<string, unknown>) : v;
  }
  return out;
}

/** DEFAULT_NODE_OPTIONS with `overrides` merged in (deeply; the defaults are never mutated). */
export function hubOptions(overrides: DeepPartial<NodeOptions> = {}): NodeOptions {
  return merge(structuredClone(DEFAULT_NODE_OPTIONS) as unknown as Record<string, unknown>, overrides as Record<string, unknown>) as unknown as NodeOptions;
}

/** Both token buckets off (perSecond 0), for tests about something else. */
export const NO_RATE_LIMITS: DeepPartial<NodeOptions> = {
  limits: { rateLimit: { perSecond: 0 }, subscribeRateLimit: { perSecond: 0 } },
};

/** Expected `temporary` flag of an error code (the protocol's registry). */
export function temporaryOf(code: string): boolean {
  return (TEMPORARY_ERRORS as Record<string, boolean>)[code] ?? false;
}

// ------------------------------------------------------------------------------------------------ harness

export const ANONYMOUS: SessionIdentity = { userId: null, username: null, anonymous: true };

export interface HarnessInit {
  options?: DeepPartial<NodeOptions>;
  hooks?: HubHooks;
  /** Use a ControllablePresence (holdable) instead of a plain MemoryPresenceStore. */
  presence?: PresenceStore;
  extraDeps?: Partial<NodeDeps>;
}

export interface Conn {
  client: Client;
  sink: FakeSink;
  /** Send one client frame (object -> JSON text -> node.handleText). */
  send(msg: Record<string, unknown>): void;
  /** Send raw text. */
  text(raw: string): void;
}

/** A started Node on the fakes, and helpers to open connections and tear everything down. */
export class Harness {
  readonly clock = new FakeClock();
  readonly broker: ControllableBroker;
  readonly presence: PresenceStore;
  readonly log = new RecordingLogger();
  readonly node: Node;
  readonly options: NodeOptions;

  constructor(init: HarnessInit = {}) {
    this.options = hubOptions(init.options);
    this.broker = new ControllableBroker(this.clock.now);
    this.presence = init.presence ?? new MemoryPresenceStore();
    this.node = new Node({
      broker: this.broker,
      presence: this.presence,
      options: this.options,
      hooks: init.hooks ?? {},
      logger: this.log,
      now: this.clock.now,
      ...init.extraDeps,
    });
  }

  static async start(init: HarnessInit = {}): Promise<Harness> {
    const h = new Harness(init);
    await h.node.start();
    return h;
  }

  /** Open a session on a fresh FakeSink (anonymous unless `identity`); fails the test on a rejection. */
  open(identity: SessionIdentity = ANONYMOUS, kind: 'ws' | 'sse' = 'ws'): Conn {
    const sink = new FakeSink(kind);
    const opened = this.node.openSession({ sink, identity, remoteAddress: '10.0.0.1' });
    if ('rejected' in opened) throw new Error(`session rejected: ${opened.reason}`);
    const client = opened;
    const node = this.node;
    return {
      client,
      sink,
      send: (msg) => node.handleText(client, JSON.stringify(msg)),
      text: (raw) => node.handleText(client, raw),
    };
  }

  async close(): Promise<void> {
    await this.node.shutdown(0);
    await this.node.stopEngine();
  }
}
