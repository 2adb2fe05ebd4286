import { WebSocket, type ClientOptions } from 'ws';
import { Switchboard, type SwitchboardOptions } from '../src/server.js';
import { mergeConfig, DEFAULT_CONFIG, type DeepPartial, type SwitchboardConfig } from '../src/config.js';

/** A server frame as parsed JSON. */
export type Frame = { type: string; data: Record<string, any>; id?: unknown; seq?: number; epoch?: string; channel?: string | null; replayed?: boolean; [k: string]: unknown };

export interface TestServer {
  sb: Switchboard;
  port: number;
  /** ws://127.0.0.1:port */
  ws: string;
  /** http://127.0.0.1:port */
  http: string;
  close(): Promise<void>;
}

/** Start a real server on a free loopback port with test-friendly defaults merged under `config`. */
export async function startServer(config: DeepPartial<SwitchboardConfig> = {}, options: SwitchboardOptions = {}): Promise<TestServer> {
  const merged = mergeConfig(DEFAULT_CONFIG, { host: '127.0.0.1', port: 0, log: { level: 'silent' }, store: { driver: 'sqlite', sqlitePath: ':memory:' } }, config);
  const sb = new Switchboard(merged, { defaultMetrics: false, ...options });
  const port = await sb.listen();
  return { sb, port, ws: `ws://127.0.0.1:${port}`, http: `http://127.0.0.1:${port}`, close: () => sb.close() };
}

type Predicate = (f: Frame) => boolean;

/**
 * A real `ws` client that records every frame. `next()` consumes frames in arrival order: it returns the
 * first unconsumed frame that matches (skipping none of the others, which stay available).
 */
export class TestClient {
  readonly frames: Frame[] = [];
  private waiters: Array<{ match: Predicate; resolve: (f: Frame) => void }> = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  closeInfo: { code: number; reason: string } | null = null;
  autoPong = true;

  private constructor(readonly socket: WebSocket) {
    socket.on('message', (data, isBinary) => {
      if (isBinary) return;
      const frame = JSON.parse(data.toString()) as Frame;
      if (frame.type === 'ping' && this.autoPong) socket.send('{"type":"pong"}');
      const i = this.waiters.findIndex((w) => w.match(frame));
      if (i >= 0) {
        const [w] = this.waiters.splice(i, 1);
        w!.resolve(frame);
      } else {
        this.frames.push(frame);
      }
    });
    this.closed = new Promise((resolve) => {
      socket.on('close', (code, reason) => {
        this.closeInfo = { code, reason: reason.toString() };
        resolve(this.closeInfo);
      });
    });
    socket.on('error', () => {});
  }

  /** Connect and wait for the `connect` frame (or the close, if the server refuses). */
  static async connect(url: string, options: ClientOptions = {}, waitForConnect = true): Promise<TestClient> {
    const socket = new WebSocket(url, options);
    const client = new TestClient(socket);
    await new Promise<void>((resolve, reject) => {
      socket.once('open', () => resolve());
      socket.once('error', reject);
      socket.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    });
    if (waitForConnect) await Promise.race([client.next('connect'), client.closed]);
    return client;
  }

  get connectionId(): string {
    return (this.frames.find((f) => f.type === 'connect') ?? this.seenConnect)?.data.connection_id as string;
  }

  private seenConnect: Frame | undefined;

  send(msg: unknown): void {
    this.socket.send(typeof msg === 'string' ? msg : JSON.stringify(msg));
  }

  /** Wait for the next frame matching a type or predicate. Rejects after `timeoutMs`. */
  next(match: string | Predicate, timeoutMs = 3000): Promise<Frame> {
    const pred: Predicate = typeof match === 'string' ? (f) => f.type === match : match;
    const i = this.frames.findIndex(pred);
    if (i >= 0) {
      const [f] = this.frames.splice(i, 1);
      if (f!.type === 'connect') this.seenConnect = f;
      return Promise.resolve(f!);
    }
    return new Promise((resolve, reject) => {
      const waiter = {
        match: pred,
        resolve: (f: Frame) => {
          clearTimeout(timer);
          if (f.type === 'connect') this.seenConnect = f;
          resolve(f);
        },
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new Error(`timed out waiting for ${typeof match === 'string' ? match : 'frame'}; have: ${this.frames.map((f) => f.type).join(',')}`));
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }

  /** Send a request with an id and wait for the reply carrying it. */
  async request(type: string, data: Record<string, unknown> = {}, timeoutMs = 3000): Promise<Frame> {
    const id = `r${++TestClient.seq}`;
    this.send({ type, data, id });
    return this.next((f) => f.id === id, timeoutMs);
  }

  private static seq = 0;

  /** Join a channel and wait for `subscribed`. */
  join(channel: string, extra: Record<string, unknown> = {}): Promise<Frame> {
    return this.request('join_channel', { channel, ...extra });
  }

  /** Resolves to frames matching `pred` received within `ms` (for asserting absence). */
  async collect(pred: Predicate, ms: number): Promise<Frame[]> {
    await sleep(ms);
    const got = this.frames.filter(pred);
    return got;
  }

  close(): void {
    this.socket.close();
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Poll `check` until it returns true or the deadline passes. */
export async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs = 3000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await sleep(10);
  }
  throw new Error(`timed out waiting for ${what}`);
}
