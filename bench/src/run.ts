/**
 * `npm run bench`: Switchboard vs Socket.IO vs raw `ws` (and, for documents, vs Hocuspocus and y-websocket), side
 * by side, in one invocation.
 *
 * For each target, one at a time: the server runs in its own child process (stats probe preloaded),
 * the load generator in another (load.js). Scenario: N subscribers on one channel, one publisher,
 * ~100-byte payloads carrying the publisher's timestamp. Phases:
 *   paced  window 1: the next publish leaves when the previous one reached every subscriber
 *          (one publish per server event-loop tick, no batching possible);
 *   rate   open loop at a fixed rate (latency and CPU at a load every target sustains);
 *   burst  window W: up to W publications in flight (max rate under flow control), bounded count/time;
 *   idle   fresh server, K warm connections, then M more idle connections: heap/RSS delta / M.
 * Presence (issue 10, Switchboard targets only, presence on and off; presence.ts): N identified members join one
 *   channel at once (join storm), then all reconnect at once (reconnect storm); storm times and control frames
 *   per connection.
 * Collaborative documents (issue 13; documents.ts): Switchboard's y-websocket endpoint vs @hocuspocus/server vs
 *   @y/websocket-server, all up at once, D documents x E editors each (unmodified providers), rounds of one slice
 *   per target: update latency, server CPU per delivered update, memory per open document.
 * Rounds interleave the targets; the median round is reported. Server on CPU 0, load on CPU 1 (taskset).
 * Prints a table and writes .artifacts/bench-<date>.json. Every loop is bounded; children are killed on exit.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Histogram } from './histogram.js';
import type { PhaseResult, TargetConn } from './ipc.js';
import {
  presenceNotes, presenceTable, runPresence, stormChecks, type Check, type PresenceColumn, type PresenceRatio, type PresenceResult,
} from './presence.js';
import { patternChecks, patternMedian, patternScenario, patternTable, PATTERN_PHASES, type PatternMode, type PatternRun, type PatternSection } from './patterns.js';
import { DOCS_TARGETS, runDocuments, type DocsTargetName } from './documents.js';
import { documentChecks, documentsTable } from './documents-report.js';
import { canPin, distDir, launchServer, LoadProc, ServerProc, type Stats } from './procs.js';

const repoRoot = path.resolve(distDir, '..', '..');
const MAX_CONNS_PER_LOAD = 15_000;
const SOURCES = 8;

interface Options {
  targets: string[];
  subscribers: number;
  pacedMessages: number;
  pacedSeconds: number;
  /** Fan-out rounds; targets are interleaved per round and the median round is reported. */
  rounds: number;
  /** Fixed-rate phase: publishes per second (0 = skip) and duration. */
  rate: number;
  rateSeconds: number;
  messages: number;
  burstSeconds: number;
  window: number;
  payload: number;
  idle: number;
  idleWarm: number;
  sbArgs: string[];
  /** Another checkout of Switchboard (built) to run as target `baseline`, side by side with this one. */
  baseline: string | null;
  sbPublisher: 'ws' | 'http';
  sbPublishPath: string;
  sbPublisherJoins: boolean;
  out: string | null;
  quick: boolean;
  /** Pin the server to CPU 0 and load processes to CPU 1 (taskset). */
  pin: boolean;
  /** Presence scenario: members (0 = skip), modes, rounds, quiet window and per-stage timeout. */
  presenceMembers: number;
  presenceModes: PresenceMode[];
  presenceRounds: number;
  presenceQuietMs: number;
  presenceTimeoutSec: number;
  /** Pattern scenario (patterns.ts): concrete channels (0 = skip) and rounds. */
  patternChannels: number;
  patternRounds: number;
  /** Collaborative documents scenario (documents.ts): documents (0 = skip), editors each, rounds, rate, targets. */
  docs: number;
  docEditors: number;
  docRounds: number;
  docRate: number;
  /** Server-bound documents form: updates/s with wire-level editors (0 = skip). */
  docWireRate: number;
  docSeconds: number;
  /** Documents: warm-up seconds per target before the measured rounds. */
  docWarmup: number;
  docMemory: number;
  docTargets: DocsTargetName[];
}

type PresenceMode = 'on' | 'off';
/**
 * Server flags of every presence run, before --sb-args (which may override them). No durable store: each
 * identified connect would otherwise look up its offline inbox in the default SQLite file (about 3 ms of
 * server CPU per connect on the benchmark machine, the same with presence on and off), which is not the
 * control plane this scenario measures.
 */
const PRESENCE_BASE_ARGS = ['--set', 'store.driver=none'];
/** Server flags per presence mode. `joinLeave` is the redesign's announcement switch; older servers ignore it. */
const PRESENCE_MODE_ARGS: Record<PresenceMode, string[]> = {
  on: [],
  off: ['--set', 'channels.defaults.presence=false', '--set', 'channels.defaults.joinLeave=false'],
};

