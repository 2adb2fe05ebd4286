import { StoreError, toStoreError } from '../errors.js';
import { SQLITE_DIALECT } from '../migrations.js';
import { SQL, checkIds, checkInboxItem, checkPositiveInt, checkUser, rowToInboxItem } from '../sql.js';
import type { InboxItem, InboxStore } from '../../core/ports/store.js';
import type { SqliteDatabase, SqlValue } from './database.js';

export interface SqliteInboxStoreOptions {
  /** Keep at most this many items per user (oldest dropped). Default 100. */
  maxPerUser?: number;
  /** Clock for expiry (default Date.now). */
  now?: () => number;
}

const ACK_CHUNK = 500;

/** InboxStore on SQLite; see InboxStore for the contract. */
export class SqliteInboxStore implements InboxStore {
  private readonly db: SqliteDatabase;
  private readonly maxPerUser: number;
  private readonly now: () => number;
  private readonly trimSql = SQL.inboxTrim(SQLITE_DIALECT);
  private closed = false;

  constructor(db: SqliteDatabase, options: SqliteInboxStoreOptions = {}) {
    this.db = db;
    this.maxPerUser = options.maxPerUser ?? 100;
    checkPositiveInt(this.maxPerUser, 'maxPerUser');
    this.now = options.now ?? Date.now;
    db.retain();
  }

  async migrate(): Promise<void> {
    this.guard();
    this.db.migrate();
  }

  async put(userId: string, item: InboxItem): Promise<void> {
    this.guard();
    checkUser(userId);
    checkInboxItem(item);
    try {
      this.db.transaction(() => {
        this.db.run(SQL.inboxInsert, [userId, item.id, item.frame, item.createdAt, item.expiresAt]);
        this.db.run(SQL.inboxDropExpiredForUser, [userId, this.now()]);
        this.db.run(this.trimSql, [userId, this.maxPerUser]);
      });
    } catch (err) {
      throw toStoreError(err, 'SQLite inbox put failed');
    }
  }

  async pending(userId: string, limit: number): Promise<InboxItem[]> {
    this.guard();
    checkUser(userId);
    checkPositiveInt(limit, 'limit');
    try {
      return this.db.all(SQL.inboxPending, [userId, this.now(), limit]).map(rowToInboxItem);
    } catch (err) {
      throw toStoreError(err, 'SQLite inbox pending failed');
    }
  }

  async ack(userId: string, ids: readonly string[]): Promise<number> {
    this.guard();
    checkUser(userId);
    checkIds(ids);
    if (ids.length === 0) return 0;
    try {
      return this.db.transaction(() => {
        let n = 0;
        for (let i = 0; i < ids.length; i += ACK_CHUNK) {
          const chunk = ids.slice(i, i + ACK_CHUNK);
          const sql = `DELETE FROM sb_inbox WHERE user_id = ? AND item_id IN (${chunk.map(() => '?').join(', ')})`;
          n += this.db.runOnce(sql, [userId, ...chunk] as SqlValue[]).changes;
        }
        return n;
      });
    } catch (err) {
      throw toStoreError(err, 'SQLite inbox ack failed');
    }
  }

  async purgeExpired(): Promise<number> {
    this.guard();
    try {
      return this.db.run(SQL.inboxPurgeExpired, [this.now()]).changes;
    } catch (err) {
      throw toStoreError(err, 'SQLite inbox purge failed');
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.db.release();
  }

  private guard(): void {
    if (this.closed || !this.db.isOpen) throw new StoreError('STORE_CLOSED', 'inbox store is closed');
  }
}
