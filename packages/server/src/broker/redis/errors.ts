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
