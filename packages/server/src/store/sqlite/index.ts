import { SqliteDatabase } from './database.js';
import { SqliteInboxStore } from './inbox-store.js';
import { SqliteMessageStore } from './message-store.js';
import { SqliteDocumentStore } from './document-store.js';

export { SqliteDatabase } from './database.js';
export { SqliteInboxStore } from './inbox-store.js';
export { SqliteMessageStore } from './message-store.js';
export { SqliteDocumentStore } from './document-store.js';

export interface SqliteStoresOptions {
  /** Database file (parent directories are created), or ':memory:'. */
  path: string;
  /** Inbox bound per user (default 100). */
  inboxMaxPerUser?: number;
  /** Clock for retention and expiry (default Date.now). */
  now?: () => number;
}

/**
 * Open one SQLite file and build the stores (archive, inbox, documents) on its single connection, migrated.
 * The connection closes when every store is closed. Rejects with STORE_UNAVAILABLE if the file cannot be opened (e.g. another
 * process holds it).
 */
export async function createSqliteStores(
  options: SqliteStoresOptions,
): Promise<{ messages: SqliteMessageStore; inbox: SqliteInboxStore; documents: SqliteDocumentStore; database: SqliteDatabase }> {
  const database = new SqliteDatabase({ path: options.path });
  let messages: SqliteMessageStore | undefined;
  let inbox: SqliteInboxStore | undefined;
  let documents: SqliteDocumentStore | undefined;
  try {
    inbox = new SqliteInboxStore(database, { maxPerUser: options.inboxMaxPerUser, now: options.now });
    messages = new SqliteMessageStore(database, { now: options.now });
    documents = new SqliteDocumentStore(database, options.now);
    await messages.migrate();
  } catch (err) {
    await documents?.close();
    await messages?.close();
    await inbox?.close();
    database.close();
    throw err;
  }
  return { messages, inbox, documents, database };
}
