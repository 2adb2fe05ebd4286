/** Serialized histogram (only non-empty buckets). */
export interface HistogramJSON { buckets: Array<[number, number]>; count: number; max: number; sum: number }

/**
 * Fixed-size latency histogram with 3 significant digits (HDR-style, log-linear buckets).
 * Values are recorded in microseconds; memory is constant whatever the number of samples,
 * so tens of millions of deliveries can be recorded without allocation.
 */
export class Histogram {
  /** bucket index = exponent * 1000 + mantissa (mantissa in [0,1000) for exponent 0, [100,1000) above). */
  private readonly counts = new Float64Array(12 * 1000);
  count = 0;
  max = 0;
  private sum = 0;

  /** Records one value in microseconds (negative values are clamped to 0). */
  record(us: number): void {
    let v = us < 0 ? 0 : Math.floor(us);
    if (v > this.max) this.max = v;
    this.sum += v;
    this.count++;
    let e = 0;
    while (v >= 1000) { v = Math.floor(v / 10); e++; }
    if (e > 11) e = 11;
    this.counts[e * 1000 + v]++;
  }

  /** Adds every sample of `other` (same bucket layout) to this histogram. */
  merge(other: Histogram): void {
    for (let i = 0; i < this.counts.length; i++) this.counts[i] += other.counts[i];
    this.count += other.count;
    this.sum += other.sum;
    if (other.max > this.max) this.max = other.max;
  }

  /** Value (µs, lower bound of its bucket) below which `p` percent of samples fall; 0 when empty. */
  percentile(p: number): number {
    if (this.count === 0) return 0;
    const rank = Math.ceil((p / 100) * this.count);
    let seen = 0;
    for (let i = 0; i < this.counts.length; i++) {
      seen += this.counts[i];
      if (seen >= rank) {
        const e = Math.floor(i / 1000);
        return (i % 1000) * 10 ** e;
      }
    }
    return this.max;
  }

  mean(): number { return this.count === 0 ? 0 : this.sum / this.count; }

  /** Plain-object form for IPC: only non-empty buckets. */
  toJSON(): HistogramJSON {
    const buckets: Array<[number, number]> = [];
    for (let i = 0; i < this.counts.length; i++) if (this.counts[i] > 0) buckets.push([i, this.counts[i]]);
    return { buckets, count: this.count, max: this.max, sum: this.sum };
  }

  static fromJSON(j: HistogramJSON): Histogram {
    const h = new Histogram();
    for (const [i, c] of j.buckets) h.counts[i] = c;
    h.count = j.count;
    h.max = j.max;
    h.sum = j.sum;
    return h;
  }
}
