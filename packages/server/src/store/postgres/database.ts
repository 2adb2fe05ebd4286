/**
 * A `pg` connection pool shared by the PostgreSQL message store and inbox. Statements are written with `?`
 * placeholders (shared with SQLite, see ../sql.ts) and numbered `$1..$n` here; values are always bound
 * parameters. Connection and query timeouts are bounded so an unreachable server fails fast with
 * STORE_UNAVAILABLE instead of hanging.
 */
import pg from 'pg';
import { StoreError, toStoreError } from '../errors.js';
import { POSTGRES_DIALECT, SCHEMA_MIGRATIONS_DDL, pendingMigrations } from '../migrations.js';

export interface PgDatabaseOptions {
  /** postgres://user:password@host:port/database */
  connectionString: string;
  /** Pool size (default 10). */
  max?: number;
  /** Give up acquiring a connection after this many ms (default 5000). */
  connectTimeoutMs?: number;
  /** Server-side statement timeout and client query timeout, ms (default 10000). */
  queryTimeoutMs?: number;
}

/** Advisory lock keys (two-int form): namespace, then purpose. */
export const LOCK_NAMESPACE = 0x5b0a; // "switchboard"
const LOCK_MIGRATE = 1;

export type PgClient = pg.PoolClient;

/** Number `?` placeholders as `$1..$n`. Our SQL never contains a literal `?`. */
export function numberPlaceholders(sql: string): string {
  let i = 0;
  return sql.replace(/\?/g, () => `$${++i}`);
}

export class PgDatabase {
  readonly pool: pg.Pool;
  private refs = 0;
  private closed = false;
  private readonly texts = new Map<string, string>();

  constructor(options: PgDatabaseOptions) {
    const queryTimeout = options.queryTimeoutMs ?? 10_000;
    this.pool = new pg.Pool({
      connectionString: options.connectionString,
      max: options.max ?? 10,
      connectionTimeoutMillis: options.connectTimeoutMs ?? 5_000,
      idleTimeoutMillis: 10_000,
      statement_timeout: queryTimeout,
      query_timeout: queryTimeout + 1_000,
      application_name: 'switchboard',
    });
    // An idle client losing its connection emits here; without a listener the process would crash.
    // The next query acquires a fresh connection (or fails with STORE_UNAVAILABLE).
    this.pool.on('error', () => {});
  }

  get isOpen(): boolean {
    return !this.closed;
  }

  retain(): void {
    this.refs++;
  }

  async release(): Promise<void> {
    if (--this.refs <= 0) await this.close();
  }

  /** Run one statement (`?` placeholders) on any pooled connection. */
  async query(sql: string, params: unknown[] = [], on?: PgClient): Promise<pg.QueryResult> {
    if (this.closed) throw new StoreError('STORE_CLOSED', 'PostgreSQL store is closed');
    const text = this.text(sql);
    try {
      return on ? await on.query(text, params) : await this.pool.query(text, params);
    } catch (err) {
      throw toStoreError(err, 'PostgreSQL query failed');
    }
  }

  /** Run `fn` in a transaction on one connection (ROLLBACK on throw). */
  async transaction<T>(fn: (client: PgClient) => Promise<T>): Promise<T> {
    if (this.closed) throw new StoreError('STORE_CLOSED', 'PostgreSQL store is closed');
    let client: PgClient;
    try {
      client = await this.pool.connect();
    } catch (err) {
      throw toStoreError(err, 'PostgreSQL connect failed');
    }
    let broken = false;
    try {
      await client.query('BEGIN');
      const out = await fn(client);
      await client.query('COMMIT');
      return out;
    } catch (err) {
      try {
        await client.query('ROLLBACK');
      } catch {
        broken = true;
      }
      throw toStoreError(err, 'PostgreSQL transaction failed');
    } finally {
      client.release(broken);
    }
  }

  /** Apply pending migrations under an advisory lock (several nodes may start at once). */
  async migrate(): Promise<void> {
    await this.transaction(async (c) => {
      await this.query('SELECT pg_advisory_xact_lock(?, ?)', [LOCK_NAMESPACE, LOCK_MIGRATE], c);
      await this.query(SCHEMA_MIGRATIONS_DDL, [], c);
      const res = await this.query('SELECT version FROM schema_migrations', [], c);
      const applied = new Set(res.rows.map((r: { version: number }) => Number(r.version)));
      for (const m of pendingMigrations(applied)) {
        for (const stmt of m.up(POSTGRES_DIALECT)) await this.query(stmt, [], c);
        await this.query('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)', [m.version, m.name, Date.now()], c);
      }
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.end();
  }

  private text(sql: string): string {
    let t = this.texts.get(sql);
    if (t === undefined) {
      t = numberPlaceholders(sql);
      if (this.texts.size < 256) this.texts.set(sql, t);
    }
    return t;
  }
}
