import { ErrorCode, type RequestId, type StreamPosition } from '@switchboard/protocol';
import { fireAndLog, type CoreContext } from '../context.js';
import { CommandError } from '../frames.js';
import { replayedOutbound, liveOutbound, type Hub } from '../hub/hub.js';
import { matches } from '../patterns.js';
import type { Publication } from '../ports/broker.js';
import type { Access } from './access.js';
import type { Client } from './client.js';

/** Recovery of one concrete channel of a pattern: what the client saw last. */
export type PatternPositions = Record<string, StreamPosition>;

/**
 * Pattern subscriptions (`news:*`, `*`): the join/leave state machine of a connection's patterns, like
 * Subscriptions for channels. A join reserves the pattern in the hub index (buffering publications) before
 * its first await, is authorized as `subscribe` on the pattern name, takes broker pattern interest, then
 * recovers each concrete channel the client lists in `positions` (replayed publications, one `replay_complete`
 * per channel), answers `subscribed {channel, pattern: true}` and goes live. Publications reach the client with
 * their concrete channel, once per connection, only for channels its rules allow (Access.patternAllows).
 */
export class PatternSubscriptions {
  /** Broker pattern subscriptions by prefix (ref-counted by local members). */
  private readonly interest = new Map<string, Promise<void>>();

  constructor(
    private readonly ctx: Pick<CoreContext, 'broker' | 'options' | 'frames' | 'log'>,
    private readonly hub: Hub<Client>,
    private readonly access: Access,
  ) {}

  /** A `join_channel` of a pattern name (its prefix already parsed). */
  join(c: Client, name: string, prefix: string, positions: PatternPositions | undefined, id: RequestId | undefined): void | Promise<void> {
    if (!this.access.checkPattern(c, name, prefix, id)) return;
    const { limits, globalPattern } = this.ctx.options;
    if (prefix === '' && !globalPattern) {
      this.ctx.frames.error(c, ErrorCode.FORBIDDEN, 'The pattern "*" (every channel) is not allowed here (channels.globalPattern)', id);
      return;
    }
    if (c.patterns?.has(prefix)) {
      this.ctx.frames.send(c, 'subscribed', { channel: name, pattern: true }, { channel: name, id });
      return;
    }
    if ((c.patterns?.size ?? 0) >= limits.maxPatternsPerConnection) {
      this.ctx.frames.error(c, ErrorCode.TOO_MANY_CHANNELS, `At most ${limits.maxPatternsPerConnection} pattern subscriptions per connection`, id);
      return;
    }
    const buffer: Publication[] = [];
    this.hub.patterns.add(c, prefix, buffer);
    const allowed = this.access.channel(c, 'subscribe', name, id);
    if (allowed === false) {
      this.release(c, prefix, buffer);
      return;
    }
    if (allowed === true) return this.complete(c, name, prefix, positions, id, buffer);
    return allowed.then((ok) => (ok ? this.complete(c, name, prefix, positions, id, buffer) : this.release(c, prefix, buffer)));
  }

  private async complete(c: Client, name: string, prefix: string, positions: PatternPositions | undefined, id: RequestId | undefined, buffer: Publication[]): Promise<void> {
    try {
      await this.brokerInterest(prefix);
      const recoveries = await this.recover(c, prefix, positions);
      if (c.closed || c.patterns?.get(prefix) !== buffer) return;
      this.ctx.frames.send(c, 'subscribed', { channel: name, pattern: true }, { channel: name, id });
      const last = new Map<string, StreamPosition>();
      for (const r of recoveries) {
        for (const pub of r.replay) c.sink.send(replayedOutbound(pub));
        const offset = r.replay.length > 0 ? r.replay[r.replay.length - 1]!.offset : r.top.offset;
        last.set(r.channel, { offset, epoch: r.top.epoch });
        this.ctx.frames.send(c, 'replay_complete', { channel: r.channel, replayed_count: r.replay.length, recovered: r.recovered, offset, epoch: r.top.epoch }, { channel: r.channel });
      }
      for (const pub of buffer) {
        const seen = last.get(pub.channel);
        if (seen === undefined || pub.epoch !== seen.epoch || pub.offset > seen.offset) c.sink.send(liveOutbound(pub));
      }
      this.hub.patterns.markLive(c, prefix);
    } catch (err) {
      if (!c.closed && c.patterns?.get(prefix) === buffer) this.release(c, prefix, buffer);
      throw err;
    }
  }