const HELP = `usage: node bench/dist/run.js [options]
  --quick                 ~30 s smoke run (200 subscribers, 200/3000 messages, 2000 idle connections)
  --targets LIST          comma list of switchboard,socketio,ws (default: all three)
  --subscribers N         subscribers on the channel (default 1000)
  --paced-messages N      messages in the paced phase, window 1 (default 1000, max --paced-seconds)
  --paced-seconds S       stop publishing the paced phase after S seconds (default 5)
  --rate R                fixed-rate phase: R publishes/s, open loop (default 20; --quick 100; 0 = skip)
  --rate-seconds S        duration of the fixed-rate phase (default 3)
  --messages N            messages in the burst phase (default 20000, max --burst-seconds)
  --burst-seconds S       stop publishing the burst after S seconds (default 6)
  --rounds N              fan-out rounds, targets interleaved, median reported (default 3; --quick 1; 0 = no
                          fan-out phases, hence no subscriber-ready comparison either)
  --window N              publications in flight in the burst phase (default 256)
  --payload BYTES         JSON size of the published data object (default 100)
  --idle N                idle connections for the memory measurement (default 10000; 0 = skip)
  --sb-args "ARGS"        extra arguments for 'switchboard serve' (space separated)
  --baseline DIR          also run the Switchboard built in checkout DIR as target 'baseline' (same args),
                          interleaved with this one: before/after numbers from one run
  --sb-publisher ws|http  Switchboard publisher: WebSocket 'message' frames or HTTP POST (default ws)
  --sb-publish-path P     HTTP publish path (default /api/publish)
  --sb-publisher-joins    the Switchboard publisher joins the channel before publishing
  --presence N            presence scenario on (1, default) or off (0)
  --presence-members N    identified members of the presence storms (default 1000; --quick 200; 0 = skip)
  --presence-modes LIST   comma list of on,off (default both): Switchboard with presence at its defaults, and with
                          --set channels.defaults.presence=false --set channels.defaults.joinLeave=false
  --presence-rounds N     presence rounds, median (by join storm time) reported (default 1)
  --presence-quiet-ms MS  control traffic silent this long = a stage is over (default 500; not counted in its time)
  --presence-timeout S    give up a presence stage after S seconds (default 60)
  --pattern-channels N    pattern scenario: subscribers on bench:*, publications round-robin to N channels bench:<i>,
                          against the same subscribers on one plain channel (default 10000; --quick 1000; 0 = skip)
  --pattern-rounds N      pattern rounds, plain and pattern interleaved, median reported (default 3; --quick 1)
  --documents N           collaborative documents scenario (issue 13): N Yjs documents (default 20; --quick 5; 0 = skip),
                          Switchboard's y-websocket endpoint vs @hocuspocus/server vs @y/websocket-server
  --doc-editors N         editors per document, each its own provider and socket (default 50; --quick 10)
  --doc-rate R            small updates per second, all documents together, open loop (default 100; 0 = only the
                          server-bound form)
  --doc-wire-rate R       updates per second of the server-bound documents form: the same editors as plain WebSockets
                          speaking each protocol (default 400; --quick 200; 0 = skip)
  --doc-seconds S         seconds of one target's slice in a round (default 2)
  --doc-warmup S          seconds of warm-up per target at the measured rate before the rounds (default 5; --quick 2)
  --doc-rounds N          rounds: every target's server and editors are up at once, each round gives each target
                          one slice (order rotating); results over all slices, latency verdict by the median of
                          the paired rounds' ratios from 3 rounds on (default 10; --quick 3)
  --doc-memory K          memory per open document: K more documents, one editor each (default 500; --quick 100; 0 = skip)
  --doc-targets LIST      comma list of switchboard,hocuspocus,y-websocket,switchboard-sqlite
                          (default the first three; switchboard runs with store.driver=none, switchboard-sqlite stores
                          every update in SQLite before relaying it)
  --no-pin                do not pin the server to CPU 0 and the load generator to CPU 1 (taskset)
  --out FILE              JSON output (default .artifacts/bench-<date>.json)`;

function parseArgs(argv: string[]): Options {
  const quick = argv.includes('--quick');
  const o: Options = {
    targets: ['switchboard', 'socketio', 'ws'],
    subscribers: quick ? 200 : 1000,
    pacedMessages: quick ? 200 : 1000,
    pacedSeconds: quick ? 3 : 5,
    rounds: quick ? 1 : 3,
    rate: quick ? 100 : 20,
    rateSeconds: quick ? 2 : 3,
    messages: quick ? 3000 : 20_000,
    burstSeconds: quick ? 3 : 6,
    window: quick ? 128 : 256,
    payload: 100,
    idle: quick ? 2000 : 10_000,
    idleWarm: quick ? 100 : 500,
    sbArgs: [],
    baseline: null,
    sbPublisher: 'ws',
    sbPublishPath: '/api/publish',
    sbPublisherJoins: false,
    out: null,
    quick,
    pin: canPin && os.cpus().length >= 2,
    presenceMembers: quick ? 200 : 1000,
    presenceModes: ['on', 'off'],
    presenceRounds: 1,
    presenceQuietMs: 500,
    presenceTimeoutSec: 60,
    patternChannels: quick ? 1000 : 10_000,
    patternRounds: quick ? 1 : 3,
    docs: quick ? 5 : 20,
    docEditors: quick ? 10 : 50,
    docRounds: quick ? 3 : 10,
    docRate: 100,
    docWireRate: quick ? 200 : 400,
    docSeconds: 2,
    docWarmup: quick ? 2 : 5,
    docMemory: quick ? 100 : 500,
    docTargets: ['switchboard', 'hocuspocus', 'y-websocket'],
  };
  let presence = true;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    const num = (): number => {
      const n = Number(next());
      if (!Number.isFinite(n) || n < 0) throw new Error(`${a} needs a non-negative number`);
      return Math.floor(n);
    };
    switch (a) {
      case '--quick': break;
      case '--targets': o.targets = next().split(',').map((s) => s.trim()).filter(Boolean); break;
      case '--subscribers': o.subscribers = Math.max(1, num()); break;
      case '--paced-messages': o.pacedMessages = num(); break;
      case '--paced-seconds': o.pacedSeconds = Math.max(1, num()); break;
      case '--rounds': o.rounds = num(); break;
      case '--rate': o.rate = num(); break;
      case '--rate-seconds': o.rateSeconds = Math.max(1, num()); break;
      case '--messages': o.messages = num(); break;
      case '--burst-seconds': o.burstSeconds = num(); break;
      case '--window': o.window = Math.max(1, num()); break;
      case '--payload': o.payload = num(); break;
      case '--idle': o.idle = num(); break;
      case '--sb-args': o.sbArgs = next().split(/\s+/).filter(Boolean); break;
      case '--baseline': o.baseline = path.resolve(next()); break;
      case '--sb-publisher': { const v = next(); if (v !== 'ws' && v !== 'http') throw new Error('--sb-publisher ws|http'); o.sbPublisher = v; break; }
      case '--sb-publish-path': o.sbPublishPath = next(); break;
      case '--sb-publisher-joins': o.sbPublisherJoins = true; break;
      case '--out': o.out = next(); break;
      case '--no-pin': o.pin = false; break;
      case '--presence': presence = num() !== 0; break;
      case '--presence-members': o.presenceMembers = num(); break;
      case '--presence-modes': {
        const modes = next().split(',').map((x) => x.trim()).filter(Boolean);
        for (const m of modes) if (m !== 'on' && m !== 'off') throw new Error('--presence-modes: on,off');
        o.presenceModes = modes as PresenceMode[];
        break;
      }
      case '--presence-rounds': o.presenceRounds = Math.max(1, num()); break;
      case '--presence-quiet-ms': o.presenceQuietMs = Math.max(50, num()); break;
      case '--presence-timeout': o.presenceTimeoutSec = Math.max(1, num()); break;
      case '--pattern-channels': o.patternChannels = num(); break;
      case '--pattern-rounds': o.patternRounds = Math.max(1, num()); break;
      case '--documents': o.docs = num(); break;
      case '--doc-editors': o.docEditors = Math.max(2, num()); break;
      case '--doc-rounds': o.docRounds = Math.max(1, num()); break;
      case '--doc-rate': o.docRate = num(); break;
      case '--doc-wire-rate': o.docWireRate = num(); break;
      case '--doc-seconds': o.docSeconds = Math.max(1, num()); break;
      case '--doc-warmup': o.docWarmup = Math.max(1, num()); break;
      case '--doc-memory': o.docMemory = num(); break;
      case '--doc-targets': {
        const list = next().split(',').map((x) => x.trim()).filter(Boolean);
        for (const t of list) if (!(DOCS_TARGETS as readonly string[]).includes(t)) throw new Error(`--doc-targets: ${DOCS_TARGETS.join(',')}`);
        o.docTargets = list as DocsTargetName[];
        break;
      }
      case '-h': case '--help': console.log(HELP); process.exit(0);
      // falls through (unreachable)
      default: throw new Error(`unknown option ${a}\n${HELP}`);
    }
  }
  if (!presence) o.presenceMembers = 0;
  if (o.baseline !== null && !o.targets.includes('baseline')) o.targets.splice(1, 0, 'baseline');
  if (o.targets.includes('baseline') && o.baseline === null) throw new Error('target baseline needs --baseline DIR');
  for (const t of o.targets) if (!TARGETS[t]) throw new Error(`unknown target ${t}`);
  return o;
}

