/**
 * SQL of the document store (SQLite and PostgreSQL share it; `?` placeholders, numbered by the PostgreSQL
 * driver): the update log `sb_doc_updates` and one snapshot per document in `sb_doc_snapshots` (migration 2).
 */
import { StoreError } from './errors.js';
import type { DocumentHistoryQuery, DocumentPruneOptions, DocumentUpdateInput, DocumentUpdateRecord } from '../core/ports/document-store.js';
import { MAX_HISTORY_LIMIT, checkText } from './sql.js';

export const DOC_SQL = {
  insert: 'INSERT INTO sb_doc_updates (doc, data, sender_id, created_at) VALUES (?, ?, ?, ?)',
  pending: 'SELECT id, data FROM sb_doc_updates WHERE doc = ? AND compacted = 0 ORDER BY id',
  snapshot: 'SELECT data FROM sb_doc_snapshots WHERE doc = ?',
  upsertSnapshot:
    'INSERT INTO sb_doc_snapshots (doc, data, updated_at) VALUES (?, ?, ?) ' +
    'ON CONFLICT (doc) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at',
  pruneOlderThan: 'DELETE FROM sb_doc_updates WHERE compacted = 1 AND created_at < ?',
  pruneKeep:
    'DELETE FROM sb_doc_updates WHERE compacted = 1 AND id IN (SELECT id FROM (SELECT id, ROW_NUMBER() OVER ' +
    '(PARTITION BY doc ORDER BY id DESC) AS rn FROM sb_doc_updates) ranked WHERE rn > ?)',
} as const;

const COLS = 'id, doc, data, sender_id, created_at';

/** The history page query (limit + 1 rows fetched to tell `hasMore`). */
export function planDocumentHistory(doc: string, q: DocumentHistoryQuery): { text: string; params: (string | number)[]; limit: number } {
  checkDoc(doc);
  if (q === null || typeof q !== 'object' || !Number.isInteger(q.limit) || q.limit < 1) throw invalid('history limit must be an integer >= 1');
  const limit = Math.min(q.limit, MAX_HISTORY_LIMIT);
  const params: (string | number)[] = [doc];
  let text = `SELECT ${COLS} FROM sb_doc_updates WHERE doc = ?`;
  if (q.after !== undefined) {
    checkId(q.after, 'after');
    text += ' AND id > ?';
    params.push(q.after);
  }
  if (q.before !== undefined) {
    checkId(q.before, 'before');
    text += ' AND id < ?';
    params.push(q.before);
  }
  text += q.after !== undefined ? ' ORDER BY id ASC' : ' ORDER BY id DESC';
  text += ' LIMIT ?';
  params.push(limit + 1);
  return { text, params, limit };
}

export function checkDoc(doc: string): void {
  checkText(doc, 'doc', false);
}

export function checkUpdates(updates: readonly DocumentUpdateInput[]): void {
  if (!Array.isArray(updates)) throw invalid('updates must be an array');
  for (const u of updates) {
    if (u === null || typeof u !== 'object' || !(u.update instanceof Uint8Array) || u.update.length === 0) throw invalid('update must be a non-empty Uint8Array');
    if (u.senderId !== null) checkText(u.senderId, 'senderId');
    if (!Number.isSafeInteger(u.createdAt)) throw invalid('createdAt must be an integer (ms)');
  }
}

export function checkDocumentPrune(o: DocumentPruneOptions): void {
  if (o === null || typeof o !== 'object') throw invalid('prune options must be an object');
  if (o.olderThanMs !== undefined) checkId(o.olderThanMs, 'olderThanMs');
  if (o.keepPerDocument !== undefined) checkId(o.keepPerDocument, 'keepPerDocument');
}

function checkId(v: number, name: string): void {
  if (!Number.isSafeInteger(v) || v < 0) throw invalid(`${name} must be an integer >= 0`);
}

type Cell = unknown;

/** A binary cell as a Uint8Array (SQLite: Uint8Array; PostgreSQL: Buffer). */
export function bytes(cell: Cell): Uint8Array {
  if (cell instanceof Uint8Array) return new Uint8Array(cell.buffer, cell.byteOffset, cell.byteLength);
  throw new StoreError('STORE_UNAVAILABLE', 'document data is not binary');
}

export function rowToUpdate(row: Record<string, Cell>): DocumentUpdateRecord {
  return {
    id: Number(row.id),
    doc: String(row.doc),
    update: bytes(row.data),
    senderId: row.sender_id === null || row.sender_id === undefined ? null : String(row.sender_id),
    createdAt: Number(row.created_at),
  };
}

function invalid(message: string): StoreError {
  return new StoreError('STORE_INVALID_ARGUMENT', message);
}
