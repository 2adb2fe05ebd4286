import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { ErrorCode, isTemporaryError } from '@switchboard/protocol';
import type { SessionHandle, SessionIdentity, SessionPort, SessionRejection } from '../core/ports/session-port.js';
import type { Logger } from '../core/ports/observability.js';
import type { AuthOutcome, ChallengeHandshake, Endpoint, HandshakeAuthenticator, OriginCheck } from '../core/ports/handshake.js';
import type { WsProtocolContext, WsProtocolHandler } from '../core/ports/wire-protocol.js';
import { USERS_CHANNEL } from '../core/namespaces.js';
import { defaultEndpoints, EndpointConfigError, EndpointTable, fillTemplate, SWITCHBOARD_PROTOCOL, type EndpointMatch, type EndpointSpec } from './endpoints.js';
import { wantsBatches, wantsUserEvents } from './query.js';
import { remoteAddress } from './remote-address.js';
import { WriteBatcher } from '../wire/write-batcher.js';
import { WsSink } from './ws-sink.js';

const kSession = Symbol('switchboard.session');
type TaggedSocket = WebSocket & { [kSession]?: SessionHandle };

export interface WsTransportOptions {
  /** Path prefix of the default WebSocket endpoints (default `/ws`); used when `endpoints` is not given. */
  path: string;
  /**
   * The endpoint table (config `endpoints`, see endpoints.ts). Default: `defaultEndpoints(path,
   * challenge?.path)`, i.e. `/ws`, `/ws/{client_id}`, `/ws/authenticated` and the Ed25519 challenge endpoint.
   * Compiled in the constructor: an invalid table throws EndpointConfigError.
   */
  endpoints?: readonly EndpointSpec[];
  /**
   * Wire-protocol handlers by name, for the endpoints whose `protocol` names one (an endpoint naming an
   * unregistered protocol is a configuration error). `switchboard` is the built-in protocol and cannot be
   * registered.
   */
  protocols?: Readonly<Record<string, WsProtocolHandler>>;
  maxMessageBytes: number;
  maxQueuedBytes: number;
  authenticate: HandshakeAuthenticator;
  checkOrigin: OriginCheck;
  /**
   * The subprotocol to echo (`ws`'s `handleProtocols`) when the authenticator named none, or `false` for
   * none. Must never echo an offer that carries a credential (`bearer.<token>`): the auth layer decides.
   */
  selectSubprotocol: (offers: Set<string>) => string | false;
  /** auth.required: every WebSocket endpoint requires authentication (`auth: "optional"` ones included). */
  requireAuth: boolean;
  /** Answer auth failures with an HTTP status at the handshake instead of accept + close code. */
  rejectAuthAtHandshake: boolean;
  trustProxy: boolean;
  logger: Logger;
  /**
   * The challenge handshake of `auth: "ed25519"` endpoints (the Ed25519 challenge-response, seed 001); `path`
   * adds the default endpoint `{path}/{collective_id}` when `endpoints` is not given. `timeoutMs`
   * (auth.handshakeTimeoutMs) bounds the whole challenge phase, whatever deadline the strategy gives; the
   * connection then closes with the strategy's timeout failure (4004).
   */
  challenge?: { path?: string; handshake: ChallengeHandshake; timeoutMs: number };
}

/** A refusal after authentication succeeded: the user id does not match the endpoint's `userParam`. */
const WRONG_USER = { ok: false, closeCode: 4031, httpStatus: 403, code: ErrorCode.FORBIDDEN, message: 'this endpoint belongs to another user' } as const;

/** A matched upgrade: the endpoint as the authenticator sees it, and the table entry with its parameters. */
interface Resolved {
  endpoint: Endpoint;
  match: EndpointMatch;
}

/**
 * A socket closed during a challenge handshake that does not complete the close handshake (answer our close
 * frame) within this long is dropped, so an unresponsive client cannot keep it for ws's 30 s close timeout.
 */
const HANDSHAKE_CLOSE_GRACE_MS = 1000;

/**
 * WebSocket endpoints (the endpoint table: by default `/ws`, `/ws/authenticated`, `/ws/{client_id}` and the
 * Ed25519 challenge endpoint) on top of `ws` in noServer mode. Per-connection listeners are shared functions
 * created once per transport (no closures per connection); they reach the session through a symbol on the
 * socket.
 */
