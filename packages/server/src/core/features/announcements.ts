import type { PresenceMember } from '@switchboard/protocol';
import type { CoreContext } from '../context.js';
import { Outbound } from '../outbound.js';
import { KeyedThrottle } from './throttle.js';

/** Joins and leaves of one channel not yet announced. A join and a leave of one connection cancel out. */
interface PendingDiff {
  joins: Map<string, PresenceMember>;
  leaves: Map<string, PresenceMember>;
}

/** Internal marker: "members changed" without an announcement (above the cap, or announcements off). */
const CHANGED = '{"type":"presence_changed"}';

/** Frame prefixes of the presence events this announcer publishes (see BrokerEvents). */
export const PRESENCE_PREFIXES = ['{"type":"presence",', '{"type":"presence_diff"', CHANGED] as const;

/**
 * Join/leave announcements, coalesced: each node collects a channel's joins and leaves and publishes them as
 * ONE event per channel per batch (end of the turn, then at most once per presenceBatchMs while the channel
 * keeps changing): the seed `presence` frame when the batch holds one event, a `presence_diff` frame when it
 * holds several, and only a "changed" marker when announcements are off for the namespace or the channel has
 * more than maxAnnouncedMembers members. Every node fans the announcement out to its live local members and
 * lets the count pusher know. Per batch a member receives at most one announcement per node.
 */
export class PresenceAnnouncer {
  private readonly pending = new Map<string, PendingDiff>();
  /** Publications in flight per channel (kept in order; removed when done). */
  private readonly inFlight = new Map<string, Promise<void>>();
  private readonly throttle: KeyedThrottle;

  constructor(
    private readonly ctx: Pick<CoreContext, 'broker' | 'presence' | 'namespaces' | 'hub' | 'frames' | 'log' | 'now' | 'options'>,
    private readonly onChanged: (channel: string) => void,
  ) {
    this.throttle = new KeyedThrottle((channel) => this.flush(channel), ctx.now);
  }

  joined(channel: string, member: PresenceMember): void {
    this.diff(channel).joins.set(member.connection_id, member);
    this.throttle.request(channel, this.ctx.options.presenceBatchMs);
  }

  left(channel: string, member: PresenceMember): void {
    const diff = this.diff(channel);
    if (!diff.joins.delete(member.connection_id)) diff.leaves.set(member.connection_id, member);
    this.throttle.request(channel, this.ctx.options.presenceBatchMs);
  }

  private diff(channel: string): PendingDiff {
    let d = this.pending.get(channel);
    if (d === undefined) this.pending.set(channel, (d = { joins: new Map(), leaves: new Map() }));
    return d;
  }

  private flush(channel: string): void {
    const diff = this.pending.get(channel);
    this.pending.delete(channel);
    if (diff === undefined || diff.joins.size + diff.leaves.size === 0) return;
    const previous = this.inFlight.get(channel) ?? Promise.resolve();
    const next = previous.then(() => this.publish(channel, diff)).catch((err: unknown) => this.ctx.log.warn({ err, channel }, 'presence announcement failed'));
    this.inFlight.set(channel, next);
    void next.then(() => {
      if (this.inFlight.get(channel) === next) this.inFlight.delete(channel);
    });
  }

  private async publish(channel: string, diff: PendingDiff): Promise<void> {
    const ns = this.ctx.namespaces.of(channel);
    let announce = ns.joinLeave;
    if (announce && ns.maxAnnouncedMembers > 0) announce = (await this.ctx.presence.count(channel)) <= ns.maxAnnouncedMembers;
    if (!announce) {
      if (ns.countIntervalMs > 0) await this.ctx.broker.publishEphemeral(channel, CHANGED);
      return;
    }
    const frames = this.ctx.frames;
    if (diff.joins.size + diff.leaves.size === 1) {
      // One event: the seed `presence` frame exactly as before, not sent to the joiner itself.
      const joined = diff.joins.size === 1;
      const member = first(joined ? diff.joins : diff.leaves);
      const action = joined ? 'joined' : 'left';
      await this.ctx.broker.publishEphemeral(channel, frames.frame('presence', { action, ...member, channel }, { channel }), member.connection_id);
      return;
    }
    const data = { channel, joins: [...diff.joins.values()], leaves: [...diff.leaves.values()] };
    await this.ctx.broker.publishEphemeral(channel, frames.frame('presence_diff', data, { channel }));
  }

  /** An announcement from any node (this one included): deliver it to the live local members. */
  receive(channel: string, frame: string, exclude: string | undefined): void {
    if (frame !== CHANGED) this.ctx.hub.fanOut(channel, new Outbound(frame, frame.startsWith(PRESENCE_PREFIXES[0]) ? 'presence' : 'presence_diff'), exclude);
    this.onChanged(channel);
  }

  /** Publish everything pending now (shutdown), and wait for it. */
  async flushAll(): Promise<void> {
    this.throttle.flushAll();
    await Promise.all(this.inFlight.values());
  }

  /** Bounded memory: forget batch timing of channels quiet for a while (the node's sweep). */
  prune(now: number): void {
    this.throttle.prune(now, Math.max(1000, this.ctx.options.presenceBatchMs * 2));
  }

  close(): void {
    this.throttle.close();
  }
}

function first<T>(map: Map<string, T>): T {
  return map.values().next().value as T;
}
