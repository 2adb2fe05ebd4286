/**
 * Collaborative documents scenario (issue 13), orchestrator side: Switchboard's y-websocket endpoint against
 * @hocuspocus/server and @y/websocket-server, each in its own server process (stats probe preloaded, all on
 * CPU 0), driven by the same editors from one load process per target (documents-load.ts: unmodified
 * y-websocket / Hocuspocus providers; all on CPU 1).
 *   rate    every target up at once, D documents x E editors each, all synced and warmed up; then R rounds of
 *           one S-second slice per target (order rotating), open loop at U small updates/s in all (one
 *           character typed + a latency mark): latency from the local update to its observation in every
 *           other editor of the document (p50/p99/p99.9 over all slices, and the per-slice spread), server
 *           CPU (process.cpuUsage of the server process) per delivered update (an update observed by one
 *           remote editor), server and load CPU %. Fine interleaving spreads a busy machine's noise evenly;
 *   memory  a fresh server, a few warm documents, then K more documents with one editor each (a
 *           `textBytes`-character text): heap and RSS delta / K after full GCs (the editor's connection is
 *           counted in it: a document is open while a client has it).
 * Every server keeps documents in memory only (the baselines have no persistence configured); Switchboard runs
 * with `store.driver=none` unless `switchboard-sqlite` (updates stored in SQLite before relaying) is a target.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Histogram } from './histogram.js';
import type { DocsOpenResult, DocsPhaseResult, DocsTarget } from './ipc.js';
import { launchServer, LoadProc, type ServerProc, type Stats } from './procs.js';

export const DOCS_TARGETS = ['switchboard', 'hocuspocus', 'y-websocket', 'switchboard-sqlite'] as const;
export type DocsTargetName = (typeof DOCS_TARGETS)[number];

export interface DocsOptions {
  documents: number;
  editors: number;
  rounds: number;
  /** Updates per second, all documents together. */
  rate: number;
  /** Updates per second of the server-bound form (wire-level editors, documents-wire-load.ts; 0: skip it). */
  wireRate: number;
  /** Seconds of warm-up per target at the measured rate before the rounds (--doc-warmup). */
  warmupSeconds: number;
  seconds: number;
  /** Documents opened for the memory measurement (0: skip). */
  memoryDocs: number;
  textBytes: number;
  targets: DocsTargetName[];
  /** Extra `switchboard serve` arguments (--sb-args). */
  sbArgs: string[];
  pin: boolean;
  repoRoot: string;
  log: (s: string) => void;
}

interface Def {
  label: string;
  script: string;
  args: (port: number, o: DocsOptions, dir: string) => string[];
  target: (port: number) => DocsTarget;
}

const switchboard = (store: string[]): Omit<Def, 'label'> => ({
  script: 'packages/server/dist/src/cli.js',
  args: (port, o, dir) => [
    'serve', '--port', String(port), '--host', '127.0.0.1', '--log-level', 'warn', ...store.map((a) => a.replace('$DIR', dir)), ...o.sbArgs,
  ],
  // The default namespace `doc:` is a documents namespace; the default endpoint is /yjs/{doc}.
  target: (port) => ({ client: 'y-websocket', url: `ws://127.0.0.1:${port}/yjs`, prefix: 'doc:' }),
});

const DEFS: Record<DocsTargetName, Def> = {
  switchboard: { label: 'Switchboard', ...switchboard(['--set', 'store.driver=none']) },
  'switchboard-sqlite': { label: 'SB + SQLite', ...switchboard(['--set', 'store.driver=sqlite', '--set', 'store.sqlitePath=$DIR/docs.db']) },
  hocuspocus: {
    label: 'Hocuspocus', script: 'bench/dist/servers/hocuspocus.js', args: (port) => ['--port', String(port)],
    target: (port) => ({ client: 'hocuspocus', url: `ws://127.0.0.1:${port}`, prefix: '' }),
  },
  'y-websocket': {
    label: 'y-websocket', script: 'bench/dist/servers/y-websocket.js', args: (port) => ['--port', String(port)],
    target: (port) => ({ client: 'y-websocket', url: `ws://127.0.0.1:${port}`, prefix: '' }),
  },
};

/** One target's slice of one round: latency p50/p99 (ms), server CPU µs per delivered update. */
export interface RoundSlice {
  p50Ms: number;
  p99Ms: number;
  cpuUsPerDelivery: number;
}

