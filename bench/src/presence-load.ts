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
 */
import type { PresenceTally, TargetConn } from './ipc.js';
import { St, switchboardFrameType } from './protocols.js';
import { RawWs, type WsHandler } from './wsclient.js';

const CONNECT_CONCURRENCY = 200;
const NOT_COUNTED = new Set(['connect', 'subscribed', 'ping', 'pong']);
const MAX_ERRORS = 20;

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
        if (this.errors.length < MAX_ERRORS) this.errors.push(`error frame: ${buf.toString('utf8', start, Math.min(end, start + 300))}`);
        // The answer to our join (this scenario sends nothing else): the connection will not be subscribed.
        const t = this.tally;
        if (conn.state === St.Joining && this.conns[conn.index] === conn) {
          conn.state = St.Failed;
          if (t !== null) t.failed++;
        }
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
    if (this.conns[conn.index] !== conn) return; // replaced by the reconnect storm: closed on purpose
    const t = this.tally;
    if (conn.state === St.Connecting) {
      if (t !== null) t.failed++;
      if (err && this.errors.length < MAX_ERRORS) this.errors.push(err.message);
      if (t?.kind === 'connect') { this.inFlight--; this.fill(); }
    } else if (conn.state !== St.Failed) {
      if (t !== null) {
        t.dropped++;
        bump(t.closeCodes, String(conn.closeCode ?? (err ? err.message : 'none')));
      }
    }
    conn.state = St.Failed;
  }

  /** A connection got its `connect` frame. */
  private ready(conn: RawWs, now: number): void {
    const t = this.tally;
    if (t === null || this.conns[conn.index] !== conn) return;
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

  /** Connections not yet at the goal and still alive. */
  private pending(goal: number): number {
    let n = 0;
    for (const c of this.conns) if (c.state !== goal && c.state !== St.Failed && !c.isClosed) n++;
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
      loadCpuUs: cpu.user + cpu.system, errors: this.errors.splice(0),
    };
  }

  closeAll(): void {
    for (const c of this.conns) c.close();
  }
}
