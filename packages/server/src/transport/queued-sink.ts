import { CloseCode } from '@switchboard/protocol';
import type { SessionHandle, SessionPort } from '../core/ports/session-port.js';
import type { Flushable, WriteBatcher } from '../wire/write-batcher.js';

/**
 * The queue every transport sink shares: encoded frames are queued and the WriteBatcher flushes each sink
 * with ONE write per event-loop turn; queued + not-yet-written bytes above `maxQueuedBytes` drop the queue
 * and end the connection as a slow consumer (4023) instead of growing memory. A close started by the sink
 * removes the session from the core at once (`release`): a stuck peer must not be delivered to or counted.
 *
 * Subclasses say how to write, how much the transport still holds, and how to end an overflowing peer.
 */
export abstract class QueuedSink implements Flushable {
  private queue: Buffer[] | null = null;
  private bytes = 0;
  protected closing = false;
  /** Set by the transport once the core accepted the session. */
  session: SessionHandle | null = null;

  constructor(
    protected readonly sessions: SessionPort,
    private readonly batcher: WriteBatcher,
    private readonly maxQueuedBytes: number,
  ) {}

  /** Bytes the transport accepted but has not handed to the kernel yet. */
  protected abstract pendingWrites(): number;
  /** Whether writes can still go out. */
  protected abstract writable(): boolean;
  protected abstract write(data: Buffer): void;
  /** End a peer that overflowed its bound (the queue is already dropped). */
  protected abstract overflow(): void;

  get queuedBytes(): number {
    return this.bytes + this.pendingWrites();
  }

  /** Queue bytes; the first push of a turn schedules this sink's flush. */
  protected push(buf: Buffer): void {
    if (this.queue === null) {
      this.queue = [buf];
      this.batcher.schedule(this);
    } else {
      this.queue.push(buf);
    }
    this.bytes += buf.length;
  }

  /** After pushing: a sink over its bound is dropped as a slow consumer. */
  protected enforceBound(): void {
    if (this.maxQueuedBytes > 0 && this.bytes + this.pendingWrites() > this.maxQueuedBytes) {
      this.drop();
      this.closing = true;
      this.overflow();
      this.release(CloseCode.SLOW_CONSUMER);
    }
  }

  /** Write everything queued, in one write. */
  flush(): void {
    const queue = this.queue;
    if (queue === null) return;
    const bytes = this.bytes;
    this.queue = null;
    this.bytes = 0;
    if (!this.writable()) return;
    this.write(this.combine(queue, bytes));
  }

  /** The bytes one flush writes for what was queued (default: the queued buffers back to back). */
  protected combine(queue: Buffer[], bytes: number): Buffer {
    return queue.length === 1 ? queue[0]! : Buffer.concat(queue, bytes);
  }

  /** Forget what is queued. */
  protected drop(): void {
    this.queue = null;
    this.bytes = 0;
  }

  protected release(code: number): void {
    if (this.session !== null) this.sessions.closeSession(this.session, code);
  }
}
