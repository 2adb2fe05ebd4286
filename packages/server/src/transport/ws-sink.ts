import type { Socket } from 'node:net';
import { WebSocket } from 'ws';
import { CloseCode } from '@switchboard/protocol';
import type { Outbound } from '../core/outbound.js';
import type { Hub } from '../core/hub.js';
import type { Session } from '../core/session.js';
import type { ConnectionSink } from '../core/sink.js';
import { encodeTextFrame } from './ws-frame.js';
import type { WriteBatcher } from './write-batcher.js';

/**
 * A WebSocket connection as the hub sees it. Frames are pre-encoded once per Outbound (cached on it) and
 * queued; the batcher flushes the queue with one socket write per tick. Queued + kernel-buffered bytes
 * above `maxQueuedBytes` close the connection with 4023 (slow consumer) instead of growing memory.
 *
 * Writes go straight to the underlying socket (ws keeps it as `_socket`): complete frames only, and ws's
 * own writes (pings, close) are complete frames too, so frames never interleave. See docs/adr/0001.
 *
 * A close initiated here removes the session from the hub at once (the closing handshake may take a while
 * with a stuck peer; the hub must not keep delivering to it or counting it).
 */
export class WsSink implements ConnectionSink {
  readonly kind = 'ws' as const;
  private queue: Buffer[] | null = null;
  private bytes = 0;
  private closing = false;
  private readonly socket: Socket;
  /** Set by the transport once the hub accepted the session. */
  session: Session | null = null;

  constructor(
    private readonly hub: Hub,
    private readonly ws: WebSocket,
    private readonly batcher: WriteBatcher,
    private readonly maxQueuedBytes: number,
  ) {
    this.socket = (ws as unknown as { _socket: Socket })._socket;
  }

  get queuedBytes(): number {
    return this.bytes + this.socket.writableLength;
  }

  send(frame: Outbound): void {
    if (this.closing) return;
    const buf = (frame.ws ??= encodeTextFrame(frame.json));
    if (this.queue === null) {
      this.queue = [buf];
      this.batcher.schedule(this);
    } else {
      this.queue.push(buf);
    }
    this.bytes += buf.length;
    if (this.maxQueuedBytes > 0 && this.bytes + this.socket.writableLength > this.maxQueuedBytes) {
      this.queue = null;
      this.bytes = 0;
      this.closing = true;
      this.ws.close(CloseCode.SLOW_CONSUMER, 'slow consumer');
      this.release(CloseCode.SLOW_CONSUMER);
    }
  }

  flush(): void {
    const queue = this.queue;
    if (queue === null) return;
    const bytes = this.bytes;
    this.queue = null;
    this.bytes = 0;
    if (this.ws.readyState !== WebSocket.OPEN) return;
    this.socket.write(queue.length === 1 ? queue[0]! : Buffer.concat(queue, bytes));
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
    this.queue = null;
    this.ws.terminate();
    this.release(CloseCode.GOING_AWAY);
  }

  private release(code: number): void {
    if (this.session !== null) this.hub.closeSession(this.session, code);
  }

  probe(): void {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.ping();
  }
}
