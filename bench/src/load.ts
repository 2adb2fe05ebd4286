/**
 * Load process (forked by run.js, driven over IPC; see ipc.ts). Runs in its own process so the
 * server's CPU is isolated from the subscribers' and publisher's. Holds either one fan-out
 * scenario (N subscribers + 1 publisher on one channel) or a set of idle connections.
 */
import http from 'node:http';
import { Histogram } from './histogram.js';
import type { FromLoad, PhaseResult, TargetConn, ToLoad } from './ipc.js';
import { protocolFor, St, type Protocol } from './protocols.js';
import { RawWs, type WsHandler } from './wsclient.js';
import { PresenceLoad } from './presence-load.js';
import { Waiters } from './open-loop.js';

const SKEY = Buffer.from('"s":');
const TKEY = Buffer.from('"t":');
const PUBLISHER = -1;
const CONNECT_CONCURRENCY = 200;
/** Frame types that are a connection's own handshake or heartbeat (both protocols), not control traffic. */
const HANDSHAKE_TYPES = new Set(['connect', 'subscribed', 'ping', 'pong', 'open', 'ack']);

/** Reads a non-negative decimal integer at buf[i..]. */
function readInt(buf: Buffer, i: number): number {
  let n = 0;
  for (;;) {
    const c = buf[i++];
    if (c < 48 || c > 57) return n;
    n = n * 10 + (c - 48);
  }
}

/** Current phase accounting; null between phases. */
interface Phase {
  name: string;
  window: number;
  messages: number;
  deadline: number;
  seqBase: number;
  counts: Uint32Array;
  published: number;
  completed: number;
  deliveries: number;
  firstPub: number;
  lastDelivery: number;
  lastProgress: number;
  hist: Histogram;
  cpu0: NodeJS.CpuUsage;
  done: (r: PhaseResult) => void;
  finished: boolean;
  /** > 0: open-loop fixed rate (publishes per second), driven by a timer. */
  rate: number;
  start: number;
}

class Load implements WsHandler {
  proto: Protocol = protocolFor('switchboard');
  target!: TargetConn;
  channel = 'bench';
  /** The channel (or pattern) subscribers join. */
  joinChannel = 'bench';
  /** > 0: publications go round-robin to `${channel}0` .. `${channel}${publishChannels - 1}`. */
  publishChannels = 0;
  conns: RawWs[] = [];
  subscribers = 0;
  publisher: RawWs | null = null;
  agent: http.Agent | null = null;
  padding = '';
  nextSeq = 1;
  phase: Phase | null = null;
  lastControlAt = 0;
  /** Fan-out setup: arrival of the last `subscribed`, and of the last other control frame on a subscriber. */
  lastSubscribedAt = 0;
  lastSubControlAt = 0;
  subControlFrames = 0;
  dropped = 0;
  errors: string[] = [];
  /** Conditions the fan-out phases wait for, re-checked on every state change. */
  private readonly waiters = new Waiters();

  onOpen(): void { /* protocol handshakes start with the server's first frame */ }

  onMessage(conn: RawWs, buf: Buffer, start: number, end: number, now: number): void {
    const si = buf.indexOf(SKEY, start);
    if (si >= 0 && si < end) {
      if (conn.index === PUBLISHER) return;
      const ph = this.phase;
      if (ph === null) return;
      const s = readInt(buf, si + 4);
      const ti = buf.indexOf(TKEY, si);
      const t = ti >= 0 && ti < end ? readInt(buf, ti + 4) : 0;
      const idx = s - ph.seqBase;
      if (idx < 0 || idx >= ph.counts.length) return;
      ph.deliveries++;
      ph.lastDelivery = now;
      ph.hist.record(now * 1000 - t / 1000);
      if (++ph.counts[idx] === this.subscribers) {
        ph.completed++;
        ph.lastProgress = now;
        this.pump();
      }
      return;
    }
    this.lastControlAt = performance.now();
    if (conn.index !== PUBLISHER && !HANDSHAKE_TYPES.has(this.proto.frameType(buf, start, end))) {
      this.subControlFrames++;
      this.lastSubControlAt = now;
    }
    const before = conn.state;
    const err = this.proto.onControl(conn, buf.toString('utf8', start, end));
    if (err !== undefined) {
      if (this.errors.length < 20) this.errors.push(err);
      if (conn.state === St.Joining || conn.state === St.Connecting) conn.state = St.Failed;
    }
    if (conn.state !== before) {
      if (conn.state === St.Subscribed && conn.index !== PUBLISHER) this.lastSubscribedAt = now;
      this.waiters.wake();
    }
  }

