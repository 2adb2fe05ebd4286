/** Messages between the orchestrator (run.js) and a load process (load.js). */
import type { HistogramJSON } from './histogram.js';

export interface TargetConn {
  host: string;
  port: number;
  /** Protocol adapter name: 'switchboard' (also the ws baseline) or 'socketio'. */
  protocol: string;
  /** Publisher transport: WebSocket frames, or HTTP POST to `httpPublishPath`. */
  publisher: 'ws' | 'http';
  httpPublishPath?: string;
  /** Whether the publisher must join the channel before it may publish. */
  publisherJoins?: boolean;
  /** First index used to spread connections over 127.0.0.x source addresses. */
  indexBase: number;
  /** Source addresses 127.0.0.1 .. 127.0.0.<sources>. */
  sources: number;
}

export type ToLoad =
  /**
   * Fan-out: `subscribers` connections join `subscribe` (default `channel`); the publisher publishes to `channel`,
   * or, with `publishChannels` N > 0, round-robin to `${channel}0` .. `${channel}${N - 1}` (pattern scenario:
   * subscribers on `bench:*`, publications to 10,000 concrete channels `bench:<i>`).
   */
  | {
    id: number; cmd: 'fanout-setup'; target: TargetConn; subscribers: number; channel: string; payloadBytes: number;
    subscribe?: string; publishChannels?: number;
  }
  | {
    id: number; cmd: 'phase'; name: string; window: number; messages: number; maxSeconds: number;
    /** Open loop: publish at this fixed rate (per second) instead of on completions; `window` still bounds in-flight. */
    ratePerSec?: number;
  }
  | { id: number; cmd: 'open-idle'; target: TargetConn; count: number }
  /**
   * Presence scenario (presence-load.ts): open `count` identified connections (user ids from
   * `target.indexBase`), each to its `connect` frame; resolves when all are open and control traffic
   * has been quiet for `quietMs` (or after `timeoutMs`).
   */
  | { id: number; cmd: 'presence-open'; target: TargetConn; count: number; quietMs: number; timeoutMs: number }
  /**
   * One storm: `join` sends every open connection's join at once; `reconnect` closes every connection at
   * once and opens them again (same user ids), each joining as soon as it is open. Resolves when every
   * connection is subscribed (or failed) and control traffic has been quiet for `quietMs`, or at `timeoutMs`.
   */
  | { id: number; cmd: 'presence-storm'; kind: 'join' | 'reconnect'; channel: string; quietMs: number; timeoutMs: number }
  /** Stops counting the current open/storm (after local quiet, at most `maxWaitMs`) and returns its tally. */
  | { id: number; cmd: 'presence-report'; quietMs: number; maxWaitMs: number }
  /**
   * Collaborative documents scenario (documents-load.ts): `documents` x `editors` Y.Docs, each bound to the
   * target by its own unmodified provider (y-websocket's WebsocketProvider or @hocuspocus/provider), at most
   * `concurrency` handshakes in flight; resolves when every provider is synced (or at `timeoutMs`). Editor 0
   * of each document then writes `textBytes` characters (the memory measurement's content; 0: none).
   */
  | { id: number; cmd: 'docs-open'; target: DocsTarget; documents: number; editors: number; textBytes: number; concurrency: number; timeoutMs: number }
  /**
   * One open-loop phase: `ratePerSec` small updates per second in all (round-robin over documents, then over
   * each document's editors) for `seconds`; then waits, at most `drainMs`, for every other editor of each
   * update's document to observe it.
   */
  | { id: number; cmd: 'docs-phase'; name: string; ratePerSec: number; seconds: number; drainMs: number }
  | { id: number; cmd: 'docs-close' }
  /**
   * The server-bound form (documents-wire-load.ts): the same documents x editors as plain WebSockets speaking the
   * target's protocol (one writer per document sending real Yjs updates, the others counting what they get);
   * then phases as `docs-phase`.
   */
  | { id: number; cmd: 'docw-open'; target: DocsTarget; documents: number; editors: number; concurrency: number; timeoutMs: number }
  | { id: number; cmd: 'docw-phase'; name: string; ratePerSec: number; seconds: number; drainMs: number }
  | { id: number; cmd: 'docw-close' }
  | { id: number; cmd: 'close' };

