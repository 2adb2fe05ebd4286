import type { ChannelState, Member } from './member.js';
import { forEachPrefix } from '../patterns.js';

/**
 * Local members of pattern subscriptions, by prefix (`news:` for `news:*`), with the same states as channel
 * members (a buffer while the subscription is joining, null when live). Lookup of the patterns matching a
 * channel is by its prefixes: O(number of `:` in the name), never a scan.
 */
export class PatternIndex<M extends Member> {
  /** Members of each prefix with their state (the same state as `member.patterns`, kept here for delivery). */
  private readonly byPrefix = new Map<string, Map<M, ChannelState>>();
  private readonly scratch: Array<Map<M, ChannelState>> = [];
  private count = 0;

  /** Add a member's pattern; true if the prefix had no local member before. */
  add(c: M, prefix: string, state: ChannelState): boolean {
    if (c.patterns === null) c.patterns = new Map();
    c.patterns.set(prefix, state);
    this.count += 1;
    let set = this.byPrefix.get(prefix);
    const first = set === undefined;
    if (set === undefined) this.byPrefix.set(prefix, (set = new Map()));
    set.set(c, state);
    return first;
  }

  markLive(c: M, prefix: string): void {
    if (c.patterns === null || !c.patterns.has(prefix)) return;
    c.patterns.set(prefix, null);
    this.byPrefix.get(prefix)?.set(c, null);
  }

  /** Remove a member's pattern: 'absent', 'left', or 'empty' (no local member of the prefix is left). */
  remove(c: M, prefix: string): 'absent' | 'left' | 'empty' {
    if (c.patterns === null || !c.patterns.delete(prefix)) return 'absent';
    this.count -= 1;
    const set = this.byPrefix.get(prefix);
    if (set === undefined) return 'empty';
    set.delete(c);
    if (set.size > 0) return 'left';
    this.byPrefix.delete(prefix);
    return 'empty';
  }

  /** No pattern subscription at all on this node (the fast path skips pattern matching entirely). */
  get isEmpty(): boolean {
    return this.byPrefix.size === 0;
  }

  /** Pattern subscriptions on this node. */
  get size(): number {
    return this.count;
  }

  /** Whether some local pattern matches the channel. */
  matchesAny(channel: string): boolean {
    if (this.byPrefix.size === 0) return false;
    let found = false;
    forEachPrefix(channel, (p) => {
      if (!found && this.byPrefix.has(p)) found = true;
    });
    return found;
  }

  /**
   * The members (with their states) of every pattern matching the channel: one map per matching prefix. The
   * array is reused by the next call; use it before calling again.
   */
  matching(channel: string): ReadonlyArray<ReadonlyMap<M, ChannelState>> {
    const out = this.scratch;
    out.length = 0;
    forEachPrefix(channel, (p) => {
      const set = this.byPrefix.get(p);
      if (set !== undefined) out.push(set);
    });
    return out;
  }

  /** Members of one pattern prefix. */
  membersOf(prefix: string): ReadonlyMap<M, ChannelState> | undefined {
    return this.byPrefix.get(prefix);
  }
}
