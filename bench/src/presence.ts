/**
 * Presence scenario, orchestrator side (used by run.ts and presence-cluster.ts). Against one or more running
 * Switchboard processes:
 *   connect    N identified connections (`/ws?user_id=u<i>&username=U<i>`) open, 200 handshakes in flight per
 *              load process, and the control traffic this causes (user_online on servers that announce every
 *              user) dies down;
 *   join       every connection sends `join_channel` for ONE channel at once;
 *   reconnect  every connection closes at once and reconnects + rejoins at once (same user ids), as after a
 *              deploy.
 * For each stage: the time from the start until every connection is at the goal (`connect` frame, or
 * `subscribed`) AND the last control frame has arrived (the quiet window that detects the end is reported
 * separately and not counted), the control frames each connection received (mean / p50 / max, by type,
 * before and after its `subscribed`), their bytes, and the server's CPU time.
 * Connections are split over the servers (members in order) and over load processes of at most `maxPerLoad`
 * connections each (open-file limit), which start each stage at the same moment (one IPC message each).
 */
import type { PresenceTally, TargetConn } from './ipc.js';
import { LoadProc, type ServerProc, type Stats } from './procs.js';

export type Stage = 'connect' | 'join' | 'reconnect';
export const STAGES: readonly Stage[] = ['connect', 'join', 'reconnect'];

export interface PresenceConfig {
  members: number;
  channel: string;
  /** Control traffic silent this long (ms) = the stage is over. Not counted in the stage's time. */
  quietMs: number;
  /** Give up a stage after this long (ms). */
  timeoutMs: number;
  maxPerLoad: number;
  /** Source addresses 127.0.0.1 .. 127.0.0.<sources>. */
  sources: number;
  /** taskset CPU list for load processes, or null. */
  loadCpus: string | null;
  log: (s: string) => void;
}

export interface PresenceNode { server: ServerProc; port: number }

export interface Spread { mean: number; p50: number; max: number }

export interface StageReport {
  stage: Stage;
  members: number;
  /** Every connection reached the goal and the traffic went quiet before the timeout. */
  complete: boolean;
  /** The stage was given up at the timeout (otherwise an incomplete stage ended with connections lost or refused). */
  timedOut: boolean;
  /** Stage time: max(last connection at the goal, last control frame) - start; null when not complete. */
  timeMs: number | null;
  /** Last connection at the goal (`connect` frame for the connect stage, `subscribed` for a storm). */
  doneMs: number | null;
  /** Arrival of the last control frame counted (any connection). */
  lastControlMs: number | null;
  /** When the end was detected: includes the quiet window. */
  quietDetectedMs: number | null;
  /** Connections at the goal at the end (or at the timeout). */
  done: number;
  /** Members given up for good (a join refused with a final error, or a close code that says not to reconnect). */
  failed: number;
  /** Connections the server closed (each is reopened after a backoff, as the SDK does, unless its code says not to). */
  dropped: number;
  closeCodes: Record<string, number>;
  /** Joins sent again after a temporary refusal (e.g. BROKER_UNAVAILABLE), after the SDK's backoff. */
  joinRetries: number;
  /** Connections opened again after failing to open or being closed by the server. */
  reconnects: number;
  /** Control frames per connection after its goal (a storm: after `subscribed`). */
  framesPerConn: Spread;
  /** Control frames per connection before its `subscribed` (a storm's connections while joining). */
  framesBeforeGoalPerConn: Spread;
  /** Per type: frames per connection (mean), after / before the goal. */
  byTypePerConn: Record<string, number>;
  byTypeBeforeGoalPerConn: Record<string, number>;
  controlBytesPerConn: number;
  /** Every control frame counted, all connections (including the old ones of a reconnect storm). */
  totalFrames: number;
  /** Frames received by the old connections of a reconnect storm after they were closed. */
  closingFrames: number;
  serverCpuMs: number;
  loadCpuMs: number;
  /** Every second: connections at the goal and frames counted so far (summed over load processes). */
  progress: Array<{ ms: number; done: number; frames: number }>;
  /** Set when the stage started while an earlier one had not finished (its traffic may be mixed in). */
  afterIncomplete?: Stage;
  errors: string[];
}