interface TargetDef {
  label: string;
  script: string;
  /** Checkout the script is in (default: this repository). */
  root?: (o: Options) => string;
  /** Server arguments; `pre` goes before --sb-args (so that --sb-args can override it). */
  args: (port: number, o: Options, pre?: string[]) => string[];
  conn: (port: number, o: Options) => Omit<TargetConn, 'indexBase'>;
}

/**
 * How Switchboard runs (this checkout, or `--baseline DIR`): rate limit off (the publisher is one WebSocket
 * connection), logs at warn (no per-connection info lines), everything else at its defaults (presence on,
 * history 1000, 1 MiB slow-consumer bound).
 */
const SWITCHBOARD: Omit<TargetDef, 'label'> = {
  script: 'packages/server/dist/src/cli.js',
  args: (port, o, pre = []) => [
    'serve', '--port', String(port), '--host', '127.0.0.1', '--log-level', 'warn',
    '--set', 'limits.rateLimit.perSecond=0', ...pre, ...o.sbArgs,
  ],
  conn: (port, o) => ({
    host: '127.0.0.1', port, protocol: 'switchboard', publisher: o.sbPublisher, httpPublishPath: o.sbPublishPath,
    publisherJoins: o.sbPublisherJoins, sources: SOURCES,
  }),
};

const TARGETS: Record<string, TargetDef> = {
  switchboard: { label: 'Switchboard', ...SWITCHBOARD },
  baseline: { label: 'SB baseline', ...SWITCHBOARD, root: (o) => o.baseline ?? repoRoot },
  socketio: {
    label: 'Socket.IO',
    script: 'bench/dist/servers/socketio.js',
    args: (port) => ['--port', String(port)],
    conn: (port) => ({ host: '127.0.0.1', port, protocol: 'socketio', publisher: 'ws', sources: SOURCES }),
  },
  ws: {
    label: 'ws (naive)',
    script: 'bench/dist/servers/ws.js',
    args: (port) => ['--port', String(port)],
    conn: (port) => ({ host: '127.0.0.1', port, protocol: 'switchboard', publisher: 'ws', sources: SOURCES }),
  },
};

interface PhaseReport {
  window: number;
  published: number;
  deliveries: number;
  elapsedMs: number;
  deliveriesPerSec: number;
  publishesPerSec: number;
  latencyMs: { p50: number; p99: number; p999: number; max: number; mean: number };
  serverCpuUsPerDelivery: number;
  serverCpuPct: number;
  loadCpuPct: number;
  stalled: boolean;
  droppedSubscribers: number;
  errors: string[];
}

interface IdleReport {
  connections: number;
  failed: number;
  connectMs: number;
  heapPerConnBytes: number;
  rssPerConnBytes: number;
  externalPerConnBytes: number;
  before: { heapUsed: number; rss: number };
  after: { heapUsed: number; rss: number };
}

interface TargetReport {
  label: string;
  error?: string;
  setupMs?: number;
  /**
   * Median over rounds of the subscriber-ready time: every subscriber has its `subscribed` and the control
   * traffic to subscribers (presence frames) has ended. Unlike setupMs, no quiet window, no publisher.
   */
  readyMs?: number;
  /** Median over rounds of the control frames (not handshakes, pings or publications) per subscriber during setup. */
  setupControlFramesPerSub?: number;
  /** Median round (by deliveries/s) of each phase. */
  paced?: PhaseReport;
  rate?: PhaseReport;
  burst?: PhaseReport;
  rounds: Array<{
    setupMs?: number; readyMs?: number; setupControlFramesPerSub?: number;
    paced?: PhaseReport; rate?: PhaseReport; burst?: PhaseReport; error?: string;
  }>;
  /** Median over rounds of the server CPU µs per delivery, per phase (taken independently of the median round). */
  cpuUsPerDelivery: { paced?: number; rate?: number; burst?: number };
  idle?: IdleReport;
  idleError?: string;
}

const cpuUs = (s: Stats): number => s.cpu.user + s.cpu.system;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const log = (s: string) => process.stderr.write(`[bench] ${s}\n`);

