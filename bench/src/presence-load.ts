/**
 * Presence scenario, load side (runs inside a load process, see load.ts): identified connections
 * (`/ws?user_id=u<i>&username=U<i>`) that join one channel all at once (join storm), then all close and
 * come back at once (reconnect storm, as after a deploy). It counts every control frame each connection
 * receives, by type, before and after its `subscribed`, and records when the last connection was
 * subscribed and when the last control frame arrived, so that the storm's time can be told apart from the
 * quiet window used to detect its end.
 *
 * Frames are classified by their `type` read from the bytes (no JSON parse), so that counting hundreds of
 * thousands of presence frames costs the load generator little. Every frame type is counted except the
 * connection's own handshake (`connect`, `subscribed`) and heartbeats (`ping`, `pong`): frame types a
 * server version does not have yet (presence_diff, presence_count, users_diff, …) are simply counted
 * under their name. A frame that is a JSON array is counted once per element.
 *
 * Members behave like the client SDK (packages/client) with its defaults: a join refused with a temporary
 * error (`temporary: true`, e.g. BROKER_UNAVAILABLE) is sent again after a full-jitter backoff (500 ms base,
 * 30 s cap), and a connection that fails to open or that the server closes (e.g. 4023 slow consumer, 4012
 * heartbeat timeout) is opened again after the same backoff and joins again, unless its close code says
 * not to reconnect. Per-connection counts are per member, over its successive connections.
 */
import type { PresenceTally, TargetConn } from './ipc.js';
import { St, switchboardFrameType } from './protocols.js';
import { RawWs, type WsHandler } from './wsclient.js';

const CONNECT_CONCURRENCY = 200;
const NOT_COUNTED = new Set(['connect', 'subscribed', 'ping', 'pong']);
const MAX_ERRORS = 20;
/** The SDK's default backoff (packages/client/src/backoff.ts): delay n is random in [0, min(30 s, 500 ms * 2^n)). */
const BACKOFF_BASE_MS = 500;
const BACKOFF_MAX_MS = 30_000;
/** Close codes after which the SDK does not reconnect (packages/protocol/src/close-codes.ts: reconnect 'no'). */
const NO_RECONNECT = new Set([1000, 1008, 4001, 4002, 4011, 4031]);

const backoff = (attempt: number): number => Math.floor(Math.random() * Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** Math.min(attempt, 16)));

const epoch = (perfNow: number): number => performance.timeOrigin + perfNow;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Accounting of one stage (connect, join storm or reconnect storm). */
class Tally {
  readonly post: Uint32Array;
  readonly pre: Uint32Array;
  readonly byType = new Map<string, number>();
  readonly byTypePre = new Map<string, number>();
  readonly closeCodes = new Map<string, number>();
  readonly progress: Array<[number, number, number]> = [];
  readonly cpu0 = process.cpuUsage();
  bytes = 0;
  frames = 0;
  closingFrames = 0;
  failed = 0;
  dropped = 0;
  /** Joins sent again after a temporary refusal; connections opened again after a failure or a server close. */
  joinRetries = 0;
  reconnects = 0;
  lastDoneAt = 0;
  lastControlAt = 0;
  quietAt: number | null = null;
  timedOut = false;

  constructor(readonly kind: PresenceTally['kind'], readonly goal: number, readonly start: number, n: number) {
    this.post = new Uint32Array(n);
    this.pre = new Uint32Array(n);
  }
}

function bump(m: Map<string, number>, key: string, by = 1): void {
  m.set(key, (m.get(key) ?? 0) + by);
}

export class PresenceLoad implements WsHandler {
  private target!: TargetConn;
  private channel = 'presence';
  /** Current connection of each member (index = member - target.indexBase). */
  private conns: RawWs[] = [];
  private tally: Tally | null = null;
  /** Connect stage: connections still to start. */
  private toStart = 0;
  private inFlight = 0;
  private errors: string[] = [];
  /** Per member: failed attempts in a row (connection, or join), for the backoff. */
  private connAttempts = new Uint16Array(0);
  private joinAttempts = new Uint16Array(0);
  private timers = new Set<NodeJS.Timeout>();
  /** Per member: 1 once given up for good (join refused with a final error, or a close code that says so). */
  private gaveUp = new Uint8Array(0);
  private closed = false;

  onOpen(): void { /* the server speaks first (`connect` frame) */ }

  onMessage(conn: RawWs, buf: Buffer, start: number, end: number, now: number): void {
    const type = switchboardFrameType(buf, start, end);
    if (type !== '') {
      this.frame(conn, type, end - start, now, buf, start, end);
      return;
    }
    // Not an envelope with `type` up front: parse it (a batch array counts once per element).
    let msg: unknown;
    try { msg = JSON.parse(buf.toString('utf8', start, end)); } catch { msg = null; }
    const list = Array.isArray(msg) ? msg : [msg];
    for (const m of list) {
      const t = m !== null && typeof m === 'object' && typeof (m as { type?: unknown }).type === 'string'
        ? (m as { type: string }).type : 'unknown';
      this.frame(conn, t, (end - start) / list.length, now, buf, start, end);
    }
  }

