import assert from 'node:assert/strict';
import { WebSocket, type ClientOptions } from 'ws';
import { Switchboard, type SwitchboardOptions } from '../src/server.js';
import { mergeConfig, DEFAULT_CONFIG, type DeepPartial, type SwitchboardConfig } from '../src/config.js';
import type { ConnectionInfo } from '../src/core/ports/hooks.js';

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

/** A server started by `startServer`: a TestServer whose session closes can be awaited. */
export interface WatchedServer extends TestServer {
  sessions: SessionWatch;
}

/**
 * Session closes of one server, seen through its `onSessionClose` hook. The hook runs once the session is out
 * of the hub (stats, channels, users and metrics already updated), for WebSocket and SSE sessions alike, so
 * waiting for it replaces polling `stats()` or /health.
 */
export class SessionWatch {
  private readonly codes = new Map<string, number>();
  private listeners = new Set<() => void>();

  /** Called by the hook. */
  closed(connectionId: string, code: number): void {
    this.codes.set(connectionId, code);
    for (const l of [...this.listeners]) l();
  }

  /** Resolves with the close code once the server closed session `connectionId` (at once if it already did). */
  closeOf(connectionId: string, timeoutMs = 3000): Promise<number> {
    return this.until(() => this.codes.has(connectionId), `the server to close session ${connectionId}`, timeoutMs).then(() => this.codes.get(connectionId)!);
  }

  /** Resolves once `check()` holds: checked now and after every session close of this server. */
  until(check: () => boolean, what: string, timeoutMs = 3000): Promise<void> {
    return untilNotified(check, what, timeoutMs, (l) => {
      this.listeners.add(l);
      return () => this.listeners.delete(l);
    });
  }
}

/** Start a real server on a free loopback port with test-friendly defaults merged under `config`. */
export async function startServer(config: DeepPartial<SwitchboardConfig> = {}, options: SwitchboardOptions = {}): Promise<WatchedServer> {
  const merged = mergeConfig(DEFAULT_CONFIG, { host: '127.0.0.1', port: 0, log: { level: 'silent' }, store: { driver: 'sqlite', sqlitePath: ':memory:' } }, config);
  const sessions = new SessionWatch();
  const own = options.hooks?.onSessionClose;
  const hooks = {
    ...options.hooks,
    onSessionClose: (session: ConnectionInfo, code: number) => {
      own?.call(options.hooks, session, code);
      sessions.closed(session.id, code);
    },
  };
  const sb = new Switchboard(merged, { defaultMetrics: false, ...options, hooks });
  const port = await sb.listen();
  return { sb, port, ws: `ws://127.0.0.1:${port}`, http: `http://127.0.0.1:${port}`, close: () => sb.close(), sessions };
}

type Predicate = (f: Frame) => boolean;

/**
 * A user event about `userId`: the seed frame (`user_online` / `user_offline`) or a coalesced `users_diff`
 * listing the user under `online` / `offline`.
 */
export function userEvent(kind: 'online' | 'offline', userId: string): Predicate {
  return (f) =>
    (f.type === `user_${kind}` && f.data.user_id === userId) ||
    (f.type === 'users_diff' && (f.data[kind] as Array<{ user_id: string }>).some((u) => u.user_id === userId));
}

/**
 * A real `ws` client that records every frame. `next()` consumes frames in arrival order: it returns the
 * first unconsumed frame that matches (skipping none of the others, which stay available).
 */
export class TestClient {
  readonly frames: Frame[] = [];
  private waiters: Array<{ match: Predicate; resolve: (f: Frame) => void }> = [];
  /** Called after every received frame and at the close (see `until`). */
  private listeners = new Set<() => void>();
  readonly closed: Promise<{ code: number; reason: string }>;
  closeInfo: { code: number; reason: string } | null = null;
  autoPong = true;
  /** Sees every frame as it arrives, before `next()` waiters or `frames` take it (for tests that tally). */
  onFrame: ((f: Frame) => void) | null = null;

