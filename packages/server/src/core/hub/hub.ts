import type { Publication } from '../ports/broker.js';
import type { NodeMetrics } from '../ports/observability.js';
import { Outbound, withPosition } from '../outbound.js';
import type { ChannelState, Member } from './member.js';
import { PatternIndex } from './pattern-index.js';
import { SessionRegistry } from './session-registry.js';

/** A local connection as the admin API lists it. */
export interface ConnectionSummary {
  connection_id: string;
  user_id: string | null;
  username: string | null;
  channels: string[];
  connected_at: string;
  remote_address: string;
  transport: string;
}

/**
 * The node's index and fan-out (centrifuge's hub.go): live connections by connection, client and user id, the
 * local members of every channel, and the loops that queue one pre-serialized Outbound on many sinks.
 * Nothing else: no frames are built here beyond splicing a publication's position, no I/O, no awaits.
 *
 * Fan-out: a publication is serialized once (by the publishing node), its seq spliced in once per node, and
 * the same Outbound is queued on every live member's sink; sinks coalesce writes per tick (ADR 0001).
 * Members still joining get the publication buffered on their channel state instead.
 */
export class Hub<M extends Member = Member> {
  readonly sessions = new SessionRegistry<M>();
  private readonly members = new Map<string, Set<M>>();
  /** Pattern subscriptions (`news:*`) by prefix. */
  readonly patterns = new PatternIndex<M>();
  private patternAudience: PatternAudience = () => EVERYONE;
  private subscriptionCount = 0;
  private deliveryMark = 0;

  constructor(private readonly metrics: NodeMetrics) {}

  /**
   * Who may receive a publication of `channel` through one of their patterns: `audience(channel)` is asked
   * once per publication that matches a local pattern and returns the per-connection test (the channel rules,
   * decided synchronously by the client layer). Default: everybody.
   */
  setPatternAudience(audience: (channel: string) => (c: M) => boolean): void {
    this.patternAudience = audience as PatternAudience;
  }

  /**
   * Put a client in a channel with the given state (a buffer while joining, null when live). Returns true if
   * it is the channel's first local member. The client must not be in the channel yet.
   */
  addMember(c: M, channel: string, state: ChannelState): boolean {
    if (c.channels === null) c.channels = new Map();
    c.channels.set(channel, state);
    this.subscriptionCount += 1;
    let set = this.members.get(channel);
    const first = set === undefined;
    if (set === undefined) this.members.set(channel, (set = new Set()));
    set.add(c);
    return first;
  }

  /** Mark a joining member live. */
  markLive(c: M, channel: string): void {
    c.channels?.set(channel, null);
  }

  /**
   * Take a client out of a channel. Returns 'absent' if it was not in it, 'empty' if the channel has no local
   * member left, else 'left'.
   */
  removeMember(c: M, channel: string): 'absent' | 'left' | 'empty' {
    if (c.channels === null || !c.channels.delete(channel)) return 'absent';
    this.subscriptionCount -= 1;
    const set = this.members.get(channel);
    if (set === undefined) return 'empty';
    set.delete(c);
    if (set.size > 0) return 'left';
    this.members.delete(channel);
    return 'empty';
  }

  /** The channel has at least one local member (live or joining). */
  hasChannel(channel: string): boolean {
    return this.members.has(channel);
  }

  /** Local members of a channel (live and joining); undefined when none. */
  membersOf(channel: string): ReadonlySet<M> | undefined {
    return this.members.get(channel);
  }

  channelNames(): string[] {
    return [...this.members.keys()];
  }

  /** Local members (live and joining) per channel, largest first, at most `limit` channels. */
  channelSizes(limit: number): Array<[string, number]> {
    const out: Array<[string, number]> = [];
    for (const [name, set] of this.members) out.push([name, set.size]);
    out.sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
    return out.length > limit ? out.slice(0, limit) : out;
  }

  get channelCount(): number {
    return this.members.size;
  }

  get subscriptions(): number {
    return this.subscriptionCount;
  }

  /** Every local connection, for the admin API. */
  summaries(): ConnectionSummary[] {
    return [...this.sessions.values()].map((c) => ({
      connection_id: c.id,
      user_id: c.userId,
      username: c.identity.username,
      channels: [...(c.channels?.keys() ?? []), ...[...(c.patterns?.keys() ?? [])].map((p) => `${p}*`)],
      connected_at: new Date(c.connectedAt).toISOString(),
      remote_address: c.remoteAddress,
      transport: c.sink.kind,
    }));
  }

