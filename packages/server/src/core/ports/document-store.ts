/**
 * Durable storage of Yjs documents (issue 13): an append-only log of updates per document plus one compacted
 * snapshot. SQLite (embedded) and PostgreSQL (clusters) implement it in `store/`; the document service
 * (core/features/documents.ts) is its only user. Errors are StoreErrors (core/ports/store.ts codes).
 *
 * Contract (tested by test/store/document-store-contract.ts against every implementation):
 * - `append` resolves once every given update is durable (committed), in the given order; ids grow with it.
 * - `load` returns a state from which the document can be rebuilt: applying `snapshot` and then every update
 *   of `updates` gives every update ever appended (Yjs updates are idempotent and commutative, so an update
 *   that is both in the snapshot and in the list is harmless).
 * - `compact` folds the snapshot and the updates it finds uncompacted into a new snapshot with `merge`, in one
 *   transaction, and marks exactly those updates compacted: concurrent appends (other nodes) are never lost,
 *   and two nodes compacting the same document at once are serialized.
 * - Compacted updates stay readable through `history` (the operation log) until `prune` removes them.
 */

/** One stored update (the operation log: seed 000 CollaborativeEditingService "operations"). */
export interface DocumentUpdateRecord {
  /** Position in the log: increases with every append of the store (not contiguous per document). */
  id: number;
  doc: string;
  /** Yjs update (v1 encoding). */
  update: Uint8Array;
  /** Actor that made it (user id, or connection id when anonymous); null for the server. */
  senderId: string | null;
  /** Milliseconds since the Unix epoch. */
  createdAt: number;
}

/** An update to append. */
export interface DocumentUpdateInput {
  update: Uint8Array;
  senderId: string | null;
  createdAt: number;
}

/** What a document is rebuilt from. */
export interface StoredDocument {
  snapshot: Uint8Array | null;
  /** Uncompacted updates, in append order. */
  updates: Uint8Array[];
}

export interface DocumentHistoryQuery {
  /** 1..1000. */
  limit: number;
  /** Records with id < before, newest first. */
  before?: number;
  /** Records with id > after, oldest first (wins over the default order). */
  after?: number;
}

export interface DocumentHistoryPage {
  records: DocumentUpdateRecord[];
  /** More records exist past the last one, in the page's direction. */
  hasMore: boolean;
}

export interface DocumentPruneOptions {
  /** Keep at most this many newest updates per document in the log (only compacted ones are removed). */
  keepPerDocument?: number;
  /** Remove compacted updates older than this. */
  olderThanMs?: number;
}

export interface DocumentStore {
  /** Append updates of one document; resolves once committed. */
  append(doc: string, updates: readonly DocumentUpdateInput[]): Promise<void>;
  /** Snapshot and uncompacted updates (empty for an unknown document). */
  load(doc: string): Promise<StoredDocument>;
  /**
   * Fold the snapshot and the uncompacted updates into a new snapshot (`merge` gets them and returns the new
   * snapshot; it runs inside the store's transaction and must be synchronous). Resolves to how many updates
   * were folded (0: nothing to do, `merge` not called).
   */
  compact(doc: string, merge: (snapshot: Uint8Array | null, updates: Uint8Array[]) => Uint8Array): Promise<number>;
  /** A page of the document's update log (compacted updates included until pruned). */
  history(doc: string, query: DocumentHistoryQuery): Promise<DocumentHistoryPage>;
  /** Remove compacted updates beyond the rules; resolves to how many were removed. */
  prune(options: DocumentPruneOptions): Promise<number>;
  close(): Promise<void>;
}