export class WebSocketTransport {
  private readonly wss: WebSocketServer;
  /** Wire-protocol handlers with their own frame limit (WsProtocolHandler.maxPayload) get their own server. */
  private readonly protocolWss = new Map<string, WebSocketServer>();
  private readonly batcher = new WriteBatcher();
  /** The endpoint table (throws EndpointConfigError from the constructor when invalid). */
  readonly endpoints: EndpointTable;
  /** Sockets accepted and not yet closed (for shutdown: wait until the last close handshake is done). */
  private readonly open = new Set<WebSocket>();
  /** Sockets handed to a wire-protocol handler and not yet closed (closed with 1001 on shutdown). */
  private readonly foreign = new Set<WebSocket>();
  private readonly onMessage: (this: TaggedSocket, data: Buffer, isBinary: boolean) => void;
  private readonly onClose: (this: TaggedSocket, code: number) => void;
  private readonly onPong: (this: TaggedSocket) => void;
  private readonly onError: (this: TaggedSocket, err: Error) => void;

  constructor(
    private readonly sessions: SessionPort,
    private readonly opts: WsTransportOptions,
  ) {
    const protocols = Object.keys(opts.protocols ?? {});
    if (protocols.includes(SWITCHBOARD_PROTOCOL)) throw new EndpointConfigError(SWITCHBOARD_PROTOCOL, `"${SWITCHBOARD_PROTOCOL}" is the built-in protocol and cannot be registered as a handler`);
    this.endpoints = new EndpointTable(opts.endpoints ?? defaultEndpoints(opts.path, opts.challenge?.path ?? null), { protocols, requireAuth: opts.requireAuth });
    for (const e of this.endpoints.all) {
      if (e.auth === 'ed25519' && opts.challenge === undefined) throw new EndpointConfigError(e.pattern, 'auth "ed25519" needs the challenge handshake (transport option `challenge`)');
    }
    // Document frames may be larger than limits.maxMessageBytes (SessionPort.maxFrameBytes); text frames are
    // held to maxMessageBytes below (1009, as ws itself closes a frame over maxPayload).
    const maxFrameBytes = Math.max(opts.maxMessageBytes, sessions.maxFrameBytes ?? opts.maxMessageBytes);
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: maxFrameBytes,
      perMessageDeflate: false,
      clientTracking: false,
      // Echo only our protocol name, never an offered `bearer.<token>` entry (that would copy the token).
      handleProtocols: (protocols, req) => (req as IncomingMessage & { sbSubprotocol?: string }).sbSubprotocol ?? opts.selectSubprotocol(protocols),
    });
    for (const [name, handler] of Object.entries(opts.protocols ?? {})) {
      if (handler.maxPayload === undefined || handler.maxPayload === maxFrameBytes) continue;
      this.protocolWss.set(name, new WebSocketServer({
        noServer: true,
        maxPayload: handler.maxPayload,
        perMessageDeflate: false,
        clientTracking: false,
        handleProtocols: (protocols, req) => (req as IncomingMessage & { sbSubprotocol?: string }).sbSubprotocol ?? opts.selectSubprotocol(protocols),
      }));
    }
    const maxText = opts.maxMessageBytes;
    const onMessage = function (this: TaggedSocket, data: Buffer, isBinary: boolean): void {
      const s = this[kSession];
      if (s === undefined) return;
      if (isBinary) sessions.handleBinary(s, data);
      else if (data.length <= maxText) sessions.handleText(s, data.toString('utf8'));
      else {
        // Over limits.maxMessageBytes on a socket that takes larger document frames: what ws does at
        // maxPayload (close 1009, read nothing more).
        this.off('message', onMessage);
        this.close(1009, 'frame over limits.maxMessageBytes');
      }
    };
    this.onMessage = onMessage;
    const openSockets = this.open;
    this.onClose = function (code) {
      openSockets.delete(this);
      const s = this[kSession];
      if (s !== undefined) sessions.closeSession(s, code);
    };
    this.onPong = function () {
      const s = this[kSession];
      if (s !== undefined) sessions.markAlive(s);
    };
    const log = opts.logger;
    this.onError = function (err) {
      log.debug({ err: err.message, connection_id: this[kSession]?.id }, 'websocket error');
    };
  }

  /** Match a request path to an endpoint, or null if it is not a WebSocket endpoint of this transport. */
  matchEndpoint(pathname: string): Endpoint | null {
    return this.resolve(pathname)?.endpoint ?? null;
  }

  private resolve(pathname: string): Resolved | null {
    const match = this.endpoints.match(pathname);
    if (match === null) return null;
    const e = match.endpoint;
    const params = match.params;
    const endpoint: Endpoint = {
      transport: 'ws',
      path: pathname,
      clientId: e.clientId === null ? null : params[e.clientId]!,
      requireAuth: e.auth === 'required' || e.auth === 'ed25519' || (e.auth === 'optional' && this.opts.requireAuth),
      pattern: e.pattern,
      params,
    };
    if (e.auth === 'none') endpoint.credentials = [];
    else if (e.credentials !== null) endpoint.credentials = e.credentials;
    if (e.collectiveParam !== null) endpoint.collectiveId = params[e.collectiveParam]!;
    return { endpoint, match };
  }

  /**
   * Handle an HTTP upgrade. Returns false (and leaves the socket alone) if the path is no endpoint of the
   * table; answer those with `notFound(socket)` unless another handler takes them (`Switchboard.attach` does).
   */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean {
    let url: URL;
    let resolved: Resolved | null;
    try {
      url = new URL(req.url ?? '/', 'http://localhost');
      resolved = this.resolve(url.pathname);
    } catch {
      resolved = null;
      url = new URL('http://localhost/');
    }
    if (resolved === null) return false;
    const r: Resolved = resolved;
    const { endpoint, match } = r;
    socket.on('error', swallow);
    if (this.sessions.draining) {
      rejectHandshake(socket, 503, ErrorCode.DRAINING, 'The server is draining; connect to another node');
      return true;
    }
    if (!this.opts.checkOrigin(req.headers.origin)) {
      rejectHandshake(socket, 403, ErrorCode.ORIGIN_NOT_ALLOWED, 'origin not allowed');
      return true;
    }
    const challenge = this.opts.challenge;
    if (match.endpoint.auth === 'ed25519' && challenge !== undefined) {
      this.wss.handleUpgrade(req, socket, head, (ws: TaggedSocket) => this.challenge(ws, req, r, challenge.handshake, challenge.timeoutMs));
      return true;
    }
    this.opts.authenticate(req, url, endpoint).then(
      (outcome) => {
        if (socket.destroyed) return;
        const refusal = outcome.ok ? this.userMismatch(r, outcome) : outcome;
        if (refusal !== null && this.opts.rejectAuthAtHandshake) {
          rejectHandshake(socket, refusal.httpStatus, refusal.code, refusal.message);
          return;
        }
        if (outcome.ok && outcome.subprotocol !== undefined) (req as IncomingMessage & { sbSubprotocol?: string }).sbSubprotocol = outcome.subprotocol;
        const wss = this.protocolWss.get(match.endpoint.protocol) ?? this.wss;
        wss.handleUpgrade(req, socket, head, (ws: TaggedSocket) => {
          if (refusal !== null) {
            ws.close(refusal.closeCode, refusal.message.slice(0, 120));
            return;
          }
          if (!outcome.ok) return; // (refusal covers it)
          if (match.endpoint.protocol !== SWITCHBOARD_PROTOCOL) this.handOver(ws, req, outcome.identity, r, url);
          else this.accept(ws, req, outcome.identity, r, url);
        });
      },
      (err: unknown) => {
        this.opts.logger.error({ err }, 'authenticator failed');
        rejectHandshake(socket, 500, ErrorCode.INTERNAL, 'authentication failed unexpectedly');
      },
    );
    return true;
  }

  /**
   * A challenge handshake (the Ed25519 challenge-response, seed 001): hold a connection slot of the client
   * address for the whole phase (a pending challenge counts against limits.maxConnectionsPerIp like a session),
   * send the strategy's first frame, wait for ONE message, let the strategy decide, then open the session with
   * the identity (handing the slot over to it) or close with the code it gives. One timer per pending
   * challenge: the strategy's deadline or `timeoutMs`, whichever comes first, until the verdict; then close
   * with its timeout failure (4004). Every close of this phase drops a client that does not answer it.
   */
  private challenge(ws: TaggedSocket, req: IncomingMessage, resolved: Resolved, handshake: ChallengeHandshake, timeoutMs: number): void {
    const endpoint = resolved.endpoint;
    ws.on('error', this.onError);
    const slot = this.sessions.reserveSlot(remoteAddress(req, this.opts.trustProxy));
    if ('rejected' in slot) {
      closeHandshake(ws, slot.closeCode, slot.reason);
      return;
    }
    ws.once('close', slot.release);
    const started = handshake.begin(endpoint);
    if (!started.ok) {
      closeHandshake(ws, started.closeCode, started.message);
      return;
    }
    const handle = started.handle;
    ws.send(started.firstFrame);
    const deadline = Math.min(started.expiresAt, Date.now() + timeoutMs);
    const timer = setTimeout(() => {
      handshake.cancel(handle);
      closeHandshake(ws, started.timeout.closeCode, started.timeout.message);
    }, Math.max(0, deadline - Date.now()));
    ws.once('close', () => {
      clearTimeout(timer);
      handshake.cancel(handle);
    });
    ws.once('message', (data: Buffer, isBinary: boolean) => {
      if (data.length > this.opts.maxMessageBytes) {
        // The socket takes larger document frames; the challenge answer is held to limits.maxMessageBytes.
        clearTimeout(timer);
        handshake.cancel(handle);
        closeHandshake(ws, 1009, 'frame over limits.maxMessageBytes');
        return;
      }
      handshake.finish(handle, isBinary ? null : data.toString('utf8')).then(
        (outcome) => {
          if (ws.readyState !== ws.OPEN) return; // closed meanwhile (timed out, or the client left)
          clearTimeout(timer);
          if (!outcome.ok) {
            closeHandshake(ws, outcome.closeCode, outcome.message);
            return;
          }
          slot.release(); // the session counts from here on
          this.accept(ws, req, outcome.identity, resolved, null);
        },
        () => {
          if (ws.readyState !== ws.OPEN) return;
          clearTimeout(timer);
          closeHandshake(ws, 1011, 'verification failed');
        },
      );
    });
  }

  /**
   * The `userParam` rule: `/ws/notifications/{user_id}` only for the user whose id is that parameter. Any other
   * identity (another user; anonymous cannot occur, userParam endpoints require authentication) is refused
   * with 4031 (HTTP 403 FORBIDDEN with auth.rejectAt "handshake").
   */
  private userMismatch(resolved: Resolved, outcome: AuthOutcome & { ok: true }): typeof WRONG_USER | null {
    const param = resolved.match.endpoint.userParam;
    if (param === null) return null;
    const id = outcome.identity;
    return !id.anonymous && id.userId !== null && id.userId === resolved.match.params[param] ? null : WRONG_USER;
  }

  /**
   * A wire-protocol endpoint: hold a connection slot of the client address while the socket is open (refused:
   * 4022), then hand the socket to the handler (see WsProtocolHandler).
   */
  private handOver(ws: TaggedSocket, req: IncomingMessage, identity: SessionIdentity, resolved: Resolved, url: URL): void {
    ws.on('error', this.onError);
    const address = remoteAddress(req, this.opts.trustProxy);
    const slot = this.sessions.reserveSlot(address);
    if ('rejected' in slot) {
      ws.close(slot.closeCode, slot.reason);
      return;
    }
    const name = resolved.match.endpoint.protocol;
    const handler = this.opts.protocols?.[name];
    this.open.add(ws);
    this.foreign.add(ws);
    ws.on('close', this.onClose);
    const foreign = this.foreign;
    ws.once('close', () => {
      foreign.delete(ws);
      slot.release();
    });
    const ctx: WsProtocolContext = { identity, params: { ...resolved.match.params }, url, remoteAddress: address, path: resolved.endpoint.path };
    try {
      handler!.accept(ws, ctx);
    } catch (err) {
      this.opts.logger.error({ err, protocol: name }, 'wire-protocol handler failed');
      ws.close(1011, 'internal error');
    }
  }

  private accept(ws: TaggedSocket, req: IncomingMessage, identity: SessionIdentity, resolved: Resolved, url: URL | null): void {
    const endpoint = resolved.endpoint;
    const e = resolved.match.endpoint;
    const joins = e.join.length === 0 ? null : e.join.map((t) => fillTemplate(t, resolved.match.params));
    const sink = new WsSink(this.sessions, ws, this.batcher, this.opts.maxQueuedBytes, url !== null && wantsBatches(url));
    if (ws.listenerCount('error') === 0) ws.on('error', this.onError);
    this.open.add(ws);
    ws.on('close', this.onClose);
    const init = {
      sink,
      identity,
      clientId: endpoint.clientId,
      remoteAddress: remoteAddress(req, this.opts.trustProxy),
      metadata: { user_agent: req.headers['user-agent'] ?? null, endpoint: endpoint.path },
    };
    if (endpoint.clientId === null) {
      this.attach(ws, sink, this.sessions.openSession(init), url, joins);
      return;
    }
    // `/ws/{client_id}`: the node claims the id cluster-wide first (one engine round trip). Frames the client
    // sends meanwhile wait in the paused socket; a refusal (4013: the id belongs to another owner) closes it.
    // Resumed in every case: a close handshake needs the peer's close frame read.
    ws.pause();
    this.sessions.openClientSession(init).then((result) => {
      if (!('rejected' in result) && ws.readyState !== ws.OPEN) {
        this.sessions.closeSession(result, 1006); // gone while claiming: releases the claim
      } else {
        this.attach(ws, sink, result, url, joins);
      }
      ws.resume();
    }, (err: unknown) => {
      this.opts.logger.error({ err }, 'openClientSession failed');
      ws.close(1011, 'internal error');
      ws.resume();
    });
  }

  /**
   * Hand an opened session its socket, then the server-side joins: the endpoint's `join` channels, then
   * `?channels=` (not on challenge endpoints, `url` null), each exactly like a client `join_channel`.
   */
  private attach(ws: TaggedSocket, sink: WsSink, result: SessionHandle | SessionRejection, url: URL | null, joins: readonly string[] | null): void {
    if ('rejected' in result) {
      ws.close(result.closeCode, result.reason);
      return;
    }
    ws[kSession] = result;
    sink.session = result;
    ws.on('message', this.onMessage);
    ws.on('pong', this.onPong);
    if (joins !== null) for (const channel of joins) this.sessions.subscribe(result, channel);
    if (url !== null) subscribeFromQuery(this.sessions, result, url);
  }

  /**
   * Answer an upgrade whose path is no endpoint: HTTP 404 with the JSON error body (`NOT_FOUND`), never a
   * silent drop.
   */
  notFound(socket: Duplex): void {
    socket.on('error', swallow);
    rejectHandshake(socket, 404, ErrorCode.NOT_FOUND, 'no WebSocket endpoint at this path');
  }

  /**
   * Wait until every accepted socket finished closing, up to `deadlineMs`; then terminate the rest. Sockets of
   * wire-protocol handlers (no session the node could close) are closed here with 1001 first.
   */
  async drain(deadlineMs: number): Promise<void> {
    for (const ws of this.foreign) ws.close(1001, 'server shutting down');
    const deadline = Date.now() + deadlineMs;
    while (this.open.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    for (const ws of this.open) ws.terminate();
    this.open.clear();
  }

  close(): void {
    this.wss.close();
    for (const wss of this.protocolWss.values()) wss.close();
  }
}

