/**
 * Pattern-subscription scenario (issue 12): the same fan-out, Switchboard only, in two modes on fresh servers,
 * interleaved per round:
 *   plain    N subscribers join channel `bench`; every publication goes to `bench`;
 *   pattern  N subscribers join the pattern `bench:*`; publications go round-robin to C concrete channels
 *            `bench:0` .. `bench:<C-1>` (default 10,000), so every publication is matched, authorized per
 *            connection and stored in its own channel's stream.
 * Reported: server CPU µs per delivery of each mode (median over rounds) and the ratio pattern / plain
 * (target: <= 1.5x), per phase (paced: one publication per server tick; burst: W in flight).
 */
import type { Check } from './presence.js';

export type PatternMode = 'plain' | 'pattern';
export const PATTERN_PHASES = ['paced', 'burst'] as const;
export type PatternPhase = (typeof PATTERN_PHASES)[number];

/** One mode's result in one round. */
export interface PatternRun {
  deliveriesPerSec: Partial<Record<PatternPhase, number>>;
  cpuUsPerDelivery: Partial<Record<PatternPhase, number>>;
  p50Ms: Partial<Record<PatternPhase, number>>;
  /** Server and load-generator CPU % during the phase (a load generator near 100 % limits the batching). */
  serverCpuPct?: Partial<Record<PatternPhase, number>>;
  loadCpuPct?: Partial<Record<PatternPhase, number>>;
  readyMs?: number;
  error?: string;
}

export interface PatternSection {
  subscribers: number;
  channels: number;
  rounds: number;
  runs: Record<PatternMode, PatternRun[]>;
  /** Median over rounds, per phase (each metric taken independently). */
  median: Record<PatternMode, PatternRun>;
}

/** The scenario of each mode, as run.ts's runFanout takes it. */
export function patternScenario(mode: PatternMode, channels: number): { label: string; channel: string; subscribe?: string; publishChannels?: number; phases: typeof PATTERN_PHASES } {
  return mode === 'plain'
    ? { label: ' (plain)', channel: 'bench', phases: PATTERN_PHASES }
    : { label: ' (pattern)', channel: 'bench:', subscribe: 'bench:*', publishChannels: channels, phases: PATTERN_PHASES };
}

function med(xs: Array<number | undefined>): number | undefined {
  const v = xs.filter((x): x is number => x !== undefined).sort((a, b) => a - b);
  return v.length === 0 ? undefined : v[Math.floor((v.length - 1) / 2)];
}

export function patternMedian(runs: PatternRun[]): PatternRun {
  const out: PatternRun = { deliveriesPerSec: {}, cpuUsPerDelivery: {}, p50Ms: {} };
  for (const ph of PATTERN_PHASES) {
    out.deliveriesPerSec[ph] = med(runs.map((r) => r.deliveriesPerSec[ph]));
    out.cpuUsPerDelivery[ph] = med(runs.map((r) => r.cpuUsPerDelivery[ph]));
    out.p50Ms[ph] = med(runs.map((r) => r.p50Ms[ph]));
    (out.serverCpuPct ??= {})[ph] = med(runs.map((r) => r.serverCpuPct?.[ph]));
    (out.loadCpuPct ??= {})[ph] = med(runs.map((r) => r.loadCpuPct?.[ph]));
  }
  out.readyMs = med(runs.map((r) => r.readyMs));
  const errors = runs.map((r) => r.error).filter((e): e is string => e !== undefined);
  if (errors.length > 0) out.error = errors.join(' | ');
  return out;
}

const ratio = (a: number | undefined, b: number | undefined): number | undefined =>
  a === undefined || b === undefined || b === 0 ? undefined : Math.round((a / b) * 100) / 100;

const fmt = (n: number | undefined, digits = 0): string =>
  n === undefined ? '-' : n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

export function patternTable(p: PatternSection): string {
  const { plain, pattern } = p.median;
  const rows: string[][] = [['metric', 'plain', 'pattern', 'pattern / plain']];
  for (const ph of PATTERN_PHASES) {
    const r = ratio(pattern.cpuUsPerDelivery[ph], plain.cpuUsPerDelivery[ph]);
    rows.push([`${ph} server CPU µs/delivery`, fmt(plain.cpuUsPerDelivery[ph], 2), fmt(pattern.cpuUsPerDelivery[ph], 2), r === undefined ? '-' : `${r.toFixed(2)}x`]);
    const d = ratio(pattern.deliveriesPerSec[ph], plain.deliveriesPerSec[ph]);
    rows.push([`${ph} deliveries/s`, fmt(plain.deliveriesPerSec[ph]), fmt(pattern.deliveriesPerSec[ph]), d === undefined ? '-' : `${d.toFixed(2)}x`]);
    rows.push([`${ph} latency p50 ms`, fmt(plain.p50Ms[ph], 2), fmt(pattern.p50Ms[ph], 2), '']);
    rows.push([`${ph} server / load-gen CPU %`, `${fmt(plain.serverCpuPct?.[ph])} / ${fmt(plain.loadCpuPct?.[ph])}`, `${fmt(pattern.serverCpuPct?.[ph])} / ${fmt(pattern.loadCpuPct?.[ph])}`, '']);
  }
  rows.push(['subscriber-ready ms', fmt(plain.readyMs), fmt(pattern.readyMs), '']);
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  return [line(rows[0]), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.slice(1).map(line)].join('\n');
}

/** Issue 12 target: pattern subscriptions' server CPU per delivery within 1.5x of plain subscriptions. */
export function patternChecks(p: PatternSection): Check[] {
  const out: Check[] = [];
  for (const ph of PATTERN_PHASES) {
    const r = ratio(p.median.pattern.cpuUsPerDelivery[ph], p.median.plain.cpuUsPerDelivery[ph]);
    if (r === undefined) continue;
    out.push({
      issue: 12, check: `pattern subscriptions ${ph}: server CPU per delivery <= 1.5x plain`,
      value: `${r}x (${p.median.pattern.cpuUsPerDelivery[ph]} / ${p.median.plain.cpuUsPerDelivery[ph]} µs, ${p.channels} channels)`, pass: r <= 1.5,
    });
  }
  return out;
}