  /** Queue `out` on every live member of the channel except connection `exclude`. */
  fanOut(channel: string, out: Outbound, exclude: string | undefined): void {
    this.fanOutExcept(channel, out, exclude === undefined ? NOBODY : (m) => m.id === exclude);
  }

  /** Queue `out` on every live member of the channel for which `skip` is false. */
  fanOutExcept(channel: string, out: Outbound, skip: (m: M) => boolean): void {
    const set = this.members.get(channel);
    if (set === undefined) return;
    let n = 0;
    for (const c of set) {
      if (c.channels!.get(channel) !== null || skip(c)) continue;
      c.sink.send(out);
      n++;
    }
    this.metrics.messagesOut(out.type, n);
  }

  /**
   * Deliver a publication to live members and, once per connection, to live members of patterns matching its
   * channel (unless they are in the channel itself or the pattern filter says no); buffer it on members still
   * joining.
   */
  deliver(pub: Publication, replayed: boolean): void {
    const set = this.members.get(pub.channel);
    const patterns = !this.patterns.isEmpty;
    if (set === undefined && !patterns) return;
    const out = replayed ? replayedOutbound(pub) : liveOutbound(pub);
    let delivered = 0;
    if (set !== undefined) {
      for (const c of set) {
        if (c.id === pub.excludeConnectionId) continue;
        const state = c.channels!.get(pub.channel);
        if (state === null) {
          c.sink.send(out);
          delivered++;
        } else if (state !== undefined) {
          state.push(pub);
        }
      }
    }
    if (patterns) delivered += this.deliverToPatterns(pub, out, set !== undefined);
    this.metrics.messagesOut('message', delivered);
  }

  /**
   * Pattern members get the publication once per connection: a connection in the channel itself got it above
   * (checked only when the channel has local members), one holding several matching patterns gets it once
   * (marked only when several patterns match). Authorization is asked once per publication (`allows`).
   */
  private deliverToPatterns(pub: Publication, out: Outbound, channelHasMembers: boolean): number {
    const sets = this.patterns.matching(pub.channel);
    if (sets.length === 0) return 0;
    const mark = sets.length > 1 ? ++this.deliveryMark : 0;
    const channel = pub.channel;
    const exclude = pub.excludeConnectionId;
    const allows = this.patternAudience(channel);
    let delivered = 0;
    const visit = (state: ChannelState, c: M): void => {
      if (c.id === exclude) return;
      if (mark !== 0) {
        if (c.deliveryMark === mark) return;
        c.deliveryMark = mark;
      }
      if (channelHasMembers && c.channels !== null && c.channels.has(channel)) return;
      if (!allows(c)) return;
      if (state === null) {
        c.sink.send(out);
        delivered++;
      } else {
        state.push(pub);
      }
    };
    for (let i = 0; i < sets.length; i++) sets[i]!.forEach(visit);
    return delivered;
  }

  /** Queue `out` on every local connection of a user; returns how many. */
  toUser(userId: string, out: Outbound): number {
    const set = this.sessions.ofUser(userId);
    if (set === undefined) return 0;
    for (const c of set) c.sink.send(out);
    this.metrics.messagesOut(out.type, set.size);
    return set.size;
  }

  /** Queue `out` on every local connection. */
  toAll(out: Outbound): void {
    for (const c of this.sessions.values()) c.sink.send(out);
    this.metrics.messagesOut(out.type, this.sessions.size);
  }
}

const NOBODY = (): boolean => false;

type PatternAudience = (channel: string) => (c: Member) => boolean;
const EVERYONE = (): boolean => true;

/** A live publication as a frame: `seq`/`epoch` spliced in once per node. */
export function liveOutbound(pub: Publication): Outbound {
  return new Outbound(withPosition(pub.frame, pub.offset, pub.epoch), 'message', pub.offset, pub.channel, pub.epoch);
}

/** A publication delivered by a recovery or re-sync (`"replayed": true`). */
export function replayedOutbound(pub: Publication): Outbound {
  return new Outbound(withPosition(pub.frame, pub.offset, pub.epoch, true), 'message', pub.offset, pub.channel, pub.epoch);
}
