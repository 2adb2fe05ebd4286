import type { Socket } from 'node:net';
import { WebSocket } from 'ws';
import { CloseCode, ErrorCode } from '@switchboard/protocol';
import type { DocumentPeer } from '../../core/features/documents-session.js';
import { permissionDeniedMessage, type DocumentFrame } from '../../core/features/documents-wire.js';
import type { ConnectionInfo } from '../../core/ports/hooks.js';
import type { SessionIdentity } from '../../core/ports/session-port.js';
import { encodeBinaryFrame } from '../../wire/ws-frame.js';
import type { Flushable, WriteBatcher } from '../../wire/write-batcher.js';

/**
 * One y-websocket socket as a document peer. Outgoing messages are WebSocket frames encoded once per message
 * for every y-websocket peer of the document (cached on the DocumentFrame), queued, and written with one
 * socket write at the end of the task that produced them (the handler's WriteBatcher, timing `task`). A peer that lets more than
 * `maxQueuedBytes` pile up is closed as a slow consumer (4023).
 */
export class YWebsocketPeer implements DocumentPeer, ConnectionInfo, Flushable {
  readonly connectedAt = Date.now();
  readonly clientId = null;
  readonly standalone = true;
  /** A ping went out and no pong came back yet (the handler's heartbeat sweep). */
  awaitingPong = false;
  /** A message arrived since the previous sweep: alive, no ping needed. */
  heard = false;
  private queue: Buffer | Buffer[] | null = null;
  private bytes = 0;
  private closing = false;
  private readonly socket: Socket;

  constructor(
    readonly id: string,
    readonly ws: WebSocket,
    public identity: SessionIdentity,
    readonly remoteAddress: string,
    readonly metadata: Record<string, unknown>,
    private readonly batcher: WriteBatcher,
    private readonly maxQueuedBytes: number,
  ) {
    this.socket = (ws as unknown as { _socket: Socket })._socket;
  }

  get userId(): string | null {
    return this.identity.userId;
  }

  get info(): ConnectionInfo {
    return this;
  }

  get actorId(): string {
    return this.identity.userId ?? this.id;
  }

  send(frame: DocumentFrame): void {
    if (this.closing) return;
    const first = this.queue === null;
    this.push(frame);
    if (first && this.queue !== null) this.batcher.schedule(this);
  }

  /** Written at once, behind whatever is queued; not scheduled on the batcher (nothing is left for it). */
  sendNow(frame: DocumentFrame): void {
    if (this.closing) return;
    this.push(frame);
    this.flush();
  }

  /** Queue a message; a peer that lets more than maxQueuedBytes pile up is closed as a slow consumer (4023). */
  private push(frame: DocumentFrame): void {
    const buf = (frame.wire ??= encodeBinaryFrame(frame.message));
    // One message per batch (the usual case) is held as is; an array only from the second one.
    const q = this.queue;
    if (q === null) this.queue = buf;
    else if (Array.isArray(q)) q.push(buf);
    else this.queue = [q, buf];
    this.bytes += buf.length;
    if (this.maxQueuedBytes > 0 && this.bytes + this.socket.writableLength > this.maxQueuedBytes) {
      this.queue = null;
      this.bytes = 0;
      this.closing = true;
      this.ws.close(CloseCode.SLOW_CONSUMER, 'slow consumer');
    }
  }

  flush(): void {
    const q = this.queue;
    if (q === null) return;
    const bytes = this.bytes;
    this.queue = null;
    this.bytes = 0;
    if (this.ws.readyState !== WebSocket.OPEN) return;
    this.socket.write(Array.isArray(q) ? Buffer.concat(q, bytes) : q);
  }

  /**
   * Read-only: y-protocols' "permission denied" auth message (the provider logs the reason) and the socket stays
   * open. Anything else refused (malformed, truncated, oversized, foreign updates): close with 4400, which
   * y-websocket providers do not retry (resending the same bytes would fail the same way).
   */
  refused(_channel: string, code: string, message: string): void {
    if (code === ErrorCode.READ_ONLY) {
      this.sendRaw(permissionDeniedMessage(message));
      return;
    }
    this.close(CloseCode.INVALID_DOCUMENT_MESSAGE, message);
  }

  close(code: number, reason: string): void {
    if (this.closing) return;
    this.flush();
    this.closing = true;
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.close(code, truncate(reason));
  }

  private sendRaw(message: Uint8Array): void {
    if (this.closing) return;
    this.flush();
    if (this.ws.readyState === WebSocket.OPEN) this.socket.write(encodeBinaryFrame(message));
  }
}

/** A close reason fits in 123 bytes. */
function truncate(reason: string): string {
  return Buffer.byteLength(reason) <= 120 ? reason : Buffer.from(reason).subarray(0, 120).toString('utf8').replace(/\uFFFD$/, '');
}