function phaseReport(r: PhaseResult, s0: Stats, s1: Stats): PhaseReport {
  const h = Histogram.fromJSON(r.latency);
  const secs = Math.max(r.elapsedMs, 1) / 1000;
  const serverCpu = cpuUs(s1) - cpuUs(s0);
  return {
    window: r.window, published: r.published, deliveries: r.deliveries, elapsedMs: Math.round(r.elapsedMs),
    deliveriesPerSec: Math.round(r.deliveries / secs), publishesPerSec: Math.round(r.completed / secs),
    latencyMs: {
      p50: h.percentile(50) / 1000, p99: h.percentile(99) / 1000, p999: h.percentile(99.9) / 1000,
      max: h.max / 1000, mean: Math.round(h.mean()) / 1000,
    },
    serverCpuUsPerDelivery: r.deliveries > 0 ? Math.round((serverCpu / r.deliveries) * 100) / 100 : 0,
    serverCpuPct: Math.round((serverCpu / 1e4 / secs) * 10) / 10,
    loadCpuPct: Math.round((r.loadCpuUs / 1e4 / secs) * 10) / 10,
    stalled: r.stalled, droppedSubscribers: r.droppedSubscribers, errors: r.errors,
  };
}

async function startServer(def: TargetDef, o: Options, preArgs: string[] = [], extraArgs: string[] = []): Promise<{ server: ServerProc; port: number }> {
  const root = def.root?.(o) ?? repoRoot;
  return launchServer(path.join(root, def.script), (port) => [...def.args(port, o, preArgs), ...extraArgs], root, o.pin ? '0' : null);
}

type Round = TargetReport['rounds'][number];

/** What subscribers join and where the publisher publishes (default: everyone on channel `bench`). */
interface Scenario {
  /** Label suffix in the log. */
  label: string;
  channel: string;
  subscribe?: string;
  publishChannels?: number;
  /** Phases to run (default paced, rate, burst). */
  phases?: ReadonlyArray<'paced' | 'rate' | 'burst'>;
}

const PLAIN: Scenario = { label: '', channel: 'bench' };

async function runFanout(name: string, o: Options, rep: Round, sc: Scenario = PLAIN): Promise<void> {
  const def = { ...TARGETS[name], label: `${TARGETS[name].label}${sc.label}` };
  const { server, port } = await startServer(def, o);
  const load = new LoadProc(o.pin ? '1' : null);
  try {
    const target: TargetConn = { ...def.conn(port, o), indexBase: 0 };
    const setup = await load.request<{ setupMs: number; readyMs: number; subscribedMs: number; controlFramesPerSubscriber: number }>({
      cmd: 'fanout-setup', target, subscribers: o.subscribers, channel: sc.channel, payloadBytes: o.payload,
      subscribe: sc.subscribe, publishChannels: sc.publishChannels,
    });
    rep.setupMs = setup.setupMs;
    rep.readyMs = setup.readyMs;
    rep.setupControlFramesPerSub = setup.controlFramesPerSubscriber;
    log(`${def.label}: ${o.subscribers} subscribers ready in ${setup.readyMs} ms (all subscribed at ${setup.subscribedMs} ms, ` +
      `${setup.controlFramesPerSubscriber} control frames/subscriber; ${setup.setupMs} ms with the quiet window and the publisher)`);
    // Warm-up (JIT, buffers), not reported.
    await load.request<PhaseResult>({ cmd: 'phase', name: 'warmup-paced', window: 1, messages: 30, maxSeconds: 3 });
    await load.request<PhaseResult>({ cmd: 'phase', name: 'warmup-burst', window: o.window, messages: Math.min(500, o.messages), maxSeconds: 3 });
    for (const [key, window, messages, maxSeconds, ratePerSec] of [
      ['paced', 1, o.pacedMessages, o.pacedSeconds, 0],
      ['rate', 1000, o.rate * o.rateSeconds, o.rateSeconds + 1, o.rate],
      ['burst', o.window, o.messages, o.burstSeconds, 0],
    ] as const) {
      if (messages === 0 || (sc.phases !== undefined && !sc.phases.includes(key))) continue;
      const s0 = await server.stats(false);
      const r = await load.request<PhaseResult>({ cmd: 'phase', name: key, window, messages, maxSeconds, ratePerSec });
      const s1 = await server.stats(false);
      const p = phaseReport(r, s0, s1);
      rep[key] = p;
      log(`${def.label} ${key}: ${p.deliveriesPerSec} deliveries/s, p50 ${p.latencyMs.p50} ms, ` +
        `${p.serverCpuUsPerDelivery} µs CPU/delivery${p.stalled ? ' (STALLED)' : ''}`);
      if (!server.alive) throw new Error(`server died: ${server.stderr.slice(-500)}`);
      if (p.stalled) throw new Error(`${key} phase stalled (${p.droppedSubscribers} subscribers dropped): ${p.errors.join('; ')}`);
    }
  } finally {
    await load.stop();
    await server.stop();
  }
}