export interface PresenceResult {
  members: number;
  nodes: number;
  connect?: StageReport;
  join?: StageReport;
  reconnect?: StageReport;
  /** Stages not run, and why. */
  skipped?: string;
  error?: string;
}

const cpuUs = (s: Stats): number => s.cpu.user + s.cpu.system;
const round1 = (x: number) => Math.round(x * 10) / 10;

function spread(values: number[]): Spread {
  if (values.length === 0) return { mean: 0, p50: 0, max: 0 };
  const sorted = Float64Array.from(values).sort();
  let sum = 0;
  for (const v of values) sum += v;
  return { mean: round1(sum / values.length), p50: sorted[Math.floor((sorted.length - 1) / 2)], max: sorted[sorted.length - 1] };
}

function perConn(sums: Array<Record<string, number>>, n: number): Record<string, number> {
  const total = new Map<string, number>();
  for (const s of sums) for (const [k, v] of Object.entries(s)) total.set(k, (total.get(k) ?? 0) + v);
  return Object.fromEntries([...total].sort((a, b) => b[1] - a[1]).map(([k, v]) => [k, Math.round((v / Math.max(n, 1)) * 100) / 100]));
}

/** Combines the tallies of every load process for one stage. */
function combine(stage: Stage, ts: PresenceTally[], s0: Stats[], s1: Stats[]): StageReport {
  const start = Math.min(...ts.map((t) => t.startAt));
  const members = ts.reduce((n, t) => n + t.conns, 0);
  const allDone = ts.every((t) => t.allDoneAt !== null) ? Math.max(...ts.map((t) => t.allDoneAt!)) : null;
  const lasts = ts.map((t) => t.lastControlAt).filter((x): x is number => x !== null);
  const lastControl = lasts.length > 0 ? Math.max(...lasts) : null;
  const complete = allDone !== null && ts.every((t) => !t.timedOut);
  const quiet = ts.every((t) => t.quietAt !== null) ? Math.max(...ts.map((t) => t.quietAt!)) : null;
  const ms = (x: number | null) => (x === null ? null : Math.round(x - start));
  const post = ts.flatMap((t) => t.post);
  const pre = ts.flatMap((t) => t.pre);
  const steps = Math.max(0, ...ts.map((t) => t.progress.length));
  const progress: StageReport['progress'] = [];
  for (let i = 0; i < steps; i++) {
    let done = 0;
    let frames = 0;
    for (const t of ts) {
      const p = t.progress[Math.min(i, t.progress.length - 1)];
      if (p !== undefined) { done += p[1]; frames += p[2]; }
    }
    progress.push({ ms: (i + 1) * 1000, done, frames });
  }
  const closeCodes: Record<string, number> = {};
  for (const t of ts) for (const [k, v] of Object.entries(t.closeCodes)) closeCodes[k] = (closeCodes[k] ?? 0) + v;
  const serverCpu = s1.reduce((n, s, i) => n + cpuUs(s) - cpuUs(s0[i]), 0);
  return {
    stage, members, complete, timedOut: ts.some((t) => t.timedOut),
    timeMs: complete ? Math.round(Math.max(allDone, lastControl ?? 0) - start) : null,
    doneMs: ms(allDone), lastControlMs: ms(lastControl), quietDetectedMs: ms(quiet),
    done: ts.reduce((n, t) => n + t.done, 0), failed: ts.reduce((n, t) => n + t.failed, 0),
    dropped: ts.reduce((n, t) => n + t.dropped, 0), closeCodes,
    joinRetries: ts.reduce((n, t) => n + t.joinRetries, 0), reconnects: ts.reduce((n, t) => n + t.reconnects, 0),
    framesPerConn: spread(post), framesBeforeGoalPerConn: spread(pre),
    byTypePerConn: perConn(ts.map((t) => t.byType), members),
    byTypeBeforeGoalPerConn: perConn(ts.map((t) => t.byTypePre), members),
    controlBytesPerConn: Math.round(ts.reduce((n, t) => n + t.bytes, 0) / Math.max(members, 1)),
    totalFrames: post.reduce((a, b) => a + b, 0) + pre.reduce((a, b) => a + b, 0) + ts.reduce((n, t) => n + t.closingFrames, 0),
    closingFrames: ts.reduce((n, t) => n + t.closingFrames, 0),
    serverCpuMs: Math.round(serverCpu / 1000),
    loadCpuMs: Math.round(ts.reduce((n, t) => n + t.loadCpuUs, 0) / 1000),
    progress,
    errors: ts.flatMap((t) => t.errors).slice(0, 10),
  };
}

