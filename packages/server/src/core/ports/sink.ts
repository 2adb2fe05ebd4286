import type { Outbound } from '../outbound.js';

/**
 * What the core needs from a transport connection. Implementations must not throw and must not block:
 * `send` queues (and may coalesce) and returns at once.
 */
export interface ConnectionSink {
  /** Queue a frame. A sink that exceeds its queue bound closes itself with 4023 (slow consumer). */
  send(frame: Outbound): void;
  /** Flush what is queued, then close with this code. Idempotent. */
  close(code: number, reason: string): void;
  /** Drop the connection at once, without flushing (shutdown deadline passed). */
  terminate(): void;
  /** Transport-level liveness probe (WebSocket ping); optional. */
  probe?(): void;
  /** Bytes queued and not yet written to the kernel. */
  readonly queuedBytes: number;
  /** 'ws' or 'sse'. */
  readonly kind: 'ws' | 'sse';
}
