import type { Socket } from 'node:net';
import { WebSocket } from 'ws';
import { CloseCode } from '@switchboard/protocol';
import type { Outbound } from '../core/outbound.js';
import type { SessionPort } from '../core/ports/session-port.js';
import type { ConnectionSink } from '../core/ports/sink.js';
import { encodeBatchFrame, encodeBinaryFrame, encodeTextFrame } from '../wire/ws-frame.js';
import { QueuedSink } from './queued-sink.js';
import type { WriteBatcher } from '../wire/write-batcher.js';

/**
 * A WebSocket connection as the core sees it. Frames are pre-encoded once per Outbound (cached on it) and
 * queued (QueuedSink: one socket write per tick, bounded; a slow consumer is closed with 4023).
 *
 * Writes go straight to the underlying socket (ws keeps it as `_socket`): complete frames only, and ws's
 * own writes (pings, close) are complete frames too, so frames never interleave. See docs/adr/0001.
 */
export class WsSink extends QueuedSink implements ConnectionSink {
  readonly kind = 'ws' as const;
  private readonly socket: Socket;

  constructor(
    sessions: SessionPort,
    private readonly ws: WebSocket,
    batcher: WriteBatcher,
    maxQueuedBytes: number,
    /** Seed 002 batch frames (`?batch=1`): the frames of one flush go out as one `batch` frame. */
    private readonly batch = false,
  ) {
    super(sessions, batcher, maxQueuedBytes);
    this.socket = (ws as unknown as { _socket: Socket })._socket;
  }

  send(frame: Outbound): void {
    if (this.closing) return;
    if (frame.binary !== undefined) {
      // A binary message (documents): batch mode writes what is queued as one batch frame first, then it.
      const bytes = (frame.ws ??= encodeBinaryFrame(frame.binary));
      if (this.batch) {
        this.flush();
        if (this.writable()) this.write(bytes);
        return;
      }
      this.push(bytes);
      this.enforceBound();
      return;
    }
    // Batch mode queues the frame's JSON (UTF-8, cached on the Outbound too) and frames the flush as a whole.
    this.push(this.batch ? (frame.utf8 ??= Buffer.from(frame.json)) : (frame.ws ??= encodeTextFrame(frame.json)));
    this.enforceBound();
  }

  protected override combine(queue: Buffer[], bytes: number): Buffer {
    return this.batch ? encodeBatchFrame(queue, bytes) : super.combine(queue, bytes);
  }

  close(code: number, reason: string): void {
    if (this.closing) return;
    this.flush();
    this.closing = true;
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.close(code, reason);
    this.release(code);
  }

  terminate(): void {
    this.closing = true;
    this.drop();
    this.ws.terminate();
    this.release(CloseCode.GOING_AWAY);
  }

  probe(): void {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.ping();
  }

  protected pendingWrites(): number {
    return this.socket.writableLength;
  }

  protected writable(): boolean {
    return this.ws.readyState === WebSocket.OPEN;
  }

  protected write(data: Buffer): void {
    this.socket.write(data);
  }

  protected overflow(): void {
    this.ws.close(CloseCode.SLOW_CONSUMER, 'slow consumer');
  }
}
