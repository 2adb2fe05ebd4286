/**
 * Minimal WebSocket client over a raw TCP socket, built for the load generator.
 *
 * Why not `ws`: the load generator shares two cores with the server under test, so the cost of
 * receiving must be as small as possible. This client does the RFC 6455 handshake, parses
 * unmasked server frames in place (no per-frame allocation for complete frames), answers
 * protocol pings, and masks what it sends. No extensions (permessage-deflate is never offered).
 * It is not a general-purpose client: no UTF-8 validation, no close handshake timeout.
 */
import net from 'node:net';
import { randomBytes } from 'node:crypto';

/** Receives events of many connections; one handler object is shared by all of them. */
export interface WsHandler {
  /** Handshake accepted (HTTP 101). */
  onOpen(conn: RawWs): void;
  /**
   * One text (or binary) message; the payload is `buf[start, end)`. `now` is the arrival time of the
   * TCP chunk that completed it (performance.now() in ms), read once per chunk.
   */
  onMessage(conn: RawWs, buf: Buffer, start: number, end: number, now: number): void;
  /** Socket closed (any reason); `err` set when it failed. Called once. */
  onClose(conn: RawWs, err?: Error): void;
}

const CRLF2 = Buffer.from('\r\n\r\n');
/**
 * One read buffer shared by every connection (net `onread`): reads land here without a per-read
 * allocation or stream machinery; callbacks run synchronously, so sharing is safe. Bytes of an
 * incomplete frame are copied out before the next read.
 */
const READ_BUF = Buffer.allocUnsafe(256 * 1024);

export class RawWs {
  readonly socket: net.Socket;
  /** Free slot for the owner (e.g. per-connection protocol state). */
  state = 0;
  /** Index given by the owner. */
  readonly index: number;
  /** Status code of the server's close frame, when it sent one (e.g. 4xxx: closed by the server). */
  closeCode: number | null = null;
  private open = false;
  private closed = false;
  private pending: Buffer | null = null;
  private fragments: Buffer[] | null = null;

  constructor(
    readonly handler: WsHandler,
    opts: { host: string; port: number; path: string; localAddress?: string; index: number },
  ) {
    this.index = opts.index;
    const socket = net.connect({
      host: opts.host, port: opts.port, localAddress: opts.localAddress, noDelay: true,
      onread: { buffer: READ_BUF, callback: (n: number, buf: Uint8Array) => { this.onData(buf as Buffer, n); return true; } },
    });
    this.socket = socket;
    socket.on('connect', () => {
      const key = randomBytes(16).toString('base64');
      socket.write(
        `GET ${opts.path} HTTP/1.1\r\nHost: ${opts.host}:${opts.port}\r\nUpgrade: websocket\r\n` +
          `Connection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      );
    });
    socket.on('error', (err) => this.finish(err));
    socket.on('close', () => this.finish());
  }

  /** Sends one text frame (masked, as a client must). */
  sendText(text: string): void {
    if (this.closed) return;
    const payload = Buffer.from(text, 'utf8');
    this.socket.write(encodeFrame(0x1, payload));
  }

  /** Sends a close frame and ends the socket. */
  close(): void {
    if (this.closed) return;
    if (this.open) this.socket.write(encodeFrame(0x8, Buffer.from([0x03, 0xe8])));
    this.socket.end();
    this.socket.destroySoon?.();
  }

  get isClosed(): boolean { return this.closed; }

  private finish(err?: Error): void {
    if (this.closed) return;
    this.closed = true;
    this.socket.destroy();
    this.handler.onClose(this, err);
  }

  private onData(read: Buffer, n: number): void {
    const chunk = read.subarray(0, n);
    const buf = this.pending === null ? chunk : Buffer.concat([this.pending, chunk]);
    this.pending = null;
    let off = 0;
    if (!this.open) {
      const end = buf.indexOf(CRLF2);
      if (end < 0) { this.pending = Buffer.from(buf); return; }
      const head = buf.toString('latin1', 0, end);
      if (!head.startsWith('HTTP/1.1 101')) {
        this.finish(new Error(`handshake rejected: ${head.split('\r\n')[0]}`));
        return;
      }
      this.open = true;
      off = end + 4;
      this.handler.onOpen(this);
    }
    const now = performance.now();
    const len = buf.length;
    while (off + 2 <= len) {
      const b0 = buf[off];
      const b1 = buf[off + 1];
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
      if (masked) {
        const m = start - 4;
        for (let i = start; i < end; i++) buf[i] ^= buf[m + ((i - start) & 3)];
      }
      off = end;
      const fin = (b0 & 0x80) !== 0;
      const opcode = b0 & 0x0f;
      if (opcode === 0x9) {
        this.socket.write(encodeFrame(0xa, Buffer.from(buf.subarray(start, end))));
      } else if (opcode === 0x8) {
        if (plen >= 2) this.closeCode = buf.readUInt16BE(start);
        this.close();
        return;
      } else if (opcode === 0xa) {
        // pong: ignore
      } else if (opcode === 0x0 || !fin) {
        if (this.fragments === null) this.fragments = [];
        this.fragments.push(Buffer.from(buf.subarray(start, end)));
        if (fin) {
          const whole = Buffer.concat(this.fragments);
          this.fragments = null;
          this.handler.onMessage(this, whole, 0, whole.length, now);
        }
      } else {
        this.handler.onMessage(this, buf, start, end, now);
      }
      if (this.closed) return;
    }
    if (off < len) this.pending = Buffer.from(buf.subarray(off)); // copy: READ_BUF is reused
  }
}

/** Encodes one masked client frame. */
function encodeFrame(opcode: number, payload: Buffer): Buffer {
  const n = payload.length;
  const hdr = n < 126 ? 2 : n < 65536 ? 4 : 10;
  const out = Buffer.allocUnsafe(hdr + 4 + n);
  out[0] = 0x80 | opcode;
  if (hdr === 2) out[1] = 0x80 | n;
  else if (hdr === 4) { out[1] = 0x80 | 126; out.writeUInt16BE(n, 2); }
  else { out[1] = 0x80 | 127; out.writeUInt32BE(Math.floor(n / 0x100000000), 2); out.writeUInt32BE(n >>> 0, 6); }
  const mask = randomBytes(4);
  mask.copy(out, hdr);
  const p = hdr + 4;
  for (let i = 0; i < n; i++) out[p + i] = payload[i] ^ mask[i & 3];
  return out;
}
