import type { Session } from './session.js';

/**
 * Token bucket per session, stored on the session (no per-connection objects).
 * Returns true if the message may pass; refills `perSecond` tokens per second up to `burst`.
 */
export function takeToken(s: Session, now: number, perSecond: number, burst: number): boolean {
  if (perSecond <= 0) return true;
  const elapsed = now - s.tokensAt;
  if (elapsed > 0) {
    s.tokens = Math.min(burst, s.tokens + (elapsed * perSecond) / 1000);
    s.tokensAt = now;
  }
  if (s.tokens >= 1) {
    s.tokens -= 1;
    return true;
  }
  return false;
}