function swallow(): void {}

/**
 * `?channels=a,b` joins those channels on connect; with `&last_sequence=N` (seed 001) each recovers the
 * publications after offset N (`&epoch=E` pins the stream epoch; without it the current epoch is assumed).
 * `last_sequence=0` means "nothing seen yet, no replay" (seed 001): a plain join.
 * `?user_events=1` joins the reserved `$users` channel (user_online / user_offline events).
 */
export function subscribeFromQuery(sessions: SessionPort, s: SessionHandle, url: URL): void {
  if (wantsUserEvents(url)) sessions.subscribe(s, USERS_CHANNEL);
  const list = url.searchParams.get('channels');
  if (list === null) return;
  const seq = url.searchParams.get('last_sequence');
  const offset = seq !== null && /^\d{1,15}$/.test(seq) && Number(seq) > 0 ? Number(seq) : null;
  const since = offset === null ? undefined : { offset, epoch: url.searchParams.get('epoch') ?? '' };
  const channels = list.split(',').map((c) => c.trim()).filter((c) => c.length > 0);
  for (const channel of channels.slice(0, sessions.maxChannelsPerConnection)) sessions.subscribe(s, channel, since);
}

/** Close a socket that is still in its challenge handshake; drop it if the client ignores the close frame. */
function closeHandshake(ws: WebSocket, code: number, reason: string): void {
  ws.close(code, reason.slice(0, 120));
  const drop = setTimeout(() => ws.terminate(), HANDSHAKE_CLOSE_GRACE_MS);
  drop.unref();
  ws.once('close', () => clearTimeout(drop));
}

const STATUS_TEXT: Record<number, string> = { 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 500: 'Internal Server Error', 503: 'Service Unavailable' };

/**
 * Refuse an upgrade with an HTTP status and the JSON error body of the HTTP API and the SSE endpoint:
 * `{"error": {"code", "message", "temporary"}}` (docs/protocol.md, docs/security.md).
 */
function rejectHandshake(socket: Duplex, status: number, code: string, message: string): void {
  const body = JSON.stringify({ error: { code, message, temporary: isTemporaryError(code) } });
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? 'Error'}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}

