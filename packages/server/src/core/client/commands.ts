import { ErrorCode, type RequestId, type StreamPosition } from '@switchboard/protocol';
import type { CoreContext } from '../context.js';
import type { Direct } from '../features/direct.js';
import type { History, HistoryRequest } from '../features/history.js';
import type { Presence } from '../features/presence.js';
import type { Publisher } from '../features/publish.js';
import type { PendingRequests } from '../features/requests.js';
import type { Typing } from '../features/typing.js';
import { whenAllowed, type Access } from './access.js';
import type { Subscriptions } from './channels.js';
import type { PatternPositions, PatternSubscriptions } from './patterns.js';
import { patternPrefix } from '../patterns.js';
import type { Client } from './client.js';
import type { Command } from './inbound.js';

/** Entries in a paged reply (`online_users`, `presence`) when the request names no limit. */
export const PAGE = 100;

/** The `cursor` of a paged request (absent or empty: the first page). */
function cursorOf(data: Record<string, unknown>): string | null {
  return typeof data.cursor === 'string' && data.cursor !== '' ? data.cursor : null;
}

function limitOf(data: Record<string, unknown>): number {
  return typeof data.limit === 'number' ? data.limit : PAGE;
}

/** What a client's commands reach. */
export interface CommandTargets {
  access: Access;
  subscriptions: Subscriptions;
  patterns: PatternSubscriptions;
  publisher: Publisher;
  direct: Direct;
  typing: Typing;
  presence: Presence;
  history: History;
  requests: PendingRequests;
}

/**
 * A client's commands: each one's checks (channel name, membership, authorization — synchronous when the
 * hook is), the feature call, and the reply. `run` returns a promise only when the command waits for
 * something; the pipeline then holds the connection's later commands behind it.
 */
export class ClientCommands {
  constructor(
    private readonly ctx: Pick<CoreContext, 'frames' | 'hooks' | 'namespaces' | 'now'>,
    private readonly t: CommandTargets,
  ) {}

  /** Dispatch one validated command. */
  readonly run = (c: Client, m: Command): void | Promise<void> => {
    const d = m.data;
    const t = this.t;
    switch (m.type) {
      case 'join_channel': {
        const channel = d.channel as string;
        const prefix = patternPrefix(channel);
        if (prefix !== null) return t.patterns.join(c, channel, prefix, d.positions as PatternPositions | undefined, m.id);
        return t.subscriptions.join(c, channel, d.since as StreamPosition | undefined, m.id);
      }
      case 'leave_channel': {
        const channel = d.channel as string;
        const prefix = patternPrefix(channel);
        if (prefix !== null) return t.patterns.leave(c, channel, prefix, m.id);
        return t.subscriptions.leave(c, channel, m.id);
      }
      case 'message':
        return this.publish(c, d, m.id);
      case 'private_message':
        return this.privateMessage(c, d, m.id);
      case 'typing':
        return this.typing(c, d.channel as string, d.is_typing as boolean, m.id);
      case 'heartbeat':
      case 'pong': // a pong with an id (a bare one never gets here): every message with an id gets a reply
        if (m.id !== undefined) this.ctx.frames.send(c, 'ok', {}, { id: m.id });
        return;
      case 'ping':
        this.ctx.frames.send(c, 'pong', { timestamp: new Date(this.ctx.now()).toISOString() }, { id: m.id });
        return;
      case 'online_users':
        return this.onlineUsers(c, d, m.id);
      case 'presence':
        return this.presence(c, d, m.id);
      case 'history':
        return this.history(c, d, m.id);
      case 'broadcast':
        return this.broadcast(c, d, m.id);
      case 'refresh':
        return this.refresh(c, d.token as string, m.id);
      case 'ack':
        return this.ack(c, d.ids as string[], m.id);
      case 'response':
        if (!t.requests.settle(c.id, d)) this.ctx.frames.error(c, ErrorCode.NOT_FOUND, 'No outstanding request with that request_id', m.id);
        else if (m.id !== undefined) this.ctx.frames.send(c, 'ok', {}, { id: m.id });
        return;
      case 'server_leave': {
        const prefix = patternPrefix(d.channel as string);
        if (prefix !== null) t.patterns.remove(c, prefix);
        else t.subscriptions.remove(c, d.channel as string, true);
        return;
      }
      default:
        this.ctx.frames.error(c, ErrorCode.UNAVAILABLE, `"${m.type}" is not available on this endpoint`, m.id);
        return;
    }
  };