export function describeStage(r: StageReport): string {
  const f = r.framesPerConn;
  const head = r.complete
    ? `${r.timeMs} ms (last ${r.stage === 'connect' ? 'connect' : 'subscribed'} ${r.doneMs} ms, last control frame ${r.lastControlMs ?? '-'} ms, quiet detected ${r.quietDetectedMs} ms)`
    : `INCOMPLETE: ${r.done}/${r.members} at the goal ${r.timedOut ? `at the timeout (${r.progress.at(-1)?.ms ?? 0} ms)` : `when it went quiet (${r.quietDetectedMs} ms)`}`;
  const types = Object.entries(r.byTypePerConn).map(([k, v]) => `${k} ${v}`).join(', ');
  return `${head}; control frames/conn mean ${f.mean}, max ${f.max}${types ? ` (${types})` : ''}; ` +
    `${r.totalFrames} frames in all; server CPU ${r.serverCpuMs} ms` +
    (r.failed + r.dropped + r.joinRetries + r.reconnects > 0
      ? `; ${r.failed} failed, ${r.dropped} closed by the server ${JSON.stringify(r.closeCodes)}, ${r.reconnects} reconnects, ${r.joinRetries} join retries` : '');
}

/** Runs the three stages against `nodes` (members split evenly, in order). Always stops its load processes. */
export async function runPresence(nodes: PresenceNode[], cfg: PresenceConfig, label: string): Promise<PresenceResult> {
  const result: PresenceResult = { members: cfg.members, nodes: nodes.length };
  const loads: Array<{ proc: LoadProc; target: TargetConn; count: number }> = [];
  let base = 0;
  nodes.forEach((node, i) => {
    let share = Math.floor(cfg.members / nodes.length) + (i < cfg.members % nodes.length ? 1 : 0);
    while (share > 0) {
      const count = Math.min(share, cfg.maxPerLoad);
      loads.push({
        proc: new LoadProc(cfg.loadCpus),
        target: { host: '127.0.0.1', port: node.port, protocol: 'switchboard', publisher: 'ws', indexBase: base, sources: cfg.sources },
        count,
      });
      base += count;
      share -= count;
    }
  });
  const ipcTimeout = cfg.timeoutMs + 60_000;
  const stats = () => Promise.all(nodes.map((n) => n.server.stats(false)));
  const report = () => Promise.all(loads.map((l) => l.proc.request<PresenceTally>(
    { cmd: 'presence-report', quietMs: cfg.quietMs, maxWaitMs: 2 * cfg.quietMs + 1000 }, ipcTimeout)));
  try {
    let incomplete: Stage | undefined;
    for (const stage of STAGES) {
      const s0 = await stats();
      await Promise.all(loads.map((l) => l.proc.request(stage === 'connect'
        ? { cmd: 'presence-open', target: l.target, count: l.count, quietMs: cfg.quietMs, timeoutMs: cfg.timeoutMs }
        : { cmd: 'presence-storm', kind: stage, channel: cfg.channel, quietMs: cfg.quietMs, timeoutMs: cfg.timeoutMs }, ipcTimeout)));
      const tallies = await report();
      const s1 = await stats();
      const r = combine(stage, tallies, s0, s1);
      if (incomplete !== undefined) r.afterIncomplete = incomplete;
      result[stage] = r;
      cfg.log(`${label} presence ${stage}: ${describeStage(r)}`);
      for (const n of nodes) if (!n.server.alive) throw new Error(`server died: ${n.server.stderr.slice(-500)}`);
      if (!r.complete) {
        if (stage === 'connect' && r.done === 0) throw new Error(`no connection opened: ${r.errors.join('; ')}`);
        incomplete = stage;
        if (stage !== 'connect') {
          // A storm still in progress would be mixed into the next one: stop here.
          result.skipped = r.timedOut
            ? `stages after '${stage}' not run: it had not finished after ${cfg.timeoutMs} ms`
            : `stages after '${stage}' not run: it ended with ${r.done}/${r.members} connections subscribed`;
          break;
        }
      }
    }
  } catch (e) {
    result.error = (e as Error).message;
    cfg.log(`${label} presence failed: ${result.error}`);
  } finally {
    await Promise.all(loads.map((l) => l.proc.stop()));
  }
  return result;
}

