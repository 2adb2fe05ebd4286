import { StoreError, toStoreError } from '../errors.js';
import {
  SQL, checkPrune, checkChannel, checkPublication, planHistory, publicationParams, rowToPublication,
} from '../sql.js';
import type { MessageHistoryPage, MessageHistoryQuery, MessageStore, PruneOptions, StoredPublication } from '../../core/ports/store.js';
import type { SqliteDatabase } from './database.js';
import { GroupCommit } from './group-commit.js';

export interface SqliteMessageStoreOptions {
  /** Clock for retention (default Date.now). */
  now?: () => number;
}

/**
 * MessageStore on SQLite. Appends are group-committed: every append issued in the same event-loop turn
 * is written in ONE transaction on the next `setImmediate`, and each promise resolves after that commit.
 * Reads first flush queued appends, so a read issued after an append (even without awaiting it) sees it.
 */
export class SqliteMessageStore implements MessageStore {
  private readonly db: SqliteDatabase;
  private readonly now: () => number;
  private readonly appends: GroupCommit<StoredPublication>;
  private closed = false;

  constructor(db: SqliteDatabase, options: SqliteMessageStoreOptions = {}) {
    this.db = db;
    this.now = options.now ?? Date.now;
    this.appends = new GroupCommit(db, (r) => this.insert(r), 'SQLite append failed');
    db.retain();
  }

  async migrate(): Promise<void> {
    this.guard();
    this.db.migrate();
  }

  append(rec: StoredPublication): Promise<void> {
    try {
      this.guard();
      checkPublication(rec);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.appends.add(rec);
  }

  async appendMany(recs: readonly StoredPublication[]): Promise<void> {
    this.guard();
    for (const r of recs) checkPublication(r);
    this.flush();
    try {
      this.db.transaction(() => {
        for (const r of recs) this.insert(r);
      });
    } catch (err) {
      throw toStoreError(err, 'SQLite appendMany failed');
    }
  }

  async history(channel: string, query: MessageHistoryQuery): Promise<MessageHistoryPage> {
    this.guard();
    const plan = planHistory(channel, query);
    this.flush();
    try {
      const rows = this.db.all(plan.text, plan.params);
      const hasMore = rows.length > plan.limit;
      return { records: rows.slice(0, plan.limit).map(rowToPublication), hasMore };
    } catch (err) {
      throw toStoreError(err, 'SQLite history failed');
    }
  }

  async latest(channel: string): Promise<StoredPublication | null> {
    this.guard();
    checkChannel(channel);
    this.flush();
    try {
      const row = this.db.get(SQL.latest, [channel]);
      return row ? rowToPublication(row) : null;
    } catch (err) {
      throw toStoreError(err, 'SQLite latest failed');
    }
  }

  async prune(options: PruneOptions): Promise<number> {
    this.guard();
    checkPrune(options);
    this.flush();
    try {
      return this.db.transaction(() => {
        let n = 0;
        if (options.olderThanMs !== undefined) n += this.db.run(SQL.pruneOlderThan, [this.now() - options.olderThanMs]).changes;
        if (options.keepPerChannel !== undefined) n += this.db.run(SQL.pruneKeep, [options.keepPerChannel]).changes;
        return n;
      });
    } catch (err) {
      throw toStoreError(err, 'SQLite prune failed');
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

  /** Insert one record; a duplicate position is a no-op when the messageId matches, else STORE_CONFLICT. */
  private insert(r: StoredPublication): void {
    if (this.db.run(SQL.insertMessage, publicationParams(r)).changes === 1) return;
    const row = this.db.get(SQL.messageIdAt, [r.channel, r.epoch, r.offset]);
    if (row && row.message_id === r.messageId) return;
    throw new StoreError(
      'STORE_CONFLICT',
      `channel ${JSON.stringify(r.channel)} epoch ${r.epoch} offset ${r.offset} already holds another message`,
    );
  }

  private guard(): void {
    if (this.closed || !this.db.isOpen) throw new StoreError('STORE_CLOSED', 'message store is closed');
  }
}
