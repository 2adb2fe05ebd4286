/** Reconnect delay settings. */
export interface BackoffOptions {
  /** Delay cap of the first retry (attempt 0), ms. Default 500. */
  baseDelayMs: number;
  /** No delay exceeds this, ms. Default 30 000. */
  maxDelayMs: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { baseDelayMs: 500, maxDelayMs: 30_000 };

/** Upper bound of the delay for a retry: `min(max, base * 2^attempt)` (attempt counts from 0). */
export function backoffCap(attempt: number, options: BackoffOptions = DEFAULT_BACKOFF): number {
  const exp = Math.min(Math.max(0, Math.floor(attempt)), 52);
  return Math.min(options.maxDelayMs, options.baseDelayMs * 2 ** exp);
}

/**
 * Exponential backoff with full jitter: a uniformly random delay in `[0, min(max, base * 2^attempt))`.
 * `random` must return a number in [0, 1) (default Math.random). Returns whole milliseconds.
 */
export function backoffDelay(attempt: number, options: BackoffOptions = DEFAULT_BACKOFF, random: () => number = Math.random): number {
  const r = Math.min(Math.max(random(), 0), 1);
  return Math.floor(r * backoffCap(attempt, options));
}