  private frame(conn: RawWs, type: string, bytes: number, now: number, buf: Buffer, start: number, end: number): void {
    switch (type) {
      case 'connect':
        if (conn.state === St.Connecting) {
          conn.state = St.Ready;
          this.ready(conn, now);
        }
        return;
      case 'subscribed':
        if (conn.state === St.Joining) {
          conn.state = St.Subscribed;
          const t = this.tally;
          if (t !== null && t.goal === St.Subscribed && this.conns[conn.index] === conn) t.lastDoneAt = now;
        }
        return;
      case 'ping':
        conn.sendText('{"type":"pong"}');
        return;
      case 'error': {
        const text = buf.toString('utf8', start, end);
        if (this.errors.length < MAX_ERRORS) this.errors.push(`error frame: ${text.slice(0, 300)}`);
        // The answer to our join (this scenario sends nothing else): retried if temporary, else final.
        if (conn.state === St.Joining && this.conns[conn.index] === conn) this.joinRefused(conn, text);
        break;
      }
    }
    if (NOT_COUNTED.has(type)) return;
    const t = this.tally;
    if (t === null) return;
    t.lastControlAt = now;
    t.frames++;
    if (this.conns[conn.index] !== conn) {
      t.closingFrames++;
      return;
    }
    t.bytes += bytes;
    if (conn.state === t.goal) {
      t.post[conn.index]++;
      bump(t.byType, type);
    } else {
      t.pre[conn.index]++;
      bump(t.byTypePre, type);
    }
  }

  onClose(conn: RawWs, err?: Error): void {
    if (this.conns[conn.index] !== conn || this.closed) return; // replaced (reconnect storm) or shut down: on purpose
    const t = this.tally;
    const opened = conn.state !== St.Connecting && conn.state !== St.Failed;
    if (opened) {
      if (t !== null) {
        t.dropped++;
        bump(t.closeCodes, String(conn.closeCode ?? (err ? err.message : 'none')));
      }
    } else if (err && this.errors.length < MAX_ERRORS) {
      this.errors.push(err.message);
    }
    const code = conn.closeCode;
    conn.state = St.Failed;
    if (code !== null && NO_RECONNECT.has(code)) {
      this.gaveUp[conn.index] = 1;
      if (t !== null) t.failed++;
      if (t?.kind === 'connect' && !opened) { this.inFlight--; this.fill(); }
      return;
    }
    // As the SDK: open again after a backoff (in the connect stage, the retry keeps its handshake slot).
    const i = conn.index;
    const delay = backoff(this.connAttempts[i]++);
    this.later(delay, () => {
      if (this.conns[i] !== conn) return;
      if (this.tally !== null) this.tally.reconnects++;
      this.conns[i] = this.connect(i);
    });
  }

  /** A join refused: sent again after a backoff when the error is temporary (as the SDK), else final. */
  private joinRefused(conn: RawWs, text: string): void {
    const t = this.tally;
    if (!text.includes('"temporary":true')) {
      conn.state = St.Failed;
      this.gaveUp[conn.index] = 1;
      if (t !== null) t.failed++;
      return;
    }
    const i = conn.index;
    const delay = backoff(this.joinAttempts[i]++);
    this.later(delay, () => {
      if (this.conns[i] !== conn || conn.isClosed || conn.state !== St.Joining) return;
      if (this.tally !== null) this.tally.joinRetries++;
      this.join(conn);
    });
  }

  private later(ms: number, fn: () => void): void {
    if (this.closed) return;
    const timer = setTimeout(() => { this.timers.delete(timer); if (!this.closed) fn(); }, ms);
    this.timers.add(timer);
  }

  /** A connection got its `connect` frame. */
  private ready(conn: RawWs, now: number): void {
    const t = this.tally;
    if (t === null || this.conns[conn.index] !== conn) return;
    this.connAttempts[conn.index] = 0;
    if (t.kind === 'connect') {
      t.lastDoneAt = now;
      this.inFlight--;
      this.fill();
    } else {
      // Reconnect storm: join as soon as open. Join storm: a connection still opening at the start (the
      // connect stage timed out) joins when it is open.
      this.join(conn);
    }
  }

  private join(conn: RawWs): void {
    if (conn.state !== St.Joining) this.joinAttempts[conn.index] = 0;
    conn.state = St.Joining;
    conn.sendText(JSON.stringify({ type: 'join_channel', data: { channel: this.channel } }));
  }

  private connect(i: number): RawWs {
    const t = this.target;
    const member = t.indexBase + i;
    const src = (member % t.sources) + 1;
    return new RawWs(this, {
      host: t.host, port: t.port, path: `/ws?user_id=u${member}&username=U${member}`, localAddress: `127.0.0.${src}`, index: i,
    });
  }

