import { StoreError } from '../errors.js';
import {
  SQL, checkChannel, checkPrune, checkPublication, planHistory, publicationParams, rowToPublication,
} from '../sql.js';
import type { MessageHistoryPage, MessageHistoryQuery, MessageStore, PruneOptions, StoredPublication } from '../../core/ports/store.js';
import type { PgClient, PgDatabase } from './database.js';

const INSERT_MANY =
  'INSERT INTO sb_messages (channel, epoch, stream_offset, message_id, sender_id, frame, created_at) ' +
  'SELECT * FROM unnest(?::text[], ?::text[], ?::bigint[], ?::text[], ?::text[], ?::text[], ?::bigint[]) ' +
  'ON CONFLICT (channel, epoch, stream_offset) DO NOTHING';

export interface PgMessageStoreOptions {
  now?: () => number;
}

/** MessageStore on PostgreSQL; see MessageStore for the contract. */
export class PgMessageStore implements MessageStore {
  private readonly db: PgDatabase;
  private readonly now: () => number;
  private closed = false;

  constructor(db: PgDatabase, options: PgMessageStoreOptions = {}) {
    this.db = db;
    this.now = options.now ?? Date.now;
    db.retain();
  }

  async migrate(): Promise<void> {
    this.guard();
    await this.db.migrate();
  }

  async append(rec: StoredPublication): Promise<void> {
    this.guard();
    checkPublication(rec);
    const res = await this.db.query(SQL.insertMessage, publicationParams(rec));
    if (res.rowCount !== 1) await this.checkDuplicate(rec);
  }

  async appendMany(recs: readonly StoredPublication[]): Promise<void> {
    this.guard();
    for (const r of recs) checkPublication(r);
    if (recs.length === 0) return;
    await this.db.transaction(async (c) => {
      const res = await this.db.query(
        INSERT_MANY,
        [
          recs.map((r) => r.channel), recs.map((r) => r.epoch), recs.map((r) => r.offset), recs.map((r) => r.messageId),
          recs.map((r) => r.senderId), recs.map((r) => r.frame), recs.map((r) => r.createdAt),
        ],
        c,
      );
      if (res.rowCount !== recs.length) for (const r of recs) await this.checkDuplicate(r, c);
    });
  }

  async history(channel: string, query: MessageHistoryQuery): Promise<MessageHistoryPage> {
    this.guard();
    const plan = planHistory(channel, query);
    const res = await this.db.query(plan.text, plan.params);
    return { records: res.rows.slice(0, plan.limit).map(rowToPublication), hasMore: res.rows.length > plan.limit };
  }

  async latest(channel: string): Promise<StoredPublication | null> {
    this.guard();
    checkChannel(channel);
    const res = await this.db.query(SQL.latest, [channel]);
    return res.rows.length ? rowToPublication(res.rows[0]) : null;
  }

  async prune(options: PruneOptions): Promise<number> {
    this.guard();
    checkPrune(options);
    return this.db.transaction(async (c) => {
      let n = 0;
      if (options.olderThanMs !== undefined) {
        n += (await this.db.query(SQL.pruneOlderThan, [this.now() - options.olderThanMs], c)).rowCount ?? 0;
      }
      if (options.keepPerChannel !== undefined) {
        n += (await this.db.query(SQL.pruneKeep, [options.keepPerChannel], c)).rowCount ?? 0;
      }
      return n;
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.db.release();
  }

  /** The position already exists: fine if it holds the same message, STORE_CONFLICT otherwise. */
  private async checkDuplicate(r: StoredPublication, on?: PgClient): Promise<void> {
    const res = await this.db.query(SQL.messageIdAt, [r.channel, r.epoch, r.offset], on);
    if (res.rows.length === 1 && res.rows[0].message_id === r.messageId) return;
    throw new StoreError(
      'STORE_CONFLICT',
      `channel ${JSON.stringify(r.channel)} epoch ${r.epoch} offset ${r.offset} already holds another message`,
    );
  }

  private guard(): void {
    if (this.closed || !this.db.isOpen) throw new StoreError('STORE_CLOSED', 'message store is closed');
  }
}
