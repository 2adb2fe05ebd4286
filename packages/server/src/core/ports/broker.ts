import type { StreamPosition } from '@switchboard/protocol';

/**
 * A channel publication as the broker stores and delivers it.
 * `frame` is the server frame JSON text WITHOUT `seq`/`epoch`; nodes splice those in once per node
 * (see core/outbound.ts), so a publication is serialized once for the whole cluster.
 */
export interface Publication {
  channel: string;
  /** Offset in the channel stream; strictly increasing by 1 within an epoch. 0 for unstored publications. */
  offset: number;
  epoch: string;
  /** Server frame JSON object text (starts with `{`), without `seq` and `epoch`. */
  frame: string;
  /** Milliseconds since the Unix epoch at which the broker accepted it. */
  time: number;
  /** Connection that must not receive it (publish with exclude_self). */
  excludeConnectionId?: string;
}

/** History settings of the channel's namespace, passed on every publish. */
export interface HistoryPolicy {
  /** Keep at most this many publications (0 = do not store; offsets still advance). */
  size: number;
  /** Drop publications older than this (ms). Also the stream's lifetime after the last publish. */
  ttlMs: number;
}

export interface PublishOptions {
  history: HistoryPolicy;
  /** A repeated key within `idempotencyWindowMs` returns the first publication and delivers nothing. */
  idempotencyKey?: string;
  idempotencyWindowMs?: number;
  excludeConnectionId?: string;
}

export interface HistoryQuery {
  /** Publications with offset > since.offset, oldest first. If since.epoch differs from the stream's, nothing
   * is returned and `recoverable` is false — except for the epoch a channel without a stream answered (see
   * Broker.position), which stands for the first stream created after it was read. */
  since?: StreamPosition;
  /** Newest first: publications with offset < before. */
  before?: number;
  /** Max publications to return. */
  limit: number;
}

export interface HistoryResult {
  publications: Publication[];
  /** Current top of the stream. */
  position: StreamPosition;
  /** For `since` queries: true if every publication after `since` is still in history (no gap). */
  recoverable: boolean;
}

/** Message addressed to users / connections / everybody rather than to channel subscribers. */
export type ControlMessage =
  | { kind: 'user'; userId: string; frame: string }
  | { kind: 'connection'; connectionId: string; frame: string }
  | { kind: 'all'; frame: string }
  | { kind: 'disconnect_connection'; connectionId: string; code: number; reason: string }
  | { kind: 'disconnect_user'; userId: string; code: number; reason: string }
  /** A connection with this client id was opened on `originNode`: every other holder closes with 4011.
   * `generation`: the opening connection's claim (ClientIdClaim): a holder with a larger one is newer and
   * stays. Absent from nodes that predate client id claims. */
  | { kind: 'supersede'; clientId: string; keepConnectionId: string; generation?: number };

/** Control messages as delivered: with the node that sent them. */
export type ControlEnvelope = ControlMessage & { originNode: string };

/** Callbacks a broker invokes for traffic from any node, this one included. Must not throw. */
export interface BrokerHandler {
  /** A publication on a channel this node subscribed to, in offset order per channel. */
  onPublication(pub: Publication): void;
  /** An unstored channel event (presence, typing): frame JSON text, delivered as is. */
  onEphemeral(channel: string, frame: string, excludeConnectionId: string | undefined): void;
  onControl(msg: ControlEnvelope): void;
  /** The broker lost or regained its backend. After a reconnect, `streamsReset` lists nothing: the node
   * treats every channel's continuity as unproven and checks positions on the next recovery. */
  onStatus?(status: BrokerStatus): void;
}

export type BrokerStatus = 'up' | 'down';

/**
 * Moves publications between nodes and keeps channel history. Contract (tested by the shared broker suite
 * in test/broker-contract.ts against every engine):
 * - `publish` saves to history and delivers to every subscribed node atomically per channel: offsets
 *   strictly increase by one, every node receives a channel's publications in offset order, and the
 *   returned publication is the one delivered.
 * - A node receives publications only for channels it `subscribe`d (reference-counting is the node's job).
 * - Everything a node publishes is also delivered to itself through the handler (the node never delivers
 *   locally behind the broker's back, so local and remote subscribers see one order).
 * - Operations reject with an error whose `code` is `BROKER_UNAVAILABLE` when the backend is unreachable,
 *   within a bounded time; they never hang.
 * - Reading (`position`, `history`) creates no lasting state: engine memory grows with what was published,
 *   not with the channel names clients ask about.
 */
export interface Broker {
  /** Unique id of this node, stamped on control messages. */
  readonly nodeId: string;
  /**
   * True when no other node can receive this node's publications (the memory engine: one process). Features
   * may then skip traffic that only other nodes would read (documents' cluster messages). Absent: false.
   */
  readonly singleNode?: boolean;
  start(handler: BrokerHandler): Promise<void>;
  publish(channel: string, frame: string, options: PublishOptions): Promise<Publication>;
  publishEphemeral(channel: string, frame: string, excludeConnectionId?: string): Promise<void>;
  publishControl(msg: ControlMessage): Promise<void>;
  subscribe(channel: string): Promise<void>;
  unsubscribe(channel: string): Promise<void>;
  /**
   * Optional: receive publications and ephemeral events of every channel starting with `prefix` (a pattern
   * subscription `prefix*`; `` = every channel), through the same handler calls as `subscribe`. A channel that
   * is both subscribed and matched, or matched by several patterns, is still delivered to the handler once.
   * Engines that cannot match patterns leave these out (or reject with code UNAVAILABLE).
   */
  subscribePattern?(prefix: string): Promise<void>;
  unsubscribePattern?(prefix: string): Promise<void>;
  history(channel: string, query: HistoryQuery): Promise<HistoryResult>;
  /**
   * Optional: if the channel's stream is empty (offset 0), continue it at `position` (same epoch and offset),
   * so a durable channel keeps its numbering across a restart. A stream that already has publications is
   * left alone.
   */
  restorePosition?(channel: string, position: StreamPosition): Promise<void>;
  /**
   * Current top of the channel stream. A channel without a stream (never published, or its history expired)
   * answers offset 0 WITHOUT creating lasting state, and an epoch that depends on the engine:
   * - memory: the epoch of a transient empty stream, which the first publish keeps; the empty stream is dropped
   *   once nobody subscribed or read it for a while (MemoryBroker `emptyStreamTtlMs`);
   * - Redis: nothing is written; a "bucket epoch" derived from the Redis server and the time (it changes every
   *   half `emptyEpochTtlMs`), which a stream created in the same bucket takes.
   * Either way `history(channel, {since: thatPosition})` is answered from the first stream created afterwards
   * (`recoverable: true`, publications from offset 1) when the broker can prove nothing was missed in between
   * — same backend incarnation, no stream created and expired meanwhile (judged with the history ttls) — and
   * with `recoverable: false` otherwise, never a silent gap. The epoch of an offset-0 position is USUALLY the
   * epoch of the channel's next publication, but callers must not rely on it.
   */
  position(channel: string): Promise<StreamPosition>;
  /**
   * Optional health probe: resolves when the backend answers a trivial command within `timeoutMs`, rejects
   * (code `BROKER_UNAVAILABLE`) otherwise. Catches what connection events miss: a backend that keeps its
   * connections open but answers nothing (a paused or overloaded Redis). Creates no state. `/health` calls it
   * (cached for a short interval); an engine without it is judged by its `onStatus` reports only.
   */
  ping?(timeoutMs: number): Promise<void>;
  close(): Promise<void>;
}
