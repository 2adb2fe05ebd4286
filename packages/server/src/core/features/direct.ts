import type { CoreContext } from '../context.js';
import type { Member } from '../hub/member.js';
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
  constructor(private readonly ctx: Pick<CoreContext, 'broker' | 'presence' | 'hub' | 'frames' | 'durability' | 'metrics' | 'log'>) {}

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

  /** Local connections first; otherwise the user's own presence entries (never a listing of all users). */
  private isOnline(userId: string): Promise<boolean> {
    if (this.ctx.hub.sessions.hasUser(userId)) return Promise.resolve(true);
    return this.ctx.presence.userOnline(userId);
  }

  /** Send a frame to one connection, wherever it is. */
  async toConnection(connectionId: string, type: string, data: Record<string, unknown>): Promise<void> {
    await this.ctx.broker.publishControl({ kind: 'connection', connectionId, frame: this.ctx.frames.frame(type, data) });
  }

  /** Send a `broadcast` frame (or `type`) to every connection on every node. */
  async broadcast(data: Record<string, unknown>, type = 'broadcast', senderId: string | null = null): Promise<void> {
    await this.ctx.broker.publishControl({ kind: 'all', frame: this.ctx.frames.frame(type, data, { senderId }) });
  }

  /** Send the user's offline inbox to a new connection, oldest first, each frame flagged `"inbox":true`. */
  deliverInbox(c: Member): void {
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

  /** Remove acknowledged items from a user's inbox; resolves to how many were removed. */
  ack(userId: string, ids: string[]): Promise<number> {
    return this.ctx.durability === null ? Promise.resolve(0) : this.ctx.durability.ack(userId, ids);
  }
}
