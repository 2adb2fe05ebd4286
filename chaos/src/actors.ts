/**
 * The load of a chaos run: publishers (sequentially numbered publications, retried with an idempotency key until
 * acknowledged), subscribers that bounce between nodes and recover with `since`, presence probes, slow
 * consumers, connection churn and bad-input flooders. Everything they see is timestamped; the analysis
 * attributes it to phases afterwards.
 */
import { Conn, type Frame } from './conn.js';
import { ChannelTruth, type LogEvent, type Pos } from './ledger.js';
import { sleep, type ServerProcess } from './procs.js';

export interface World {
  /** Current node processes by slot (a restarted node replaces its slot's entry). */
  nodes: ServerProcess[];
  truth: Map<string, ChannelTruth>;
  /** Publishers keep publishing while true. */
  publishing: boolean;
  /** Subscribers bounce between nodes while true. */
  bouncing: boolean;
  /** Everything stops when true. */
  stopped: boolean;
  apiKey: string;
}

const rand = (a: number, b: number): number => a + Math.random() * (b - a);

/** Open a connection to the node of `slot`, else the next slots in turn; null if none answers. */
async function openAny(w: World, slot: number, query = '', timeoutMs = 2000): Promise<{ conn: Conn; slot: number } | null> {
  for (let k = 0; k < w.nodes.length; k++) {
    const s = (slot + k) % w.nodes.length;
    const node = w.nodes[s]!;
    if (!node.alive) continue;
    try {
      return { conn: await Conn.open(`${node.ws}${query}`, timeoutMs), slot: s };
    } catch { /* next */ }
  }
  return null;
}

// ---------------------------------------------------------------------------------------------------------------
// Publishers

export interface PublishRecord { n: number; firstAttempt: number; ackedAt: number; attempts: number; epoch: string; offset: number }
export interface PublisherEvent { t: number; kind: 'error' | 'timeout' | 'reconnect'; code?: string }

export class Publisher {
  n = 0;
  readonly records: PublishRecord[] = [];
  readonly events: PublisherEvent[] = [];
  private conn: Conn | null = null;

  constructor(readonly id: string, readonly channel: string, private slot: number, readonly perSecond: number) {}

  async run(w: World): Promise<void> {
    const truth = w.truth.get(this.channel)!;
    const interval = 1000 / this.perSecond;
    let next = Date.now();
    while (w.publishing && !w.stopped) {
      this.n++;
      const key = `${this.id}:${this.n}`;
      const first = Date.now();
      let attempts = 0;
      for (;;) {
        if (w.stopped) return;
        attempts++;
        if (!this.conn || !this.conn.open) {
          const got = await openAny(w, this.slot);
          if (!got) { await sleep(200); continue; }
          if (this.conn) this.events.push({ t: Date.now(), kind: 'reconnect' });
          this.conn = got.conn;
          this.slot = got.slot;
        }
        try {
          const reply = await this.conn.request('message', { channel: this.channel, n: this.n, pub: this.id, t: Date.now(), idempotency_key: key }, 3000);
          if (reply.type === 'ok') {
            const at = Date.now();
            const epoch = String(reply.data.epoch);
            const offset = Number(reply.data.offset);
            truth.record(epoch, offset, at, true);
            this.records.push({ n: this.n, firstAttempt: first, ackedAt: at, attempts, epoch, offset });
            break;
          }
          this.events.push({ t: Date.now(), kind: 'error', code: String(reply.data?.code ?? reply.type) });
          await sleep(rand(100, 300));
        } catch {
          // No reply: the outcome is unknown; the retry carries the same idempotency key.
          this.events.push({ t: Date.now(), kind: 'timeout' });
          this.conn?.terminate();
          this.conn = null;
        }
      }
      next += interval;
      const wait = next - Date.now();
      if (wait > 0) await sleep(wait); else next = Date.now();
    }
    this.conn?.close();
  }
}

/**
 * A publisher that goes past its rate limit on purpose: bursts of pipelined publishes (80: more than the burst
 * allowance plus closeAfterDropped, so the connection is closed with 4021) (each with its own id and
 * idempotency key) while `active()`; refused ones (RATE_LIMITED) and unanswered ones (the connection closed,
 * e.g. 4021 after sustained flooding) are retried with the same key until acknowledged. Its channel is checked
 * like the others: whatever the limiter does, no acknowledged publication may go missing or come twice.
 */
export class BurstPublisher {
  readonly records: PublishRecord[] = [];
  readonly events: PublisherEvent[] = [];
  /** Requests that got no reply before their connection closed (the contract: one reply per id). */
  unanswered = 0;
  closes: Record<string, number> = {};
  /** Publications numbered so far (each is retried until acknowledged). */
  n = 0;

