import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { SortedIds } from '../../src/broker/memory/sorted-ids.js';

/** Deterministic PRNG (mulberry32): the same sequence of operations on every run. */
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** Every id, walked page by page with `after`. */
function walk(s: SortedIds, limit: number): string[] {
  const out: string[] = [];
  let cursor: string | null = null;
  for (;;) {
    const page = s.after(cursor, limit);
    assert.ok(page.ids.length <= limit);
    out.push(...page.ids);
    if (!page.more) return out;
    cursor = page.ids[page.ids.length - 1]!;
  }
}

describe('memory engine: SortedIds (the ordered connection ids behind membersPage)', () => {
  it('matches a sorted reference through 30,000 random adds and deletes (bucket splits and removals)', () => {
    const rand = rng(7);
    const s = new SortedIds();
    const ref = new Set<string>();
    const id = (): string => `c${Math.floor(rand() * 6000).toString(36)}`;
    for (let step = 0; step < 30_000; step++) {
      const x = id();
      // Mostly adds first (grows past several buckets), then mostly deletes (buckets empty and go).
      const add = rand() < (step < 15_000 ? 0.8 : 0.25);
      if (add) assert.equal(s.add(x), !ref.has(x), `add ${x}`);
      else assert.equal(s.delete(x), ref.has(x), `delete ${x}`);
      if (add) ref.add(x); else ref.delete(x);
      assert.equal(s.size, ref.size);
      if (step % 5000 === 0 || step === 29_999) {
        const sorted = [...ref].sort(cmp);
        assert.deepEqual(walk(s, 1000), sorted);
        assert.deepEqual(walk(s, 37), sorted);
        // From any cursor (present or not): the ids after it.
        for (let k = 0; k < 50; k++) {
          const cursor = id();
          const page = s.after(cursor, 25);
          const rest = sorted.filter((x) => x > cursor);
          assert.deepEqual(page.ids, rest.slice(0, 25), `after ${cursor}`);
          assert.equal(page.more, rest.length > 25);
        }
      }
    }
  });

  it('built from ids in any order; empty set; cursor past the end', () => {
    const s = new SortedIds(['b', 'a', 'c', 'a']);
    assert.equal(s.size, 3);
    assert.deepEqual(s.after(null, 10), { ids: ['a', 'b', 'c'], more: false });
    assert.deepEqual(s.after(null, 3), { ids: ['a', 'b', 'c'], more: false });
    assert.deepEqual(s.after(null, 2), { ids: ['a', 'b'], more: true });
    assert.deepEqual(s.after('b', 2), { ids: ['c'], more: false });
    assert.deepEqual(s.after('bb', 2), { ids: ['c'], more: false });
    assert.deepEqual(s.after('c', 2), { ids: [], more: false });
    const e = new SortedIds();
    assert.deepEqual(e.after(null, 5), { ids: [], more: false });
    assert.equal(e.delete('x'), false);
    const big = new SortedIds(Array.from({ length: 5000 }, (_, i) => String(i).padStart(5, '0')));
    assert.deepEqual(big.after('04998', 5), { ids: ['04999'], more: false });
    assert.deepEqual(big.after('00511', 2), { ids: ['00512', '00513'], more: true });
  });
});
