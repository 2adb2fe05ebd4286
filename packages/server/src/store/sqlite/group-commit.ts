import { StoreError, toStoreError } from '../errors.js';
import type { SqliteDatabase } from './database.js';

interface Pending<T> {
  item: T;
  resolve: () => void;
  reject: (err: Error) => void;
}

/**
 * Group commit for a SQLite store's appends: every item added in one event-loop turn is written in ONE
 * transaction on the next `setImmediate`, and each promise settles after that commit. `flush()` writes what is
 * queued now (reads call it first, so a read issued after an append sees it). An item whose write throws
 * STORE_CONFLICT is rejected alone; any other error rolls the transaction back and rejects the whole batch.
 */
export class GroupCommit<T> {
  private queue: Pending<T>[] = [];
  private scheduled = false;

  constructor(
    private readonly db: SqliteDatabase,
    /** Write one item inside the transaction (synchronous). */
    private readonly write: (item: T) => void,
    /** The failure message (`SQLite append failed`). */
    private readonly failure: string,
  ) {}

  add(item: T): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  /** Write every queued item in one transaction; settle each promise. Synchronous. */
  flush(): void {
    this.scheduled = false;
    if (this.queue.length === 0) return;
    const batch = this.queue;
    this.queue = [];
    const outcomes: (Error | null)[] = [];
    try {
      this.db.transaction(() => {
        for (const p of batch) {
          try {
            this.write(p.item);
            outcomes.push(null);
          } catch (err) {
            if (err instanceof StoreError && err.code === 'STORE_CONFLICT') outcomes.push(err);
            else throw err;
          }
        }
      });
    } catch (err) {
      const e = toStoreError(err, this.failure);
      for (const p of batch) p.reject(e);
      return;
    }
    batch.forEach((p, i) => {
      const e = outcomes[i];
      if (e) p.reject(e);
      else p.resolve();
    });
  }
}
