/** Most ids a bucket holds before it is split in two. */
const MAX_BUCKET = 1024;

/**
 * A set of strings in UTF-16 code unit order (JS `<`), kept in sorted buckets of at most MAX_BUCKET ids:
 * add / delete cost O(log n + MAX_BUCKET) (a binary search over the buckets' last ids, then a splice inside one
 * bucket), `after` costs O(log n + limit). A plain sorted array would cost O(n) per add / delete (the splice
 * moves every later id), which a channel with 100,000 members would pay on every join.
 */
export class SortedIds {
  /** Non-empty, each sorted; every id of bucket i is smaller than every id of bucket i + 1. */
  private readonly buckets: string[][] = [];
  private count = 0;

  constructor(ids: Iterable<string> = []) {
    const all = [...new Set(ids)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    for (let i = 0; i < all.length; i += MAX_BUCKET / 2) this.buckets.push(all.slice(i, i + MAX_BUCKET / 2));
    this.count = all.length;
  }

  get size(): number {
    return this.count;
  }

  /** Adds `id`; false if it was there already. */
  add(id: string): boolean {
    if (this.buckets.length === 0) {
      this.buckets.push([id]);
      this.count = 1;
      return true;
    }
    // The first bucket whose last id is >= id; past the end: the last bucket takes it.
    const b = Math.min(this.bucketFor(id), this.buckets.length - 1);
    const bucket = this.buckets[b]!;
    const i = lowerBound(bucket, id);
    if (bucket[i] === id) return false;
    bucket.splice(i, 0, id);
    this.count += 1;
    if (bucket.length > MAX_BUCKET) this.buckets.splice(b + 1, 0, bucket.splice(bucket.length >>> 1));
    return true;
  }

  /** Removes `id`; false if it was not there. */
  delete(id: string): boolean {
    const b = this.bucketFor(id);
    const bucket = this.buckets[b];
    if (bucket === undefined) return false;
    const i = lowerBound(bucket, id);
    if (bucket[i] !== id) return false;
    bucket.splice(i, 1);
    this.count -= 1;
    if (bucket.length === 0) this.buckets.splice(b, 1);
    return true;
  }

  /** Up to `limit` ids greater than `cursor` (from the smallest when null), in order, and whether more follow. */
  after(cursor: string | null, limit: number): { ids: string[]; more: boolean } {
    let b = 0;
    let i = 0;
    if (cursor !== null) {
      b = this.bucketFor(cursor);
      const bucket = this.buckets[b];
      if (bucket !== undefined) {
        i = lowerBound(bucket, cursor);
        if (bucket[i] === cursor) i += 1;
      }
    }
    const ids: string[] = [];
    for (; b < this.buckets.length; b++, i = 0) {
      const bucket = this.buckets[b]!;
      const take = Math.min(bucket.length - i, limit - ids.length);
      for (let k = 0; k < take; k++) ids.push(bucket[i + k]!);
      if (ids.length === limit) {
        return { ids, more: i + take < bucket.length || b + 1 < this.buckets.length };
      }
    }
    return { ids, more: false };
  }

  /** Index of the first bucket whose last id is >= `id` (buckets.length if none). */
  private bucketFor(id: string): number {
    let lo = 0;
    let hi = this.buckets.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const bucket = this.buckets[mid]!;
      if (bucket[bucket.length - 1]! < id) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

/** First index of `sorted` whose element is >= `key`. */
export function lowerBound(sorted: readonly string[], key: string): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]! < key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
