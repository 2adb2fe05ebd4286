/**
 * A raw WebSocket client connection for the chaos actors: open with a timeout (resolves on the `connect`
 * frame), requests matched by `id` with a timeout, every frame to a listener, answers server pings.
 */
import { WebSocket } from 'ws';

export type Frame = {
  type: string;
  data: Record<string, any>;
  id?: unknown;
  seq?: number;
  epoch?: string;
  channel?: string | null;
  replayed?: boolean;
  [k: string]: unknown;
};

let nextId = 1;

export class Conn {
  readonly closed: Promise<{ code: number; reason: string }>;
  closeInfo: { code: number; reason: string } | null = null;
  connectionId = '';
  nodeId = '';
  onFrame: ((f: Frame) => void) | null = null;
  private readonly pending = new Map<string, { resolve: (f: Frame) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();

  private constructor(readonly ws: WebSocket, readonly url: string) {
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        this.closeInfo = { code, reason: reason.toString() };
        for (const [, p] of this.pending) { clearTimeout(p.timer); p.reject(new Error(`closed ${code}`)); }
        this.pending.clear();
        resolve(this.closeInfo);
      });
    });
    ws.on('error', () => { /* the close follows */ });
    ws.on('message', (data, isBinary) => {
      if (isBinary) return;
      let f: Frame;
      try { f = JSON.parse(data.toString()) as Frame; } catch { return; }
      if (f.type === 'ping') { this.sendRaw('{"type":"pong"}'); return; }
      if (f.id !== undefined && f.id !== null) {
        const p = this.pending.get(String(f.id));
        if (p) { this.pending.delete(String(f.id)); clearTimeout(p.timer); p.resolve(f); }
      }
      this.onFrame?.(f);
    });
  }

  /** Open and wait for the `connect` frame; rejects on refusal, close or timeout (the socket is then dropped). */
  static open(url: string, timeoutMs = 3000): Promise<Conn> {
    const ws = new WebSocket(url, { perMessageDeflate: false, handshakeTimeout: timeoutMs });
    const conn = new Conn(ws, url);
    return new Promise<Conn>((resolve, reject) => {
      const fail = (err: Error): void => { clearTimeout(timer); ws.removeAllListeners('unexpected-response'); conn.terminate(); reject(err); };
      const timer = setTimeout(() => fail(new Error(`connect to ${url}: no connect frame within ${timeoutMs} ms`)), timeoutMs);
      ws.once('unexpected-response', (_req, res) => fail(new Error(`connect to ${url}: HTTP ${res.statusCode}`)));
      ws.once('error', (err) => fail(err));
      conn.onFrame = (f) => {
        if (f.type === 'connect') {
          clearTimeout(timer);
          conn.connectionId = String(f.data.connection_id ?? '');
          conn.nodeId = String(f.data.node_id ?? '');
          conn.onFrame = null;
          resolve(conn);
        }
      };
      void conn.closed.then((c) => fail(new Error(`connect to ${url}: closed ${c.code} ${c.reason}`)));
    });
  }

  get open(): boolean { return this.ws.readyState === WebSocket.OPEN; }

  sendRaw(data: string | Buffer, binary = false): void {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(data, { binary });
  }

  send(msg: unknown): void { this.sendRaw(JSON.stringify(msg)); }

  /** Send `{type, data, id}` and resolve with the frame that carries the id (ok, error or the typed reply). */
  request(type: string, data: Record<string, unknown>, timeoutMs = 3000): Promise<Frame> {
    const id = `r${nextId++}`;
    return new Promise<Frame>((resolve, reject) => {
      if (this.ws.readyState !== WebSocket.OPEN) { reject(new Error('not open')); return; }
      const timer = setTimeout(() => { this.pending.delete(id); reject(new Error(`${type}: no reply within ${timeoutMs} ms`)); }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      this.ws.send(JSON.stringify({ type, data, id }));
    });
  }

  close(code = 1000): void {
    try { this.ws.close(code); } catch { /* closing */ }
    // A peer that never answers the close (killed, paused) must not keep the socket.
    setTimeout(() => this.terminate(), 2000).unref();
  }

  terminate(): void {
    try { this.ws.terminate(); } catch { /* gone */ }
  }
}