  onClose(conn: RawWs, err?: Error): void {
    if (conn.state !== St.Failed && conn.state !== St.Subscribed && conn.state !== St.Ready) conn.state = St.Failed;
    if (err && this.errors.length < 20) this.errors.push(err.message);
    if (this.phase !== null && !this.phase.finished) this.dropped++;
    this.waiters.wake();
  }

  private connect(index: number): RawWs {
    const t = this.target;
    const src = ((t.indexBase + Math.max(index, 0)) % t.sources) + 1;
    return new RawWs(this, { host: t.host, port: t.port, path: this.proto.path, localAddress: `127.0.0.${src}`, index });
  }

  /**
   * Opens `count` connections (CONNECT_CONCURRENCY in flight), each to Ready, or to Subscribed when
   * `join` is set. Resolves with how many made it.
   */
  async openMany(count: number, join: boolean): Promise<{ ok: number; failed: number }> {
    const goal = join ? St.Subscribed : St.Ready;
    let started = 0;
    let ok = 0;
    let failed = 0;
    const pending = new Set<RawWs>();
    const deadline = Date.now() + 120_000;
    while ((ok + failed < count) && Date.now() < deadline) {
      while (started < count && pending.size < CONNECT_CONCURRENCY) {
        const c = this.connect(this.conns.length);
        this.conns.push(c);
        pending.add(c);
        started++;
      }
      await this.waiters.waitFor(() => {
        for (const c of pending) if (c.state === St.Ready || c.state === goal || c.state === St.Failed || c.isClosed) return true;
        return false;
      }, 2000);
      for (const c of pending) {
        if (c.state === St.Ready && join) this.proto.join(c, this.joinChannel);
        else if (c.state === goal && !c.isClosed) { pending.delete(c); ok++; }
        else if (c.state === St.Failed || c.isClosed) { pending.delete(c); failed++; }
      }
    }
    return { ok, failed: count - ok };
  }

  async fanoutSetup(target: TargetConn, subscribers: number, channel: string, payloadBytes: number, subscribe?: string, publishChannels = 0): Promise<unknown> {
    this.target = target;
    this.proto = protocolFor(target.protocol);
    this.channel = channel;
    this.joinChannel = subscribe ?? channel;
    this.publishChannels = publishChannels;
    const t0 = performance.now();
    this.subControlFrames = 0;
    this.lastSubControlAt = 0;
    this.lastSubscribedAt = t0;
    const subs = await this.openMany(subscribers, true);
    if (subs.failed > 0) throw new Error(`${subs.failed}/${subscribers} subscribers failed: ${this.errors.slice(0, 3).join('; ')}`);
    const subscribedMs = this.lastSubscribedAt - t0;
    this.subscribers = subscribers;
    if (target.publisher === 'ws') {
      const p = this.connect(PUBLISHER);
      this.publisher = p;
      const goal = target.publisherJoins ? St.Subscribed : St.Ready;
      const ok = await this.waiters.waitFor(() => {
        if (p.state === St.Ready && target.publisherJoins) this.proto.join(p, channel);
        return p.state === goal || p.state === St.Failed || p.isClosed;
      }, 10_000);
      if (!ok || p.state !== goal) throw new Error(`publisher did not become ready: ${this.errors.join('; ')}`);
    } else {
      this.agent = new http.Agent({ keepAlive: true, maxSockets: 32 });
    }
    // ~payloadBytes of JSON for the data object: {"channel":"bench","s":123456,"t":12345678901234,"p":"..."}
    const overhead = JSON.stringify({ channel, s: 123456, t: 12345678901234, p: '' }).length;
    this.padding = 'x'.repeat(Math.max(0, payloadBytes - overhead));
    // Settle: let join-time traffic (presence frames, acks) die down before measuring.
    const settleDeadline = performance.now() + 20_000;
    while (performance.now() - this.lastControlAt < 500 && performance.now() < settleDeadline) {
      await new Promise((r) => setTimeout(r, 100));
    }
    // Ready: every subscriber has its `subscribed` and the control traffic to subscribers (presence frames)
    // has ended; unlike setupMs, this does not include the quiet window nor the publisher's connection.
    const readyMs = Math.max(this.lastSubscribedAt, this.lastSubControlAt) - t0;
    return {
      subscribers, setupMs: Math.round(performance.now() - t0), readyMs: Math.round(readyMs), subscribedMs: Math.round(subscribedMs),
      controlFramesPerSubscriber: Math.round((this.subControlFrames / subscribers) * 10) / 10,
    };
  }

