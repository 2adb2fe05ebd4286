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
  | { id: number; cmd: 'fanout-setup'; target: TargetConn; subscribers: number; channel: string; payloadBytes: number }
  | {
    id: number; cmd: 'phase'; name: string; window: number; messages: number; maxSeconds: number;
    /** Open loop: publish at this fixed rate (per second) instead of on completions; `window` still bounds in-flight. */
    ratePerSec?: number;
  }
  | { id: number; cmd: 'open-idle'; target: TargetConn; count: number }
  | { id: number; cmd: 'close' };

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

export type FromLoad =
  | { reply: number; ok: true; result?: unknown }
  | { reply: number; ok: false; error: string };
