import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { ErrorCode, isTemporaryError } from '@switchboard/protocol';
import type { HandshakeAuthenticator, OriginCheck } from '../core/ports/handshake.js';
import type { Logger } from '../core/ports/observability.js';
import type { SessionPort } from '../core/ports/session-port.js';
import type { WsProtocolHandler } from '../core/ports/wire-protocol.js';
import { remoteAddress } from './remote-address.js';

export interface ProtocolMountOptions {
  /** `{prefix}/{param}`: the rest of the path (one segment, percent-decoded) is the parameter. */
  prefix: string;
  param: string;
  handler: WsProtocolHandler;
  /** Largest frame the protocol accepts (a larger one closes with 1009). */
  maxPayload: number;
  authenticate: HandshakeAuthenticator;
  checkOrigin: OriginCheck;
  requireAuth: boolean;
  trustProxy: boolean;
  logger: Logger;
}

/**
 * TEMPORARY (branch yjs-documents): mounts ONE wire-protocol handler at a path prefix, so the y-websocket
 * endpoint works before the configurable endpoints table (branch `endpoints`: `{"path": "/yjs/{doc}", "auth":
 * "optional", "protocol": "y-websocket"}` with `SwitchboardOptions.protocols`) lands. It does what that
 * table's hand-over does: draining (503), origin (403), the authenticator (token, cookie), a connection slot
 * of the address (4022), then `handler.accept(ws, ctx)`. Delete this file and its two call sites in server.ts
 * when merging with the endpoints table.
 */
export class ProtocolMount {
  private readonly wss: WebSocketServer;
  private readonly open = new Set<WebSocket>();

  constructor(private readonly sessions: SessionPort, private readonly opts: ProtocolMountOptions) {
    this.wss = new WebSocketServer({ noServer: true, maxPayload: opts.maxPayload, perMessageDeflate: false, clientTracking: false });
  }

  /** Handle an upgrade under the prefix; false (socket untouched) for other paths. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean {
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://localhost');
    } catch {
      return false;
    }
    const prefix = this.opts.prefix + '/';
    if (!url.pathname.startsWith(prefix)) return false;
    let value: string;
    try {
      value = decodeURIComponent(url.pathname.slice(prefix.length));
    } catch {
      return false;
    }
    if (value.length === 0 || value.includes('/')) return false;
    socket.on('error', () => undefined);
    if (this.sessions.draining) return reject(socket, 503, ErrorCode.DRAINING, 'The server is draining; connect to another node');
    if (!this.opts.checkOrigin(req.headers.origin)) return reject(socket, 403, ErrorCode.ORIGIN_NOT_ALLOWED, 'origin not allowed');
    const path = url.pathname;
    this.opts.authenticate(req, url, { transport: 'ws', path, clientId: null, requireAuth: this.opts.requireAuth }).then((outcome) => {
      if (socket.destroyed) return;
      this.wss.handleUpgrade(req, socket, head, (ws: WebSocket) => {
        ws.on('error', (err) => this.opts.logger.debug({ err: err.message }, 'protocol socket error'));
        if (!outcome.ok) {
          ws.close(outcome.closeCode, outcome.message.slice(0, 120));
          return;
        }
        const address = remoteAddress(req, this.opts.trustProxy);
        const slot = this.sessions.reserveSlot(address);
        if ('rejected' in slot) {
          ws.close(slot.closeCode, slot.reason);
          return;
        }
        this.open.add(ws);
        ws.once('close', () => {
          this.open.delete(ws);
          slot.release();
        });
        try {
          this.opts.handler.accept(ws, { identity: outcome.identity, params: { [this.opts.param]: value }, url, remoteAddress: address, path });
        } catch (err) {
          this.opts.logger.error({ err }, 'wire-protocol handler failed');
          ws.close(1011, 'internal error');
        }
      });
    }, (err: unknown) => {
      this.opts.logger.error({ err }, 'authenticator failed');
      reject(socket, 500, ErrorCode.INTERNAL, 'authentication failed unexpectedly');
    });
    return true;
  }

  /** Close what is still open with 1001 (shutdown), terminate it after `deadlineMs`. */
  async drain(deadlineMs: number): Promise<void> {
    for (const ws of this.open) ws.close(1001, 'server shutdown');
    const deadline = Date.now() + deadlineMs;
    while (this.open.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    for (const ws of this.open) ws.terminate();
    this.open.clear();
    this.wss.close();
  }
}

function reject(socket: Duplex, status: number, code: string, message: string): true {
  const body = JSON.stringify({ error: { code, message, temporary: isTemporaryError(code) } });
  socket.end(`HTTP/1.1 ${status} Error\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
  return true;
}