  private publishOne(ph: Phase): void {
    const s = ph.seqBase + ph.published;
    ph.published++;
    const t = Math.round(performance.now() * 1e6);
    const channel = JSON.stringify(this.publishChannels > 0 ? `${this.channel}${s % this.publishChannels}` : this.channel);
    const data = `{"channel":${channel},"s":${s},"t":${t},"p":"${this.padding}"}`;
    if (this.publisher !== null) {
      this.publisher.sendText(this.proto.publishFrame(data));
    } else {
      const body = `{"channel":${channel},"data":${data}}`;
      const req = http.request({
        host: this.target.host, port: this.target.port, path: this.target.httpPublishPath ?? '/api/publish',
        method: 'POST', agent: this.agent!, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      }, (res) => {
        if (res.statusCode !== 200 && res.statusCode !== 201 && res.statusCode !== 202 && this.errors.length < 20) {
          this.errors.push(`publish HTTP ${res.statusCode}`);
        }
        res.resume();
      });
      req.on('error', (e) => { if (this.errors.length < 20) this.errors.push(`publish: ${e.message}`); });
      req.end(body);
    }
  }

  /** Publishes while the window and the budget allow. */
  pump(): void {
    const ph = this.phase;
    if (ph === null || ph.finished) return;
    const now = performance.now();
    const sock = this.publisher?.socket;
    sock?.cork();
    // Fixed rate: publish what the schedule owes by now (drift-free); closed loop: fill the window.
    const owed = ph.rate > 0 ? Math.floor(((now - ph.start) * ph.rate) / 1000) + 1 : Infinity;
    while (ph.published < owed && ph.published - ph.completed < ph.window && ph.published < ph.messages && now < ph.deadline) {
      if (ph.published === 0) ph.firstPub = performance.now();
      this.publishOne(ph);
    }
    if (sock) process.nextTick(() => sock.uncork());
    if (ph.completed === ph.published && (ph.published >= ph.messages || now >= ph.deadline)) this.finishPhase(false);
  }

  private finishPhase(stalled: boolean): void {
    const ph = this.phase!;
    if (ph.finished) return;
    ph.finished = true;
    const cpu = process.cpuUsage(ph.cpu0);
    this.phase = null;
    ph.done({
      name: ph.name, window: ph.window, published: ph.published, completed: ph.completed, deliveries: ph.deliveries,
      elapsedMs: ph.lastDelivery - ph.firstPub, stalled, droppedSubscribers: this.dropped, latency: ph.hist.toJSON(),
      loadCpuUs: cpu.user + cpu.system, errors: this.errors.splice(0),
    });
  }