/** A collaborative-document server as the load process reaches it. */
export interface DocsTarget {
  /** Client: y-websocket's WebsocketProvider (`{url}/{prefix}{name}`) or HocuspocusProvider (`url`, name `{prefix}{name}`). */
  client: 'y-websocket' | 'hocuspocus';
  url: string;
  /** Document name prefix (Switchboard: `doc:`, a documents namespace). */
  prefix: string;
}

export interface DocsOpenResult {
  editors: number;
  synced: number;
  failed: number;
  ms: number;
  errors: string[];
}

export interface DocsPhaseResult {
  name: string;
  /** Updates made (each one local Yjs transaction: one character typed + one latency mark). */
  published: number;
  /** Remote observations of those updates (an update is expected at every other editor of its document). */
  deliveries: number;
  expected: number;
  /** From the first update to the last observation, ms. */
  elapsedMs: number;
  /** Local update -> observed in another editor's Y.Doc, µs. */
  latency: HistogramJSON;
  /**
   * Each update's FIRST observation only (one per update), µs: the server's time to its first write plus one
   * client-side apply, without the wait behind the other editors' applies in this one load process.
   */
  firstLatency: HistogramJSON;
  loadCpuUs: number;
  /** The load process's event-loop delay p99, ms: high = the clients, not the server, set the latency. */
  loadLagP99Ms: number;
  /** Provider connections lost during the phase (all clients reconnect by themselves). */
  disconnects: number;
  errors: string[];
}

export interface PhaseResult {
  name: string;
  window: number;
  published: number;
  completed: number;
  deliveries: number;
  /** From the first publish to the last delivery, ms. */
  elapsedMs: number;
  stalled: boolean;
  droppedSubscribers: number;
  latency: HistogramJSON;
  /** CPU used by the load process during the phase (µs). */
  loadCpuUs: number;
  errors: string[];
}

/** What one load process saw during a presence open or storm (times are epoch ms, sub-ms precision). */
export interface PresenceTally {
  kind: 'connect' | 'join' | 'reconnect';
  /** Connections this load process holds. */
  conns: number;
  /** Connections at the goal: open (`connect`) for the connect stage, `subscribed` for a storm. */
  done: number;
  failed: number;
  /** Connections closed by the server (or the network) after opening; `closeCodes` counts their close codes. */
  dropped: number;
  closeCodes: Record<string, number>;
  startAt: number;
  /** When the last connection reached the goal; null unless all did. */
  allDoneAt: number | null;
  /** Arrival of the last counted control frame (any connection, including ones being replaced); null if none. */
  lastControlAt: number | null;
  /** When the load process saw its connections at the goal and control traffic quiet (includes the quiet window). */
  quietAt: number | null;
  timedOut: boolean;
  /** Counted control frames per connection after its `subscribed` (connect stage: after its `connect`). */
  post: number[];
  /** Counted control frames per connection before its `subscribed` (a storm's new connections). */
  pre: number[];
  /** Counted frames by type, summed over connections: after / before the goal. */
  byType: Record<string, number>;
  byTypePre: Record<string, number>;
  /** Bytes of counted control frames (payloads), summed over connections. */
  bytes: number;
  /** Counted frames received by connections being replaced (reconnect storm: the old ones, after their close). */
  closingFrames: number;
  /** Joins sent again after a temporary refusal, and connections opened again after a failure or a server close. */
  joinRetries: number;
  reconnects: number;
  /** Every second since the start: [ms since start, connections at the goal, counted frames so far]. */
  progress: Array<[number, number, number]>;
  loadCpuUs: number;
  errors: string[];
}

export type FromLoad =
  | { reply: number; ok: true; result?: unknown }
  | { reply: number; ok: false; error: string };