async function runIdle(name: string, o: Options, rep: TargetReport): Promise<void> {
  const def = TARGETS[name];
  const { server, port } = await startServer(def, o);
  const total = o.idleWarm + o.idle;
  const loads = Array.from({ length: Math.ceil(total / MAX_CONNS_PER_LOAD) }, () => new LoadProc(o.pin ? '1' : null));
  try {
    const conn = def.conn(port, o);
    const warm = await loads[0].request<{ ok: number; failed: number }>({ cmd: 'open-idle', target: { ...conn, indexBase: 0 }, count: o.idleWarm });
    if (warm.failed > 0) throw new Error(`${warm.failed} warm-up connections failed`);
    await sleep(500);
    const before = await server.stats(true);
    const t0 = performance.now();
    // Split the measured connections across load processes (fd limit per process).
    const shares = loads.map((_, i) => {
      const cap = MAX_CONNS_PER_LOAD - (i === 0 ? o.idleWarm : 0);
      return Math.min(cap, Math.max(0, o.idle - loads.slice(0, i).reduce((n, _l, j) => n + (MAX_CONNS_PER_LOAD - (j === 0 ? o.idleWarm : 0)), 0)));
    });
    const results = await Promise.all(loads.map((l, i) => shares[i] > 0
      ? l.request<{ ok: number; failed: number; errors: string[] }>({
        cmd: 'open-idle', target: { ...conn, indexBase: o.idleWarm + i * MAX_CONNS_PER_LOAD }, count: shares[i],
      })
      : Promise.resolve({ ok: 0, failed: 0, errors: [] as string[] })));
    const connectMs = Math.round(performance.now() - t0);
    const ok = results.reduce((n, r) => n + r.ok, 0);
    const failed = results.reduce((n, r) => n + r.failed, 0);
    if (ok === 0) throw new Error(`no idle connection opened: ${results.flatMap((r) => r.errors).join('; ')}`);
    await sleep(2000);
    const after = await server.stats(true);
    rep.idle = {
      connections: ok, failed, connectMs,
      heapPerConnBytes: Math.round((after.mem.heapUsed - before.mem.heapUsed) / ok),
      rssPerConnBytes: Math.round((after.mem.rss - before.mem.rss) / ok),
      externalPerConnBytes: Math.round((after.mem.external - before.mem.external) / ok),
      before: { heapUsed: before.mem.heapUsed, rss: before.mem.rss },
      after: { heapUsed: after.mem.heapUsed, rss: after.mem.rss },
    };
    log(`${def.label} idle: ${ok} connections, ${rep.idle.heapPerConnBytes} B heap/conn, ${rep.idle.rssPerConnBytes} B RSS/conn`);
  } finally {
    await Promise.all(loads.map((l) => l.stop()));
    await server.stop();
  }
}

/** Presence storms against one fresh server of a Switchboard target, in one presence mode. */
async function runPresenceTarget(name: string, mode: PresenceMode, o: Options): Promise<PresenceResult> {
  const def = TARGETS[name];
  const { server, port } = await startServer(def, o, PRESENCE_BASE_ARGS, PRESENCE_MODE_ARGS[mode]);
  try {
    return await runPresence([{ server, port }], {
      members: o.presenceMembers, channel: 'presence', quietMs: o.presenceQuietMs, timeoutMs: o.presenceTimeoutSec * 1000,
      maxPerLoad: MAX_CONNS_PER_LOAD, sources: SOURCES, loadCpus: o.pin ? '1' : null, log,
    }, `${def.label} (presence ${mode})`);
  } finally {
    await server.stop();
  }
}

/** Pattern scenario (patterns.ts): plain and pattern fan-outs of this build, interleaved per round. */
async function runPatterns(o: Options): Promise<PatternSection> {
  const p: PatternSection = {
    subscribers: o.subscribers, channels: o.patternChannels, rounds: o.patternRounds,
    runs: { plain: [], pattern: [] }, median: { plain: { deliveriesPerSec: {}, cpuUsPerDelivery: {}, p50Ms: {} }, pattern: { deliveriesPerSec: {}, cpuUsPerDelivery: {}, p50Ms: {} } },
  };
  for (let round = 1; round <= o.patternRounds; round++) {
    for (const mode of ['plain', 'pattern'] as PatternMode[]) {
      log(`patterns${o.patternRounds > 1 ? ` round ${round}/${o.patternRounds}` : ''}: ${mode}`);
      const r: Round = {};
      const run: PatternRun = { deliveriesPerSec: {}, cpuUsPerDelivery: {}, p50Ms: {} };
      try {
        await runFanout('switchboard', o, r, patternScenario(mode, o.patternChannels));
      } catch (e) {
        run.error = (e as Error).message;
        log(`patterns ${mode} failed: ${run.error}`);
      }
      for (const ph of PATTERN_PHASES) {
        run.deliveriesPerSec[ph] = r[ph]?.deliveriesPerSec;
        run.cpuUsPerDelivery[ph] = r[ph]?.serverCpuUsPerDelivery;
        run.p50Ms[ph] = r[ph]?.latencyMs.p50;
        (run.serverCpuPct ??= {})[ph] = r[ph]?.serverCpuPct;
        (run.loadCpuPct ??= {})[ph] = r[ph]?.loadCpuPct;
      }
      run.readyMs = r.readyMs;
      p.runs[mode].push(run);
    }
  }
  p.median = { plain: patternMedian(p.runs.plain), pattern: patternMedian(p.runs.pattern) };
  return p;
}

/** Targets the presence scenario runs for (Switchboard builds only). */
const presenceTargets = (o: Options): string[] => o.targets.filter((n) => n === 'switchboard' || n === 'baseline');

interface PresenceSection {
  members: number;
  rounds: number;
  quietMs: number;
  timeoutSec: number;
  baseArgs: string[];
  modeArgs: Record<PresenceMode, string[]>;
  /** Every round, per `<target>:<mode>`. */
  runs: Record<string, PresenceResult[]>;
  /** The median round per `<target>:<mode>` (by join storm time; an incomplete storm counts as slowest). */
  median: Record<string, PresenceResult>;
}

function presenceMedian(list: PresenceResult[]): PresenceResult {
  const key = (r: PresenceResult) => r.join?.timeMs ?? Infinity;
  const sorted = [...list].sort((a, b) => key(a) - key(b));
  return sorted[Math.floor((sorted.length - 1) / 2)];
}

function renderPresence(p: PresenceSection, o: Options): string {
  const cols: PresenceColumn[] = [];
  const ratios: PresenceRatio[] = [];
  const targets = presenceTargets(o);
  for (const n of targets) {
    for (const m of o.presenceModes) cols.push({ label: `${TARGETS[n].label} ${m}`, run: p.median[`${n}:${m}`] });
    if (o.presenceModes.length === 2) {
      ratios.push({ label: `${n === 'switchboard' ? 'SB' : 'baseline'} on/off`, a: p.median[`${n}:on`], b: p.median[`${n}:off`] });
    }
  }
  if (targets.length === 2) {
    for (const m of o.presenceModes) ratios.push({ label: `${m}: SB/baseline`, a: p.median[`switchboard:${m}`], b: p.median[`baseline:${m}`] });
  }
  return presenceTable(cols, ratios, p.quietMs);
}

