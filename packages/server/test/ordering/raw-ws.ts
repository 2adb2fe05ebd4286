/**
 * A minimal WebSocket client over `node:net`, for tests that need control over TCP writes.
 *
 * Why not `ws`: `ws` writes each `send()` separately (one TCP write per frame, or coalesced at its own
 * discretion). Pipelining tests must put several frames in ONE `socket.write`, so they arrive in one read on
 * the server and are parsed in the same tick: `writeFrames([...])` does exactly that.
 *
 * RFC 6455 subset: client handshake (with Sec-WebSocket-Accept check), masked client frames, unmasked server
 * frames of any length (7/16/64-bit), fragmented messages, ping -> pong (opcode 0xA), close handshake. No
 * extensions (permessage-deflate is never offered). JSON `ping` frames of the Switchboard protocol are
 * answered with a JSON `pong` (so heartbeats never close the connection).
 *
 * Every received text frame is kept, in arrival order, in `frames` (never consumed). Waiting is
 * event-driven: `waitFor` resolves when a matching frame is (or already was) received, and rejects after a
 * timeout with a summary of what did arrive.
 */
import net from 'node:net';
import { createHash, randomBytes } from 'node:crypto';

/** A server frame as parsed JSON. */
export type RawFrame = {
  type: string;
  data: Record<string, any>;
  id?: unknown;
  seq?: number;
  epoch?: string;
  channel?: string | null;
  [k: string]: unknown;
};

export type FramePredicate = (f: RawFrame) => boolean;

export interface CloseInfo {
  /** Close code sent by the server (1005 if its close frame had none, 1006 if the socket ended without one). */
  code: number;
  reason: string;
}

export interface RawConnectOptions {
  /** Extra request headers. */
  headers?: Record<string, string>;
  /** Wait for the Switchboard `connect` frame before resolving (default true). */
  waitForConnect?: boolean;
  /** Handshake (and `connect` frame) timeout, ms (default 5000). */
  timeoutMs?: number;
  /**
   * Called synchronously as soon as the HTTP 101 is parsed, before any frame of the same read is handled
   * (so a write here leaves the client right after the socket opened).
   */
  onOpen?: (client: RawWsClient) => void;
}

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const CRLF2 = Buffer.from('\r\n\r\n');

/** Encode one masked client frame. */
export function encodeClientFrame(opcode: number, payload: Buffer): Buffer {
  const len = payload.length;
  const hdr = len < 126 ? 2 : len < 65536 ? 4 : 10;
  const out = Buffer.allocUnsafe(hdr + 4 + len);
  out[0] = 0x80 | opcode;
  if (len < 126) {
    out[1] = 0x80 | len;
  } else if (len < 65536) {
    out[1] = 0x80 | 126;
    out.writeUInt16BE(len, 2);
  } else {
    out[1] = 0x80 | 127;
    out.writeUInt32BE(Math.floor(len / 0x100000000), 2);
    out.writeUInt32BE(len >>> 0, 6);
  }
  const mask = randomBytes(4);
  mask.copy(out, hdr);
  const start = hdr + 4;
  for (let i = 0; i < len; i++) out[start + i] = payload[i]! ^ mask[i & 3]!;
  return out;
}

interface Waiter {
  pred: FramePredicate;
  resolve: (f: RawFrame) => void;
}

export class RawWsClient {
  /** Every text frame received, in arrival order. */
  readonly frames: RawFrame[] = [];
  /** Resolves when the socket is closed (any reason). */
  readonly closed: Promise<CloseInfo>;
  closeInfo: CloseInfo | null = null;
  /** Answer JSON `ping` frames with `{"type":"pong"}` (default true). */
  autoPong = true;
  /** Number of `socket.write` calls that carried frames (tests can assert one write per batch). */
  writes = 0;

