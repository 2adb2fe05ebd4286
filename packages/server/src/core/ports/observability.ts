/** Minimal structured logger the core needs (pino-compatible: fields object first, then message). */
export interface Logger {
  debug(fields: object, msg: string): void;
  info(fields: object, msg: string): void;
  warn(fields: object, msg: string): void;
  error(fields: object, msg: string): void;
}

/** Counters the node reports; the composition root backs them with prom-client. All must be cheap. */
export interface NodeMetrics {
  messageIn(type: string, bytes: number): void;
  /** `count` deliveries of one frame type (one call per fan-out, not per recipient). */
  messagesOut(type: string, count: number): void;
  connectionClosed(durationMs: number, code: number): void;
  errorSent(code: string): void;
  /** A live publication was queued on this node's subscribers, `latencyMs` after the broker accepted it (its
   * `time`): publish-to-delivery latency, once per publication per node (not per recipient). */
  publicationDelivered?(latencyMs: number): void;
}

export const NOOP_METRICS: NodeMetrics = {
  messageIn() {},
  messagesOut() {},
  connectionClosed() {},
  errorSent() {},
};

export const SILENT_LOGGER: Logger = { debug() {}, info() {}, warn() {}, error() {} };
