/**
 * Composition-root helper: build the configured durable stores. Core receives the returned interfaces and
 * never imports an implementation.
 */
import { join } from 'node:path';
import { StoreError } from './errors.js';
import type { InboxStore, MessageStore } from '../core/ports/store.js';
import type { DocumentStore } from '../core/ports/document-store.js';

export type StoreDriver = 'sqlite' | 'postgres' | 'none';

export interface StoreConfig {
  /** Default 'sqlite'. 'none': no archive, no offline inbox (both stores are null). */
  driver: StoreDriver;
  /** SQLite file (default `data/switchboard.db` under the working directory); ':memory:' for a throwaway DB. */
  sqlitePath?: string;
  /** PostgreSQL connection URL; required for driver 'postgres' (e.g. from DATABASE_URL). */
  postgresUrl?: string;
  /** PostgreSQL pool size (default 10). */
  postgresPoolSize?: number;
  /** Fail a PostgreSQL connection attempt after this many ms (default 5000). */
  postgresConnectTimeoutMs?: number;
  /** PostgreSQL statement timeout, ms (default 10000). */
  postgresQueryTimeoutMs?: number;
  /** Offline inbox bound per user; the oldest items beyond it are dropped (default 100). */
  inboxMaxPerUser?: number;
  /** Clock for retention and inbox expiry (tests). Default Date.now. */
  now?: () => number;
}

export interface Stores {
  readonly driver: StoreDriver;
  /** Null when driver is 'none'. */
  readonly messages: MessageStore | null;
  readonly inbox: InboxStore | null;
  /** Yjs documents: update log and snapshots (docs/documents.md). */
  readonly documents: DocumentStore | null;
  /** Close every store (and their shared connection or pool). Idempotent. */
  close(): Promise<void>;
}

export const DEFAULT_SQLITE_PATH = join('data', 'switchboard.db');

/**
 * Open, migrate and return the stores for `config`. Rejects with STORE_UNAVAILABLE when the backend cannot
 * be opened or reached, STORE_INVALID_ARGUMENT for a bad configuration (unknown driver, missing URL).
 */
export async function createStores(config: StoreConfig): Promise<Stores> {
  const driver = config.driver;
  if (driver === 'none') {
    return { driver, messages: null, inbox: null, documents: null, close: async () => {} };
  }
  if (driver === 'sqlite') {
    const { createSqliteStores } = await import('./sqlite/index.js');
    const s = await createSqliteStores({
      path: config.sqlitePath ?? DEFAULT_SQLITE_PATH,
      inboxMaxPerUser: config.inboxMaxPerUser,
      now: config.now,
    });
    return withClose(driver, s.messages, s.inbox, s.documents);
  }
  if (driver === 'postgres') {
    if (!config.postgresUrl) {
      throw new StoreError('STORE_INVALID_ARGUMENT', "store driver 'postgres' needs postgresUrl (e.g. DATABASE_URL)");
    }
    const { createPgStores } = await import('./postgres/index.js');
    const s = await createPgStores({
      connectionString: config.postgresUrl,
      max: config.postgresPoolSize,
      connectTimeoutMs: config.postgresConnectTimeoutMs,
      queryTimeoutMs: config.postgresQueryTimeoutMs,
      inboxMaxPerUser: config.inboxMaxPerUser,
      now: config.now,
    });
    return withClose(driver, s.messages, s.inbox, s.documents);
  }
  throw new StoreError('STORE_INVALID_ARGUMENT', `unknown store driver ${JSON.stringify(driver)}`);
}

function withClose(driver: StoreDriver, messages: MessageStore, inbox: InboxStore, documents: DocumentStore): Stores {
  return {
    driver,
    messages,
    inbox,
    documents,
    close: async () => {
      await messages.close();
      await inbox.close();
      await documents.close();
    },
  };
}
