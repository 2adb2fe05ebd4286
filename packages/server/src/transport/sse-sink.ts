import type { ServerResponse } from 'node:http';
import { CloseCode, isTerminalCloseCode } from '@switchboard/protocol';
import type { SessionPort } from '../core/ports/session-port.js';
import type { Outbound } from '../core/outbound.js';
import type { ConnectionSink } from '../core/ports/sink.js';
import { PositionVector } from './sse-position.js';
import { QueuedSink } from './queued-sink.js';
import type { WriteBatcher } from '../wire/write-batcher.js';

/** How long a closed stream may take to hand its last bytes to the kernel before it is destroyed. */
const CLOSE_TIMEOUT_MS = 5000;

/**
 * A Server-Sent Events response as the core sees it.
 *
 * Each Outbound is encoded once (`event: <type>\ndata: <json>\n\n`, cached on `frame.sse`) and shared by every
 * SSE recipient; the only per-connection bytes are the `id:` line, written when a frame moved this
 * connection's position vector (a channel publication, `subscribed`, `replay_complete`). Frames are queued
 * and the shared WriteBatcher flushes them with one `res.write` per tick. Queued + unwritten bytes above
 * `maxQueuedBytes` destroy the response at once with a TCP reset (slow consumer, 4023): an SSE client
 * cannot be told why, a stuck client would not read a goodbye anyway, and a reset frees the kernel buffers.
 *
 * `close()` flushes, appends an `event: close` (`{code, reason, reconnect}`), ends the response, and
 * removes the session from the core at once (like WsSink.release). `terminate()` destroys the response.
 */
export class SseSink extends QueuedSink implements ConnectionSink {
  readonly kind = 'sse' as const;
  /** Positions of this connection's channels: the SSE `id:` of every event that changes them. */
  readonly positions: PositionVector;

  constructor(
    sessions: SessionPort,
    private readonly res: ServerResponse,
    batcher: WriteBatcher,
    maxQueuedBytes: number,
    maxEventIdBytes: number,
  ) {
    super(sessions, batcher, maxQueuedBytes);
    this.positions = new PositionVector(maxEventIdBytes);
  }

  send(frame: Outbound): void {
    if (this.closing) return;
    const body = (frame.sse ??= encodeEvent(frame));
    if (this.track(frame)) this.push(Buffer.from('id: ' + this.positions.encode() + '\n', 'latin1'));
    this.push(body);
    this.enforceBound();
  }

  close(code: number, reason: string): void {
    if (this.closing) return;
    const data = { code, reason, reconnect: !isTerminalCloseCode(code) };
    this.push(Buffer.from('event: close\ndata: ' + this.sessions.frame('close', data) + '\n\n', 'utf8'));
    this.flush();
    this.closing = true;
    if (!this.res.destroyed && !this.res.writableEnded) {
      const res = this.res;
      res.end();
      if (!res.writableFinished) {
        setTimeout(() => {
          if (!res.writableFinished) res.destroy();
        }, CLOSE_TIMEOUT_MS).unref();
      }
    }
    this.release(code);
  }

  terminate(): void {
    this.closing = true;
    this.drop();
    this.res.destroy();
    this.release(CloseCode.GOING_AWAY);
  }

  /** The client went away: stop queueing (the transport tells the core). */
  gone(): void {
    this.closing = true;
    this.drop();
  }

  protected pendingWrites(): number {
    return this.res.writableLength;
  }

  protected writable(): boolean {
    return !this.res.destroyed && !this.res.writableEnded;
  }

  protected write(data: Buffer): void {
    this.res.write(data);
  }

  /** Reset (RST), not FIN: a FIN would queue behind the unread bytes and the kernel would keep them. */
  protected overflow(): void {
    const socket = this.res.socket;
    if (socket !== null && typeof socket.resetAndDestroy === 'function') socket.resetAndDestroy();
    else this.res.destroy();
  }

  /** Update the position vector from a frame; true if it changed (the event gets an `id:`). */
  private track(frame: Outbound): boolean {
    if (frame.channel !== null && frame.epoch !== null && frame.seq > 0) {
      return this.positions.set(frame.channel, frame.epoch, frame.seq);
    }
    if (frame.type !== 'subscribed' && frame.type !== 'replay_complete') return false;
    let d: { channel?: unknown; offset?: unknown; epoch?: unknown; recovered?: unknown };
    try {
      d = (JSON.parse(frame.json) as { data: typeof d }).data;
    } catch {
      return false;
    }
    if (typeof d.channel !== 'string' || typeof d.offset !== 'number' || typeof d.epoch !== 'string') return false;
    // A successful recovery's `subscribed` carries the head; the replayed publications move the position.
    if (frame.type === 'subscribed' && d.recovered === true) return false;
    return this.positions.set(d.channel, d.epoch, d.offset);
  }

}

const TYPE_KEY = '"type":"';
const SAFE_TYPE = /^[A-Za-z0-9_.-]{1,64}$/;

/**
 * `event: <type>\ndata: <json>\n\n` for a frame. The event name is the frame's own `type` (the Outbound's
 * type is a metrics label: user_online travels as 'broadcast'); `connect` is renamed `connected` (seed 002).
 */
export function encodeEvent(frame: Outbound): Buffer {
  let json = frame.json;
  let type = frame.type;
  const at = json.indexOf(TYPE_KEY);
  if (at >= 0) {
    const end = json.indexOf('"', at + TYPE_KEY.length);
    const t = json.slice(at + TYPE_KEY.length, end);
    if (SAFE_TYPE.test(t)) type = t;
  }
  if (type === 'connect' && at >= 0) {
    json = json.slice(0, at) + TYPE_KEY + 'connected' + json.slice(at + TYPE_KEY.length + 'connect'.length);
    type = 'connected';
  }
  if (!SAFE_TYPE.test(type)) type = 'message';
  // Frames are JSON text (no raw newlines); split defensively so a stray CR/LF cannot forge fields.
  const data = json.indexOf('\n') < 0 && json.indexOf('\r') < 0 ? json : json.split(/\r\n|\r|\n/).join('\ndata: ');
  return Buffer.from('event: ' + type + '\ndata: ' + data + '\n\n', 'utf8');
}
