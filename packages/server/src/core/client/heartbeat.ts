import { CloseCode } from '@switchboard/protocol';
import type { CoreContext } from '../context.js';
import type { Hub } from '../hub/hub.js';
import { Outbound } from '../outbound.js';
import type { Client } from './client.js';

/**
 * One shared sweep for every connection (no timer per connection): server pings and pong timeouts, the idle
 * timeout, token expiry. Runs every tick of the node's sweep timer.
 */
export class Heartbeat {
  constructor(
    private readonly ctx: Pick<CoreContext, 'options' | 'frames'>,
    private readonly clients: Hub<Client>,
  ) {}

  /** Sweep interval: fine enough for the ping interval and the typing timeout, at most once a second. */
  static tickMs(options: CoreContext['options']): number {
    const ping = options.heartbeat.pingIntervalMs;
    return Math.max(20, Math.min(1000, ping > 0 ? Math.floor(ping / 5) : 1000, Math.floor(options.typingTimeoutMs / 5)));
  }

  sweep(now: number): void {
    const hb = this.ctx.options.heartbeat;
    let ping: Outbound | null = null;
    for (const c of this.clients.sessions.values()) {
      if (hb.pingIntervalMs > 0) {
        // Only WebSocket clients can answer; a dead SSE client shows up as a failed write instead.
        if (c.pingSentAt > 0 && now - c.pingSentAt > hb.pongTimeoutMs && c.sink.kind === 'ws') {
          c.sink.close(CloseCode.SESSION_EXPIRED, 'heartbeat timeout');
          continue;
        }
        if (now - c.lastPingAt >= hb.pingIntervalMs) {
          ping ??= new Outbound(this.ctx.frames.frame('ping', { timestamp: new Date(now).toISOString() }), 'ping');
          c.sink.send(ping);
          c.sink.probe?.();
          c.lastPingAt = now;
          if (c.pingSentAt === 0) c.pingSentAt = now;
        }
      }
      // Idle means "sent nothing": only WebSocket clients can send, so SSE streams never go idle.
      if (hb.idleTimeoutMs > 0 && now - c.lastActivity > hb.idleTimeoutMs && c.sink.kind === 'ws') {
        c.sink.close(CloseCode.SESSION_EXPIRED, 'idle timeout');
        continue;
      }
      const exp = c.identity.expiresAt;
      if (exp !== undefined && now >= exp) c.sink.close(CloseCode.TOKEN_EXPIRED, 'token expired');
    }
  }
}
