import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import type { SessionHandle, SessionIdentity, SessionPort } from '../core/ports/session-port.js';
import type { Logger } from '../core/ports/observability.js';
import type { Ed25519Authenticator } from '../auth/ed25519.js';
import { toSessionIdentity } from '../auth/handshake-adapter.js';
import { selectSubprotocol } from '../auth/token-source.js';
import type { Endpoint, HandshakeAuthenticator, OriginCheck } from '../core/ports/handshake.js';
import { remoteAddress } from './remote-address.js';
import { WriteBatcher } from './write-batcher.js';
import { WsSink } from './ws-sink.js';

const kSession = Symbol('switchboard.session');
type TaggedSocket = WebSocket & { [kSession]?: SessionHandle };

export interface WsTransportOptions {
  /** Path prefix of the WebSocket endpoints (default `/ws`). */
  path: string;
  maxMessageBytes: number;
  maxQueuedBytes: number;
  authenticate: HandshakeAuthenticator;
  checkOrigin: OriginCheck;
  /** Every WebSocket endpoint requires authentication. */
  requireAuth: boolean;
  /** Answer auth failures with an HTTP status at the handshake instead of accept + close code. */
  rejectAuthAtHandshake: boolean;
  trustProxy: boolean;
  logger: Logger;
  /** Ed25519 challenge-response endpoints (seed 001): `{path}/{collective_id}`. */
  challenge?: { path: string; authenticator: Ed25519Authenticator };
}

/**
 * WebSocket endpoints (`/ws`, `/ws/authenticated`, `/ws/{client_id}`) on top of `ws` in noServer mode.
 * Per-connection listeners are shared functions created once per transport (no closures per connection);
 * they reach the session through a symbol on the socket.
 */
export class WebSocketTransport {
  private readonly wss: WebSocketServer;
  private readonly batcher = new WriteBatcher();
  /** Sockets accepted and not yet closed (for shutdown: wait until the last close handshake is done). */
  private readonly open = new Set<WebSocket>();
  private readonly onMessage: (this: TaggedSocket, data: Buffer, isBinary: boolean) => void;
  private readonly onClose: (this: TaggedSocket, code: number) => void;
  private readonly onPong: (this: TaggedSocket) => void;
  private readonly onError: (this: TaggedSocket, err: Error) => void;

