import type { Client } from './client.js';

/**
 * Token buckets kept as numbers on the client (no per-connection objects): the message bucket, and the
 * subscription bucket that join_channel/leave_channel draw from. Refills `perSecond` tokens per second up
 * to `burst`, then takes one; returns false (nothing taken) when the bucket is empty. `perSecond <= 0`
 * disables the bucket.
 */
export function takeToken(c: Client, subscription: boolean, now: number, perSecond: number, burst: number): boolean {
  if (perSecond <= 0) return true;
  let tokens = subscription ? c.subTokens : c.tokens;
  const at = subscription ? c.subTokensAt : c.tokensAt;
  if (now > at) tokens = Math.min(burst, tokens + ((now - at) * perSecond) / 1000);
  const ok = tokens >= 1;
  if (ok) tokens -= 1;
  if (subscription) {
    c.subTokens = tokens;
    c.subTokensAt = now;
  } else {
    c.tokens = tokens;
    c.tokensAt = now;
  }
  return ok;
}