  private constructor(readonly socket: WebSocket) {
    socket.on('message', (data, isBinary) => {
      if (isBinary) return;
      const frame = JSON.parse(data.toString()) as Frame;
      if (frame.type === 'ping' && this.autoPong) socket.send('{"type":"pong"}');
      this.onFrame?.(frame);
      const i = this.waiters.findIndex((w) => w.match(frame));
      if (i >= 0) {
        const [w] = this.waiters.splice(i, 1);
        w!.resolve(frame);
      } else {
        this.frames.push(frame);
      }
      for (const l of [...this.listeners]) l();
    });
    this.closed = new Promise((resolve) => {
      socket.on('close', (code, reason) => {
        this.closeInfo = { code, reason: reason.toString() };
        resolve(this.closeInfo);
        for (const l of [...this.listeners]) l();
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

  /**
   * Ordering barrier: a request/response round trip on this connection. The server sends one connection's
   * frames in the order it queued them, so once the reply is here, every frame queued for this connection
   * before the server handled the request is here too (in `frames`, or taken by a `next()`).
   *
   * The default request is `online_users`, a command: the server runs it only after this connection's
   * earlier commands finished (a join, a publish still waiting on the broker), so the barrier also comes after
   * every frame those commands send. `{ ping: true }` sends a `ping`, which overtakes running commands: enough
   * for frames caused by other connections or by the server. Rejects if the connection closes first.
   */
  barrier(opts: { ping?: boolean; timeoutMs?: number } = {}): Promise<void> {
    const id = `barrier-${++TestClient.seq}`;
    const type = opts.ping === true ? 'ping' : 'online_users';
    const timeoutMs = opts.timeoutMs ?? 3000;
    return new Promise<void>((resolve, reject) => {
      const finish = (err: Error | null): void => {
        clearTimeout(timer);
        this.waiters = this.waiters.filter((w) => w !== waiter);
        this.listeners.delete(onClose);
        if (err === null) resolve();
        else reject(err);
      };
      const waiter = { match: (f: Frame) => f.id === id, resolve: () => finish(null) };
      const onClose = (): void => {
        if (this.closeInfo !== null) finish(new Error(`connection closed (${this.closeInfo.code} ${this.closeInfo.reason}) before the ${type} barrier`));
      };
      const timer = setTimeout(() => finish(new Error(`timed out after ${timeoutMs} ms waiting for the ${type} barrier`)), timeoutMs);
      this.waiters.push(waiter);
      this.listeners.add(onClose);
      this.send({ type, data: {}, id });
      onClose();
    });
  }

  /**
   * Absence check: after a barrier (see `barrier`), no unconsumed frame matches `pred`. Call it after the
   * event that would have caused the frame (and after any frame another client had to receive for it).
   */
  async expectNoFrame(pred: Predicate, what: string, opts: { ping?: boolean } = {}): Promise<void> {
    await this.barrier(opts);
    const got = this.frames.filter(pred);
    assert.deepEqual(got, [], `${what}: got ${JSON.stringify(got)}`);
  }

  /** Resolves once `check()` holds: checked now and after every frame this client receives, and at its close. */
  until(check: () => boolean, what: string, timeoutMs = 3000): Promise<void> {
    return untilNotified(check, what, timeoutMs, (l) => {
      this.listeners.add(l);
      return () => this.listeners.delete(l);
    });
  }

  close(): void {
    this.socket.close();
  }
}

/**
 * Resolves once `check()` holds, re-checking it each time `subscribe`'s source calls the listener (an event,
 * not a timer); rejects naming `what` after `timeoutMs` (a function is called then, to describe the state at the timeout).
 */
export function untilNotified(check: () => boolean, what: string | (() => string), timeoutMs: number, subscribe: (listener: () => void) => () => void): Promise<void> {
  if (check()) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const stop = (): void => {
      clearTimeout(timer);
      unsubscribe();
    };
    const unsubscribe = subscribe(() => {
      let ok: boolean;
      try {
        ok = check();
      } catch (err) {
        stop();
        reject(err);
        return;
      }
      if (ok) {
        stop();
        resolve();
      }
    });
    const timer = setTimeout(() => {
      unsubscribe();
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${typeof what === 'function' ? what() : what}`));
    }, timeoutMs);
  });
}

/** `promise`, or a rejection naming `what` after `ms` (a deadline, not a delay: the timer is cleared on settle). */
export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

/**
 * Poll `check` every 10 ms until it returns true or the deadline passes. Only for state that announces
 * itself by no event the test can see (another process's internals, an external server); say which at the
 * call site.
 */
export async function pollUntil(check: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}