  /** Connect stage: keep CONNECT_CONCURRENCY handshakes in flight. */
  private fill(): void {
    while (this.toStart > 0 && this.inFlight < CONNECT_CONCURRENCY) {
      const i = this.conns.length;
      this.toStart--;
      this.inFlight++;
      this.conns.push(this.connect(i));
    }
  }

  /** Members not at the goal and not given up (one whose connection waits for its reconnect is pending). */
  private pending(goal: number): number {
    let n = 0;
    for (let i = 0; i < this.conns.length; i++) {
      const c = this.conns[i];
      if (this.gaveUp[i] === 0 && (c.state !== goal || c.isClosed)) n++;
    }
    return n;
  }

  private atGoal(goal: number): number {
    let n = 0;
    for (const c of this.conns) if (c.state === goal && !c.isClosed) n++;
    return n;
  }

  /** Waits until every connection is at the goal (or gone) and control traffic is quiet, or the timeout. */
  private async settle(t: Tally, quietMs: number, timeoutMs: number): Promise<void> {
    const deadline = t.start + timeoutMs;
    let nextSample = t.start + 1000;
    for (;;) {
      await sleep(50);
      const now = performance.now();
      const pending = this.toStart + this.pending(t.goal);
      if (now >= nextSample) {
        t.progress.push([Math.round(now - t.start), this.atGoal(t.goal), t.frames]);
        nextSample += 1000;
      }
      if (pending === 0 && now - Math.max(t.lastControlAt, t.lastDoneAt, t.start) >= quietMs) {
        t.quietAt = now;
        return;
      }
      if (now >= deadline) {
        t.timedOut = true;
        return;
      }
    }
  }

  /** Opens `count` identified connections (user ids from target.indexBase), CONNECT_CONCURRENCY at a time. */
  async open(target: TargetConn, count: number, quietMs: number, timeoutMs: number): Promise<unknown> {
    this.target = target;
    this.conns = [];
    this.connAttempts = new Uint16Array(count);
    this.joinAttempts = new Uint16Array(count);
    this.gaveUp = new Uint8Array(count);
    const t = new Tally('connect', St.Ready, performance.now(), count);
    this.tally = t;
    this.toStart = count;
    this.inFlight = 0;
    this.fill();
    await this.settle(t, quietMs, timeoutMs);
    return { timedOut: t.timedOut };
  }

  /** One storm (see ipc.ts). */
  async storm(kind: 'join' | 'reconnect', channel: string, quietMs: number, timeoutMs: number): Promise<unknown> {
    this.channel = channel;
    this.toStart = 0;
    const n = this.conns.length;
    const t = new Tally(kind, St.Subscribed, performance.now(), n);
    this.tally = t;
    if (kind === 'join') {
      for (const c of this.conns) if (c.state === St.Ready && !c.isClosed) this.join(c);
    } else {
      const old = this.conns.slice();
      // Replace first, then close: frames still arriving on an old connection count as `closingFrames`.
      for (let i = 0; i < n; i++) this.conns[i] = this.connect(i);
      for (const c of old) c.close();
    }
    await this.settle(t, quietMs, timeoutMs);
    return { timedOut: t.timedOut };
  }

  /** Waits for local quiet (bounded), then returns the current stage's tally and stops counting it. */
  async report(quietMs: number, maxWaitMs: number): Promise<PresenceTally> {
    const t = this.tally;
    if (t === null) throw new Error('nothing to report');
    const until = performance.now() + maxWaitMs;
    while (performance.now() - Math.max(t.lastControlAt, t.lastDoneAt, t.start) < quietMs && performance.now() < until) await sleep(50);
    this.tally = null;
    const done = this.atGoal(t.goal);
    const cpu = process.cpuUsage(t.cpu0);
    const obj = (m: Map<string, number>) => Object.fromEntries([...m].sort((a, b) => b[1] - a[1]));
    return {
      kind: t.kind, conns: this.conns.length, done, failed: t.failed, dropped: t.dropped, closeCodes: obj(t.closeCodes),
      startAt: epoch(t.start),
      allDoneAt: done === this.conns.length && this.conns.length > 0 ? epoch(t.lastDoneAt) : null,
      lastControlAt: t.frames > 0 ? epoch(t.lastControlAt) : null,
      quietAt: t.quietAt === null ? null : epoch(t.quietAt),
      timedOut: t.timedOut,
      // Only the connections started (a connect stage that timed out has not started them all).
      post: Array.from(t.post.subarray(0, this.conns.length)), pre: Array.from(t.pre.subarray(0, this.conns.length)), byType: obj(t.byType), byTypePre: obj(t.byTypePre),
      bytes: Math.round(t.bytes), closingFrames: t.closingFrames, progress: t.progress,
      joinRetries: t.joinRetries, reconnects: t.reconnects,
      loadCpuUs: cpu.user + cpu.system, errors: this.errors.splice(0),
    };
  }

  closeAll(): void {
    this.closed = true;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    for (const c of this.conns) c.close();
  }
}
