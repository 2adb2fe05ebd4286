import type { IncomingMessage, ServerResponse } from 'node:http';
import { CloseCode, ErrorCode, isTemporaryError, type StreamPosition } from '@switchboard/protocol';
import { UNKNOWN_EPOCH, type SessionPort } from '../core/ports/session-port.js';
import type { Logger } from '../core/ports/observability.js';
import type { SessionIdentity } from '../core/ports/session-port.js';
import type { Endpoint, HandshakeAuthenticator, OriginCheck } from '../core/ports/handshake.js';
import { USERS_CHANNEL } from '../core/namespaces.js';
import { remoteAddress } from './remote-address.js';
import { wantsUserEvents } from './query.js';
import { PositionVector } from './sse-position.js';
import { SseSink } from './sse-sink.js';
import { WriteBatcher } from '../wire/write-batcher.js';

export interface SseTransportOptions {
  /** Path of the SSE endpoint (default `/events`). */
  path: string;
  /** `retry:` hint sent first: how long an EventSource waits before reconnecting. */
  retryMs: number;
  /** Largest SSE `id:` (position vector) in bytes. */
  maxEventIdBytes: number;
  maxQueuedBytes: number;
  authenticate: HandshakeAuthenticator;
  checkOrigin: OriginCheck;
  /** Origins listed explicitly in the allowlist: only these get credentialed CORS (cookies). */
  credentialedOrigin: (origin: string) => boolean;
  /** The endpoint requires authentication (auth.required). */
  requireAuth: boolean;
  trustProxy: boolean;
  logger: Logger;
}

/**
 * A position no stream ever has: a resume without a known position (an id that is not a position vector,
 * or lacks the channel) is answered `recovered: false` with nothing replayed. Not the empty epoch: that is
 * the seed 001 "assume the current epoch" form, which would replay the whole window as `recovered: true`.
 */
const UNKNOWN_POSITION: StreamPosition = { offset: 0, epoch: UNKNOWN_EPOCH };

const kSink = Symbol('switchboard.sseSink');
type TaggedResponse = ServerResponse & { [kSink]?: SseSink };

const STATUS_TEXT: Record<number, string> = { 401: 'Unauthorized', 403: 'Forbidden', 405: 'Method Not Allowed', 429: 'Too Many Requests', 500: 'Internal Server Error', 503: 'Service Unavailable' };

/**
 * The Server-Sent Events endpoint: `GET /events?channels=a,b`. Same authenticator (Endpoint
 * `{transport:'sse'}`), origin check, limits and core as WebSocket; failures before the stream starts are
 * plain HTTP statuses with `{"error":{"code","message"}}`. `Last-Event-ID` (header, or `?last_event_id=`)
 * resumes every channel through the core's recovery (see docs/protocol.md, "SSE").
 *
 * Framework-free: `handle(req, res)` works on a bare `http.Server` (`handler` is the bound form); the
 * Fastify route hijacks the reply and calls it.
 */
export class SseTransport {
  private readonly batcher = new WriteBatcher();
  /** Streams accepted and not yet finished (shutdown waits for them). */
  private readonly open = new Set<ServerResponse>();
  private readonly onClose: (this: TaggedResponse) => void;

  /** `(req, res) => boolean`: handles the request if it is for the SSE path (true), else returns false. */
  readonly handler = (req: IncomingMessage, res: ServerResponse): boolean => this.handle(req, res);

  constructor(
    private readonly sessions: SessionPort,
    private readonly opts: SseTransportOptions,
  ) {
    const open = this.open;
    this.onClose = function () {
      open.delete(this);
      const sink = this[kSink];
      if (sink === undefined) return;
      sink.gone();
      if (sink.session !== null) sessions.closeSession(sink.session, CloseCode.GOING_AWAY);
    };
  }

  get path(): string {
    return this.opts.path;
  }

  /** Number of open SSE streams. */
  get openStreams(): number {
    return this.open.size;
  }

