/**
 * The one schema history of the durable store, shared by every SQL driver. Each migration is written once;
 * the few dialect differences (auto-increment keys, "no limit") come from `SqlDialect`. Drivers record
 * applied versions in `schema_migrations` and apply the missing ones in order, in one transaction, under a
 * lock (SQLite: exclusive file lock; PostgreSQL: advisory transaction lock) so concurrent starts are safe.
 * Never edit a released migration: append a new version.
 */

export interface SqlDialect {
  readonly name: 'sqlite' | 'postgres';
  /** Column definition of an auto-increment 64-bit primary key. */
  readonly serialPrimaryKey: string;
  /** Clause meaning "no limit" before an OFFSET (SQLite requires a LIMIT before OFFSET). */
  readonly limitAll: string;
  /** Column type of binary data. */
  readonly blobType: string;
}

export const SQLITE_DIALECT: SqlDialect = { name: 'sqlite', serialPrimaryKey: 'INTEGER PRIMARY KEY', limitAll: 'LIMIT -1', blobType: 'BLOB' };
export const POSTGRES_DIALECT: SqlDialect = { name: 'postgres', serialPrimaryKey: 'BIGSERIAL PRIMARY KEY', limitAll: 'LIMIT ALL', blobType: 'BYTEA' };

export interface Migration {
  readonly version: number;
  readonly name: string;
  /** Statements to run, in order, inside the migration transaction. */
  up(d: SqlDialect): string[];
}

export const SCHEMA_MIGRATIONS_DDL =
  'CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)';

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'messages and inbox',
    up: (d) => [
      `CREATE TABLE sb_messages (
        id ${d.serialPrimaryKey},
        channel TEXT NOT NULL,
        epoch TEXT NOT NULL,
        stream_offset BIGINT NOT NULL,
        message_id TEXT NOT NULL,
        sender_id TEXT,
        frame TEXT NOT NULL,
        created_at BIGINT NOT NULL
      )`,
      'CREATE UNIQUE INDEX sb_messages_stream ON sb_messages (channel, epoch, stream_offset)',
      'CREATE INDEX sb_messages_channel_id ON sb_messages (channel, id)',
      'CREATE INDEX sb_messages_created ON sb_messages (created_at)',
      `CREATE TABLE sb_inbox (
        seq ${d.serialPrimaryKey},
        user_id TEXT NOT NULL,
        item_id TEXT NOT NULL,
        frame TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        expires_at BIGINT
      )`,
      'CREATE UNIQUE INDEX sb_inbox_item ON sb_inbox (user_id, item_id)',
      'CREATE INDEX sb_inbox_user_created ON sb_inbox (user_id, created_at, seq)',
      'CREATE INDEX sb_inbox_expires ON sb_inbox (expires_at)',
    ],
  },
  {
    version: 2,
    name: 'yjs documents: update log and snapshots',
    up: (d) => [
      `CREATE TABLE sb_doc_updates (
        id ${d.serialPrimaryKey},
        doc TEXT NOT NULL,
        data ${d.blobType} NOT NULL,
        sender_id TEXT,
        created_at BIGINT NOT NULL,
        compacted SMALLINT NOT NULL DEFAULT 0
      )`,
      'CREATE INDEX sb_doc_updates_doc ON sb_doc_updates (doc, id)',
      'CREATE INDEX sb_doc_updates_pending ON sb_doc_updates (doc, compacted, id)',
      'CREATE INDEX sb_doc_updates_created ON sb_doc_updates (created_at)',
      `CREATE TABLE sb_doc_snapshots (
        doc TEXT PRIMARY KEY,
        data ${d.blobType} NOT NULL,
        updated_at BIGINT NOT NULL
      )`,
    ],
  },
];

/** Migrations not yet applied, in version order. Throws if the database is newer than this code. */
export function pendingMigrations(applied: ReadonlySet<number>): Migration[] {
  const known = new Set(MIGRATIONS.map((m) => m.version));
  for (const v of applied) {
    if (!known.has(v)) throw new Error(`database schema version ${v} is newer than this server knows`);
  }
  return MIGRATIONS.filter((m) => !applied.has(m.version)).sort((a, b) => a.version - b.version);
}
