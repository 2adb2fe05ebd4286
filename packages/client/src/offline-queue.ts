/**
 * Bounded FIFO for operations made while the client is (re)connecting.
 * `push` refuses new items beyond `capacity`; `requeue` puts items that were already accepted (in flight
 * when the connection dropped) back at the front regardless of the bound, so nothing accepted is lost.
 */
export class OfflineQueue<T> {
  private items: T[] = [];

  constructor(readonly capacity: number) {
    if (!(capacity >= 0)) throw new RangeError('offline queue capacity must be >= 0');
  }

  get size(): number {
    return this.items.length;
  }

  /** Appends an item; returns false (and keeps nothing) when the queue is full. */
  push(item: T): boolean {
    if (this.items.length >= this.capacity) return false;
    this.items.push(item);
    return true;
  }

  /** Puts already accepted items back at the front, in their order. */
  requeue(items: readonly T[]): void {
    if (items.length > 0) this.items = [...items, ...this.items];
  }

  /** Removes and returns every item, oldest first. */
  drain(): T[] {
    const out = this.items;
    this.items = [];
    return out;
  }
}
