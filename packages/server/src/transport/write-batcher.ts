/** Something with queued output to write once per tick. */
export interface Flushable {
  flush(): void;
}

/**
 * Coalesces writes: sinks that got frames during this turn of the event loop are flushed together in one
 * `setImmediate`, each with ONE socket write, however many frames it got. The number of writes is the cost
 * of fan-out (see DESIGN.md), so this is where most of the throughput comes from.
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

  /** Flush `sink` at the end of this event-loop turn. Call once per sink per turn (the sink tracks that). */
  schedule(sink: Flushable): void {
    this.pending.push(sink);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.run);
    }
  }
}
