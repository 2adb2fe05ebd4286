import type { StreamPosition } from '@switchboard/protocol';
import type { InboxItem, InboxStore, MessageStore } from './ports/store.js';
import type { Publication } from './ports/broker.js';

export interface DurabilityOptions {
  /** Offline inbox items expire after this long (0: never). */
  inboxTtlMs: number;
  /** Items delivered on connect, at most. */
  inboxDeliverLimit: number;
}

/** A stored publication as the node needs it back. */
export interface ArchivedPublication {
  frame: string;
  offset: number;
  epoch: string;
  time: number;
}

/**
 * The node's view of the durable stores (interfaces only; the composition root picks SQLite or PostgreSQL):
 * archive of `persist` namespaces, history pages and recovery beyond the broker's window, offline inbox.
 */
export class Durability {
  constructor(
    private readonly archive: MessageStore | null,
    private readonly inbox: InboxStore | null,
    private readonly options: DurabilityOptions,
    private readonly now: () => number = Date.now,
  ) {}

  get hasArchive(): boolean {
    return this.archive !== null;
  }

  get hasInbox(): boolean {
    return this.inbox !== null;
  }

  /** Archive a publication of a persisted channel; resolves once committed. */
  async archivePublication(pub: Publication, messageId: string, senderId: string | null): Promise<void> {
    if (this.archive === null) return;
    await this.archive.append({
      channel: pub.channel,
      offset: pub.offset,
      epoch: pub.epoch,
      messageId,
      senderId,
      frame: pub.frame,
      createdAt: pub.time,
    });
  }

  /** Position of the newest archived publication, to continue a durable stream's numbering after a restart. */
  async latest(channel: string): Promise<StreamPosition | null> {
    const rec = this.archive === null ? null : await this.archive.latest(channel);
    return rec === null ? null : { offset: rec.offset, epoch: rec.epoch };
  }

  /** A history page from the archive (see MessageHistoryQuery for order). */
  async history(channel: string, query: { limit: number; before?: number; after?: number; skip?: number; epoch?: string }): Promise<{ publications: ArchivedPublication[]; hasMore: boolean }> {
    if (this.archive === null) return { publications: [], hasMore: false };
    const page = await this.archive.history(channel, query);
    return {
      publications: page.records.map((r) => ({ frame: r.frame, offset: r.offset, epoch: r.epoch, time: r.createdAt })),
      hasMore: page.hasMore,
    };
  }

  /**
   * Every archived publication after `since` up to `top`, if the archive holds them all (same epoch, offsets
   * contiguous); otherwise null (the gap cannot be closed).
   */
  async recover(channel: string, since: StreamPosition, top: StreamPosition, limit: number): Promise<Publication[] | null> {
    if (this.archive === null || since.epoch !== top.epoch || since.offset > top.offset) return null;
    const want = top.offset - since.offset;
    if (want > limit) return null;
    if (want === 0) return [];
    const page = await this.archive.history(channel, { after: since.offset, epoch: since.epoch, limit: want });
    const recs = page.records.filter((r) => r.offset <= top.offset);
    if (recs.length !== want || recs.some((r, i) => r.offset !== since.offset + 1 + i)) return null;
    return recs.map((r) => ({ channel, offset: r.offset, epoch: r.epoch, frame: r.frame, time: r.createdAt }));
  }

  /** Keep a frame for a user who is offline. Resolves to false when no inbox is configured. */
  async store(userId: string, messageId: string, frame: string): Promise<boolean> {
    if (this.inbox === null) return false;
    const now = this.now();
    await this.inbox.put(userId, {
      id: messageId,
      frame,
      createdAt: now,
      expiresAt: this.options.inboxTtlMs > 0 ? now + this.options.inboxTtlMs : null,
    });
    return true;
  }

  pending(userId: string): Promise<InboxItem[]> {
    return this.inbox === null ? Promise.resolve([]) : this.inbox.pending(userId, this.options.inboxDeliverLimit);
  }

  ack(userId: string, ids: readonly string[]): Promise<number> {
    return this.inbox === null ? Promise.resolve(0) : this.inbox.ack(userId, ids);
  }
}
