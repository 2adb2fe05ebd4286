import type { StreamPosition } from '@switchboard/protocol';

/**
 * Remembers the position (offset + epoch) of the last publication seen on one channel and drops duplicates.
 *
 * Contract:
 * - A publication without `seq`/`epoch` (unstored) is always accepted and does not move the position.
 * - Within the current epoch, a publication is accepted only if its seq is greater than the last seen one
 *   (replays that overlap live traffic, or a resent publication, are dropped).
 * - A publication from another epoch (the stream was reset) is accepted and starts the new epoch.
 */
export class StreamTracker {
  private pos: StreamPosition | null = null;

  /** Position of the last publication seen (or set by `reset`), null before the first one. */
  get position(): StreamPosition | null {
    return this.pos === null ? null : { offset: this.pos.offset, epoch: this.pos.epoch };
  }

  /** Returns true if the publication is new (deliver it), false if it is a duplicate (drop it). */
  accept(seq: number | undefined, epoch: string | undefined): boolean {
    if (typeof seq !== 'number' || typeof epoch !== 'string') return true;
    if (this.pos === null || this.pos.epoch !== epoch) {
      this.pos = { offset: seq, epoch };
      return true;
    }
    if (seq <= this.pos.offset) return false;
    this.pos.offset = seq;
    return true;
  }

  /** Sets the position only if none is known yet (first `subscribed` reply). */
  initialize(position: StreamPosition): void {
    if (this.pos === null) this.pos = { offset: position.offset, epoch: position.epoch };
  }

  /** Replaces the position (after a gap: continue from the server's current top). */
  reset(position: StreamPosition | null): void {
    this.pos = position === null ? null : { offset: position.offset, epoch: position.epoch };
  }
}
