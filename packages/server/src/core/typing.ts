/** One user typing in one channel. */
export interface TypingEntry {
  username: string | null;
  expiresAt: number;
}

/**
 * Who is typing where, on this node. Every node applies every typing event (they travel as ephemeral
 * channel events), so all nodes agree on `typing_users`; each node expires entries itself.
 */
export class TypingTracker {
  private readonly channels = new Map<string, Map<string, TypingEntry>>();

  constructor(private readonly timeoutMs: number) {}

  /** Record a start (refreshing the expiry) or a stop. */
  apply(channel: string, actor: string, username: string | null, isTyping: boolean, now: number): void {
    let state = this.channels.get(channel);
    if (isTyping) {
      if (state === undefined) this.channels.set(channel, (state = new Map()));
      state.set(actor, { username, expiresAt: now + this.timeoutMs });
    } else if (state !== undefined) {
      state.delete(actor);
      if (state.size === 0) this.channels.delete(channel);
    }
  }

  isTyping(channel: string, actor: string): boolean {
    return this.channels.get(channel)?.has(actor) ?? false;
  }

  /** Actors typing in the channel, in the order they started. */
  users(channel: string): string[] {
    return [...(this.channels.get(channel)?.keys() ?? [])];
  }

  /** Remove and return the entries that expired by `now`. */
  expire(now: number): Array<{ channel: string; actor: string; username: string | null }> {
    const out: Array<{ channel: string; actor: string; username: string | null }> = [];
    for (const [channel, state] of this.channels) {
      for (const [actor, entry] of state) {
        if (entry.expiresAt > now) continue;
        state.delete(actor);
        out.push({ channel, actor, username: entry.username });
      }
      if (state.size === 0) this.channels.delete(channel);
    }
    return out;
  }
}