  runPhase(name: string, window: number, messages: number, maxSeconds: number, rate = 0): Promise<PhaseResult> {
    return new Promise((done) => {
      const now = performance.now();
      const ph: Phase = {
        name, window, messages, deadline: now + maxSeconds * 1000, seqBase: this.nextSeq, counts: new Uint32Array(messages),
        published: 0, completed: 0, deliveries: 0, firstPub: now, lastDelivery: now, lastProgress: now,
        hist: new Histogram(), cpu0: process.cpuUsage(), done, finished: false, rate, start: now,
      };
      if (rate > 0) {
        const tick = setInterval(() => (ph.finished ? clearInterval(tick) : this.pump()), Math.max(1, Math.floor(1000 / rate)));
      }
      this.nextSeq += messages;
      this.dropped = 0;
      this.phase = ph;
      const stallTimer = setInterval(() => {
        if (ph.finished) return clearInterval(stallTimer);
        const t = performance.now();
        if (t >= ph.deadline) this.pump(); // stop publishing; finishes once in-flight messages complete
        if (t - ph.lastProgress > 5000) { clearInterval(stallTimer); this.finishPhase(true); }
      }, 250);
      this.pump();
    });
  }

  async openIdle(target: TargetConn, count: number): Promise<unknown> {
    this.target = target;
    this.proto = protocolFor(target.protocol);
    const t0 = performance.now();
    const r = await this.openMany(count, false);
    return { ...r, ms: Math.round(performance.now() - t0), errors: this.errors.splice(0, 5) };
  }

  closeAll(): void {
    for (const c of this.conns) c.close();
    this.publisher?.close();
    this.agent?.destroy();
  }
}

const load = new Load();
let presence: PresenceLoad | null = null;
const presenceLoad = (): PresenceLoad => (presence ??= new PresenceLoad());
/** Documents scenario: loaded on first use (Yjs and the providers stay out of the other scenarios' processes). */
let docsLoad: Promise<import('./documents-load.js').DocsLoad> | null = null;
const docs = () => (docsLoad ??= import('./documents-load.js').then((m) => new m.DocsLoad()));
let wireLoad: Promise<import('./documents-wire-load.js').WireDocsLoad> | null = null;
const wire = () => (wireLoad ??= import('./documents-wire-load.js').then((m) => new m.WireDocsLoad()));
const reply = (m: FromLoad) => process.send!(m);

process.on('message', (m: ToLoad) => {
  const run = async (): Promise<unknown> => {
    switch (m.cmd) {
      case 'fanout-setup': return load.fanoutSetup(m.target, m.subscribers, m.channel, m.payloadBytes, m.subscribe, m.publishChannels);
      case 'phase': return load.runPhase(m.name, m.window, m.messages, m.maxSeconds, m.ratePerSec ?? 0);
      case 'open-idle': return load.openIdle(m.target, m.count);
      case 'presence-open': return presenceLoad().open(m.target, m.count, m.quietMs, m.timeoutMs);
      case 'presence-storm': return presenceLoad().storm(m.kind, m.channel, m.quietMs, m.timeoutMs);
      case 'presence-report': return presenceLoad().report(m.quietMs, m.maxWaitMs);
      case 'docs-open': return (await docs()).open(m.target, m.documents, m.editors, m.textBytes, m.concurrency, m.timeoutMs);
      case 'docs-phase': return (await docs()).runPhase(m.name, m.ratePerSec, m.seconds, m.drainMs);
      case 'docs-close': return (await docs()).closeAll();
      case 'docw-open': return (await wire()).open(m.target, m.documents, m.editors, m.concurrency, m.timeoutMs);
      case 'docw-phase': return (await wire()).runPhase(m.name, m.ratePerSec, m.seconds, m.drainMs);
      case 'docw-close': return (await wire()).closeAll();
      case 'close':
        if (docsLoad !== null) await (await docsLoad).closeAll();
        load.closeAll();
        presence?.closeAll();
        setTimeout(() => process.exit(0), 200).unref();
        return undefined;
    }
  };
  run().then(
    (result) => reply({ reply: m.id, ok: true, result }),
    (e: unknown) => reply({ reply: m.id, ok: false, error: e instanceof Error ? e.message : String(e) }),
  );
});
process.on('disconnect', () => process.exit(0));
