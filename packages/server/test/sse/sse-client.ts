import http, { type IncomingHttpHeaders } from 'node:http';
import { EventSource } from 'eventsource';
import type { Frame } from '../helpers.js';

/** One dispatched SSE event. */
export interface SseEvent {
  /** `event:` name (`message` when absent). */
  event: string;
  /** The `id:` field of THIS event, or null if it had none. */
  id: string | null;
  /** The client's last event id after this event (what a reconnect would send). */
  lastEventId: string;
  data: string;
  /** `data` parsed as JSON. */
  frame: Frame;
}

type Match = string | ((e: SseEvent) => boolean);

/** Waiting/consuming logic shared by both clients: `next()` takes the first unconsumed matching event. */
class EventQueue {
  /** Every event received, in order (never consumed). */
  readonly all: SseEvent[] = [];
  private pending: SseEvent[] = [];
  private waiters: Array<{ pred: (e: SseEvent) => boolean; resolve: (e: SseEvent) => void }> = [];

  push(e: SseEvent): void {
    this.all.push(e);
    const i = this.waiters.findIndex((w) => w.pred(e));
    if (i >= 0) this.waiters.splice(i, 1)[0]!.resolve(e);
    else this.pending.push(e);
  }

  next(match: Match, timeoutMs = 3000): Promise<SseEvent> {
    const pred = typeof match === 'string' ? (e: SseEvent) => e.event === match : match;
    const i = this.pending.findIndex(pred);
    if (i >= 0) return Promise.resolve(this.pending.splice(i, 1)[0]!);
    return new Promise((resolve, reject) => {
      const waiter = {
        pred,
        resolve: (e: SseEvent) => {
          clearTimeout(timer);
          resolve(e);
        },
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new Error(`timed out waiting for ${typeof match === 'string' ? match : 'event'}; have: ${this.pending.map((e) => e.event).join(',')}`));
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }
}

/**
 * A raw HTTP SSE client (node:http + a spec-following line parser), to check the bytes on the wire:
 * status, headers, `retry:`, `id:`, `event:`, `data:`.
 */
export class RawSseClient {
  private readonly queue = new EventQueue();
  readonly all: SseEvent[];
  status = 0;
  headers: IncomingHttpHeaders = {};
  /** Body text for non-200 answers; raw stream text otherwise. */
  text = '';
  retry: number | null = null;
  lastEventId = '';
  /** Resolves when the response ended or the connection closed. */
  readonly ended: Promise<void>;
  private endedResolve!: () => void;
  private req!: http.ClientRequest;
  private res: http.IncomingMessage | null = null;
  private buf = '';
  private ev = { event: '', data: [] as string[], id: null as string | null };

  private constructor() {
    this.all = this.queue.all;
    this.ended = new Promise((r) => (this.endedResolve = r));
  }

  /** GET `url`; resolves once the response head arrived (for non-200: once the whole body arrived). */
  static open(url: string, headers: Record<string, string> = {}, opts: { paused?: boolean } = {}): Promise<RawSseClient> {
    const c = new RawSseClient();
    return new Promise((resolve, reject) => {
      c.req = http.get(url, { headers: { accept: 'text/event-stream', ...headers }, agent: false }, (res) => {
        c.res = res;
        c.status = res.statusCode ?? 0;
        c.headers = res.headers;
        res.setEncoding('utf8');
        res.on('close', () => c.endedResolve());
        res.on('error', () => {});
        if (c.status !== 200) {
          res.on('data', (chunk: string) => (c.text += chunk));
          res.on('end', () => resolve(c));
          return;
        }
        if (opts.paused) res.pause();
        else res.on('data', (chunk: string) => c.feed(chunk));
        resolve(c);
      });
      c.req.on('error', (err) => {
        c.endedResolve();
        if (c.res === null) reject(err);
      });
    });
  }

  /** Body of an error answer, parsed. */
  get json(): { error: { code: string; message: string } } {
    return JSON.parse(this.text);
  }

  next(match: Match, timeoutMs = 3000): Promise<SseEvent> {
    return this.queue.next(match, timeoutMs);
  }

  /** Frames of `event` type received so far. */
  frames(event: string): Frame[] {
    return this.all.filter((e) => e.event === event).map((e) => e.frame);
  }

  /** Start reading a stream opened with `paused: true` (a paused socket notices no reset until it reads). */
  resume(): void {
    this.res?.on('data', (chunk: string) => this.feed(chunk));
    this.res?.resume();
  }

  close(): void {
    this.req.destroy();
  }

  private feed(chunk: string): void {
    this.text += chunk;
    this.buf += chunk;
    for (;;) {
      const m = /\r\n|\r|\n/.exec(this.buf);
      if (m === null) return;
      const line = this.buf.slice(0, m.index);
      this.buf = this.buf.slice(m.index + m[0].length);
      this.line(line);
    }
  }

  private line(line: string): void {
    if (line === '') {
      const ev = this.ev;
      this.ev = { event: '', data: [], id: null };
      if (ev.data.length === 0) return;
      const data = ev.data.join('\n');
      this.queue.push({ event: ev.event || 'message', id: ev.id, lastEventId: this.lastEventId, data, frame: JSON.parse(data) as Frame });
      return;
    }
    if (line.startsWith(':')) return;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') this.ev.event = value;
    else if (field === 'data') this.ev.data.push(value);
    else if (field === 'id' && !value.includes('\0')) {
      this.ev.id = value;
      this.lastEventId = value;
    } else if (field === 'retry' && /^\d+$/.test(value)) this.retry = Number(value);
  }
}

/** Event names an EsClient listens to (EventSource only reports named events you subscribe to). */
const NAMES = ['connected', 'message', 'subscribed', 'replay_complete', 'presence', 'typing', 'ping', 'error', 'shutdown', 'close', 'private', 'broadcast', 'user_online', 'user_offline'];

/** A real `eventsource` client recording every named event it dispatches. */
export class EsClient {
  private readonly queue = new EventQueue();
  readonly all: SseEvent[];
  readonly es: EventSource;
  /** Connection-level errors (EventSource `error` events without data). */
  connectionErrors = 0;
  private readonly gaveUp: Promise<void>;

  constructor(url: string, init: ConstructorParameters<typeof EventSource>[1] = {}) {
    this.all = this.queue.all;
    this.es = new EventSource(url, init);
    // EventSource fails a connection (no more reconnects) by going CLOSED and dispatching `error`.
    this.gaveUp = new Promise((resolve) => {
      const onError = (): void => {
        if (this.es.readyState !== this.es.CLOSED) return;
        this.es.removeEventListener('error', onError);
        resolve();
      };
      this.es.addEventListener('error', onError);
    });
    for (const name of NAMES) {
      this.es.addEventListener(name, (e: Event) => {
        const m = e as unknown as { data?: unknown; lastEventId: string };
        if (typeof m.data !== 'string') {
          this.connectionErrors++;
          return;
        }
        this.queue.push({ event: name, id: null, lastEventId: m.lastEventId, data: m.data, frame: JSON.parse(m.data) as Frame });
      });
    }
  }

  next(match: Match, timeoutMs = 3000): Promise<SseEvent> {
    return this.queue.next(match, timeoutMs);
  }

  /** Resolves when the EventSource gave up (its `error` event with readyState CLOSED); rejects after `timeoutMs`. */
  failed(timeoutMs = 3000): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for the EventSource to fail`)), timeoutMs);
    });
    return Promise.race([this.gaveUp, deadline]).finally(() => clearTimeout(timer));
  }

  close(): void {
    this.es.close();
  }
}