  constructor(readonly id: string, readonly channel: string, readonly burst: number) {}

  async run(w: World, active: () => boolean): Promise<void> {
    const truth = w.truth.get(this.channel)!;
    const pending: Array<{ n: number; key: string; first: number; attempts: number }> = [];
    let conn: Conn | null = null;
    let slot = 0;
    while (!w.stopped) {
      if (!active() && pending.length === 0) { await sleep(100); continue; }
      if (!conn || !conn.open) {
        const got = await openAny(w, slot++ % w.nodes.length);
        if (!got) { await sleep(200); continue; }
        conn = got.conn;
        const c = conn;
        void c.closed.then((info) => { this.closes[info.code] = (this.closes[info.code] ?? 0) + 1; this.events.push({ t: Date.now(), kind: 'reconnect' }); });
      }
      while (active() && pending.length < this.burst) {
        this.n++;
        pending.push({ n: this.n, key: `${this.id}:${this.n}`, first: Date.now(), attempts: 0 });
      }
      // Outside its bursts it retries what is left within the rate limit.
      const batch = pending.splice(0, active() ? this.burst : 5);
      const c = conn;
      const results = await Promise.all(batch.map(async (p) => {
        p.attempts++;
        try {
          return { p, reply: await c.request('message', { channel: this.channel, n: p.n, pub: this.id, idempotency_key: p.key }, 3000) };
        } catch (err) {
          return { p, reply: null, closed: !c.open, err };
        }
      }));
      for (const r of results) {
        if (r.reply?.type === 'ok') {
          const at = Date.now();
          const epoch = String(r.reply.data.epoch);
          const offset = Number(r.reply.data.offset);
          truth.record(epoch, offset, at, true);
          this.records.push({ n: r.p.n, firstAttempt: r.p.first, ackedAt: at, attempts: r.p.attempts, epoch, offset });
          continue;
        }
        if (r.reply) this.events.push({ t: Date.now(), kind: 'error', code: String(r.reply.data?.code ?? r.reply.type) });
        else { this.events.push({ t: Date.now(), kind: 'timeout' }); if ('closed' in r && r.closed) this.unanswered++; }
        pending.push(r.p);
      }
      pending.sort((a, b) => a.n - b.n);
      await sleep(active() ? 1000 : 150);
    }
    conn?.close();
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Subscribers

export interface Reconnect { t0: number; t1: number; cause: string }

type ChanState = 'joining' | 'replaying' | 'live';

export class Subscriber {
  readonly logs = new Map<string, LogEvent[]>();
  readonly pos = new Map<string, Pos>();
  readonly reconnects: Reconnect[] = [];
  readonly closeCodes: Array<{ t: number; code: number }> = [];
  joinErrors = 0;
  private conn: Conn | null = null;
  private state = new Map<string, ChanState>();
  private cycleStart = 0;
  private cycleCause = 'start';
  private cycleDone: (() => void) | null = null;

  constructor(readonly id: string, readonly channels: string[], private slot: number, readonly slow: boolean,
    private readonly bounceMs: [number, number] = [1500, 4000]) {
    for (const c of channels) this.logs.set(c, []);
  }

  /** Every channel live (subscribed, replay done) on an open connection. */
  get caughtUp(): boolean {
    return this.conn?.open === true && this.channels.every((c) => this.state.get(c) === 'live');
  }

  private onFrame(f: Frame): void {
    const now = Date.now();
    const channel = (f.channel ?? f.data?.channel) as string | undefined;
    if (channel === undefined || !this.logs.has(channel)) return;
    const log = this.logs.get(channel)!;
    if (f.type === 'message' && typeof f.seq === 'number' && typeof f.epoch === 'string') {
      log.push({ kind: 'msg', t: now, epoch: f.epoch, offset: f.seq });
      const p = this.pos.get(channel);
      if (!p || p.epoch !== f.epoch || f.seq > p.offset) this.pos.set(channel, { epoch: f.epoch, offset: f.seq });
      return;
    }
    if (f.type === 'subscribed') {
      const at = { epoch: String(f.data.epoch), offset: Number(f.data.offset) };
      if (!this.pos.has(channel)) {
        log.push({ kind: 'start', t: now, ...at });
        this.pos.set(channel, at);
        this.setState(channel, 'live'); // a first join replays nothing
      } else if (f.data.recovered === false) {
        log.push({ kind: 'flag', t: now, ...at, via: 'subscribed' });
        this.pos.set(channel, at);
        this.setState(channel, 'replaying'); // its replay_complete follows
      } else {
        this.setState(channel, 'replaying');
      }
      return;
    }
    if (f.type === 'replay_complete') {
      const requested = this.state.get(channel) === 'replaying';
      if (f.data.recovered === false && !requested) {
        // Unrequested: the node re-synced after a broker outage and could not prove continuity.
        const at = { epoch: String(f.data.epoch), offset: Number(f.data.offset) };
        log.push({ kind: 'flag', t: now, ...at, via: 'replay_complete' });
        const p = this.pos.get(channel);
        if (!p || p.epoch !== at.epoch || at.offset > p.offset) this.pos.set(channel, at);
      }
      if (requested) this.setState(channel, 'live');
    }
  }

  private setState(channel: string, s: ChanState): void {
    this.state.set(channel, s);
    if (s === 'live' && this.cycleDone && this.channels.every((c) => this.state.get(c) === 'live')) {
      this.reconnects.push({ t0: this.cycleStart, t1: Date.now(), cause: this.cycleCause });
      const done = this.cycleDone;
      this.cycleDone = null;
      done();
    }
  }

  /** Join every channel (with `since` where a position is known), retrying refusals (e.g. BROKER_UNAVAILABLE). */
  private async joinAll(conn: Conn, w: World): Promise<void> {
    await Promise.all(this.channels.map(async (channel) => {
      for (;;) {
        if (w.stopped || !conn.open) return;
        this.state.set(channel, 'joining');
        const p = this.pos.get(channel);
        try {
          const r = await conn.request('join_channel', p ? { channel, since: { offset: p.offset, epoch: p.epoch } } : { channel }, 5000);
          if (r.type === 'subscribed') return;
          this.joinErrors++;
        } catch {
          if (!conn.open) return;
          this.joinErrors++;
        }
        await sleep(rand(150, 400));
      }
    }));
  }

  async run(w: World): Promise<void> {
    this.cycleStart = Date.now();
    while (!w.stopped) {
      const got = await openAny(w, this.slot);
      if (!got) { await sleep(200); continue; }
      const conn = got.conn;
      this.conn = conn;
      this.slot = got.slot;
      this.state.clear();
      for (const c of this.channels) {
        const p = this.pos.get(c);
        this.logs.get(c)!.push({ kind: 'conn', t: Date.now(), node: conn.nodeId, connectionId: conn.connectionId, since: p ? `${p.epoch}:${p.offset}` : null });
      }
      const recovered = new Promise<void>((res) => { this.cycleDone = res; });
      conn.onFrame = (f) => this.onFrame(f);
      void this.joinAll(conn, w);
      let stallTimer: NodeJS.Timeout | undefined;
      if (this.slow) {
        // A slow reader: stops reading for a while every few seconds (may be cut as a slow consumer, 4023).
        const stall = (): void => {
          stallTimer = setTimeout(() => {
            conn.ws.pause();
            stallTimer = setTimeout(() => { conn.ws.resume(); stall(); }, rand(800, 1600));
          }, rand(2000, 4000));
        };
        stall();
      }
      // Stay until the connection closes, or (bouncing) until it is time to move to another node.
      const bounceAfter = rand(this.bounceMs[0], this.bounceMs[1]);
      let bounced = false;
      const bounce = (async (): Promise<void> => {
        await recovered;
        await sleep(bounceAfter);
        while (!w.bouncing && !w.stopped && conn.open) await sleep(200);
        bounced = conn.open && !w.stopped;
      })();
      await Promise.race([conn.closed, bounce]);
      clearTimeout(stallTimer);
      conn.ws.resume();
      if (w.stopped) { conn.close(); return; }
      this.cycleStart = Date.now();
      // Nothing more from the old connection counts: the new one recovers from the position reached here.
      conn.onFrame = null;
      if (bounced) {
        this.cycleCause = 'bounce';
        conn.close();
        this.slot = (this.slot + 1) % w.nodes.length;
      } else {
        const info = conn.closeInfo ?? (await conn.closed);
        this.closeCodes.push({ t: Date.now(), code: info.code });
        this.cycleCause = `closed ${info.code}`;
        await sleep(rand(50, 250));
      }
      this.cycleDone = null;
    }
  }

  close(): void { this.conn?.close(); }
}

// ---------------------------------------------------------------------------------------------------------------
// Presence probes: one connection per node slot in the presence channel, reconnecting to its own slot only.

export interface ProbeLife { slot: number; connectionId: string; userId: string; openAt: number; closeAt: number | null; closeCode: number | null }

export class PresenceProbe {
  readonly lives: ProbeLife[] = [];
  private conn: Conn | null = null;
  constructor(readonly slot: number, readonly channel: string) {}

  async run(w: World): Promise<void> {
    const userId = `probe-${this.slot}`;
    while (!w.stopped) {
      const node = w.nodes[this.slot]!;
      if (!node.alive) { await sleep(100); continue; }
      let conn: Conn;
      try { conn = await Conn.open(`${node.ws}?user_id=${userId}`, 2000); } catch { await sleep(150); continue; }
      this.conn = conn;
      try {
        const r = await conn.request('join_channel', { channel: this.channel }, 5000);
        if (r.type !== 'subscribed') { conn.close(); await sleep(300); continue; }
      } catch { conn.terminate(); await sleep(300); continue; }
      const life: ProbeLife = { slot: this.slot, connectionId: conn.connectionId, userId, openAt: Date.now(), closeAt: null, closeCode: null };
      this.lives.push(life);
      const c = await conn.closed;
      life.closeAt = Date.now();
      life.closeCode = c.code;
    }
  }

  close(): void { this.conn?.close(); }
}

export interface PresenceSample { t: number; members: Set<string>; users: Set<string> }

/** Reads the presence channel's members and the online users from a live node every `everyMs`. */
export class PresenceWatcher {
  readonly samples: PresenceSample[] = [];
  failures = 0;
  constructor(readonly channel: string, readonly everyMs: number) {}

  async run(w: World): Promise<void> {
    let k = 0;
    while (!w.stopped) {
      const t0 = Date.now();
      const live = w.nodes.filter((n) => n.alive);
      const node = live[k++ % Math.max(1, live.length)];
      if (node) {
        try {
          const headers = { authorization: `Bearer ${w.apiKey}` };
          const [m, u] = await Promise.all([
            fetch(`${node.http}/api/channels/${this.channel}/presence?limit=1000`, { headers, signal: AbortSignal.timeout(2000) }),
            fetch(`${node.http}/api/users/online?limit=1000`, { headers, signal: AbortSignal.timeout(2000) }),
          ]);
          if (m.status === 200 && u.status === 200) {
            const mb = (await m.json()) as { members: Array<{ connection_id: string }> };
            const ub = (await u.json()) as { users: Array<{ user_id: string }> };
            this.samples.push({ t: Date.now(), members: new Set(mb.members.map((x) => x.connection_id)), users: new Set(ub.users.map((x) => x.user_id)) });
          } else {
            this.failures++;
          }
        } catch {
          this.failures++;
        }
      }
      await sleep(Math.max(0, this.everyMs - (Date.now() - t0)));
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Slow consumers: join a firehose channel and never read.

export class SlowConsumers {
  readonly conns: Conn[] = [];
  opened = 0;
  constructor(readonly channel: string) {}

  async start(w: World, count: number): Promise<void> {
    for (let i = 0; i < count; i++) {
      const got = await openAny(w, i % w.nodes.length);
      if (!got) continue;
      try {
        const r = await got.conn.request('join_channel', { channel: this.channel }, 5000);
        if (r.type !== 'subscribed') { got.conn.close(); continue; }
      } catch { got.conn.terminate(); continue; }
      got.conn.ws.pause();
      this.conns.push(got.conn);
      this.opened++;
    }
  }

  /** Read again: the close frames the server sent (4023) arrive now. Then close what is still open. */
  async finish(): Promise<Record<string, number>> {
    for (const c of this.conns) c.ws.resume();
    await Promise.race([Promise.all(this.conns.map((c) => c.closed)), sleep(1500)]);
    const codes: Record<string, number> = {};
    for (const c of this.conns) {
      const k = c.closeInfo ? String(c.closeInfo.code) : 'open';
      codes[k] = (codes[k] ?? 0) + 1;
      c.terminate();
    }
    return codes;
  }
}

/** Big publications through the HTTP API (no per-connection rate limit), round robin over the live nodes. */
export async function firehose(w: World, channel: string, bytes: number, perSecond: number, until: () => boolean): Promise<{ sent: number; failed: number }> {
  const payload = 'x'.repeat(bytes);
  let sent = 0;
  let failed = 0;
  let k = 0;
  const interval = 1000 / perSecond;
  while (!until() && !w.stopped) {
    const t0 = Date.now();
    const live = w.nodes.filter((n) => n.alive);
    const node = live[k++ % Math.max(1, live.length)];
    if (node) {
      try {
        const res = await fetch(`${node.http}/api/publish`, {
          method: 'POST',
          headers: { authorization: `Bearer ${w.apiKey}`, 'content-type': 'application/json' },
          body: JSON.stringify({ channel, data: { p: payload } }),
          signal: AbortSignal.timeout(3000),
        });
        await res.arrayBuffer();
        if (res.status === 200) sent++; else failed++;
      } catch { failed++; }
    }
    await sleep(Math.max(0, interval - (Date.now() - t0)));
  }
  return { sent, failed };
}

// ---------------------------------------------------------------------------------------------------------------
// Connection churn: short-lived connections that join a presence channel, sometimes publish, then leave
// (half of them abruptly).

export interface ChurnStats { opened: number; failed: number; published: number; abrupt: number }

export async function churn(w: World, channel: string, loops: number, until: () => boolean): Promise<ChurnStats> {
  const stats: ChurnStats = { opened: 0, failed: 0, published: 0, abrupt: 0 };
  await Promise.all(Array.from({ length: loops }, async (_, i) => {
    let k = i;
    while (!until() && !w.stopped) {
      const got = await openAny(w, k++ % w.nodes.length, `?user_id=churn-${i}`, 2000);
      if (!got) { stats.failed++; await sleep(100); continue; }
      stats.opened++;
      const c = got.conn;
      try {
        await c.request('join_channel', { channel }, 3000);
        if (Math.random() < 0.3) { await c.request('message', { channel, churn: i }, 3000); stats.published++; }
      } catch { /* refused or closed: churn goes on */ }
      await sleep(rand(30, 250));
      if (Math.random() < 0.5) { c.terminate(); stats.abrupt++; } else c.close();
    }
  }));
  return stats;
}

// ---------------------------------------------------------------------------------------------------------------
// Bad input: malformed, oversized, binary, too deep, forbidden keys, unknown types, bad channel names, and
// plain flooding past the rate limit. Each flooder reconnects when it is closed.

export interface FloodStats { connections: number; framesSent: number; errors: Record<string, number>; closes: Record<string, number> }

function deep(n: number): string { return '{"type":"message","data":{"channel":"chaos-flood","x":' + '['.repeat(n) + ']'.repeat(n) + '}}'; }

const BAD_FRAMES: Array<string | Buffer> = [
  'not json at all',
  '{"type":',
  '{"type":"no_such_type","data":{}}',
  '{"type":"message"}',
  '{"type":"message","data":{"channel":"chaos flood!"}}',
  '{"type":"join_channel","data":{"channel":"' + 'c'.repeat(500) + '"}}',
  '{"type":"message","data":{"channel":"chaos-flood","__proto__":{"polluted":1}}}',
  '{"type":"message","data":{"channel":"chaos-flood","constructor":{"prototype":{}}}}',
  deep(200),
  Buffer.from([0xde, 0xad, 0xbe, 0xef]),
  '{"type":"history","data":{"channel":"chaos-flood","limit":-5}}',
  '{"type":"private_message","data":{"recipient_id":""}}',
  '{"type":"message","data":{"channel":"chaos-flood","n":1}}',
];

export async function flood(w: World, flooders: number, perSecond: number, until: () => boolean): Promise<FloodStats> {
  const stats: FloodStats = { connections: 0, framesSent: 0, errors: {}, closes: {} };
  const big = '{"type":"message","data":{"channel":"chaos-flood","p":"' + 'y'.repeat(70 * 1024) + '"}}';
  await Promise.all(Array.from({ length: flooders }, async (_, i) => {
    let k = i;
    while (!until() && !w.stopped) {
      const got = await openAny(w, k++ % w.nodes.length, '', 2000);
      if (!got) { await sleep(200); continue; }
      stats.connections++;
      const c = got.conn;
      c.onFrame = (f) => { if (f.type === 'error') { const code = String(f.data?.code); stats.errors[code] = (stats.errors[code] ?? 0) + 1; } };
      const interval = 1000 / perSecond;
      while (c.open && !until() && !w.stopped) {
        const r = Math.random();
        const frame = r < 0.01 ? big : BAD_FRAMES[Math.floor(Math.random() * BAD_FRAMES.length)]!;
        c.sendRaw(frame, Buffer.isBuffer(frame));
        stats.framesSent++;
        await sleep(interval);
      }
      if (c.open) c.close();
      const info = await Promise.race([c.closed, sleep(2000).then(() => null)]);
      const code = info ? String(info.code) : 'no close';
      stats.closes[code] = (stats.closes[code] ?? 0) + 1;
      await sleep(100);
    }
  }));
  return stats;
}
