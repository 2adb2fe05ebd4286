import { StoreError } from '../errors.js';
import { DOC_SQL, bytes, checkDoc, checkDocumentPrune, checkUpdates, planDocumentHistory, rowToUpdate } from '../document-sql.js';
import type {
  DocumentHistoryPage, DocumentHistoryQuery, DocumentPruneOptions, DocumentStore, DocumentUpdateInput, StoredDocument,
} from '../../core/ports/document-store.js';
import { LOCK_NAMESPACE, type PgDatabase } from './database.js';

/** Several updates of one document in one statement, ids in the given order. */
const INSERT_MANY =
  'INSERT INTO sb_doc_updates (doc, data, sender_id, created_at) ' +
  'SELECT ?::text, u.data, u.sender_id, u.created_at FROM unnest(?::bytea[], ?::text[], ?::bigint[]) WITH ORDINALITY AS u(data, sender_id, created_at, n) ORDER BY u.n';

/**
 * DocumentStore on PostgreSQL (clusters: every node appends to and loads from the same log). Compaction takes
 * a transaction-scoped advisory lock per document (two nodes compacting one document run one after the
 * other), reads the snapshot and the uncompacted updates, and marks exactly the ids it merged: an update
 * committed meanwhile by another node (ids of concurrent transactions commit out of order) stays uncompacted.
 */
export class PgDocumentStore implements DocumentStore {
  private closed = false;

  constructor(private readonly db: PgDatabase, private readonly now: () => number = Date.now) {
    db.retain();
  }

  async append(doc: string, updates: readonly DocumentUpdateInput[]): Promise<void> {
    this.guard();
    checkDoc(doc);
    checkUpdates(updates);
    if (updates.length === 0) return;
    if (updates.length === 1) {
      const u = updates[0]!;
      await this.db.query(DOC_SQL.insert, [doc, Buffer.from(u.update.buffer, u.update.byteOffset, u.update.byteLength), u.senderId, u.createdAt]);
      return;
    }
    await this.db.query(INSERT_MANY, [
      doc,
      updates.map((u) => Buffer.from(u.update.buffer, u.update.byteOffset, u.update.byteLength)),
      updates.map((u) => u.senderId),
      updates.map((u) => u.createdAt),
    ]);
  }

  async load(doc: string): Promise<StoredDocument> {
    this.guard();
    checkDoc(doc);
    // Updates first, then the snapshot: an update compacted between the two reads is in the snapshot read
    // second (snapshots only grow), so nothing falls between them.
    const updates = (await this.db.query(DOC_SQL.pending, [doc])).rows.map((r: { data: Buffer }) => bytes(r.data));
    const snap = await this.db.query(DOC_SQL.snapshot, [doc]);
    return { snapshot: snap.rows.length === 0 ? null : bytes(snap.rows[0].data), updates };
  }

  async compact(doc: string, merge: (snapshot: Uint8Array | null, updates: Uint8Array[]) => Uint8Array): Promise<number> {
    this.guard();
    checkDoc(doc);
    return this.db.transaction(async (c) => {
      await this.db.query('SELECT pg_advisory_xact_lock(?, hashtext(?))', [LOCK_NAMESPACE, doc], c);
      const rows = (await this.db.query(DOC_SQL.pending, [doc], c)).rows as Array<{ id: string | number; data: Buffer }>;
      if (rows.length === 0) return 0;
      const snap = await this.db.query(DOC_SQL.snapshot, [doc], c);
      const merged = merge(snap.rows.length === 0 ? null : bytes(snap.rows[0].data), rows.map((r) => bytes(r.data)));
      await this.db.query(DOC_SQL.upsertSnapshot, [doc, Buffer.from(merged.buffer, merged.byteOffset, merged.byteLength), this.now()], c);
      await this.db.query('UPDATE sb_doc_updates SET compacted = 1 WHERE id = ANY(?::bigint[])', [rows.map((r) => String(r.id))], c);
      return rows.length;
    });
  }

  async history(doc: string, query: DocumentHistoryQuery): Promise<DocumentHistoryPage> {
    this.guard();
    const plan = planDocumentHistory(doc, query);
    const res = await this.db.query(plan.text, plan.params);
    return { records: res.rows.slice(0, plan.limit).map(rowToUpdate), hasMore: res.rows.length > plan.limit };
  }

  async prune(options: DocumentPruneOptions): Promise<number> {
    this.guard();
    checkDocumentPrune(options);
    return this.db.transaction(async (c) => {
      let n = 0;
      if (options.olderThanMs !== undefined) n += (await this.db.query(DOC_SQL.pruneOlderThan, [this.now() - options.olderThanMs], c)).rowCount ?? 0;
      if (options.keepPerDocument !== undefined) n += (await this.db.query(DOC_SQL.pruneKeep, [options.keepPerDocument], c)).rowCount ?? 0;
      return n;
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.db.release();
  }

  private guard(): void {
    if (this.closed || !this.db.isOpen) throw new StoreError('STORE_CLOSED', 'document store is closed');
  }
}
