import type { CoreContext } from '../context.js';
import { newId } from '../ids.js';
import type { Publication } from '../ports/broker.js';
import type { StreamRestore } from './stream-restore.js';

/** Options of a server-side publish. */
export interface PublishRequest {
  /** `sender_id` of the frame (null: the server). */
  senderId?: string | null;
  /** Connection that must not receive it (`exclude_self`). */
  excludeConnectionId?: string | undefined;
  /** A repeated key within channels.idempotencyWindowMs returns the first publication and delivers nothing. */
  idempotencyKey?: string | undefined;
  /** Frame type (default `message`). */
  type?: string;
}

const MESSAGE_ID = /"message_id":"([^"]+)"/;

/**
 * Channel publications (a client's `message` after its checks, or the server side). The broker delivers to every node, this one included (the node never
 * delivers locally behind the broker's back). Durable (`persist`) namespaces are archived by the publishing
 * node before the publish resolves.
 */
export class Publisher {
  constructor(
    private readonly ctx: Pick<CoreContext, 'broker' | 'namespaces' | 'frames' | 'options' | 'durability'>,
    private readonly restore: StreamRestore,
  ) {}

  /**
   * Publish `data` to a channel. Resolves once the broker accepted it (stored in history, delivered to every
   * node) and, for `persist` namespaces, once it is archived.
   */
  async publish(channel: string, data: Record<string, unknown>, opts: PublishRequest = {}): Promise<Publication> {
    const ns = this.ctx.namespaces.of(channel);
    const messageId = newId();
    const senderId = opts.senderId ?? null;
    const frame = this.ctx.frames.frame(opts.type ?? 'message', data, { channel, senderId, messageId });
    const restoring = this.restore.ensure(channel);
    if (restoring !== undefined) await restoring;
    const pub = await this.ctx.broker.publish(channel, frame, {
      history: { size: ns.historySize, ttlMs: ns.historyTtlMs },
      idempotencyKey: opts.idempotencyKey,
      idempotencyWindowMs: this.ctx.options.idempotencyWindowMs,
      excludeConnectionId: opts.excludeConnectionId,
    });
    const durability = this.ctx.durability;
    if (ns.persist && durability !== null && durability.hasArchive) {
      // Archived on the publishing node. A repeated idempotency key returns the FIRST publication (its own
      // frame and message id): archive that one too, so a retry after a failed archive write repairs it; the
      // store treats the same message id at the same offset as a no-op.
      const firstId = pub.frame === frame ? messageId : (MESSAGE_ID.exec(pub.frame)?.[1] ?? messageId);
      await durability.archivePublication(pub, firstId, senderId);
    }
    return pub;
  }
}
