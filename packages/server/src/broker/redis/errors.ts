/** Error code every Redis engine operation rejects with when Redis is unreachable or too slow. */
export const BROKER_UNAVAILABLE = 'BROKER_UNAVAILABLE' as const;

/**
 * The Redis backend did not answer within the configured command timeout, or the connection is down.
 * `cause` holds the ioredis error. Never thrown for Redis-side logic errors (those keep their own message and
 * get code `BROKER_ERROR`).
 */
export class BrokerUnavailableError extends Error {
  readonly code = BROKER_UNAVAILABLE;
  constructor(operation: string, cause?: unknown) {
    super(`broker unavailable: ${operation} failed (${cause instanceof Error ? cause.message : String(cause ?? 'not connected')})`, { cause });
    this.name = 'BrokerUnavailableError';
  }
}

/** Reply errors coming from Redis itself (e.g. a script error): the backend answered, so it is not "down". */
function isReplyError(err: unknown): boolean {
  return err instanceof Error && err.name === 'ReplyError' && !/^(LOADING|MASTERDOWN|CLUSTERDOWN|TRYAGAIN|BUSY)\b/.test(err.message);
}

/** Map an ioredis failure to the engine's error contract: connection/timeout problems become BROKER_UNAVAILABLE. */
export function toBrokerError(operation: string, err: unknown): Error {
  if (isReplyError(err)) {
    const e = err as Error & { code?: string };
    if (e.code === undefined) e.code = 'BROKER_ERROR';
    return e;
  }
  return new BrokerUnavailableError(operation, err);
}

/**
 * Where a Redis engine error that no caller can receive happened. A fixed set, so it is safe as a metric label
 * (`switchboard_broker_errors_total{context}`); details such as the pub/sub channel go in `details`.
 * - `broker_message`: a pub/sub message could not be decoded, or the node's handler threw on it (dropped);
 * - `broker_resubscribe`: re-subscribing after a (re)connect failed (retried; the broker stays `down` meanwhile);
 * - `broker_status_handler`: the node's onStatus callback threw;
 * - `presence_refresh`: a refresh of this node's presence entries failed (entries may expire early);
 * - `presence_member_json`: a presence member stored in Redis is not valid JSON (skipped);
 * - `presence_prune`: removing dead node ids from a node set failed (retried by the next reader);
 * - `presence_close`: removing this node's presence entries on close failed (they expire after the ttl);
 * - `registry_prune`, `registry_close`: the same for the node registry.
 */
export type EngineErrorContext =
  | 'broker_message'
  | 'broker_resubscribe'
  | 'broker_status_handler'
  | 'presence_refresh'
  | 'presence_member_json'
  | 'presence_prune'
  | 'presence_close'
  | 'registry_prune'
  | 'registry_close';

/** Receives engine errors that cannot be returned to a caller. Must not throw. */
export type EngineErrorHandler = (err: unknown, context: EngineErrorContext, details?: Record<string, string>) => void;

/** Call an error handler, never letting it throw into the engine. */
export function reportEngineError(handler: EngineErrorHandler, err: unknown, context: EngineErrorContext, details?: Record<string, string>): void {
  try {
    handler(err, context, details);
  } catch {
    /* a throwing handler must not break the engine */
  }
}

/** The first per-command error of an ioredis pipeline/multi result (exec() resolves even when commands fail). */
export function firstPipelineError(res: Array<[Error | null, unknown]> | null): Error | undefined {
  if (res === null) return new Error('transaction aborted');
  for (const [err] of res) if (err) return err;
  return undefined;
}
