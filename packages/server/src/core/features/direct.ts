import { ErrorCode, type RequestId } from '@switchboard/protocol';
import type { Access } from '../client/access.js';
import { whenAllowed } from '../client/access.js';
import type { Client } from '../client/client.js';
import type { CoreContext } from '../context.js';
import { newId } from '../ids.js';
import { Outbound } from '../outbound.js';

/** Outcome of a message addressed to a user. */
export interface UserDelivery {
  /** The user had a live connection somewhere: delivered to every one of them. */
  delivered: boolean;
  /** The user was offline and the message was kept in their inbox. */
  stored: boolean;
  message_id: string;
}

/**
 * Messages addressed to users, connections or everybody rather than to a channel: private messages, server
 * notifications with the offline inbox, broadcasts. They travel as broker control messages, so they reach
 * every node; each node delivers to its own connections (Hub.toUser / toAll).
 */
export class Direct {
  constructor(
    private readonly ctx: Pick<CoreContext, 'broker' | 'presence' | 'hub' | 'frames' | 'durability' | 'metrics' | 'log'>,
    private readonly access: Access,
  ) {}

  /** A client's `private_message`. */
  privateMessage(c: Client, data: Record<string, unknown>, id: RequestId | undefined): void | Promise<void> {
    const recipient = data.recipient_id as string;
    return whenAllowed(this.access.privateMessage(c, recipient, id), async () => {
      const result = await this.toUser(recipient, 'private', { ...data, user_id: c.userId, username: c.identity.username }, c.actorId);
      if (id !== undefined) this.ctx.frames.send(c, 'ok', { recipient_id: recipient, ...result }, { id });
    });
  }

  /** Send to every connection of a user, on every node, or keep it in the user's offline inbox. */
  async toUser(userId: string, type: string, data: Record<string, unknown>, senderId: string | null): Promise<UserDelivery> {
    const messageId = newId();
    const frame = this.ctx.frames.frame(type, data, { senderId, recipientId: userId, messageId });
    if (await this.isOnline(userId)) {
      await this.ctx.broker.publishControl({ kind: 'user', userId, frame });
      return { delivered: true, stored: false, message_id: messageId };
    }
    const durability = this.ctx.durability;
    const stored = durability !== null && (await durability.store(userId, messageId, frame));
    return { delivered: false, stored, message_id: messageId };
  }

  private async isOnline(userId: string): Promise<boolean> {
    if (this.ctx.hub.sessions.hasUser(userId)) return true;
    const users = await this.ctx.presence.onlineUsers();
    return users.some((u) => u.user_id === userId);
  }

  /** Send a frame to one connection, wherever it is. */
  async toConnection(connectionId: string, type: string, data: Record<string, unknown>): Promise<void> {
    await this.ctx.broker.publishControl({ kind: 'connection', connectionId, frame: this.ctx.frames.frame(type, data) });
  }

  /** Send a `broadcast` frame (or `type`) to every connection on every node. */
  async broadcast(data: Record<string, unknown>, type = 'broadcast', senderId: string | null = null): Promise<void> {
    await this.ctx.broker.publishControl({ kind: 'all', frame: this.ctx.frames.frame(type, data, { senderId }) });
  }

  /** A client's `broadcast` (needs the admin:broadcast permission). */
  broadcastFromClient(c: Client, data: Record<string, unknown>, id: RequestId | undefined): void | Promise<void> {
    return whenAllowed(this.access.messageType(c, 'broadcast', id), async () => {
      await this.broadcast({ ...data, user_id: c.userId, username: c.identity.username }, 'broadcast', c.actorId);
      if (id !== undefined) this.ctx.frames.send(c, 'ok', {}, { id });
    });
  }

  /** Send the user's offline inbox to a new connection, oldest first, each frame flagged `"inbox":true`. */
  deliverInbox(c: Client): void {
    const durability = this.ctx.durability;
    if (c.userId === null || durability === null || !durability.hasInbox) return;
    durability.pending(c.userId).then(
      (items) => {
        if (c.closed) return;
        for (const item of items) c.sink.send(new Outbound('{"inbox":true,' + item.frame.slice(1), 'inbox'));
        this.ctx.metrics.messagesOut('inbox', items.length);
      },
      (err: unknown) => this.ctx.log.warn({ err, connection_id: c.id }, 'inbox delivery failed'),
    );
  }

  /** A client's `ack` of inbox items. */
  async ack(c: Client, ids: string[], id: RequestId | undefined): Promise<void> {
    if (c.userId === null) {
      this.ctx.frames.error(c, ErrorCode.UNAUTHORIZED, 'Only identified users have an inbox', id);
      return;
    }
    const removed = this.ctx.durability === null ? 0 : await this.ctx.durability.ack(c.userId, ids);
    if (id !== undefined) this.ctx.frames.send(c, 'ok', { removed }, { id });
  }
}
