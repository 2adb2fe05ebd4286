import type { CoreContext } from '../context.js';
import { Outbound } from '../outbound.js';
import { KeyedThrottle } from './throttle.js';

/**
 * Member counts pushed to a channel's members (seed 004 "rooms with user counts"): when a node learns that a
 * channel's members changed (any node's announcement or marker), it reads the cluster-wide count once and
 * sends `presence_count` to its live local members — at most once per the namespace's countIntervalMs per
 * channel, and only when the count differs from the last one it pushed.
 */
export class PresenceCounts {
  private readonly throttle: KeyedThrottle;
  /** Last count pushed per channel with local members. */
  private readonly last = new Map<string, number>();

  constructor(private readonly ctx: Pick<CoreContext, 'presence' | 'namespaces' | 'hub' | 'frames' | 'log' | 'now'>) {
    this.throttle = new KeyedThrottle((channel) => void this.push(channel), ctx.now);
  }

  /** The channel's members changed somewhere in the cluster. */
  changed(channel: string): void {
    const interval = this.ctx.namespaces.of(channel).countIntervalMs;
    if (interval > 0 && this.ctx.hub.hasChannel(channel)) this.throttle.request(channel, interval);
  }

  private async push(channel: string): Promise<void> {
    if (!this.ctx.hub.hasChannel(channel)) return;
    let members: number;
    try {
      members = await this.ctx.presence.count(channel);
    } catch (err) {
      this.ctx.log.warn({ err, channel }, 'presence count failed');
      return;
    }
    if (this.last.get(channel) === members || !this.ctx.hub.hasChannel(channel)) return;
    this.last.set(channel, members);
    this.ctx.hub.fanOut(channel, new Outbound(this.ctx.frames.frame('presence_count', { channel, members }, { channel }), 'presence_count'), undefined);
  }

  /** Bounded memory: forget channels without local members, and batch timing of quiet ones. */
  prune(now: number): void {
    for (const channel of this.last.keys()) if (!this.ctx.hub.hasChannel(channel)) this.last.delete(channel);
    this.throttle.prune(now, 60_000);
  }

  close(): void {
    this.throttle.close();
  }
}