/** One target's results. */
export interface DocsRun {
  setupMs?: number;
  published?: number;
  deliveries?: number;
  expected?: number;
  updatesPerSec?: number;
  deliveriesPerSec?: number;
  p50Ms?: number;
  p99Ms?: number;
  p999Ms?: number;
  maxMs?: number;
  /** Each update's first observation only (one per update: the server's share plus one client apply), ms. */
  firstP50Ms?: number;
  firstP99Ms?: number;
  /** Each round's slice, by round (rounds are paired across targets: their slices ran back to back). */
  perRound?: RoundSlice[];
  cpuUsPerDelivery?: number;
  /** Of which system (kernel) time: mostly the socket writes, which on loopback include delivering to the reader. */
  sysUsPerDelivery?: number;
  serverCpuPct?: number;
  loadCpuPct?: number;
  /** Server CPU % over 2 s with every editor open and no updates. */
  idleCpuPct?: number;
  /** Worst slice's load-process event-loop delay p99, ms. */
  loadLagP99Ms?: number;
  /** Spread over the rounds' slices: server CPU µs per delivered update, latency p50 and p99 (ms). */
  cpuMin?: number;
  cpuMax?: number;
  p50Min?: number;
  p50Max?: number;
  p99Min?: number;
  p99Max?: number;
  disconnects?: number;
  /** Server RSS / heap with every editor open (after full GCs), MiB. */
  openRssMiB?: number;
  openHeapMiB?: number;
  heapPerDocBytes?: number;
  rssPerDocBytes?: number;
  error?: string;
}

export interface DocsSection {
  documents: number;
  editors: number;
  rate: number;
  seconds: number;
  rounds: number;
  memoryDocs: number;
  textBytes: number;
  targets: DocsTargetName[];
  labels: Record<string, string>;
  /** Per target: all rounds' slices together (latency histograms merged, CPU summed), and their spread. */
  results: Record<string, DocsRun>;
  /** Editors: unmodified providers (`providers`) or plain sockets speaking the protocol (`wire`, server-bound). */
  editorKind: 'providers' | 'wire';
  /** The server-bound form's run (same documents x editors, `wireRate` updates/s). */
  wire?: DocsSection;
}

const cpuUs = (s: Stats): number => s.cpu.user + s.cpu.system;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const mib = (b: number) => Math.round((b / 2 ** 20) * 10) / 10;

/** A target's server and load process, up for the whole side-by-side run. */
interface Live {
  name: DocsTargetName;
  label: string;
  server: ServerProc;
  load: LoadProc;
  target: DocsTarget;
  dir: string;
  run: DocsRun;
  hist: Histogram;
  first: Histogram;
  published: number;
  deliveries: number;
  expected: number;
  cpuUs: number;
  sysUs: number;
  loadCpuUs: number;
  elapsedMs: number;
  lag: number[];
  failed: boolean;
}

