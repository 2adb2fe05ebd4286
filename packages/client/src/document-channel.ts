import type { DocOpenedFrameData, ServerFrame } from '@switchboard/protocol';
import { decodeDocumentFrame, encodeDocumentFrame } from './binary-frame.js';
import { ClientErrorCode, SwitchboardError } from './errors.js';

/**
 * Receives the traffic of one document channel on a client connection (see
 * `SwitchboardClient.openDocumentChannel`). The Yjs binding (`@switchboard/client/yjs`, `DocumentHandle`) is
 * one; anything speaking the y-websocket message set can be another. Callbacks run synchronously; a throwing
 * callback is caught and reported like a throwing event listener.
 */
export interface DocumentChannelHandler {
  /**
   * The server opened the document on the current connection (`doc_opened`; again after every reconnect):
   * binary messages may flow both ways from now on. The server's sync step 1 and the current awareness
   * states follow.
   */
  opened(info: DocOpenedFrameData): void;
  /** One y-websocket message (varuint type, then the body) from the server for this document. */
  message(message: Uint8Array): void;
  /**
   * The server refused something of this document and the document stays open: READ_ONLY (updates dropped),
   * INVALID_UPDATE (a message dropped), or a temporary refusal of `doc_open` (RATE_LIMITED, INTERNAL,
   * DRAINING, TIMEOUT...) that is retried with the client's `subscribeRetry` backoff.
   */
  error(error: SwitchboardError): void;
  /** The server refused the document for good (FORBIDDEN, NOT_A_DOCUMENT...): the channel is closed. */
  ended(error: SwitchboardError): void;
  /**
   * The connection the document was open on is gone (dropped, or the client closed). If the channel is not
   * closed and the client reconnects, `doc_open` is sent again and `opened` follows.
   */
  lost(): void;
}

/** One document channel of a client: what the handler sends with, and how it ends. */
export interface DocumentChannel {
  readonly channel: string;
  /** True between `opened` and `lost` / `close()`: `send` reaches the server. */
  readonly isOpen: boolean;
  /** Send one y-websocket message for this document; false (nothing sent) while the document is not open. */
  send(message: Uint8Array): boolean;
  /** Close the document on the server (`doc_close`) and stop reopening it. Idempotent. */
  close(): void;
}

/** What the registry needs from the client. */
export interface DocumentChannelHost {
  /** The socket is open and the server's `connect` frame arrived. */
  connectionReady(): boolean;
  /** Send a command with a request id; exactly one of the callbacks runs (reply, error reply, timeout, lost). */
  command(type: string, data: Record<string, unknown>, onReply: (frame: ServerFrame) => void, onFail: (error: SwitchboardError) => void): void;
  /** Send a binary frame; false if the socket is not open. */
  sendBinary(frame: Uint8Array): boolean;
  /** Delay before retry `attempt` (from 0) of a temporarily refused `doc_open`, ms. */
  retryDelay(attempt: number): number;
  /** Report a throwing handler. */
  report(error: unknown): void;
}

class Entry implements DocumentChannel {
  /** The connection generation the document is open on (0: not open). */
  openOn = 0;
  /** Increments with every `doc_open` sent, so a stale reply is ignored. */
  attempt = 0;
  failures = 0;
  retryTimer: ReturnType<typeof setTimeout> | null = null;
  closed = false;

  constructor(
    readonly channel: string,
    readonly handler: DocumentChannelHandler,
    private readonly registry: DocumentChannels,
  ) {}

  get isOpen(): boolean {
    return this.openOn !== 0 && !this.closed;
  }

  send(message: Uint8Array): boolean {
    if (!this.isOpen) return false;
    return this.registry.sendBinary(encodeDocumentFrame(this.channel, message));
  }

  close(): void {
    this.registry.close(this);
  }
}

/**
 * The document channels of one client: `doc_open` on every connection, binary frames routed by channel
 * prefix, errors naming a document routed to it. Used by SwitchboardClient only.
 */
export class DocumentChannels {
  private readonly entries = new Map<string, Entry>();
  /** Counts connections; an entry is open on the one it was opened on. */
  private connection = 0;

  constructor(private readonly host: DocumentChannelHost) {}

