/**
 * One SQLite connection (node-sqlite3-wasm: WASM SQLite with a Node fs VFS; no native addon, no install
 * script) shared by the message store and the inbox of one file. Synchronous underneath: each statement blocks
 * the event loop for its duration, so statements stay small, are prepared once and cached, and appends are
 * group-committed (see SqliteMessageStore).
 *
 * Pragmas: `locking_mode=EXCLUSIVE` (the file belongs to this process; a second server on the same file fails
 * at open with STORE_UNAVAILABLE instead of corrupting offsets; it also lets WAL work without the shared-memory
 * index this VFS lacks), `journal_mode=WAL`, `synchronous=NORMAL` (durable across process crashes; the last
 * commits may be lost on power loss), `busy_timeout`.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { createRequire } from 'node:module';
import type { Database as WasmDatabase, Statement } from 'node-sqlite3-wasm';
import { StoreError, toStoreError } from '../errors.js';
import { clearStaleLock, forgetOwner, recordOwner } from './lock-owner.js';
import { SCHEMA_MIGRATIONS_DDL, SQLITE_DIALECT, pendingMigrations } from '../migrations.js';

const require = createRequire(import.meta.url);

export type SqlValue = string | number | bigint | null | Uint8Array;
export type Row = Record<string, SqlValue | Uint8Array>;

export interface SqliteDatabaseOptions {
  /** File path, or ':memory:'. Parent directories are created. */
  path: string;
}

export class SqliteDatabase {
  readonly path: string;
  private db: WasmDatabase | null;
  private readonly stmts = new Map<string, Statement>();
  private refs = 0;
  private migrated = false;

  constructor(options: SqliteDatabaseOptions) {
    this.path = options.path;
    let db: WasmDatabase | null = null;
    try {
      if (this.path !== ':memory:') {
        mkdirSync(dirname(this.path), { recursive: true });
        clearStaleLock(this.path);
      }
      const { Database } = require('node-sqlite3-wasm') as typeof import('node-sqlite3-wasm');
      db = new Database(this.path);
      db.exec('PRAGMA busy_timeout = 250');
      db.exec('PRAGMA locking_mode = EXCLUSIVE');
      // Switching the journal takes the exclusive lock now, so a file held by another process fails here.
      db.all('PRAGMA journal_mode = WAL');
      db.exec('PRAGMA synchronous = NORMAL');
      if (this.path !== ':memory:') recordOwner(this.path);
    } catch (err) {
      try {
        db?.close();
      } catch {
        /* already failing */
      }
      throw new StoreError('STORE_UNAVAILABLE', `cannot open SQLite store ${this.path}: ${message(err)}`, { cause: err });
    }
    this.db = db;
  }

  /** Journal mode actually in effect ('wal' unless the VFS refused it). */
  journalMode(): string {
    return String(this.get('PRAGMA journal_mode')?.journal_mode ?? '');
  }

  get isOpen(): boolean {
    return this.db !== null;
  }

  /** Count a user of the connection; `release` closes it when the last user is gone. */
  retain(): void {
    this.refs++;
  }

  release(): void {
    if (--this.refs <= 0) this.close();
  }

  /** Apply pending migrations once per connection. Failures reject as StoreError. */
  migrate(): void {
    if (this.migrated) return;
    try {
      this.transaction(() => {
        this.raw().exec(SCHEMA_MIGRATIONS_DDL);
        const applied = new Set(this.all('SELECT version FROM schema_migrations').map((r) => Number(r.version)));
        for (const m of pendingMigrations(applied)) {
          for (const stmt of m.up(SQLITE_DIALECT)) this.raw().exec(stmt);
          this.run('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)', [m.version, m.name, Date.now()]);
        }
      });
    } catch (err) {
      throw toStoreError(err, 'SQLite migration failed');
    }
    this.migrated = true;
  }

  run(sql: string, params: SqlValue[] = []): { changes: number } {
    const r = this.stmt(sql).run(params);
    return { changes: r.changes };
  }

  /** Like `run` without caching the statement (for SQL whose text varies, e.g. IN lists). */
  runOnce(sql: string, params: SqlValue[] = []): { changes: number } {
    return { changes: this.raw().run(sql, params).changes };
  }

  all(sql: string, params: SqlValue[] = []): Row[] {
    return this.stmt(sql).all(params) as Row[];
  }

  /** First row or null. Runs the statement to completion (a half-stepped cached statement would keep a read
   * open and block COMMIT), so use it for single-row queries. */
  get(sql: string, params: SqlValue[] = []): Row | null {
    return (this.stmt(sql).all(params)[0] as Row | undefined) ?? null;
  }

  /** Run `fn` in one transaction (BEGIN IMMEDIATE ... COMMIT, ROLLBACK on throw). Not re-entrant. */
  transaction<T>(fn: () => T): T {
    const db = this.raw();
    db.exec('BEGIN IMMEDIATE');
    try {
      const out = fn();
      db.exec('COMMIT');
      return out;
    } catch (err) {
      if (db.inTransaction) db.exec('ROLLBACK');
      throw err;
    }
  }

  close(): void {
    if (!this.db) return;
    for (const s of this.stmts.values()) {
      try {
        s.finalize();
      } catch {
        /* ignore */
      }
    }
    this.stmts.clear();
    const db = this.db;
    this.db = null;
    db.close();
    if (this.path !== ':memory:') forgetOwner(this.path);
  }

  private raw(): WasmDatabase {
    if (!this.db) throw new StoreError('STORE_CLOSED', 'SQLite store is closed');
    return this.db;
  }

  private stmt(sql: string): Statement {
    let s = this.stmts.get(sql);
    if (!s) {
      s = this.raw().prepare(sql);
      this.stmts.set(sql, s);
    }
    return s;
  }
}

export function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