  /** Read each listed concrete channel after its position (only channels the pattern matches and the rules allow). */
  private recover(c: Client, prefix: string, positions: PatternPositions | undefined): Promise<Array<{ channel: string; replay: Publication[]; recovered: boolean; top: StreamPosition }>> {
    if (positions === undefined) return Promise.resolve([]);
    const max = this.ctx.options.maxRecoveryPublications;
    const channels = Object.keys(positions).filter((ch) => matches(prefix, ch) && this.access.isValidChannel(ch) && this.access.patternAllows(c, ch));
    return Promise.all(channels.map(async (channel) => {
      const since = positions[channel]!;
      const h = await this.ctx.broker.history(channel, { since, limit: max + 1 });
      const recovered = h.recoverable && h.publications.length <= max;
      return { channel, replay: recovered ? h.publications : [], recovered, top: h.position };
    }));
  }

  private release(c: Client, prefix: string, buffer: Publication[]): void {
    if (c.patterns?.get(prefix) === buffer) this.remove(c, prefix);
  }

  /** A `leave_channel` of a pattern name. */
  leave(c: Client, name: string, prefix: string, id: RequestId | undefined): void {
    if (c.patterns === null || !c.patterns.has(prefix)) {
      this.ctx.frames.error(c, ErrorCode.NOT_SUBSCRIBED, `Not subscribed to "${name.slice(0, 200)}"`, id);
      return;
    }
    this.remove(c, prefix);
    this.ctx.frames.send(c, 'unsubscribed', { channel: name, pattern: true }, { channel: name, id });
  }

  /** Take a pattern from the client; drop broker interest when it was the last local member. */
  remove(c: Client, prefix: string): void {
    if (this.hub.patterns.remove(c, prefix) === 'empty') this.dropInterest(prefix);
  }

  /** Remove every pattern of the client (it closed). */
  removeAll(c: Client): void {
    if (c.patterns === null) return;
    for (const prefix of [...c.patterns.keys()]) this.remove(c, prefix);
  }

  private brokerInterest(prefix: string): Promise<void> {
    const broker = this.ctx.broker;
    if (broker.subscribePattern === undefined) return Promise.reject(new CommandError(ErrorCode.UNAVAILABLE, 'This engine has no pattern subscriptions'));
    let pending = this.interest.get(prefix);
    if (pending === undefined) {
      pending = broker.subscribePattern(prefix).catch((err: unknown) => {
        // e.g. Redis with sharded pub/sub: a final refusal, not an internal error.
        if ((err as { code?: unknown } | null)?.code === ErrorCode.UNAVAILABLE) throw new CommandError(ErrorCode.UNAVAILABLE, (err as Error).message);
        throw err;
      });
      this.interest.set(prefix, pending);
      const mine = pending;
      pending.catch(() => {
        if (this.interest.get(prefix) === mine) this.interest.delete(prefix);
      });
    }
    return pending;
  }

  private dropInterest(prefix: string): void {
    const pending = this.interest.get(prefix);
    if (pending === undefined) return;
    this.interest.delete(prefix);
    const broker = this.ctx.broker;
    fireAndLog(this.ctx.log, pending.then(() => (this.hub.patterns.membersOf(prefix) !== undefined ? undefined : broker.unsubscribePattern?.(prefix))), 'pattern unsubscribe');
  }
}