async function start(name: DocsTargetName, o: DocsOptions): Promise<{ server: ServerProc; load: LoadProc; target: DocsTarget; dir: string }> {
  const def = DEFS[name];
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sb-docs-'));
  try {
    const { server, port } = await launchServer(path.join(o.repoRoot, def.script), (p) => def.args(p, o, dir), o.repoRoot, o.pin ? '0' : null);
    return { server, load: new LoadProc(o.pin ? '1' : null), target: def.target(port), dir };
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
}

async function stop(x: { server: ServerProc; load: LoadProc; dir: string }): Promise<void> {
  await x.load.stop();
  await x.server.stop();
  rmSync(x.dir, { recursive: true, force: true });
}

function opened(r: DocsOpenResult, what: string): void {
  if (r.failed > 0) throw new Error(`${what}: ${r.failed} of ${r.editors} editors not synced: ${r.errors.join('; ')}`);
}

/**
 * Side by side: every target's server (CPU 0) and load process (CPU 1) up at once, every editor synced; then
 * `rounds` rounds of one `seconds` slice per target (the order rotates each round), so that whatever else
 * runs on the machine falls on every target alike. Idle targets cost nothing meanwhile (no awareness
 * renewals). Per target: all slices' latencies merged, server CPU over all slices / all deliveries.
 */
async function runSideBySide(o: DocsOptions, p: DocsSection): Promise<void> {
  const wire = p.editorKind === 'wire';
  const live: Live[] = [];
  const fail = (l: Live, msg: string) => {
    l.failed = true;
    l.run.error = [l.run.error, msg].filter(Boolean).join(' | ');
    o.log(`documents ${l.label} failed: ${msg}`);
  };
  try {
    for (const name of o.targets) {
      const run: DocsRun = {};
      p.results[name] = run;
      try {
        const x = await start(name, o);
        live.push({
          name, label: DEFS[name].label, ...x, run, hist: new Histogram(), first: new Histogram(), published: 0, deliveries: 0, expected: 0, cpuUs: 0, sysUs: 0, loadCpuUs: 0,
          elapsedMs: 0, lag: [], failed: false,
        });
      } catch (e) {
        run.error = (e as Error).message;
        o.log(`documents ${DEFS[name].label} failed to start: ${run.error}`);
      }
    }
    for (const l of live) {
      try {
        const open = await l.load.request<DocsOpenResult>(wire
          ? { cmd: 'docw-open', target: l.target, documents: o.documents, editors: o.editors, concurrency: 50, timeoutMs: 120_000 }
          : { cmd: 'docs-open', target: l.target, documents: o.documents, editors: o.editors, textBytes: 0, concurrency: 50, timeoutMs: 120_000 });
        opened(open, l.label);
        l.run.setupMs = open.ms;
        o.log(`${l.label}: ${open.synced} editors synced in ${open.ms} ms`);
        // Warm-up at the measured rate (JIT: at a few hundred updates per second a server's hot path is
        // optimized only after seconds, the longer the path the later).
        await l.load.request<DocsPhaseResult>({ cmd: wire ? 'docw-phase' : 'docs-phase', name: 'warmup', ratePerSec: p.rate, seconds: o.warmupSeconds, drainMs: 10_000 });
      } catch (e) {
        fail(l, (e as Error).message);
      }
    }
    // A last short warm-up each, right before the measured rounds (the first target waited for the others).
    for (const l of live) {
      if (!l.failed) await l.load.request<DocsPhaseResult>({ cmd: wire ? 'docw-phase' : 'docs-phase', name: 'warmup', ratePerSec: p.rate, seconds: 1, drainMs: 10_000 }).catch((e: Error) => fail(l, e.message));
    }
    // Background cost with every editor open and nobody typing (heartbeats, timers): part of every slice's CPU.
    for (const l of live) {
      if (l.failed) continue;
      const i0 = await l.server.stats(false);
      await sleep(2000);
      const i1 = await l.server.stats(false);
      l.run.idleCpuPct = Math.round(((cpuUs(i1) - cpuUs(i0)) / 1e4 / 2) * 10) / 10;
    }
    for (let round = 0; round < o.rounds; round++) {
      const order = live.slice(round % live.length).concat(live.slice(0, round % live.length));
      for (const l of order) {
        if (l.failed) continue;
        try {
          await slice(l, o, round, p);
        } catch (e) {
          fail(l, (e as Error).message);
        }
      }
    }
    for (const l of live) {
      if (l.failed || !l.server.alive) continue;
      const mem = await l.server.stats(true);
      l.run.openRssMiB = mib(mem.mem.rss);
      l.run.openHeapMiB = mib(mem.mem.heapUsed);
      summarize(l);
    }
  } finally {
    await Promise.all(live.map((l) => stop(l)));
  }
}

async function slice(l: Live, o: DocsOptions, round: number, p: DocsSection): Promise<void> {
  const s0 = await l.server.stats(false);
  const r = await l.load.request<DocsPhaseResult>({
    cmd: p.editorKind === 'wire' ? 'docw-phase' : 'docs-phase', name: `round ${round + 1}`, ratePerSec: p.rate, seconds: o.seconds, drainMs: 10_000,
  });
  const s1 = await l.server.stats(false);
  if (!l.server.alive) throw new Error(`server died: ${l.server.stderr.slice(-500)}`);
  const cpu = cpuUs(s1) - cpuUs(s0);
  const h = Histogram.fromJSON(r.latency);
  l.hist.merge(h);
  l.first.merge(Histogram.fromJSON(r.firstLatency));
  l.published += r.published;
  l.deliveries += r.deliveries;
  l.expected += r.expected;
  l.cpuUs += cpu;
  l.sysUs += s1.cpu.system - s0.cpu.system;
  l.loadCpuUs += r.loadCpuUs;
  l.elapsedMs += r.elapsedMs;
  l.lag.push(r.loadLagP99Ms);
  l.run.disconnects = (l.run.disconnects ?? 0) + r.disconnects;
  const sl = { cpuUsPerDelivery: r.deliveries > 0 ? cpu / r.deliveries : 0, p50Ms: h.percentile(50) / 1000, p99Ms: h.percentile(99) / 1000 };
  (l.run.perRound ??= [])[round] = sl;
  o.log(`${l.label}${p.editorKind === 'wire' ? ' (wire)' : ''} round ${round + 1}: ${r.deliveries} delivered, p50 ${sl.p50Ms} ms, p99 ${sl.p99Ms} ms, ${sl.cpuUsPerDelivery.toFixed(2)} µs server CPU/delivery, ` +
    `load-gen loop delay p99 ${r.loadLagP99Ms} ms${r.disconnects > 0 ? `, ${r.disconnects} disconnects` : ''}`);
  if (r.deliveries < r.expected) throw new Error(`${r.expected - r.deliveries} of ${r.expected} updates not observed: ${r.errors.join('; ')}`);
}

function summarize(l: Live): void {
  const secs = Math.max(l.elapsedMs, 1) / 1000;
  const two = (x: number) => Math.round(x * 100) / 100;
  const slices = l.run.perRound ?? [];
  const cpus = slices.map((x) => x.cpuUsPerDelivery);
  const p50s = slices.map((x) => x.p50Ms);
  const p99s = slices.map((x) => x.p99Ms);
  Object.assign(l.run, {
    published: l.published, deliveries: l.deliveries, expected: l.expected,
    updatesPerSec: Math.round(l.published / secs), deliveriesPerSec: Math.round(l.deliveries / secs),
    p50Ms: l.hist.percentile(50) / 1000, p99Ms: l.hist.percentile(99) / 1000, p999Ms: l.hist.percentile(99.9) / 1000, maxMs: l.hist.max / 1000,
    firstP50Ms: l.first.percentile(50) / 1000, firstP99Ms: l.first.percentile(99) / 1000,
    cpuUsPerDelivery: l.deliveries > 0 ? two(l.cpuUs / l.deliveries) : undefined,
    sysUsPerDelivery: l.deliveries > 0 ? two(l.sysUs / l.deliveries) : undefined,
    cpuMin: two(Math.min(...cpus)), cpuMax: two(Math.max(...cpus)),
    p50Min: Math.min(...p50s), p50Max: Math.max(...p50s), p99Min: Math.min(...p99s), p99Max: Math.max(...p99s),
    serverCpuPct: Math.round((l.cpuUs / 1e4 / secs) * 10) / 10,
    loadCpuPct: Math.round((l.loadCpuUs / 1e4 / secs) * 10) / 10,
    loadLagP99Ms: Math.max(...l.lag),
  } satisfies DocsRun);
}

async function runMemory(name: DocsTargetName, o: DocsOptions, run: DocsRun): Promise<void> {
  const label = DEFS[name].label;
  const x = await start(name, o);
  const { server, load, target } = x;
  try {
    const req = (documents: number) => load.request<DocsOpenResult>({
      cmd: 'docs-open', target, documents, editors: 1, textBytes: o.textBytes, concurrency: 50, timeoutMs: 60_000,
    });
    opened(await req(10), `${label} memory warm-up`);
    await sleep(500);
    const before = await server.stats(true);
    opened(await req(o.memoryDocs), `${label} memory`);
    await sleep(1500); // the texts written after sync reach the server
    const after = await server.stats(true);
    run.heapPerDocBytes = Math.round((after.mem.heapUsed - before.mem.heapUsed) / o.memoryDocs);
    run.rssPerDocBytes = Math.round((after.mem.rss - before.mem.rss) / o.memoryDocs);
    o.log(`${label} memory: ${o.memoryDocs} documents, ${run.heapPerDocBytes} B heap/doc, ${run.rssPerDocBytes} B RSS/doc`);
  } finally {
    await stop(x);
  }
}

export async function runDocuments(o: DocsOptions): Promise<DocsSection> {
  const p: DocsSection = {
    documents: o.documents, editors: o.editors, rate: o.rate, seconds: o.seconds, rounds: o.rounds, memoryDocs: o.memoryDocs,
    textBytes: o.textBytes, targets: o.targets, labels: Object.fromEntries(o.targets.map((t) => [t, DEFS[t].label])), results: {}, editorKind: 'providers',
  };
  o.log(`documents: ${o.targets.map((t) => DEFS[t].label).join(', ')} side by side, ${o.documents} documents x ${o.editors} editors each, ${o.rate} updates/s`);
  if (o.rate > 0) await runSideBySide(o, p);
  for (const name of o.targets) {
    const m = (p.results[name] ??= {});
    if (o.memoryDocs > 0) {
      try {
        await runMemory(name, o, m);
      } catch (e) {
        m.error = [m.error, `memory: ${(e as Error).message}`].filter(Boolean).join(' | ');
        o.log(`documents memory ${DEFS[name].label} failed: ${(e as Error).message}`);
      }
    }
  }
  if (o.wireRate > 0) {
    const w: DocsSection = { ...p, rate: o.wireRate, memoryDocs: 0, results: {}, editorKind: 'wire' };
    delete w.wire;
    o.log(`documents, server-bound (wire-level editors): ${o.documents} documents x ${o.editors} editors each, ${o.wireRate} updates/s`);
    await runSideBySide(o, w);
    p.wire = w;
  }
  return p;
}
