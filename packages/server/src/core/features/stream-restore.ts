import type { CoreContext } from '../context.js';

/** How long a restored channel is remembered after its last use (then restored again on next use). */
const IDLE_MS = 60_000;

/**
 * Durable channels continue their numbering across restarts: before this node first touches a persisted
 * channel, the broker's stream is seeded from the archive's newest record (engines that keep streams
 * themselves may ignore it; a stream that already has publications is left alone, so restoring twice is
 * harmless). Remembered per channel while used; `prune` forgets channels idle for a minute, so probing many
 * channel names leaves nothing behind.
 */
export class StreamRestore {
  private readonly restored = new Map<string, { done: Promise<void>; usedAt: number }>();

  constructor(private readonly ctx: Pick<CoreContext, 'broker' | 'namespaces' | 'durability' | 'now'>) {}

  /** Resolves once the channel's stream is restored; undefined when there is nothing to wait for (most channels). */
  ensure(channel: string): Promise<void> | undefined {
    const durability = this.ctx.durability;
    const restore = this.ctx.broker.restorePosition;
    if (restore === undefined || durability === null || !durability.hasArchive || !this.ctx.namespaces.of(channel).persist) return undefined;
    const now = this.ctx.now();
    const known = this.restored.get(channel);
    if (known !== undefined) {
      known.usedAt = now;
      return known.done;
    }
    const done = durability.latest(channel).then((pos) => (pos === null ? undefined : restore.call(this.ctx.broker, channel, pos)));
    const entry = { done, usedAt: now };
    this.restored.set(channel, entry);
    done.catch(() => {
      if (this.restored.get(channel) === entry) this.restored.delete(channel);
    });
    return done;
  }

  /** Forget channels not used for a while (called by the node's sweep). */
  prune(now: number): void {
    for (const [channel, entry] of this.restored) if (now - entry.usedAt > IDLE_MS) this.restored.delete(channel);
  }

  get size(): number {
    return this.restored.size;
  }
}
