import type { WebSocket } from 'ws';
import { CloseCode } from '@switchboard/protocol';
import type { DocumentRefusal } from '../../core/features/documents.js';
import type { DocumentPeer, DocumentSession } from '../../core/features/documents-session.js';
import { permissionDeniedMessage } from '../../core/features/documents-wire.js';
import { newId } from '../../core/ids.js';
import type { Logger } from '../../core/ports/observability.js';
import type { WsProtocolContext, WsProtocolHandler } from '../../core/ports/wire-protocol.js';
import { WriteBatcher } from '../../wire/write-batcher.js';
import { YWebsocketPeer } from './peer.js';

/** What the handler needs of the node: its documents (Node.documents). */
export interface DocumentsPort {
  attach(peer: DocumentPeer, channel: string): Promise<DocumentSession | DocumentRefusal>;
}

export interface YWebsocketOptions {
  documents: DocumentsPort;
  /** Path parameter holding the document (channel) name; default `doc` (`/yjs/{doc}`). */
  param?: string;
  /** Largest message accepted, bytes (documents.maxUpdateBytes plus framing); larger ones close with 1009. */
  maxPayload: number;
  /** Slow consumer bound, bytes (limits.maxQueuedBytes). */
  maxQueuedBytes: number;
  /**
   * Liveness interval: a socket that sent nothing during an interval is pinged; one that then sent nothing
   * either, not even the pong, by the next sweep is dropped (0: no pings).
   */
  pingIntervalMs: number;
  logger: Logger;
}

/** Messages a client may send before its document is ready (they are handled in order once it is). */
const MAX_EARLY_MESSAGES = 256;

/**
 * The y-websocket protocol (the wire of `y-websocket`'s WebsocketProvider and of `@y/websocket-server`): an
 * unmodified `new WebsocketProvider(url, docName, doc)` connects to `{url}/{docName}`. The socket speaks for
 * exactly one document, the channel named by the path parameter; the message set is y-websocket's (sync step
 * 1/2 and updates, awareness, query awareness, auth), built with y-protocols (core/features/documents-wire.ts).
 *
 * Authentication is the endpoint's (token as `?token=` for y-websocket, whose constructor takes `params`);
 * authorization is the channel rules': `subscribe` to read, `publish` to write (read-only peers get a
 * y-protocols "permission denied" message when they try, and their updates are dropped). Refusals close with
 * 44xx codes, which providers do not retry: 4403 not allowed to read, 4404 not a document channel, 4400 a
 * malformed or foreign message. See docs/documents.md.
 */
export class YWebsocketHandler implements WsProtocolHandler {
  private readonly batcher = new WriteBatcher('task');
  private readonly peers = new Set<YWebsocketPeer>();
  private timer: NodeJS.Timeout | null = null;

  readonly maxPayload: number;

  constructor(private readonly opts: YWebsocketOptions) {
    this.maxPayload = opts.maxPayload;
  }

  accept(ws: WebSocket, ctx: WsProtocolContext): void {
    const channel = ctx.params[this.opts.param ?? 'doc'] ?? '';
    const peer = new YWebsocketPeer(newId(), ws, ctx.identity, ctx.remoteAddress, { endpoint: ctx.path, protocol: 'y-websocket' }, this.batcher, this.opts.maxQueuedBytes);
    ws.binaryType = 'nodebuffer';
    let session: DocumentSession | null = null;
    let early: Buffer[] | null = [];
    let closed = false;
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (!isBinary) {
        peer.close(1003, 'y-websocket messages are binary');
        return;
      }
      peer.heard = true;
      if (session !== null) session.receive(data);
      else if (early !== null && early.length < MAX_EARLY_MESSAGES) early.push(data);
      else peer.close(CloseCode.RATE_LIMITED, 'too many messages before the document was ready');
    });
    ws.on('pong', () => {
      peer.awaitingPong = false;
    });
    ws.on('close', () => {
      closed = true;
      this.peers.delete(peer);
      session?.detach();
    });
    this.peers.add(peer);
    this.startHeartbeat();
    this.opts.documents.attach(peer, channel).then((r) => {
      if ('refused' in r) {
        // y-protocols' way to say it (the provider logs the reason), then the close code.
        if (r.closeCode === CloseCode.DOCUMENT_FORBIDDEN && ws.readyState === ws.OPEN) ws.send(permissionDeniedMessage(r.message), { binary: true });
        peer.close(r.closeCode, r.message);
        return;
      }
      if (closed) {
        r.detach();
        return;
      }
      session = r;
      r.start();
      const queued = early ?? [];
      early = null;
      for (const m of queued) r.receive(m);
    }, (err: unknown) => {
      this.opts.logger.error({ err, channel }, 'y-websocket attach failed');
      peer.close(CloseCode.INTERNAL_ERROR, 'internal error');
    });
  }

  /** Stop the heartbeat (shutdown; the node closes the peers). */
  close(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  /**
   * One timer for all sockets, every pingIntervalMs: a socket that sent anything since the previous sweep is
   * alive and not pinged (most editors of an active document); a silent one is pinged; one that did not answer
   * the previous ping and sent nothing since is dropped; one whose token expired is closed with 4003.
   */
  private startHeartbeat(): void {
    const every = this.opts.pingIntervalMs;
    if (this.timer !== null || every <= 0) return;
    this.timer = setInterval(() => {
      const now = Date.now();
      for (const p of this.peers) {
        const exp = p.identity.expiresAt;
        if (exp !== undefined && exp <= now) {
          p.close(CloseCode.TOKEN_EXPIRED, 'token expired');
          continue;
        }
        if (p.heard) {
          p.heard = false;
          p.awaitingPong = false;
          continue;
        }
        if (p.awaitingPong) {
          p.ws.terminate();
          continue;
        }
        p.awaitingPong = true;
        p.ws.ping();
      }
    }, every);
    this.timer.unref();
  }
}
