/**
 * Runs work per key at most once per interval, coalescing requests: the first request for an idle key runs at
 * the end of the current event-loop turn (one shared setImmediate for all keys); requests that come while a
 * key is still inside its interval run once when the interval ends (one timer per waiting key, none at rest).
 * Used for presence diffs, user events and member-count pushes: N events in a burst cost one run per interval.
 */
export class KeyedThrottle {
  private readonly due = new Set<string>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly lastRun = new Map<string, number>();
  private immediate = false;

  constructor(
    private readonly run: (key: string) => void,
    private readonly now: () => number,
  ) {}

  /** Run `key` at the end of this turn, or once its interval since the last run has passed. */
  request(key: string, intervalMs: number): void {
    if (this.due.has(key) || this.timers.has(key)) return;
    const last = this.lastRun.get(key);
    const wait = last === undefined ? 0 : last + intervalMs - this.now();
    if (wait <= 0) {
      this.due.add(key);
      if (!this.immediate) {
        this.immediate = true;
        setImmediate(this.runDue);
      }
      return;
    }
    const timer = setTimeout(() => {
      this.timers.delete(key);
      this.fire(key);
    }, wait);
    timer.unref();
    this.timers.set(key, timer);
  }

  private readonly runDue = (): void => {
    this.immediate = false;
    const keys = [...this.due];
    this.due.clear();
    for (const key of keys) this.fire(key);
  };

  private fire(key: string): void {
    this.lastRun.set(key, this.now());
    this.run(key);
  }

  /** Run every waiting key now, ignoring intervals (shutdown: nothing pending may be lost). */
  flushAll(): void {
    for (const [key, timer] of this.timers) {
      clearTimeout(timer);
      this.due.add(key);
    }
    this.timers.clear();
    this.runDue();
  }

  /** Forget the last-run time of keys idle for longer than `idleMs` (bounded memory; called by the sweep). */
  prune(now: number, idleMs: number): void {
    for (const [key, at] of this.lastRun) if (now - at > idleMs && !this.timers.has(key) && !this.due.has(key)) this.lastRun.delete(key);
  }

  /** Keys remembered (waiting or recently run). */
  get size(): number {
    return this.lastRun.size + this.timers.size;
  }

  /** Drop waiting work (the node is stopping). */
  close(): void {
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    this.due.clear();
  }
}
