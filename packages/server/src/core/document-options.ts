/**
 * Settings of Yjs document channels (issue 13; config section `documents`, docs/documents.md). A channel is
 * a document when its namespace says `documents: "yjs"`; these settings apply to every document.
 */
export interface DocumentOptions {
  /** Largest Yjs update (or sync step 2) accepted from a client, bytes. The y-websocket endpoint also uses it
   * as its frame limit (larger frames close with 1009). */
  maxUpdateBytes: number;
  /** Largest awareness message from a client, bytes. */
  maxAwarenessBytes: number;
  /** Awareness client ids one connection may speak for (a y-websocket provider uses one per document). */
  maxAwarenessClients: number;
  /** Document updates per connection and document: a token bucket. Past it the connection is closed with
   * 4021 (never dropped: a dropped update would leave the client diverged until it resyncs). */
  updateRate: { perSecond: number; burst: number };
  /** Awareness and other control messages per connection and document. Past it they are dropped; after
   * `closeAfterDropped` drops in a row the connection is closed with 4021. */
  awarenessRate: { perSecond: number; burst: number; closeAfterDropped: number };
  /** Documents one Switchboard connection may have open at once (`doc_open`). */
  maxPerConnection: number;
  /** Documents kept in memory after their last client left (least recently used beyond are dropped). */
  idleDocuments: number;
  /** An idle document is dropped after this long. */
  idleTtlMs: number;
  /** Compact (snapshot) a document once this many updates were appended since the last compaction. */
  compactAfterUpdates: number;
  /** Operation log kept per document after compaction: newest updates (0: keep all). */
  historyKeep: number;
  /** Awareness entries of a node not heard from for this long are removed (its node died). */
  nodeTimeoutMs: number;
  /** A read-only client is told at most once per this many ms that its updates are dropped. */
  readOnlyNoticeMs: number;
  /** Retry interval of a failed store write (updates wait, unrelayed, until stored). */
  storeRetryMs: number;
}

export const DEFAULT_DOCUMENT_OPTIONS: DocumentOptions = {
  maxUpdateBytes: 1024 * 1024,
  maxAwarenessBytes: 32 * 1024,
  maxAwarenessClients: 4,
  updateRate: { perSecond: 200, burst: 2000 },
  awarenessRate: { perSecond: 60, burst: 120, closeAfterDropped: 200 },
  maxPerConnection: 20,
  idleDocuments: 100,
  idleTtlMs: 60_000,
  compactAfterUpdates: 500,
  historyKeep: 10_000,
  nodeTimeoutMs: 5000,
  readOnlyNoticeMs: 5000,
  storeRetryMs: 1000,
};

/** Options merged over the defaults (one level deep, as the config file gives them). */
export function documentOptions(partial: Partial<DocumentOptions> | undefined): DocumentOptions {
  const d = DEFAULT_DOCUMENT_OPTIONS;
  if (partial === undefined) return d;
  return {
    ...d,
    ...partial,
    updateRate: { ...d.updateRate, ...partial.updateRate },
    awarenessRate: { ...d.awarenessRate, ...partial.awarenessRate },
  };
}

/**
 * Largest binary document frame on a Switchboard connection: an update of `maxUpdateBytes`, plus 1024 bytes
 * for the y-websocket message header (as the y-websocket endpoint's frame limit), plus the channel name as a
 * varstring (at most 3 UTF-8 bytes per UTF-16 unit of `maxChannelNameLength`).
 */
export function documentFrameBytes(maxUpdateBytes: number, maxChannelNameLength: number): number {
  return maxUpdateBytes + 1024 + 3 * maxChannelNameLength;
}
