/** Something with queued output to write once per tick. */
export interface Flushable {
  flush(): void;
}

/**
 * When queued output is written:
 *  - `turn`: in one `setImmediate` after the poll phase, so everything the whole event-loop turn produced for a
 *    sink (publications arriving on many sockets at once) goes out in one write. The fan-out path: the number
 *    of writes is its cost (DESIGN.md).
 *  - `task`: in a microtask at the end of the callback that produced it (one socket read, one timer), before
 *    the next socket's data is handled. Output of one read still coalesces; latency is that of a direct write.
 *    Relays where every message is answered at once (y-websocket: 7 % lower p50 than `turn` in docs/benchmarks.md).
 */
export type FlushTiming = 'turn' | 'task';

/**
 * Coalesces writes: sinks that got frames are flushed together, each with ONE socket write however many frames
 * it got, at the end of the turn or of the task (FlushTiming).
 */
export class WriteBatcher {
  private pending: Flushable[] = [];
  private scheduled = false;
  private readonly run = (): void => {
    this.scheduled = false;
    const batch = this.pending;
    this.pending = [];
    for (let i = 0; i < batch.length; i++) batch[i]!.flush();
  };

  constructor(private readonly timing: FlushTiming = 'turn') {}

  /** Flush `sink` at the end of this turn (or task). Call once per sink per batch (the sink tracks that). */
  schedule(sink: Flushable): void {
    this.pending.push(sink);
    if (!this.scheduled) {
      this.scheduled = true;
      if (this.timing === 'task') queueMicrotask(this.run);
      else setImmediate(this.run);
    }
  }
}