  get size(): number {
    return this.entries.size;
  }

  has(channel: string): boolean {
    return this.entries.has(channel);
  }

  /** Register a document; throws if the channel already has a handler on this client. */
  add(channel: string, handler: DocumentChannelHandler): DocumentChannel {
    if (typeof channel !== 'string' || channel === '') throw new TypeError('a document channel name is required');
    if (this.entries.has(channel)) throw new Error(`document "${channel}" is already open on this client (destroy its handle first)`);
    const entry = new Entry(channel, handler, this);
    this.entries.set(channel, entry);
    if (this.host.connectionReady()) this.sendOpen(entry);
    return entry;
  }

  /** A connection is ready (the server's `connect` frame): open every document on it. */
  connected(): void {
    this.connection++;
    for (const e of this.entries.values()) {
      e.failures = 0;
      this.sendOpen(e);
    }
  }

  /** The connection is gone: every open document is closed server side. */
  disconnected(): void {
    this.connection++;
    for (const e of this.entries.values()) {
      if (e.retryTimer) clearTimeout(e.retryTimer);
      e.retryTimer = null;
      const wasOpen = e.openOn !== 0;
      e.openOn = 0;
      if (wasOpen) this.call(() => e.handler.lost());
    }
  }

  /** A binary frame from the server: true if it was a document frame of an open document. */
  binary(frame: Uint8Array): boolean {
    const m = decodeDocumentFrame(frame);
    if (m === null) return false;
    const e = this.entries.get(m.channel);
    if (e === undefined || !e.isOpen) return false;
    this.call(() => e.handler.message(m.message));
    return true;
  }

  /** A `doc_opened` frame that is not the reply to a pending `doc_open` (a late reply after a timeout). */
  openedFrame(data: DocOpenedFrameData): void {
    const e = this.entries.get(data.channel);
    if (e !== undefined && !e.isOpen && !e.closed) this.markOpen(e, data);
  }

  /** An error frame naming `channel`: true if it is a document of this client (then routed to it). */
  error(channel: string, error: SwitchboardError): boolean {
    const e = this.entries.get(channel);
    if (e === undefined) return false;
    this.call(() => e.handler.error(error));
    return true;
  }

  sendBinary(frame: Uint8Array): boolean {
    return this.host.sendBinary(frame);
  }

  close(e: Entry): void {
    if (e.closed) return;
    e.closed = true;
    if (e.retryTimer) clearTimeout(e.retryTimer);
    e.retryTimer = null;
    if (this.entries.get(e.channel) === e) this.entries.delete(e.channel);
    if (e.openOn !== 0 && this.host.connectionReady()) this.host.command('doc_close', { channel: e.channel }, noop, noop);
    e.openOn = 0;
  }

  private sendOpen(e: Entry): void {
    if (e.retryTimer) clearTimeout(e.retryTimer);
    e.retryTimer = null;
    const attempt = ++e.attempt;
    const connection = this.connection;
    const current = () => !e.closed && e.attempt === attempt && this.connection === connection;
    this.host.command(
      'doc_open',
      { channel: e.channel },
      (frame) => {
        if (current()) this.markOpen(e, frame.data as unknown as DocOpenedFrameData);
      },
      (error) => {
        if (!current() || error.code === ClientErrorCode.CONNECTION_LOST || !this.host.connectionReady()) return;
        if (!error.temporary) {
          this.close(e);
          this.call(() => e.handler.ended(error));
          return;
        }
        const delay = this.host.retryDelay(e.failures++);
        e.retryTimer = setTimeout(() => {
          e.retryTimer = null;
          if (current() && this.host.connectionReady()) this.sendOpen(e);
        }, delay);
        this.call(() => e.handler.error(error));
      },
    );
  }

  private markOpen(e: Entry, info: DocOpenedFrameData): void {
    if (e.retryTimer) clearTimeout(e.retryTimer); // a late reply to an open that timed out: no retry needed
    e.retryTimer = null;
    e.openOn = this.connection;
    e.failures = 0;
    this.call(() => e.handler.opened(info));
  }

  private call(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.host.report(err);
    }
  }
}

function noop(): void {}
