import type { Client } from './client/client.js';
import type { Hub } from './hub/hub.js';
import type { CoreContext } from './context.js';
import { Outbound } from './outbound.js';
import type { NodeParts } from './parts.js';

/**
 * The closing part of Node.shutdown: document peers first (their awareness entries leave the other nodes'
 * views, pending document writes are stored), then every session gets the `shutdown` frame and is closed with
 * `code` after its queue flushed; sessions still open at the deadline are terminated; finally the coalesced
 * departures (presence, user events) go out for the other nodes.
 */
export async function closeEverything(ctx: CoreContext, parts: NodeParts, sessions: Hub<Client>['sessions'], code: number, deadlineMs: number): Promise<void> {
  const shutdownStarted = ctx.now();
  await parts.documents.shutdown(code, deadlineMs);
  deadlineMs = Math.max(0, deadlineMs - (ctx.now() - shutdownStarted));
  const notice = new Outbound(ctx.frames.frame('shutdown', { reason: 'server shutdown', reconnect: true }), 'shutdown');
  for (const c of sessions.values()) {
    c.sink.send(notice);
    c.sink.close(code, 'server shutdown');
  }
  const deadline = ctx.now() + deadlineMs;
  while (sessions.size > 0 && ctx.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  for (const c of [...sessions.values()]) {
    c.sink.terminate();
    parts.lifecycle.close(c, code);
    parts.nativeDocuments.closed(c);
  }
  // The departures are coalesced: one diff (or count marker) per channel and one user event batch leave now,
  // for the other nodes' members; this node's members are closed already and get none of it.
  await parts.presence.settled();
  parts.users.flushAll();
  await parts.announcer.flushAll();
}