  private readonly waiters = new Set<Waiter>();
  private pending: Buffer = Buffer.alloc(0);
  private fragments: Buffer[] | null = null;
  private fragmentOpcode = 0;
  private open = false;
  private closeSent = false;
  private serverClose: CloseInfo | null = null;
  private resolveClosed!: (info: CloseInfo) => void;
  private handshakeDone!: (err?: Error) => void;
  private pingSeq = 0;

  private constructor(
    readonly socket: net.Socket,
    private readonly key: string,
    private readonly onOpen: ((c: RawWsClient) => void) | undefined,
  ) {
    this.closed = new Promise((resolve) => (this.resolveClosed = resolve));
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', () => {});
    socket.on('close', () => {
      const info = this.serverClose ?? { code: 1006, reason: '' };
      this.closeInfo = info;
      this.open = false;
      this.handshakeDone?.(new Error(`socket closed before the handshake completed`));
      this.resolveClosed(info);
    });
  }

  /**
   * Open a WebSocket to `url` (ws://host:port/path?query). Resolves after the HTTP 101 and, unless
   * `waitForConnect: false`, after the `connect` frame.
   */
  static async connect(url: string, opts: RawConnectOptions = {}): Promise<RawWsClient> {
    const u = new URL(url);
    const port = Number(u.port || 80);
    const host = u.hostname;
    const timeoutMs = opts.timeoutMs ?? 5000;
    const key = randomBytes(16).toString('base64');
    const socket = net.connect({ host, port });
    const client = new RawWsClient(socket, key, opts.onOpen);
    const handshake = new Promise<void>((resolve, reject) => {
      client.handshakeDone = (err?: Error) => (err === undefined ? resolve() : reject(err));
    });
    socket.once('connect', () => {
      const extra = Object.entries(opts.headers ?? {}).map(([k, v]) => `${k}: ${v}\r\n`).join('');
      socket.write(
        `GET ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n${extra}\r\n`,
      );
    });
    socket.once('error', (err) => client.handshakeDone?.(err));
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        handshake,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`WebSocket handshake to ${url} timed out after ${timeoutMs} ms`)), timeoutMs);
        }),
      ]);
    } catch (err) {
      clearTimeout(timer);
      socket.destroy();
      throw err;
    }
    clearTimeout(timer);
    if (opts.waitForConnect ?? true) {
      try {
        await client.waitFor((f) => f.type === 'connect', { timeoutMs, what: 'connect frame' });
      } catch (err) {
        socket.destroy();
        throw err;
      }
    }
    return client;
  }

  /** The `connection_id` of the `connect` frame (throws if none arrived). */
  get connectionId(): string {
    const c = this.frames.find((f) => f.type === 'connect');
    if (c === undefined) throw new Error('no connect frame received');
    return c.data.connection_id as string;
  }

  get isOpen(): boolean {
    return this.open && this.closeInfo === null;
  }

  /**
   * Encode every frame (objects are JSON-serialized, strings sent as they are) and send them all in ONE
   * `socket.write`, so they reach the server in one TCP segment / one read.
   */
  writeFrames(frames: Array<object | string>): void {
    if (!this.open) throw new Error('writeFrames: the WebSocket is not open');
    const parts = frames.map((f) => encodeClientFrame(0x1, Buffer.from(typeof f === 'string' ? f : JSON.stringify(f), 'utf8')));
    this.writes += 1;
    this.socket.write(Buffer.concat(parts));
  }

  /** One frame, one write. */
  send(frame: object | string): void {
    this.writeFrames([frame]);
  }

  /**
   * Wait until a frame matching `pred` has been received (frames received earlier count too; the first match
   * in arrival order is returned). Rejects after `timeoutMs`, or when the connection closes first.
   */
  waitFor(pred: FramePredicate, opts: { timeoutMs?: number; what?: string } = {}): Promise<RawFrame> {
    const found = this.frames.find(pred);
    if (found !== undefined) return Promise.resolve(found);
    return this.waitNew(pred, opts);
  }

  /** Wait until `n` frames matching `pred` have been received; resolves to the first `n` of them. */
  async waitForCount(pred: FramePredicate, n: number, opts: { timeoutMs?: number; what?: string } = {}): Promise<RawFrame[]> {
    const matches = (): RawFrame[] => this.frames.filter(pred);
    let have = matches().length;
    if (have < n) {
      const what = opts.what ?? `${n} matching frames`;
      await this.waitNew((f) => pred(f) && ++have >= n, { timeoutMs: opts.timeoutMs, what: () => `${what} (got ${matches().length})` });
    }
    return matches().slice(0, n);
  }

  /** Wait for the next frame (received after this call) matching `pred`. */
  private waitNew(pred: FramePredicate, opts: { timeoutMs?: number; what?: string | (() => string) }): Promise<RawFrame> {
    const timeoutMs = opts.timeoutMs ?? 3000;
    const what = (): string => (typeof opts.what === 'function' ? opts.what() : opts.what ?? 'matching frame');
    return new Promise<RawFrame>((resolve, reject) => {
      const waiter: Waiter = {
        pred,
        resolve: (f) => {
          cleanup();
          resolve(f);
        },
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what()}; received: ${this.describe()}`));
      }, timeoutMs);
      const cleanup = (): void => {
        clearTimeout(timer);
        this.waiters.delete(waiter);
      };
      this.waiters.add(waiter);
      void this.closed.then((info) => {
        if (!this.waiters.has(waiter)) return;
        cleanup();
        reject(new Error(`connection closed (${info.code} ${info.reason}) while waiting for ${what()}; received: ${this.describe()}`));
      });
    });
  }

  /** Wait for the reply carrying request `id` (whatever its type: the reply, `ok` or `error`). */
  reply(id: unknown, timeoutMs = 3000): Promise<RawFrame> {
    return this.waitFor((f) => f.id === id && f.type !== 'ping', { timeoutMs, what: `reply to id ${JSON.stringify(id)}` });
  }

  /**
   * Event barrier: send a JSON `ping` with a fresh id and wait for its `pong`. Resolves to the index of the
   * `pong` in `frames`: every frame before that index arrived before the pong.
   */
  async roundTrip(timeoutMs = 3000): Promise<number> {
    const id = `rt-${++this.pingSeq}`;
    this.send({ type: 'ping', id });
    const pong = await this.waitFor((f) => f.type === 'pong' && f.id === id, { timeoutMs, what: `pong ${id}` });
    return this.frames.indexOf(pong);
  }

  /** Index of a received frame in arrival order (-1 if not received). */
  indexOf(f: RawFrame): number {
    return this.frames.indexOf(f);
  }

  /** Start the close handshake and resolve once the socket is closed (destroyed after 1 s at the latest). */
  async close(): Promise<void> {
    if (this.closeInfo !== null) return;
    if (this.open && !this.closeSent) {
      this.closeSent = true;
      const payload = Buffer.from([0x03, 0xe8]);
      this.socket.write(encodeClientFrame(0x8, payload));
    } else {
      this.socket.destroy();
    }
    const timer = setTimeout(() => this.socket.destroy(), 1000);
    await this.closed;
    clearTimeout(timer);
  }

  /** Drop the TCP connection without a close handshake. */
  destroy(): void {
    this.socket.destroy();
  }

  /** Short summary of the received frames, for failure messages. */
  describe(max = 40): string {
    const items = this.frames.map((f) => {
      const bits = [f.type];
      if (f.id !== undefined) bits.push(`id=${JSON.stringify(f.id)}`);
      if (f.type === 'error') bits.push(String(f.data?.code));
      if (typeof f.seq === 'number') bits.push(`seq=${f.seq}`);
      return bits.join(' ');
    });
    const head = items.slice(0, max).join(', ');
    return `[${head}${items.length > max ? `, … (${items.length} in all)` : ''}]${this.closeInfo !== null ? ` closed ${this.closeInfo.code}` : ''}`;
  }

  // ---------------------------------------------------------------- parsing

  private onData(chunk: Buffer): void {
    let buf = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    if (!this.open) {
      if (this.closeInfo !== null) return;
      const end = buf.indexOf(CRLF2);
      if (end < 0) {
        this.pending = buf;
        return;
      }
      const head = buf.toString('latin1', 0, end);
      const lines = head.split('\r\n');
      if (!/^HTTP\/1\.1 101\b/.test(lines[0] ?? '')) {
        this.handshakeDone(new Error(`handshake rejected: ${lines[0]}`));
        this.socket.destroy();
        return;
      }
      const expected = createHash('sha1').update(this.key + GUID).digest('base64');
      const accept = lines.find((l) => /^sec-websocket-accept:/i.test(l))?.split(':')[1]?.trim();
      if (accept !== expected) {
        this.handshakeDone(new Error(`bad Sec-WebSocket-Accept: ${accept}`));
        this.socket.destroy();
        return;
      }
      this.open = true;
      buf = buf.subarray(end + 4);
      this.onOpen?.(this);
      this.handshakeDone();
    }
    let off = 0;
    const len = buf.length;
    while (off + 2 <= len) {
      const b0 = buf[off]!;
      const b1 = buf[off + 1]!;
      let plen = b1 & 0x7f;
      let hdr = 2;
      if (plen === 126) {
        if (off + 4 > len) break;
        plen = buf.readUInt16BE(off + 2);
        hdr = 4;
      } else if (plen === 127) {
        if (off + 10 > len) break;
        plen = buf.readUInt32BE(off + 2) * 0x100000000 + buf.readUInt32BE(off + 6);
        hdr = 10;
      }
      const masked = (b1 & 0x80) !== 0;
      if (masked) hdr += 4;
      if (off + hdr + plen > len) break;
      const start = off + hdr;
      const end = start + plen;
      let payload = buf.subarray(start, end);
      if (masked) {
        const mask = buf.subarray(start - 4, start);
        payload = Buffer.from(payload);
        for (let i = 0; i < payload.length; i++) payload[i] = payload[i]! ^ mask[i & 3]!;
      }
      off = end;
      this.onFrame((b0 & 0x80) !== 0, b0 & 0x0f, payload);
      if (this.closeInfo !== null) return;
    }
    this.pending = off >= len ? Buffer.alloc(0) : Buffer.from(buf.subarray(off));
  }

  private onFrame(fin: boolean, opcode: number, payload: Buffer): void {
    switch (opcode) {
      case 0x9: // ping
        if (!this.closeSent) this.socket.write(encodeClientFrame(0xa, Buffer.from(payload)));
        return;
      case 0xa: // pong
        return;
      case 0x8: { // close
        const code = payload.length >= 2 ? payload.readUInt16BE(0) : 1005;
        this.serverClose = { code, reason: payload.length > 2 ? payload.subarray(2).toString('utf8') : '' };
        if (!this.closeSent) {
          this.closeSent = true;
          this.socket.write(encodeClientFrame(0x8, payload.length >= 2 ? Buffer.from(payload.subarray(0, 2)) : Buffer.alloc(0)));
        }
        this.socket.end();
        return;
      }
      case 0x0: // continuation
        if (this.fragments === null) return;
        this.fragments.push(Buffer.from(payload));
        if (fin) {
          const whole = Buffer.concat(this.fragments);
          this.fragments = null;
          if (this.fragmentOpcode === 0x1) this.onText(whole.toString('utf8'));
        }
        return;
      default:
        if (!fin) {
          this.fragments = [Buffer.from(payload)];
          this.fragmentOpcode = opcode;
          return;
        }
        if (opcode === 0x1) this.onText(payload.toString('utf8'));
    }
  }

  private onText(text: string): void {
    let frame: RawFrame;
    try {
      frame = JSON.parse(text) as RawFrame;
    } catch {
      frame = { type: '<invalid json>', data: { text } };
    }
    this.frames.push(frame);
    if (frame.type === 'ping' && this.autoPong && !this.closeSent) this.send({ type: 'pong' });
    for (const w of [...this.waiters]) if (w.pred(frame)) w.resolve(frame);
  }
}