const num = (n: number | undefined, digits = 0): string => (n === undefined || Number.isNaN(n)
  ? '-' : n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }));

const ratioOf = (a: number | null | undefined, b: number | null | undefined): number | undefined =>
  a === null || a === undefined || b === null || b === undefined || b === 0 ? undefined : Math.round((a / b) * 100) / 100;

/** Stage time for the table: ms, or `>T s (done/N)` when the stage did not finish. */
function stageTime(r: StageReport | undefined, pick: (r: StageReport) => number | null): string {
  if (r === undefined) return '-';
  const v = pick(r);
  if (v !== null) return num(v);
  if (r.complete) return '-';
  return r.timedOut ? `>${num((r.progress.at(-1)?.ms ?? 0) / 1000)} s (${r.done}/${r.members})` : `lost conns (${r.done}/${r.members})`;
}

export interface PresenceColumn { label: string; run: PresenceResult | undefined }
/** A ratio column: `a / b` for the rows where a ratio means something (times, frames, CPU). */
export interface PresenceRatio { label: string; a: PresenceResult | undefined; b: PresenceResult | undefined }

/** The presence table: one column per run, stage by stage, then ratio columns. */
export function presenceTable(cols: PresenceColumn[], ratios: PresenceRatio[], quietMs: number): string {
  const head = ['presence metric', ...cols.map((c) => c.label), ...ratios.map((c) => c.label)];
  const rows: string[][] = [];
  const add = (label: string, cell: (r: PresenceResult) => string, value?: (r: PresenceResult) => number | null | undefined) => {
    const row = [label, ...cols.map((c) => (c.run ? cell(c.run) : '-'))];
    for (const rc of ratios) {
      const r = value && rc.a && rc.b ? ratioOf(value(rc.a), value(rc.b)) : undefined;
      row.push(r === undefined ? '' : `${r.toFixed(2)}x`);
    }
    rows.push(row);
  };
  const stageName: Record<Stage, string> = { connect: 'connect', join: 'join storm', reconnect: 'reconnect storm' };
  for (const st of STAGES) {
    if (!cols.some((c) => c.run?.[st] !== undefined)) continue;
    const g = (r: PresenceResult) => r[st];
    const name = stageName[st];
    const goal = st === 'connect' ? 'connect frame' : 'subscribed';
    add(`${name}: time ms (excl. quiet window)`, (r) => stageTime(g(r), (x) => x.timeMs), (r) => g(r)?.timeMs);
    add(`${name}: last ${goal} ms`, (r) => stageTime(g(r), (x) => x.doneMs));
    add(`${name}: last control frame ms`, (r) => num(g(r)?.lastControlMs ?? undefined));
    add(`${name}: quiet detected ms (incl. ${quietMs} ms)`, (r) => num(g(r)?.quietDetectedMs ?? undefined));
    add(`${name}: control frames/conn mean`, (r) => num(g(r)?.framesPerConn.mean, 1), (r) => g(r)?.framesPerConn.mean);
    add(`${name}: control frames/conn max`, (r) => num(g(r)?.framesPerConn.max), (r) => g(r)?.framesPerConn.max);
    const types = new Set<string>();
    const typesPre = new Set<string>();
    for (const c of cols) {
      for (const k of Object.keys(c.run?.[st]?.byTypePerConn ?? {})) types.add(k);
      for (const k of Object.keys(c.run?.[st]?.byTypeBeforeGoalPerConn ?? {})) typesPre.add(k);
    }
    for (const k of types) add(`${name}:   ${k}/conn`, (r) => num(g(r) ? g(r)!.byTypePerConn[k] ?? 0 : undefined, 2));
    if (st !== 'connect') {
      add(`${name}: frames/conn before subscribed`, (r) => num(g(r)?.framesBeforeGoalPerConn.mean, 1));
      for (const k of typesPre) add(`${name}:   ${k}/conn before`, (r) => num(g(r) ? g(r)!.byTypeBeforeGoalPerConn[k] ?? 0 : undefined, 2));
    }
    add(`${name}: control frames, all conns`, (r) => num(g(r)?.totalFrames), (r) => g(r)?.totalFrames);
    add(`${name}: control KB/conn`, (r) => num(g(r) ? g(r)!.controlBytesPerConn / 1024 : undefined, 1));
    add(`${name}: server CPU ms`, (r) => num(g(r)?.serverCpuMs), (r) => g(r)?.serverCpuMs);
    add(`${name}: closed by server / reconnects`, (r) => (g(r) ? `${num(g(r)!.dropped)} / ${num(g(r)!.reconnects)}` : '-'));
    add(`${name}: join retries / given up`, (r) => (g(r) ? `${num(g(r)!.joinRetries)} / ${num(g(r)!.failed)}` : '-'));
  }
  const all = [head, ...rows];
  const widths = head.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

/** Notes to print under the table: errors, stages not run, stages mixed with an unfinished one, lost connections. */
export function presenceNotes(runs: Record<string, PresenceResult>): string[] {
  const out: string[] = [];
  for (const [key, r] of Object.entries(runs)) {
    if (r.error) out.push(`${key}: error: ${r.error}`);
    if (r.skipped) out.push(`${key}: ${r.skipped}`);
    for (const st of STAGES) {
      const s = r[st];
      if (s === undefined) continue;
      if (s.afterIncomplete) out.push(`${key} ${st}: started while the ${s.afterIncomplete} stage had not finished (its traffic is mixed in)`);
      if (s.failed + s.dropped + s.joinRetries + s.reconnects > 0) {
        out.push(`${key} ${st}: ${s.dropped} connections closed by the server (close codes ${JSON.stringify(s.closeCodes)}), ` +
          `${s.reconnects} reconnects, ${s.joinRetries} join retries, ${s.failed} members given up` +
          `${s.errors.length > 0 ? `; first error: ${s.errors[0].slice(0, 160)}` : ''}`);
      }
    }
  }
  return out;
}

export interface Check { issue: number; check: string; value: string; pass: boolean }

/**
 * Issue 10 storm targets for one build: each storm's time with presence on <= 1.5x off, and <= 50 control
 * frames per connection after its `subscribed` (presence on; max over connections).
 */
export function stormChecks(on: PresenceResult | undefined, off: PresenceResult | undefined): Check[] {
  const out: Check[] = [];
  for (const st of ['join', 'reconnect'] as const) {
    const a = on?.[st];
    const b = off?.[st];
    const check = `${st} storm time with presence on <= 1.5x off`;
    if (a !== undefined && b !== undefined) {
      const r = ratioOf(a.timeMs, b.timeMs);
      const t = (x: StageReport) => (x.timeMs === null ? `incomplete (${x.done}/${x.members} subscribed)` : `${x.timeMs} ms`);
      out.push({
        issue: 10, check,
        value: `${r === undefined ? '-' : `${r}x`} (on ${t(a)}, off ${t(b)}; control frames/conn on ${a.framesPerConn.mean}, ` +
          `off ${b.framesPerConn.mean}; server CPU on/off ${ratioOf(a.serverCpuMs, b.serverCpuMs) ?? '-'}x)`,
        pass: r !== undefined && r <= 1.5,
      });
    } else if (on !== undefined && off !== undefined) {
      out.push({ issue: 10, check, value: `not measured: ${on.error ?? on.skipped ?? off.error ?? off.skipped ?? '?'}`, pass: false });
    }
    if (a !== undefined) {
      const f = a.framesPerConn;
      const pre = a.framesBeforeGoalPerConn.mean > 0 ? `; before subscribed: mean ${a.framesBeforeGoalPerConn.mean}, max ${a.framesBeforeGoalPerConn.max}` : '';
      out.push({
        issue: 10, check: `${st} storm: <= 50 control frames per connection after subscribed (presence on, max)`,
        value: `max ${f.max}, mean ${f.mean}${pre}${a.complete ? '' : ` (storm incomplete: ${a.done}/${a.members})`}`,
        pass: a.complete && f.max <= 50,
      });
    } else if (on !== undefined) {
      out.push({ issue: 10, check: `${st} storm: <= 50 control frames per connection after subscribed (presence on, max)`, value: `not measured: ${on.error ?? on.skipped ?? '?'}`, pass: false });
    }
  }
  return out;
}
