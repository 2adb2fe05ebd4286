/**
 * Shared by the documents load sides (documents-load.ts, documents-wire-load.ts): an open-loop schedule and
 * waiting for a condition that deliveries make true.
 */

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
