import { StoreError } from '../errors.js';
import { POSTGRES_DIALECT } from '../migrations.js';
import { SQL, checkIds, checkInboxItem, checkPositiveInt, checkUser, rowToInboxItem } from '../sql.js';
import type { InboxItem, InboxStore } from '../../core/ports/store.js';
import { LOCK_NAMESPACE, type PgDatabase } from './database.js';

export interface PgInboxStoreOptions {
  /** Keep at most this many items per user (oldest dropped). Default 100. */
  maxPerUser?: number;
  now?: () => number;
}

/** Second key of the per-user advisory lock is hashtext(user_id); the first is the namespace + this. */
const LOCK_INBOX_NAMESPACE = LOCK_NAMESPACE + 1;

/** InboxStore on PostgreSQL; see InboxStore for the contract. */
export class PgInboxStore implements InboxStore {
  private readonly db: PgDatabase;
  private readonly maxPerUser: number;
  private readonly now: () => number;
  private readonly trimSql = SQL.inboxTrim(POSTGRES_DIALECT);
  private closed = false;

  constructor(db: PgDatabase, options: PgInboxStoreOptions = {}) {
    this.maxPerUser = options.maxPerUser ?? 100;
    checkPositiveInt(this.maxPerUser, 'maxPerUser');
    this.db = db;
    this.now = options.now ?? Date.now;
    db.retain();
  }

  async migrate(): Promise<void> {
    this.guard();
    await this.db.migrate();
  }

  async put(userId: string, item: InboxItem): Promise<void> {
    this.guard();
    checkUser(userId);
    checkInboxItem(item);
    await this.db.transaction(async (c) => {
      // Serialize puts per user so concurrent puts cannot leave more than maxPerUser items.
      await this.db.query('SELECT pg_advisory_xact_lock(?, hashtext(?))', [LOCK_INBOX_NAMESPACE, userId], c);
      await this.db.query(SQL.inboxInsert, [userId, item.id, item.frame, item.createdAt, item.expiresAt], c);
      await this.db.query(SQL.inboxDropExpiredForUser, [userId, this.now()], c);
      await this.db.query(this.trimSql, [userId, this.maxPerUser], c);
    });
  }

  async pending(userId: string, limit: number): Promise<InboxItem[]> {
    this.guard();
    checkUser(userId);
    checkPositiveInt(limit, 'limit');
    const res = await this.db.query(SQL.inboxPending, [userId, this.now(), limit]);
    return res.rows.map(rowToInboxItem);
  }

  async ack(userId: string, ids: readonly string[]): Promise<number> {
    this.guard();
    checkUser(userId);
    checkIds(ids);
    if (ids.length === 0) return 0;
    const res = await this.db.query('DELETE FROM sb_inbox WHERE user_id = ? AND item_id = ANY(?::text[])', [userId, ids]);
    return res.rowCount ?? 0;
  }

  async purgeExpired(): Promise<number> {
    this.guard();
    const res = await this.db.query(SQL.inboxPurgeExpired, [this.now()]);
    return res.rowCount ?? 0;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.db.release();
  }

  private guard(): void {
    if (this.closed || !this.db.isOpen) throw new StoreError('STORE_CLOSED', 'inbox store is closed');
  }
}
