/**
 * Periodic retention: prune the message archive and purge expired inbox items on an interval. The timer is
 * unref'd (never keeps the process alive) and runs never overlap; failures go to `onError` and the next tick
 * tries again.
 */
import type { InboxStore, MessageStore, PruneOptions } from '../core/ports/store.js';
import type { DocumentStore } from '../core/ports/document-store.js';

export interface RetentionOptions extends PruneOptions {
  /** How often to run (default 60000 ms). */
  intervalMs?: number;
  onError?: (err: unknown) => void;
  /** Document operation log: compacted updates kept per document (0 or absent: all). */
  documentsKeep?: number;
}

export interface Retention {
  /** One pass now: resolves to { pruned, purged } counts. */
  runOnce(): Promise<{ pruned: number; purged: number; documents: number }>;
  stop(): void;
}

export function startRetention(
  stores: { messages: MessageStore | null; inbox: InboxStore | null; documents?: DocumentStore | null },
  options: RetentionOptions,
): Retention {
  let running = false;
  const prune: PruneOptions = { olderThanMs: options.olderThanMs, keepPerChannel: options.keepPerChannel };
  const hasRule = prune.olderThanMs !== undefined || prune.keepPerChannel !== undefined;
  const keepDocs = options.documentsKeep !== undefined && options.documentsKeep > 0 ? options.documentsKeep : undefined;
  async function runOnce(): Promise<{ pruned: number; purged: number; documents: number }> {
    const pruned = stores.messages && hasRule ? await stores.messages.prune(prune) : 0;
    const purged = stores.inbox ? await stores.inbox.purgeExpired() : 0;
    const documents = stores.documents && keepDocs !== undefined ? await stores.documents.prune({ keepPerDocument: keepDocs }) : 0;
    return { pruned, purged, documents };
  }
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    runOnce()
      .catch((err: unknown) => options.onError?.(err))
      .finally(() => {
        running = false;
      });
  }, options.intervalMs ?? 60_000);
  timer.unref();
  return { runOnce, stop: () => clearInterval(timer) };
}