  /** `message`: name, membership rule (publishRequiresMembership), authorization, then the broker. */
  private publish(c: Client, data: Record<string, unknown>, id: RequestId | undefined): void | Promise<void> {
    const channel = data.channel as string;
    if (!this.t.access.checkChannel(c, channel, id)) return;
    if (this.ctx.namespaces.of(channel).publishRequiresMembership && !c.inChannel(channel)) {
      this.ctx.frames.error(c, ErrorCode.NOT_SUBSCRIBED, `Join "${channel.slice(0, 200)}" before publishing`, id);
      return;
    }
    return whenAllowed(this.t.access.channel(c, 'publish', channel, id), async () => {
      const { exclude_self, idempotency_key, ...payload } = data;
      payload.user_id = c.userId;
      payload.username = c.identity.username;
      const pub = await this.t.publisher.publish(channel, payload, {
        senderId: c.actorId,
        excludeConnectionId: exclude_self === true ? c.id : undefined,
        idempotencyKey: idempotency_key as string | undefined,
      });
      if (id !== undefined) this.ctx.frames.send(c, 'ok', { channel, offset: pub.offset, epoch: pub.epoch }, { channel, id });
    });
  }

  private privateMessage(c: Client, data: Record<string, unknown>, id: RequestId | undefined): void | Promise<void> {
    const recipient = data.recipient_id as string;
    return whenAllowed(this.t.access.privateMessage(c, recipient, id), async () => {
      const result = await this.t.direct.toUser(recipient, 'private', { ...data, user_id: c.userId, username: c.identity.username }, c.actorId);
      if (id !== undefined) this.ctx.frames.send(c, 'ok', { recipient_id: recipient, ...result }, { id });
    });
  }

  /** `typing`: members only, and authorized as a publish (typing is writing to the channel). */
  private typing(c: Client, channel: string, isTyping: boolean, id: RequestId | undefined): void | Promise<void> {
    if (!c.inChannel(channel)) {
      this.ctx.frames.error(c, ErrorCode.NOT_SUBSCRIBED, `Join "${channel.slice(0, 200)}" before typing in it`, id);
      return;
    }
    return whenAllowed(this.t.access.channel(c, 'publish', channel, id), () => {
      this.t.typing.set(c, channel, isTyping);
      if (id !== undefined) this.ctx.frames.send(c, 'ok', {}, { id });
    });
  }

  /** `online_users`: one page (default PAGE users); `next_cursor` continues the walk. */
  private async onlineUsers(c: Client, data: Record<string, unknown>, id: RequestId | undefined): Promise<void> {
    const page = await this.t.presence.onlineUsersPage(cursorOf(data), limitOf(data));
    this.ctx.frames.send(c, 'online_users', { users: page.users, next_cursor: page.nextCursor }, { id });
  }

  /** `presence`: one page of the channel's members (default PAGE); `next_cursor` continues the walk. */
  private presence(c: Client, data: Record<string, unknown>, id: RequestId | undefined): void | Promise<void> {
    const channel = data.channel as string;
    if (!this.t.access.checkChannel(c, channel, id)) return;
    return whenAllowed(this.t.access.channel(c, 'presence', channel, id), async () => {
      const page = await this.t.presence.membersPage(channel, cursorOf(data), limitOf(data));
      this.ctx.frames.send(c, 'presence', { channel, members: page.members, next_cursor: page.nextCursor }, { channel, id });
    });
  }

  private history(c: Client, data: Record<string, unknown>, id: RequestId | undefined): void | Promise<void> {
    const channel = data.channel as string;
    if (!this.t.access.checkChannel(c, channel, id)) return;
    return whenAllowed(this.t.access.channel(c, 'history', channel, id), async () => {
      const page = await this.t.history.read(channel, data as HistoryRequest);
      this.ctx.frames.send(c, 'history', page as unknown as Record<string, unknown>, { channel, id });
    });
  }

  /** `broadcast`: needs the admin:broadcast permission. */
  private broadcast(c: Client, data: Record<string, unknown>, id: RequestId | undefined): void | Promise<void> {
    return whenAllowed(this.t.access.messageType(c, 'broadcast', id), async () => {
      await this.t.direct.broadcast({ ...data, user_id: c.userId, username: c.identity.username }, 'broadcast', c.actorId);
      if (id !== undefined) this.ctx.frames.send(c, 'ok', {}, { id });
    });
  }

  /** `refresh`: a new token for the same user moves the connection's expiry. */
  private async refresh(c: Client, token: string, id: RequestId | undefined): Promise<void> {
    const hook = this.ctx.hooks.refreshToken;
    if (hook === undefined) {
      this.ctx.frames.error(c, ErrorCode.UNAVAILABLE, 'Token refresh is not configured', id);
      return;
    }
    const result = await hook(c, token);
    if (!result.ok) {
      this.ctx.frames.error(c, result.code, result.message, id);
      return;
    }
    c.identity = { ...c.identity, expiresAt: result.expiresAt };
    c.patternAuth = null; // decisions for the old credentials
    this.ctx.frames.send(c, 'ok', { expires_at: result.expiresAt ?? null }, { id });
  }

  /** `ack` of offline-inbox items. */
  private async ack(c: Client, ids: string[], id: RequestId | undefined): Promise<void> {
    if (c.userId === null) {
      this.ctx.frames.error(c, ErrorCode.UNAUTHORIZED, 'Only identified users have an inbox', id);
      return;
    }
    const removed = await this.t.direct.ack(c.userId, ids);
    if (id !== undefined) this.ctx.frames.send(c, 'ok', { removed }, { id });
  }
}
