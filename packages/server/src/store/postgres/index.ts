import { PgDatabase, type PgDatabaseOptions } from './database.js';
import { PgInboxStore } from './inbox-store.js';
import { PgMessageStore } from './message-store.js';
import { PgDocumentStore } from './document-store.js';

export { PgDatabase, numberPlaceholders } from './database.js';
export { PgInboxStore } from './inbox-store.js';
export { PgMessageStore } from './message-store.js';
export { PgDocumentStore } from './document-store.js';

export interface PgStoresOptions extends PgDatabaseOptions {
  /** Inbox bound per user (default 100). */
  inboxMaxPerUser?: number;
  /** Clock for retention and expiry (default Date.now). */
  now?: () => number;
}

/**
 * Build both stores on one pool and run migrations. Rejects with STORE_UNAVAILABLE when the server cannot
 * be reached within connectTimeoutMs. The pool ends when both stores are closed.
 */
export async function createPgStores(
  options: PgStoresOptions,
): Promise<{ messages: PgMessageStore; inbox: PgInboxStore; documents: PgDocumentStore; database: PgDatabase }> {
  const database = new PgDatabase(options);
  let messages: PgMessageStore | undefined;
  let inbox: PgInboxStore | undefined;
  let documents: PgDocumentStore | undefined;
  try {
    inbox = new PgInboxStore(database, { maxPerUser: options.inboxMaxPerUser, now: options.now });
    messages = new PgMessageStore(database, { now: options.now });
    documents = new PgDocumentStore(database, options.now);
    await messages.migrate();
  } catch (err) {
    await documents?.close();
    await messages?.close();
    await inbox?.close();
    await database.close();
    throw err;
  }
  return { messages, inbox, documents, database };
}
