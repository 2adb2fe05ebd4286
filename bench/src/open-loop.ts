/**
 * Shared by the load sides: an open-loop schedule and one measured phase (the documents load sides,
 * documents-load.ts and documents-wire-load.ts), and waiting for a condition that events make true (those and
 * the fan-out load, load.ts).
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { Histogram } from './histogram.js';
import type { DocsPhaseResult } from './ipc.js';

/**
 * Open loop: every 2 ms tick makes the updates due by now (a late tick catches up; latency counts from the
 * update, not the schedule), `total` in all at `ratePerSec` from `start`. `make(i)` makes the i-th.
 */
export function openLoop(ratePerSec: number, total: number, start: number, make: (i: number) => void): Promise<void> {
  let made = 0;
  return new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      const due = Math.min(total, Math.floor(((performance.now() - start) * ratePerSec) / 1000) + 1);
      while (made < due) make(made++);
      if (made >= total) {
        clearInterval(timer);
        resolve();
      }
    }, 2);
  });
}

/** Conditions waited for; `wake()` (on every delivery) re-checks them. */
export class Waiters {
  private readonly set = new Set<() => void>();

  wake(): void {
    for (const w of this.set) w();
  }

  /** Resolves true once `pred()` holds (checked now and on every wake), false after `timeoutMs`. */
  waitFor(pred: () => boolean, timeoutMs: number): Promise<boolean> {
    return new Promise((resolve) => {
      if (pred()) return resolve(true);
      const check = () => { if (pred()) finish(true); };
      const timer = setTimeout(() => finish(false), timeoutMs);
      const finish = (v: boolean) => { clearTimeout(timer); this.set.delete(check); resolve(v); };
      this.set.add(check);
    });
  }
}

/** A phase's tally, filled by the load side's delivery handler. */
export interface PhaseTally {
  start: number;
  published: number;
  deliveries: number;
  expected: number;
  firstPub: number;
  lastDelivery: number;
  hist: Histogram;
  /** Each update's first observation (the first editor that sees it), µs: the server's share plus one apply. */
  first: Histogram;
}

/** What a documents load side lends one measured phase. */
export interface PhaseHost {
  readonly waiters: Waiters;
  readonly errors: string[];
  /** Connections lost so far (counter). */
  disconnects(): number;
}

/**
 * One open-loop phase of a documents load side: `ratePerSec` updates for `seconds` (`make(i)` makes the i-th
 * and returns how many deliveries it should have), then waits at most `drainMs` for them; `done()` runs as
 * soon as counting stops. CPU and event-loop delay of this process are measured over the phase.
 */
export async function runPhase(
  host: PhaseHost, ph: PhaseTally, name: string, ratePerSec: number, seconds: number, drainMs: number, make: (i: number) => number, done: () => void,
): Promise<DocsPhaseResult> {
  const cpu0 = process.cpuUsage();
  const lag = monitorEventLoopDelay({ resolution: 5 });
  lag.enable();
  const disc0 = host.disconnects();
  const total = Math.max(1, Math.round(ratePerSec * seconds));
  await openLoop(ratePerSec, total, ph.start, (i) => {
    const expected = make(i);
    if (i === 0) ph.firstPub = performance.now();
    ph.published++;
    ph.expected += expected;
  });
  const lastPub = performance.now();
  await host.waiters.waitFor(() => ph.deliveries >= ph.expected, drainMs);
  done();
  const cpu = process.cpuUsage(cpu0);
  lag.disable();
  if (ph.deliveries < ph.expected) host.errors.push(`${ph.expected - ph.deliveries} of ${ph.expected} deliveries missing ${drainMs} ms after the last update`);
  return {
    name, published: ph.published, deliveries: ph.deliveries, expected: ph.expected,
    elapsedMs: Math.max(ph.lastDelivery, lastPub) - ph.firstPub, latency: ph.hist.toJSON(), firstLatency: ph.first.toJSON(),
    loadCpuUs: cpu.user + cpu.system, loadLagP99Ms: Math.round(lag.percentile(99) / 1e4) / 100, disconnects: host.disconnects() - disc0,
    errors: host.errors.splice(0, 5),
  };
}
