import { ErrorCode, type StreamPosition } from '@switchboard/protocol';
import type { CoreContext } from '../context.js';
import type { Direct } from '../features/direct.js';
import type { History } from '../features/history.js';
import type { Presence } from '../features/presence.js';
import type { Publisher } from '../features/publish.js';
import type { PendingRequests } from '../features/requests.js';
import type { Typing } from '../features/typing.js';
import type { Subscriptions } from './channels.js';
import type { Client } from './client.js';
import type { Command } from './inbound.js';

/** The features a client's commands reach. */
export interface CommandTargets {
  subscriptions: Subscriptions;
  publisher: Publisher;
  direct: Direct;
  typing: Typing;
  presence: Presence;
  history: History;
  requests: PendingRequests;
}

/**
 * Dispatch of one validated command to the feature that handles it. Returns a promise only when the command
 * waits for something (the pipeline then holds later commands behind it).
 */
export function commandRunner(ctx: Pick<CoreContext, 'frames' | 'hooks' | 'now'>, t: CommandTargets): (c: Client, m: Command) => void | Promise<void> {
  const frames = ctx.frames;
  return (c, m) => {
    const d = m.data;
    switch (m.type) {
      case 'join_channel':
        return t.subscriptions.join(c, d.channel as string, d.since as StreamPosition | undefined, m.id);
      case 'leave_channel':
        return t.subscriptions.leave(c, d.channel as string, m.id);
      case 'message':
        return t.publisher.fromClient(c, d, m.id);
      case 'private_message':
        return t.direct.privateMessage(c, d, m.id);
      case 'typing':
        return t.typing.fromClient(c, d.channel as string, d.is_typing as boolean, m.id);
      case 'heartbeat':
        if (m.id !== undefined) frames.send(c, 'ok', {}, { id: m.id });
        return;
      case 'ping':
        frames.send(c, 'pong', { timestamp: new Date(ctx.now()).toISOString() }, { id: m.id });
        return;
      case 'online_users':
        return t.presence.onlineUsersRequest(c, m.id);
      case 'presence':
        return t.presence.request(c, d.channel as string, m.id);
      case 'history':
        return t.history.request(c, d, m.id);
      case 'broadcast':
        return t.direct.broadcastFromClient(c, d, m.id);
      case 'refresh':
        return refresh(ctx, c, d.token as string, m.id);
      case 'ack':
        return t.direct.ack(c, d.ids as string[], m.id);
      case 'response':
        if (!t.requests.settle(c.id, d)) frames.error(c, ErrorCode.NOT_FOUND, 'No outstanding request with that request_id', m.id);
        return;
      default:
        frames.error(c, ErrorCode.UNAVAILABLE, `"${m.type}" is not available on this endpoint`, m.id);
        return;
    }
  };
}

/** `refresh`: a new token for the same user moves the connection's expiry. */
async function refresh(ctx: Pick<CoreContext, 'frames' | 'hooks'>, c: Client, token: string, id: Command['id']): Promise<void> {
  if (ctx.hooks.refreshToken === undefined) {
    ctx.frames.error(c, ErrorCode.UNAVAILABLE, 'Token refresh is not configured', id);
    return;
  }
  const result = await ctx.hooks.refreshToken(c, token);
  if (!result.ok) {
    ctx.frames.error(c, result.code, result.message, id);
    return;
  }
  c.identity = { ...c.identity, expiresAt: result.expiresAt };
  ctx.frames.send(c, 'ok', { expires_at: result.expiresAt ?? null }, { id });
}