/** The round whose deliveries/s is the median (lower median for an even count). */
function median(list: Array<PhaseReport | undefined>): PhaseReport | undefined {
  return medianBy(list, (p) => p.deliveriesPerSec);
}

/** The round whose `key` is the median (lower median for an even count). */
function medianBy(list: Array<PhaseReport | undefined>, key: (p: PhaseReport) => number): PhaseReport | undefined {
  const ok = list.filter((p): p is PhaseReport => p !== undefined).sort((a, b) => key(a) - key(b));
  return ok.length === 0 ? undefined : ok[Math.floor((ok.length - 1) / 2)];
}

function fmt(n: number | undefined, digits = 0): string {
  if (n === undefined || Number.isNaN(n)) return '-';
  return n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

/** Deliveries one fully busy server core could make at this CPU cost (1e6 / µs per delivery). */
function capacity(usPerDelivery: number | undefined): number | undefined {
  if (usPerDelivery === undefined || usPerDelivery <= 0) return undefined;
  return Math.round(1e6 / usPerDelivery);
}

/** Median of the defined values (lower median for an even count). */
function medianOf(xs: Array<number | undefined>): number | undefined {
  const v = xs.filter((x): x is number => x !== undefined).sort((a, b) => a - b);
  return v.length === 0 ? undefined : v[Math.floor((v.length - 1) / 2)];
}

function minOf(xs: Array<number | undefined>): number | undefined {
  const v = xs.filter((x): x is number => x !== undefined);
  return v.length === 0 ? undefined : Math.min(...v);
}
function maxOf(xs: Array<number | undefined>): number | undefined {
  const v = xs.filter((x): x is number => x !== undefined);
  return v.length === 0 ? undefined : Math.max(...v);
}

function ratio(a: number | undefined, b: number | undefined): number | undefined {
  if (a === undefined || b === undefined || b === 0) return undefined;
  return Math.round((a / b) * 100) / 100;
}

function table(reports: Record<string, TargetReport>, o: Options): string {
  const names = o.targets;
  const rows: Array<[string, ...string[]]> = [];
  const head: [string, ...string[]] = ['metric', ...names.map((n) => reports[n].label)];
  const sb = reports.switchboard;
  const withRatios = names.includes('switchboard') && names.length > 1;
  const others = names.filter((n) => n !== 'switchboard');
  if (withRatios) head.push(...others.map((n) => `SB / ${reports[n].label}`));
  const add = (label: string, get: (r: TargetReport) => number | undefined, digits: number, inverse = false) => {
    const row: [string, ...string[]] = [label, ...names.map((n) => fmt(get(reports[n]), digits))];
    if (withRatios) {
      for (const n of others) {
        const r = inverse ? ratio(get(reports[n]), get(sb)) : ratio(get(sb), get(reports[n]));
        row.push(r === undefined ? '-' : `${r.toFixed(2)}x`);
      }
    }
    rows.push(row);
  };
  for (const key of ['paced', 'rate', 'burst'] as const) {
    if (key === 'rate' && o.rate === 0) continue;
    const mode = key === 'paced' ? 'window 1' : key === 'rate' ? `${o.rate} pub/s` : `window ${o.window}`;
    add(`${key} (${mode}) deliveries/s`, (r) => r[key]?.deliveriesPerSec, 0);
    if (o.rounds > 1 && key !== 'rate') {
      add(`${key} deliveries/s, worst round`, (r) => minOf(r.rounds.map((x) => x[key]?.deliveriesPerSec)), 0);
      add(`${key} deliveries/s, best round`, (r) => maxOf(r.rounds.map((x) => x[key]?.deliveriesPerSec)), 0);
    }
    add(`${key} publishes/s`, (r) => r[key]?.publishesPerSec, 0);
    add(`${key} latency p50 ms`, (r) => r[key]?.latencyMs.p50, 2, true);
    add(`${key} latency p99 ms`, (r) => r[key]?.latencyMs.p99, 2, true);
    add(`${key} latency p99.9 ms`, (r) => r[key]?.latencyMs.p999, 2, true);
    add(`${key} server CPU µs/delivery${o.rounds > 1 ? ' (median)' : ''}`, (r) => r.cpuUsPerDelivery[key], 2, true);
    add(`${key} deliveries per server CPU-s`, (r) => capacity(r.cpuUsPerDelivery[key]), 0);
    add(`${key} server CPU %`, (r) => r[key]?.serverCpuPct, 0);
    add(`${key} load-gen CPU %`, (r) => r[key]?.loadCpuPct, 0);
  }
  add(`subscriber-ready ms (excl. quiet window)`, (r) => r.readyMs, 0, true);
  add(`setup ms (incl. quiet window, publisher)`, (r) => r.setupMs, 0, true);
  add(`setup control frames/subscriber`, (r) => r.setupControlFramesPerSub, 1);
  add(`idle conns measured`, (r) => r.idle?.connections, 0);
  add(`idle heap B/conn`, (r) => r.idle?.heapPerConnBytes, 0, true);
  add(`idle RSS B/conn`, (r) => r.idle?.rssPerConnBytes, 0, true);
  const all = [head, ...rows];
  const widths = head.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

/** Issue 10 targets: presence storms (on vs off, frames per connection) and subscriber-ready time vs Socket.IO. */
function presenceChecks(reports: Record<string, TargetReport>, p: PresenceSection | null): Check[] {
  const out = p === null ? [] : stormChecks(p.median['switchboard:on'], p.median['switchboard:off']);
  const sb = reports.switchboard;
  const sio = reports.socketio;
  const ready = ratio(sb?.readyMs, sio?.readyMs);
  if (ready !== undefined) {
    out.push({
      issue: 10, check: 'subscriber-ready time <= 1.5x Socket.IO (excl. quiet window)',
      value: `${ready}x (${sb.readyMs} / ${sio.readyMs} ms, ${sb.setupControlFramesPerSub} control frames/subscriber)`, pass: ready <= 1.5,
    });
  }
  return out;
}

/** Issue 2 targets, checked when both Switchboard and Socket.IO ran. */
function checks(reports: Record<string, TargetReport>): Check[] {
  const sb = reports.switchboard;
  const sio = reports.socketio;
  const out: Check[] = [];
  if (!sb) return out;
  const paced = ratio(sb.paced?.deliveriesPerSec, sio?.paced?.deliveriesPerSec);
  if (paced !== undefined) out.push({ issue: 2, check: 'paced deliveries/s >= 1.3x Socket.IO', value: `${paced}x`, pass: paced >= 1.3 });
  const pacedCap = ratio(capacity(sb.cpuUsPerDelivery.paced), capacity(sio?.cpuUsPerDelivery.paced));
  if (pacedCap !== undefined) {
    out.push({ issue: 2, check: 'paced deliveries per server CPU-s >= 1.3x Socket.IO', value: `${pacedCap}x`, pass: pacedCap >= 1.3 });
  }
  const burst = ratio(sb.burst?.deliveriesPerSec, sio?.burst?.deliveriesPerSec);
  if (burst !== undefined) out.push({ issue: 2, check: 'burst deliveries/s >= 10x Socket.IO', value: `${burst}x`, pass: burst >= 10 });
  const burstCap = ratio(capacity(sb.cpuUsPerDelivery.burst), capacity(sio?.cpuUsPerDelivery.burst));
  if (burstCap !== undefined) {
    out.push({ issue: 2, check: 'burst deliveries per server CPU-s >= 10x Socket.IO', value: `${burstCap}x`, pass: burstCap >= 10 });
  }
  if (sb.idle) {
    out.push({ issue: 2, check: 'idle heap <= 4 KB/conn', value: `${sb.idle.heapPerConnBytes} B`, pass: sb.idle.heapPerConnBytes <= 4096 });
    out.push({ issue: 2, check: 'idle RSS <= 8 KB/conn', value: `${sb.idle.rssPerConnBytes} B`, pass: sb.idle.rssPerConnBytes <= 8192 });
    out.push({ issue: 2, check: 'idle connections >= 10k', value: `${sb.idle.connections}`, pass: sb.idle.connections >= 10_000 });
  }
  return out;
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  const started = new Date();
  const t0 = performance.now();
  const reports: Record<string, TargetReport> = {};
  for (const name of o.targets) reports[name] = { label: TARGETS[name].label, rounds: [], cpuUsPerDelivery: {} };
  for (let round = 1; round <= o.rounds; round++) {
    for (const name of o.targets) {
      const rep = reports[name];
      if (o.rounds > 1) log(`round ${round}/${o.rounds}: ${rep.label}`);
      const r: Round = {};
      rep.rounds.push(r);
      try {
        await runFanout(name, o, r);
      } catch (e) {
        r.error = (e as Error).message;
        log(`${rep.label}: fan-out failed: ${r.error}`);
      }
    }
  }
  let presence: PresenceSection | null = null;
  if (o.presenceMembers > 0 && presenceTargets(o).length > 0 && o.presenceModes.length > 0) {
    presence = {
      members: o.presenceMembers, rounds: o.presenceRounds, quietMs: o.presenceQuietMs, timeoutSec: o.presenceTimeoutSec,
      baseArgs: PRESENCE_BASE_ARGS, modeArgs: PRESENCE_MODE_ARGS, runs: {}, median: {},
    };
    for (let round = 1; round <= o.presenceRounds; round++) {
      for (const name of presenceTargets(o)) {
        for (const mode of o.presenceModes) {
          const key = `${name}:${mode}`;
          log(`presence${o.presenceRounds > 1 ? ` round ${round}/${o.presenceRounds}` : ''}: ${TARGETS[name].label}, presence ${mode}, ${o.presenceMembers} members`);
          let r: PresenceResult;
          try {
            r = await runPresenceTarget(name, mode, o);
          } catch (e) {
            r = { members: o.presenceMembers, nodes: 1, error: (e as Error).message };
            log(`${TARGETS[name].label} presence ${mode} failed: ${r.error}`);
          }
          (presence.runs[key] ??= []).push(r);
        }
      }
    }
    for (const [key, list] of Object.entries(presence.runs)) presence.median[key] = presenceMedian(list);
  }
  const patterns = o.patternChannels > 0 && o.targets.includes('switchboard') ? await runPatterns(o) : null;
  const documents = o.docs > 0 && o.docTargets.length > 0
    ? await runDocuments({
      documents: o.docs, editors: o.docEditors, rounds: o.docRounds, rate: o.docRate, wireRate: o.docWireRate, warmupSeconds: o.docWarmup, seconds: o.docSeconds, memoryDocs: o.docMemory,
      textBytes: 1000, targets: o.docTargets, sbArgs: o.sbArgs, pin: o.pin, repoRoot, log,
    })
    : null;
  for (const name of o.targets) {
    const rep = reports[name];
    rep.paced = median(rep.rounds.map((r) => r.paced));
    rep.rate = medianBy(rep.rounds.map((r) => r.rate), (p) => p.latencyMs.p99);
    rep.burst = median(rep.rounds.map((r) => r.burst));
    for (const key of ['paced', 'rate', 'burst'] as const) {
      rep.cpuUsPerDelivery[key] = medianBy(rep.rounds.map((r) => r[key]), (p) => p.serverCpuUsPerDelivery)?.serverCpuUsPerDelivery;
    }
    rep.setupMs = medianOf(rep.rounds.map((r) => r.setupMs));
    rep.readyMs = medianOf(rep.rounds.map((r) => r.readyMs));
    rep.setupControlFramesPerSub = medianOf(rep.rounds.map((r) => r.setupControlFramesPerSub));
    const errors = rep.rounds.map((r) => r.error).filter((e): e is string => e !== undefined);
    if (errors.length > 0) rep.error = errors.join(' | ');
    if (o.idle > 0) {
      try {
        await runIdle(name, o, rep);
      } catch (e) {
        rep.idleError = (e as Error).message;
        log(`${rep.label}: idle measurement failed: ${rep.idleError}`);
      }
    }
  }
  const cpus = os.cpus();
  const result = {
    date: started.toISOString(),
    durationSec: Math.round((performance.now() - t0) / 100) / 10,
    machine: {
      cpus: cpus.length, cpuModel: cpus[0]?.model ?? 'unknown', totalMemGiB: Math.round(os.totalmem() / 2 ** 30),
      node: process.version, platform: `${os.platform()} ${os.release()}`,
      note: 'server and load generator share the same cores (load generator competes with the server for CPU)',
    },
    options: o,
    targets: reports,
    presence,
    patterns,
    documents,
    checks: [
      ...checks(reports), ...presenceChecks(reports, presence), ...(patterns === null ? [] : patternChecks(patterns)),
      ...(documents === null ? [] : documentChecks(documents)),
      ...(documents?.wire === undefined ? [] : documentChecks(documents.wire)),
    ],
  };
  console.log(`\nSwitchboard benchmark — ${o.subscribers} subscribers, ${o.payload}-byte payloads, ${o.rounds} round(s) (median shown), ${cpus.length} CPUs${o.pin ? " (server on CPU 0, load on CPU 1)" : ""}, node ${process.version}\n`);
  if (o.rounds > 0 || o.idle > 0) console.log(table(reports, o));
  for (const [name, r] of Object.entries(reports)) {
    if (r.error) console.log(`\n${r.label}: fan-out error: ${r.error}`);
    if (r.idleError) console.log(`${r.label}: idle error: ${r.idleError}`);
    void name;
  }
  if (presence !== null) {
    console.log(`\nPresence storms — ${presence.members} identified members (/ws?user_id=u<i>), one channel, ` +
      `${presence.rounds} round(s)${presence.rounds > 1 ? ' (median by join storm time)' : ''}; a stage ends when every ` +
      `connection is there and control traffic has been quiet for ${presence.quietMs} ms (that window is not in the time)\n`);
    console.log(renderPresence(presence, o));
    const notes = presenceNotes(presence.median);
    if (notes.length > 0) console.log(`\n${notes.join('\n')}`);
  }
  const ch = result.checks;
  const issue2 = ch.filter((c) => c.issue === 2);
  if (issue2.length > 0) {
    console.log(o.subscribers >= 1000
      ? '\nIssue targets (issue 2):'
      : `\nIssue targets (issue 2; defined for 1000 subscribers, this run used ${o.subscribers}: indicative only):`);
    for (const c of issue2) console.log(`  ${c.pass ? 'PASS' : 'FAIL'}  ${c.check}: ${c.value}`);
  }
  const issue10 = ch.filter((c) => c.issue === 10);
  if (issue10.length > 0) {
    const sizes = [presence !== null ? `${o.presenceMembers} presence members` : '', o.rounds > 0 ? `${o.subscribers} subscribers` : '']
      .filter(Boolean).join(', ');
    console.log((presence === null || o.presenceMembers >= 1000) && (o.rounds === 0 || o.subscribers >= 1000)
      ? '\nIssue targets (issue 10, presence):'
      : `\nIssue targets (issue 10, presence; defined for 1000 members, this run used ${sizes}: indicative only):`);
    for (const c of issue10) console.log(`  ${c.pass ? 'PASS' : 'FAIL'}  ${c.check}: ${c.value}`);
  }
  if (patterns !== null) {
    console.log(`\nPattern subscriptions — ${patterns.subscribers} subscribers on one channel (plain) vs on bench:* with publications ` +
      `round-robin to ${patterns.channels} channels (pattern), ${patterns.rounds} round(s), median\n`);
    console.log(patternTable(patterns));
    for (const m of ['plain', 'pattern'] as const) if (patterns.median[m].error) console.log(`${m}: error: ${patterns.median[m].error}`);
    const issue12 = ch.filter((c) => c.issue === 12);
    if (issue12.length > 0) {
      console.log(o.subscribers >= 1000 && patterns.channels >= 10_000
        ? '\nIssue targets (issue 12, pattern subscriptions):'
        : `\nIssue targets (issue 12; defined for 1000 subscribers and 10,000 channels, this run used ${o.subscribers} and ${patterns.channels}: indicative only):`);
      for (const c of issue12) console.log(`  ${c.pass ? 'PASS' : 'FAIL'}  ${c.check}: ${c.value}`);
    }
  }
  if (documents !== null) {
    console.log(`\nCollaborative documents — ${documents.documents} Yjs documents x ${documents.editors} editors (unmodified y-websocket / ` +
      `Hocuspocus providers, one socket each), ${documents.rate} small updates/s in all, ` +
      `${documents.rounds} round(s) of ${documents.seconds} s per target, targets side by side; memory: ${documents.memoryDocs} more documents with one editor each\n`);
    if (documents.rate > 0 || documents.memoryDocs > 0) console.log(documentsTable(documents));
    for (const n of documents.targets) if (documents.results[n]?.error) console.log(`${documents.labels[n]}: error: ${documents.results[n]!.error}`);
    const issue13 = ch.filter((c) => c.issue === 13);
    if (issue13.length > 0) {
      console.log(documents.documents >= 20 && documents.editors >= 50
        ? '\nIssue targets (issue 13, collaborative documents):'
        : `\nIssue targets (issue 13; defined for 20 documents x 50 editors, this run used ${documents.documents} x ${documents.editors}: indicative only):`);
      for (const c of issue13) console.log(`  ${c.pass ? 'PASS' : 'FAIL'}  ${c.check}: ${c.value}`);
    }
    const w = documents.wire;
    if (w !== undefined) {
      console.log(`\nCollaborative documents, server-bound — the same ${w.documents} x ${w.editors} editors as plain WebSockets speaking each ` +
        `server's protocol (one writer per document sending real Yjs updates, the others only counting them: the clients cost little, ` +
        `the servers' own cost shows), ${w.rate} updates/s in all, ${w.rounds} round(s) of ${w.seconds} s per target\n`);
      console.log(documentsTable(w));
      for (const n of w.targets) if (w.results[n]?.error) console.log(`${w.labels[n]}: error: ${w.results[n]!.error}`);
    }
  }
  const out = o.out ?? path.join(repoRoot, '.artifacts', `bench-${started.toISOString().replace(/[:.]/g, '-')}.json`);
  mkdirSync(path.dirname(out), { recursive: true });
  writeFileSync(out, JSON.stringify(result, null, 2) + '\n');
  console.log(`\nJSON: ${path.relative(process.cwd(), out)}  (${result.durationSec} s)`);
}

main().then(() => process.exit(0), (e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
