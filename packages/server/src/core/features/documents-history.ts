import type { CoreContext } from '../context.js';
import type { DocumentUpdateRecord } from '../ports/document-store.js';
import type { Documents } from './documents.js';
import { History, type HistoryPage, type HistoryRequest } from './history.js';
import type { StreamRestore } from './stream-restore.js';

/**
 * History with documents: the history of a document channel is its operation log (the stored Yjs updates,
 * seed 000's operation history), one `doc_update` frame per update, `seq` = the update's log id; other
 * channels are answered by History as before.
 */
export class DocumentHistory extends History {
  constructor(
    ctx: Pick<CoreContext, 'broker' | 'namespaces' | 'durability'>,
    restore: StreamRestore,
    private readonly docs: Documents,
  ) {
    super(ctx, restore);
  }

  override async read(channel: string, q: HistoryRequest): Promise<HistoryPage> {
    if (!this.docs.isDocument(channel)) return super.read(channel, q);
    const page = await this.docs.history(channel, { limit: q.limit ?? 50, before: q.before, after: q.after });
    const publications = page.records.map((r) => updateFrame(r));
    return { channel, publications, has_more: page.hasMore, source: 'document' } as unknown as HistoryPage;
  }
}

/** One stored update as a history entry. */
export function updateFrame(r: DocumentUpdateRecord): Record<string, unknown> {
  return {
    type: 'doc_update',
    data: { channel: r.doc, update: Buffer.from(r.update.buffer, r.update.byteOffset, r.update.byteLength).toString('base64'), user_id: r.senderId },
    timestamp: new Date(r.createdAt).toISOString(),
    message_id: `doc-${r.id}`,
    sender_id: r.senderId,
    recipient_id: null,
    channel: r.doc,
    seq: r.id,
  };
}