  /** Handle a request. Returns false (touching nothing) if its path is not the SSE endpoint. */
  handle(req: IncomingMessage, res: ServerResponse): boolean {
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://localhost');
    } catch {
      return false;
    }
    if (url.pathname !== this.opts.path) return false;
    res.on('error', swallow);
    if (req.method !== 'GET') {
      httpError(res, 405, ErrorCode.INVALID_MESSAGE, 'Use GET', { allow: 'GET' });
      return true;
    }
    if (this.sessions.draining) {
      httpError(res, 503, ErrorCode.DRAINING, 'Server is draining; connect to another node');
      return true;
    }
    const origin = req.headers.origin;
    if (!this.opts.checkOrigin(origin)) {
      httpError(res, 403, ErrorCode.ORIGIN_NOT_ALLOWED, 'Origin not allowed');
      return true;
    }
    const endpoint: Endpoint = { transport: 'sse', path: this.opts.path, clientId: null, requireAuth: this.opts.requireAuth };
    let auth;
    try {
      auth = this.opts.authenticate(req, url, endpoint);
    } catch (err) {
      auth = Promise.reject(err);
    }
    auth.then(
      (outcome) => {
        if (res.destroyed || res.headersSent) return;
        if (!outcome.ok) {
          httpError(res, outcome.httpStatus, outcome.code, outcome.message);
          return;
        }
        this.accept(req, res, url, outcome.identity);
      },
      (err: unknown) => {
        this.opts.logger.error({ err }, 'authenticator failed');
        if (!res.headersSent) httpError(res, 500, ErrorCode.INTERNAL, 'Authentication failed');
      },
    );
    return true;
  }

  private accept(req: IncomingMessage, res: TaggedResponse, url: URL, identity: SessionIdentity): void {
    const channels = channelsFrom(url);
    const lastEventId = req.headers['last-event-id'] ?? url.searchParams.get('last_event_id') ?? '';
    const idText = Array.isArray(lastEventId) ? (lastEventId[0] ?? '') : lastEventId;
    const resume = idText === '' ? null : (PositionVector.decode(idText) ?? new Map<string, StreamPosition>());

    const sink = new SseSink(this.sessions, res, this.batcher, this.opts.maxQueuedBytes, this.opts.maxEventIdBytes);
    const result = this.sessions.openSession({
      sink,
      identity,
      clientId: null,
      remoteAddress: remoteAddress(req, this.opts.trustProxy),
      metadata: { user_agent: req.headers['user-agent'] ?? null, endpoint: this.opts.path },
    });
    if ('rejected' in result) {
      const tooMany = result.closeCode === CloseCode.TOO_MANY_CONNECTIONS;
      httpError(res, tooMany ? 429 : 503, tooMany ? ErrorCode.TOO_MANY_CONNECTIONS : ErrorCode.DRAINING, result.reason);
      return;
    }
    const headers: Record<string, string> = {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      'x-accel-buffering': 'no',
    };
    const origin = req.headers.origin;
    if (origin !== undefined && this.opts.credentialedOrigin(origin)) {
      headers['access-control-allow-origin'] = origin;
      headers['access-control-allow-credentials'] = 'true';
      headers.vary = 'Origin';
    } else if (origin !== undefined) {
      // Allowed only through "*": readable cross-origin, but never with the user's cookies.
      headers['access-control-allow-origin'] = '*';
    }
    res.writeHead(200, headers);
    res.write(`retry: ${this.opts.retryMs}\n\n`);
    req.socket.setNoDelay(true);
    req.socket.setTimeout(0);
    res[kSink] = sink;
    sink.session = result;
    this.open.add(res);
    res.on('close', this.onClose);
    if (res.destroyed || req.socket.destroyed) {
      this.onClose.call(res);
      return;
    }
    const since = (channel: string): StreamPosition | undefined => {
      if (resume === null) return undefined;
      const p = resume.get(channel);
      // The server never writes an empty epoch into an id; one there is not a position either.
      return p === undefined || p.epoch === '' ? UNKNOWN_POSITION : p;
    };
    if (resume !== null) {
      // Ids of events sent before a channel's replay completes must still carry its resume position.
      for (const ch of channels) {
        const p = since(ch);
        if (p !== undefined && p !== UNKNOWN_POSITION) sink.positions.set(ch, p.epoch, p.offset);
      }
    }
    // Queued in order: each join takes effect after the previous one (the channel limit holds one at a time).
    for (const channel of channels) this.sessions.subscribe(result, channel, since(channel));
  }

  /** Wait until every stream finished, up to `deadlineMs`; then destroy the rest. */
  async drain(deadlineMs: number): Promise<void> {
    const deadline = Date.now() + deadlineMs;
    while (this.open.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    for (const res of this.open) res.destroy();
    this.open.clear();
  }
}

/** `?channels=a,b` (repeatable) plus `?channel=x` (repeatable, not split: for names containing commas). */
export function channelsFrom(url: URL): string[] {
  const out = new Set<string>();
  for (const v of url.searchParams.getAll('channels')) {
    for (const part of v.split(',')) {
      const ch = part.trim();
      if (ch !== '') out.add(ch);
    }
  }
  for (const v of url.searchParams.getAll('channel')) if (v !== '') out.add(v);
  if (wantsUserEvents(url)) out.add(USERS_CHANNEL);
  return [...out];
}

function httpError(res: ServerResponse, status: number, code: string, message: string, extra: Record<string, string> = {}): void {
  if (res.headersSent || res.destroyed) return;
  const body = JSON.stringify({ error: { code, message, temporary: isTemporaryError(code) } });
  res.writeHead(status, STATUS_TEXT[status] ?? 'Error', {
    'content-type': 'application/json; charset=utf-8',
    'content-length': String(Buffer.byteLength(body)),
    'cache-control': 'no-store',
    ...extra,
  });
  res.end(body);
}

function swallow(): void {}
