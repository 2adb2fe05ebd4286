import { toStoreError, StoreError } from '../errors.js';
import { DOC_SQL, bytes, checkDoc, checkDocumentPrune, checkUpdates, planDocumentHistory, rowToUpdate } from '../document-sql.js';
import type {
  DocumentHistoryPage, DocumentHistoryQuery, DocumentPruneOptions, DocumentStore, DocumentUpdateInput, StoredDocument,
} from '../../core/ports/document-store.js';
import type { SqliteDatabase } from './database.js';
import { GroupCommit } from './group-commit.js';

interface PendingAppend {
  doc: string;
  updates: readonly DocumentUpdateInput[];
}

/**
 * DocumentStore on SQLite (the embedded default; one process per file). Appends are group-committed like the
 * message archive: every append of one event-loop turn, for any document, in ONE transaction on the next
 * `setImmediate`. Reads flush queued appends first. Compaction runs in one transaction; SQLite's single
 * writer serializes it with appends.
 */
export class SqliteDocumentStore implements DocumentStore {
  private readonly appends: GroupCommit<PendingAppend>;
  private closed = false;

  constructor(private readonly db: SqliteDatabase, private readonly now: () => number = Date.now) {
    this.appends = new GroupCommit(db, (p) => {
      for (const u of p.updates) db.run(DOC_SQL.insert, [p.doc, u.update, u.senderId, u.createdAt]);
    }, 'SQLite document append failed');
    db.retain();
  }

  append(doc: string, updates: readonly DocumentUpdateInput[]): Promise<void> {
    try {
      this.guard();
      checkDoc(doc);
      checkUpdates(updates);
    } catch (err) {
      return Promise.reject(err);
    }
    if (updates.length === 0) return Promise.resolve();
    return this.appends.add({ doc, updates });
  }

  async load(doc: string): Promise<StoredDocument> {
    this.guard();
    checkDoc(doc);
    this.flush();
    try {
      const updates = this.db.all(DOC_SQL.pending, [doc]).map((r) => bytes(r.data));
      const snap = this.db.get(DOC_SQL.snapshot, [doc]);
      return { snapshot: snap === null ? null : bytes(snap.data), updates };
    } catch (err) {
      throw toStoreError(err, 'SQLite document load failed');
    }
  }

  async compact(doc: string, merge: (snapshot: Uint8Array | null, updates: Uint8Array[]) => Uint8Array): Promise<number> {
    this.guard();
    checkDoc(doc);
    this.flush();
    try {
      return this.db.transaction(() => {
        const rows = this.db.all(DOC_SQL.pending, [doc]);
        if (rows.length === 0) return 0;
        const snap = this.db.get(DOC_SQL.snapshot, [doc]);
        const merged = merge(snap === null ? null : bytes(snap.data), rows.map((r) => bytes(r.data)));
        this.db.run(DOC_SQL.upsertSnapshot, [doc, merged, this.now()]);
        // One writer: nothing was appended since the read, so every uncompacted id up to the last read is merged.
        this.db.run('UPDATE sb_doc_updates SET compacted = 1 WHERE doc = ? AND compacted = 0 AND id <= ?', [doc, Number(rows[rows.length - 1]!.id)]);
        return rows.length;
      });
    } catch (err) {
      throw toStoreError(err, 'SQLite document compaction failed');
    }
  }

  async history(doc: string, query: DocumentHistoryQuery): Promise<DocumentHistoryPage> {
    this.guard();
    const plan = planDocumentHistory(doc, query);
    this.flush();
    try {
      const rows = this.db.all(plan.text, plan.params);
      return { records: rows.slice(0, plan.limit).map(rowToUpdate), hasMore: rows.length > plan.limit };
    } catch (err) {
      throw toStoreError(err, 'SQLite document history failed');
    }
  }

  async prune(options: DocumentPruneOptions): Promise<number> {
    this.guard();
    checkDocumentPrune(options);
    this.flush();
    try {
      return this.db.transaction(() => {
        let n = 0;
        if (options.olderThanMs !== undefined) n += this.db.run(DOC_SQL.pruneOlderThan, [this.now() - options.olderThanMs]).changes;
        if (options.keepPerDocument !== undefined) n += this.db.run(DOC_SQL.pruneKeep, [options.keepPerDocument]).changes;
        return n;
      });
    } catch (err) {
      throw toStoreError(err, 'SQLite document prune failed');
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    this.db.release();
  }

  /** Write queued appends now (reads see every append issued before them). */
  private flush(): void {
    this.appends.flush();
  }

  private guard(): void {
    if (this.closed || !this.db.isOpen) throw new StoreError('STORE_CLOSED', 'document store is closed');
  }
}