  constructor(
    private readonly hub: SessionPort,
    private readonly opts: WsTransportOptions,
  ) {
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: opts.maxMessageBytes,
      perMessageDeflate: false,
      clientTracking: false,
      // Echo only our protocol name, never an offered `bearer.<token>` entry (that would copy the token).
      handleProtocols: (protocols, req) => (req as IncomingMessage & { sbSubprotocol?: string }).sbSubprotocol ?? selectSubprotocol(protocols),
    });
    this.onMessage = function (data, isBinary) {
      const s = this[kSession];
      if (s === undefined) return;
      if (isBinary) hub.handleBinary(s);
      else hub.handleText(s, data.toString('utf8'));
    };
    const openSockets = this.open;
    this.onClose = function (code) {
      openSockets.delete(this);
      const s = this[kSession];
      if (s !== undefined) hub.closeSession(s, code);
    };
    this.onPong = function () {
      const s = this[kSession];
      if (s !== undefined) hub.markAlive(s);
    };
    const log = opts.logger;
    this.onError = function (err) {
      log.debug({ err: err.message, connection_id: this[kSession]?.id }, 'websocket error');
    };
  }

  /** Match a request path to an endpoint, or null if it is not a WebSocket endpoint of this transport. */
  matchEndpoint(pathname: string): Endpoint | null {
    const base = this.opts.path;
    const challenge = this.opts.challenge;
    if (challenge !== undefined && pathname.startsWith(challenge.path + '/')) {
      const id = decodeURIComponent(pathname.slice(challenge.path.length + 1));
      if (id.length === 0 || id.length > 128 || id.includes('/')) return null;
      return { transport: 'ws', path: pathname, clientId: null, requireAuth: true, collectiveId: id };
    }
    if (pathname === base) return { transport: 'ws', path: base, clientId: null, requireAuth: this.opts.requireAuth };
    if (!pathname.startsWith(base + '/')) return null;
    const rest = decodeURIComponent(pathname.slice(base.length + 1));
    if (rest === 'authenticated') return { transport: 'ws', path: pathname, clientId: null, requireAuth: true };
    if (rest.length === 0 || rest.length > 128 || rest.includes('/')) return null;
    return { transport: 'ws', path: pathname, clientId: rest, requireAuth: this.opts.requireAuth };
  }

  /**
   * Handle an HTTP upgrade. Returns false (and leaves the socket alone) if the path is not ours.
   */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean {
    let url: URL;
    let endpoint: Endpoint | null;
    try {
      url = new URL(req.url ?? '/', 'http://localhost');
      endpoint = this.matchEndpoint(url.pathname);
    } catch {
      endpoint = null;
      url = new URL('http://localhost/');
    }
    if (endpoint === null) return false;
    socket.on('error', swallow);
    if (this.hub.draining) {
      rejectHandshake(socket, 503, 'DRAINING');
      return true;
    }
    if (!this.opts.checkOrigin(req.headers.origin)) {
      rejectHandshake(socket, 403, 'ORIGIN_NOT_ALLOWED');
      return true;
    }
    if (endpoint.collectiveId !== undefined && this.opts.challenge !== undefined) {
      const ed = this.opts.challenge.authenticator;
      const collectiveId = endpoint.collectiveId;
      this.wss.handleUpgrade(req, socket, head, (ws: TaggedSocket) => this.challenge(ws, req, endpoint, collectiveId, ed));
      return true;
    }
    this.opts.authenticate(req, url, endpoint).then(
      (outcome) => {
        if (socket.destroyed) return;
        if (!outcome.ok && this.opts.rejectAuthAtHandshake) {
          rejectHandshake(socket, outcome.httpStatus, outcome.code);
          return;
        }
        if (outcome.ok && outcome.subprotocol !== undefined) (req as IncomingMessage & { sbSubprotocol?: string }).sbSubprotocol = outcome.subprotocol;
        this.wss.handleUpgrade(req, socket, head, (ws: TaggedSocket) => {
          if (!outcome.ok) {
            ws.close(outcome.closeCode, outcome.message.slice(0, 120));
            return;
          }
          this.accept(ws, req, outcome.identity, endpoint, url);
        });
      },
      (err: unknown) => {
        this.opts.logger.error({ err }, 'authenticator failed');
        rejectHandshake(socket, 500, 'INTERNAL');
      },
    );
    return true;
  }

  /**
   * Ed25519 challenge-response (seed 001): send `auth_challenge`, wait for one `auth_response` until the
   * challenge expires (4004), verify (4001 on any failure: wrong key, replay, expired, other collective),
   * then open the session as the collective. One timer per pending challenge, bounded by the authenticator.
   */
  private challenge(ws: TaggedSocket, req: IncomingMessage, endpoint: Endpoint, collectiveId: string, ed: Ed25519Authenticator): void {
    const issued = ed.issueChallenge(collectiveId);
    if (!issued.ok) {
      ws.close(issued.failure.closeCode, issued.failure.message.slice(0, 120));
      return;
    }
    const c = issued.challenge;
    ws.on('error', this.onError);
    ws.send(JSON.stringify({
      type: 'auth_challenge',
      data: { collective_id: collectiveId, nonce: c.nonce, challenge: c.challenge, expires_at: new Date(c.expiresAt).toISOString(), expires_in: Math.round((c.expiresAt - Date.now()) / 1000) },
      timestamp: new Date().toISOString(),
    }));
    const timer = setTimeout(() => {
      ed.cancel(c.nonce);
      const f = ed.timeoutFailure();
      ws.close(f.closeCode, f.message);
    }, Math.max(0, c.expiresAt - Date.now()));
    ws.once('close', () => {
      clearTimeout(timer);
      ed.cancel(c.nonce);
    });
    ws.once('message', (data: Buffer, isBinary: boolean) => {
      clearTimeout(timer);
      let msg: { type?: unknown; data?: { signature?: unknown; nonce?: unknown } } | null = null;
      try {
        msg = isBinary ? null : JSON.parse(data.toString('utf8'));
      } catch {
        msg = null;
      }
      if (msg === null || msg.type !== 'auth_response' || typeof msg.data?.signature !== 'string') {
        ed.cancel(c.nonce);
        ws.close(4001, 'expected auth_response with a signature');
        return;
      }
      const nonce = typeof msg.data.nonce === 'string' ? msg.data.nonce : c.nonce;
      ed.verifyResponse({ collectiveId, nonce, signature: msg.data.signature }).then(
        (r) => {
          if (ws.readyState !== ws.OPEN) return;
          if (!r.ok) ws.close(r.failure.closeCode, r.failure.message.slice(0, 120));
          else this.accept(ws, req, toSessionIdentity(r.identity), endpoint, null);
        },
        () => ws.close(1011, 'verification failed'),
      );
    });
  }

  private accept(ws: TaggedSocket, req: IncomingMessage, identity: SessionIdentity, endpoint: Endpoint, url: URL | null): void {
    const sink = new WsSink(this.hub, ws, this.batcher, this.opts.maxQueuedBytes);
    if (ws.listenerCount('error') === 0) ws.on('error', this.onError);
    this.open.add(ws);
    ws.on('close', this.onClose);
    const result = this.hub.openSession({
      sink,
      identity,
      clientId: endpoint.clientId,
      remoteAddress: remoteAddress(req, this.opts.trustProxy),
      metadata: { user_agent: req.headers['user-agent'] ?? null, endpoint: endpoint.path },
    });
    if ('rejected' in result) {
      ws.close(result.closeCode, result.reason);
      return;
    }
    ws[kSession] = result;
    sink.session = result;
    ws.on('message', this.onMessage);
    ws.on('pong', this.onPong);
    if (url !== null) subscribeFromQuery(this.hub, result, url);
  }

  /** Wait until every accepted socket finished closing, up to `deadlineMs`; then terminate the rest. */
  async drain(deadlineMs: number): Promise<void> {
    const deadline = Date.now() + deadlineMs;
    while (this.open.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    for (const ws of this.open) ws.terminate();
    this.open.clear();
  }

  close(): void {
    this.wss.close();
  }
}

function swallow(): void {}

/**
 * `?channels=a,b` joins those channels on connect; with `&last_sequence=N` (seed 001) each recovers the
 * publications after offset N (`&epoch=E` pins the stream epoch; without it the current epoch is assumed).
 */
export function subscribeFromQuery(hub: SessionPort, s: SessionHandle, url: URL): void {
  const list = url.searchParams.get('channels');
  if (list === null) return;
  const seq = url.searchParams.get('last_sequence');
  const offset = seq !== null && /^\d{1,15}$/.test(seq) ? Number(seq) : null;
  const since = offset === null ? undefined : { offset, epoch: url.searchParams.get('epoch') ?? '' };
  const channels = list.split(',').map((c) => c.trim()).filter((c) => c.length > 0);
  for (const channel of channels.slice(0, hub.maxChannelsPerConnection)) hub.subscribe(s, channel, since);
}

const STATUS_TEXT: Record<number, string> = { 401: 'Unauthorized', 403: 'Forbidden', 500: 'Internal Server Error', 503: 'Service Unavailable' };

function rejectHandshake(socket: Duplex, status: number, code: string): void {
  const body = JSON.stringify({ error: code });
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? 'Error'}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}

