import type { ChannelState, Member } from './member.js';
import { forEachPrefix } from '../patterns.js';

/**
 * Local members of pattern subscriptions, by prefix (`news:` for `news:*`), with the same states as channel
 * members (a buffer while the subscription is joining, null when live). Lookup of the patterns matching a
 * channel is by its prefixes: O(number of `:` in the name), never a scan.
 */
export class PatternIndex<M extends Member> {
  private readonly byPrefix = new Map<string, Set<M>>();
  private count = 0;

  /** Add a member's pattern; true if the prefix had no local member before. */
  add(c: M, prefix: string, state: ChannelState): boolean {
    if (c.patterns === null) c.patterns = new Map();
    c.patterns.set(prefix, state);
    this.count += 1;
    let set = this.byPrefix.get(prefix);
    const first = set === undefined;
    if (set === undefined) this.byPrefix.set(prefix, (set = new Set()));
    set.add(c);
    return first;
  }

  markLive(c: M, prefix: string): void {
    c.patterns?.set(prefix, null);
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

  /** Calls `fn(member, state, prefix)` for every member of every pattern matching the channel. */
  forEachMatch(channel: string, fn: (c: M, state: ChannelState, prefix: string) => void): void {
    forEachPrefix(channel, (p) => {
      const set = this.byPrefix.get(p);
      if (set === undefined) return;
      for (const c of set) fn(c, c.patterns!.get(p)!, p);
    });
  }

  /** Members of one pattern prefix. */
  membersOf(prefix: string): ReadonlySet<M> | undefined {
    return this.byPrefix.get(prefix);
  }
}
