import type { PresenceDiffFrameData, PresenceFrameData, PresenceMember, ServerFrame, StreamPosition, SubscribedFrameData, TypingFrameData } from '@switchboard/protocol';
import { Emitter } from './emitter.js';
import { SwitchboardError, type SubscriptionError } from './errors.js';
import { StreamTracker } from './stream-tracker.js';
import type { MembersEvent, Publication, SubscriptionEvents } from './types.js';

/**
 * State of a subscription. `subscribing` also covers waiting for a reconnect to resubscribe and waiting to
 * retry a join refused with a temporary error; `unsubscribed` is final (unsubscribe() or a final refusal).
 */
export type SubscriptionState = 'subscribing' | 'subscribed' | 'unsubscribed';

/** What a Subscription needs from its client (implemented by SwitchboardClient; avoids an import cycle). */
export interface SubscriptionHost {
  leave(sub: Subscription): void;
}

/** Concrete channels a pattern subscription remembers positions of (the most recently active ones). */
const PATTERN_POSITIONS = 100;

/** The prefix of a pattern name (`news:*` -> `news:`, `*` -> ``), or null for a plain channel name. */
export function patternPrefix(name: string): string | null {
  if (!name.endsWith('*')) return null;
  const prefix = name.slice(0, -1);
  return !prefix.includes('*') && (prefix === '' || prefix.endsWith(':')) ? prefix : null;
}

/**
 * One channel subscription. Created by `client.subscribe(channel)`; survives reconnects: the client rejoins
 * with `since` = the position of the last publication seen, so missed publications are replayed
 * (`publication.replayed === true`), duplicates are dropped by seq, and an unrecoverable gap is emitted as
 * `gap`.
 *
 * A pattern subscription (`client.subscribe('news:*')`) receives the publications of every matching channel,
 * each with its concrete `channel`; it keeps a position per concrete channel (the 100 most recently active)
 * and rejoins with them, so each of those channels is recovered like a plain subscription (a `gap` and a
 * `replay_complete` per concrete channel).
 */
export class Subscription extends Emitter<SubscriptionEvents> {
  private _state: SubscriptionState = 'subscribing';
  private readonly tracker = new StreamTracker();
  /** Pattern subscriptions: the prefix (`news:` for `news:*`), else null. */
  readonly pattern: string | null;
  /** Pattern subscriptions: a tracker per concrete channel, most recently active last. */
  private readonly trackers = new Map<string, StreamTracker>();
  private _recovered: boolean | undefined = undefined;
  private _members = 0;
  private joinedOnce = false;
  private readyPromise: Promise<void> | null = null;
  private readyResolve: (() => void) | null = null;
  private readyReject: ((e: SwitchboardError) => void) | null = null;
  /** Why the subscription ended, if a join was refused for good (later `ready()` calls reject with it). */
  private endError: SwitchboardError | null = null;

  /**
   * @param recover false: never rejoin with `since` (channels without a publication stream, such as the
   * `$users` subscription of the `userEvents` option).
   */
  constructor(
    readonly channel: string,
    private readonly host: SubscriptionHost,
    private readonly recover = true,
  ) {
    super();
    this.pattern = patternPrefix(channel);
  }

  /** Whether this is a pattern subscription matching `channel` (a concrete channel name). */
  matches(channel: string): boolean {
    return this.pattern !== null && channel.length > this.pattern.length && channel.startsWith(this.pattern);
  }

  get state(): SubscriptionState {
    return this._state;
  }

  /** Position of the last publication seen (sent as `since` on resubscribe); null before the first join. */
  get position(): StreamPosition | null {
    return this.tracker.position;
  }

  /** `recovered` of the last resubscribe: true = nothing lost, false = gap, undefined = fresh join. */
  get recovered(): boolean | undefined {
    return this._recovered;
  }

  /**
   * Connections in the channel: the server's count at each (re)join, then +1/-1 per `presence` event, and
   * set to the server's value by each `presence_count` frame (authoritative). Changes emit `members`.
   */
  get members(): number {
    return this._members;
  }

  /**
   * Resolves once the first join succeeded (temporary refusals are retried meanwhile); rejects with the
   * SubscriptionError if the join was refused for good, or NOT_SUBSCRIBED if it was unsubscribed first.
   */
  ready(): Promise<void> {
    if (this.joinedOnce) return Promise.resolve();
    if (this._state === 'unsubscribed') return Promise.reject(this.endError ?? new SwitchboardError('NOT_SUBSCRIBED', `not subscribed to ${this.channel}`));
    this.readyPromise ??= new Promise<void>((resolve, reject) => {
      this.readyResolve = resolve;
      this.readyReject = reject;
    });
    return this.readyPromise;
  }

  /** Leaves the channel. The subscription stops receiving events. */
  unsubscribe(): void {
    if (this._state === 'unsubscribed') return;
    this.host.leave(this);
  }

  // ---- called by the client -------------------------------------------------------------------------

  /** @internal data of the join frame to send now. */
  joinData(): { channel: string; since?: StreamPosition; positions?: Record<string, StreamPosition> } {
    if (this.pattern !== null) {
      if (!this.joinedOnce || !this.recover || this.trackers.size === 0) return { channel: this.channel };
      const positions: Record<string, StreamPosition> = {};
      for (const [ch, t] of this.trackers) if (t.position !== null) positions[ch] = t.position;
      return { channel: this.channel, positions };
    }
    const since = this.joinedOnce && this.recover ? this.tracker.position : null;
    return since ? { channel: this.channel, since } : { channel: this.channel };
  }

  /** @internal the connection dropped: a resubscribe will follow. */
  markPending(): void {
    if (this._state !== 'unsubscribed') this._state = 'subscribing';
  }

  /** @internal `subscribed` reply to a join sent with `asked` as since (null on a fresh join). */
  handleSubscribed(data: SubscribedFrameData, asked: StreamPosition | null): void {
    if (this._state === 'unsubscribed') return;
    if (this.pattern !== null) {
      const resubscribed = this.joinedOnce;
      this._state = 'subscribed';
      this.joinedOnce = true;
      this.emit('subscribed', { channel: this.channel, resubscribed, recovered: undefined, members: 0, position: { offset: 0, epoch: '' }, pattern: true });
      if (this.readyResolve) {
        this.readyResolve();
        this.readyResolve = this.readyReject = null;
      }
      return;
    }
    const top: StreamPosition = { offset: data.offset, epoch: data.epoch };
    const resubscribed = this.joinedOnce;
    let recovered = data.recovered;
    if (asked !== null && recovered === undefined && asked.epoch !== data.epoch) recovered = false;
    if (asked === null) {
      this.tracker.initialize(top);
    } else if (recovered === false) {
      this.tracker.reset(top);
    }
    this._recovered = asked === null ? undefined : recovered;
    const membersBefore = this._members;
    this._members = typeof data.members === 'number' ? data.members : this._members;
    this._state = 'subscribed';
    this.joinedOnce = true;
    this.emit('subscribed', { channel: this.channel, resubscribed, recovered: this._recovered, members: this._members, position: top });
    this.emitMembers(membersBefore, 'subscribed');
    if (recovered === false) this.emit('gap', { channel: this.channel, since: asked, position: top });
    if (this.readyResolve) {
      this.readyResolve();
      this.readyResolve = this.readyReject = null;
    }
  }

  /** @internal an error that does not end the subscription (a join that will be retried, a channel error). */
  handleError(error: SubscriptionError): void {
    if (this._state === 'unsubscribed') return;
    this.emit('error', error);
  }

  /** @internal the join was refused for good: the subscription ends. */
  handleRefused(error: SubscriptionError): void {
    if (this._state === 'unsubscribed') return;
    this._state = 'unsubscribed';
    this.endError = error;
    this.emit('error', error);
    if (this.readyReject) {
      this.readyReject(error);
      this.readyResolve = this.readyReject = null;
    }
    this.emit('unsubscribed', { channel: this.channel });
  }

  /** @internal the client left the channel (or was closed for good). */
  handleEnded(): void {
    if (this._state === 'unsubscribed') return;
    this._state = 'unsubscribed';
    if (this.readyReject) {
      this.readyReject(new SwitchboardError('NOT_SUBSCRIBED', `unsubscribed from ${this.channel} before the join completed`));
      this.readyResolve = this.readyReject = null;
    }
    this.emit('unsubscribed', { channel: this.channel });
  }

  /** @internal returns the publication if it is new (and emits it), null if it is a duplicate. */
  handlePublication(frame: ServerFrame, channel = this.channel): Publication | null {
    if (!this.trackerOf(channel).accept(frame.seq, frame.epoch)) return null;
    const pub = toPublication(channel, frame);
    if (this._state !== 'unsubscribed') this.emit('message', pub);
    return pub;
  }

  /** The position tracker of a channel: the subscription's own, or (patterns) the concrete channel's. */
  private trackerOf(channel: string): StreamTracker {
    if (this.pattern === null) return this.tracker;
    let t = this.trackers.get(channel);
    if (t === undefined) t = new StreamTracker();
    else this.trackers.delete(channel);
    this.trackers.set(channel, t); // most recently active last
    if (this.trackers.size > PATTERN_POSITIONS) this.trackers.delete(this.trackers.keys().next().value as string);
    return t;
  }

  /** @internal server `replay_complete` after a recovery (for a pattern: of one concrete `channel`). */
  handleReplayComplete(data: { replayed_count?: unknown; recovered?: unknown; offset?: unknown; epoch?: unknown }, channel = this.channel): void {
    if (this._state === 'unsubscribed') return;
    const recovered = data.recovered !== false;
    if (this.pattern !== null && !recovered && typeof data.offset === 'number' && typeof data.epoch === 'string') {
      // The concrete channel's gap: continue from the server's position, tell the app.
      const position = { offset: data.offset, epoch: data.epoch };
      const since = this.trackers.get(channel)?.position ?? null;
      this.trackerOf(channel).reset(position);
      this.emit('gap', { channel, since, position });
    }
    this.emit('replay_complete', {
      channel,
      replayedCount: typeof data.replayed_count === 'number' ? data.replayed_count : 0,
      recovered,
    });
  }

  /** @internal a single `presence` frame. */
  handlePresence(data: PresenceFrameData): void {
    const before = this._members;
    this.applyPresence(data);
    this.emitMembers(before, 'presence');
  }

  /**
   * @internal a `presence_diff`: one `presence` event per member, as single frames would have given, leaves
   * first (a batch's joins are usually the newer state, e.g. a reconnect's new connection), then one
   * `members` event if the count changed. The diff is the same for every member and may list this connection
   * itself (`self`): skipped, as a single frame about oneself is never sent.
   */
  handlePresenceDiff(data: PresenceDiffFrameData, self: string | null): void {
    const before = this._members;
    for (const [action, list] of [['left', data.leaves], ['joined', data.joins]] as const) {
      if (!Array.isArray(list)) continue;
      for (const m of list as PresenceMember[]) {
        if (!m || typeof m !== 'object' || m.connection_id === self) continue;
        this.applyPresence({ action, connection_id: m.connection_id, user_id: m.user_id ?? null, username: m.username ?? null, channel: this.channel });
      }
    }
    this.emitMembers(before, 'presence');
  }

  /** @internal a `presence_count` frame: the server's count replaces ours. */
  handleCount(members: number): void {
    if (!Number.isFinite(members) || members < 0) return;
    const before = this._members;
    this._members = members;
    this.emitMembers(before, 'count');
  }

  private applyPresence(data: PresenceFrameData): void {
    if (data.action === 'joined') this._members++;
    else this._members = Math.max(0, this._members - 1);
    this.emit('presence', data);
  }

  private emitMembers(before: number, source: MembersEvent['source']): void {
    if (this._members !== before) this.emit('members', { channel: this.channel, members: this._members, source });
  }

  /** @internal */
  handleTyping(data: TypingFrameData): void {
    this.emit('typing', { ...data, channel: this.channel });
  }
}

/** Converts a channel `message` frame to a Publication. */
export function toPublication(channel: string, frame: ServerFrame): Publication {
  const pub: Publication = {
    channel,
    data: frame.data,
    senderId: frame.sender_id ?? null,
    timestamp: frame.timestamp,
    messageId: frame.message_id,
    replayed: frame.replayed === true,
    frame,
  };
  if (typeof frame.seq === 'number') pub.seq = frame.seq;
  if (typeof frame.epoch === 'string') pub.epoch = frame.epoch;
  const binary = binaryOf(frame.data);
  if (binary !== null) pub.binary = binary;
  return pub;
}

/** Keys a binary publication's data may carry besides `binary` (the server adds them to every publication). */
const BINARY_KEYS = new Set(['binary', 'channel', 'user_id', 'username']);

/** The bytes of publication data that is exactly `{binary: "<base64>"}` (plus the server's keys), else null. */
export function binaryOf(data: unknown): Uint8Array | null {
  if (data === null || typeof data !== 'object') return null;
  const d = data as Record<string, unknown>;
  if (typeof d.binary !== 'string') return null;
  for (const k of Object.keys(d)) if (!BINARY_KEYS.has(k)) return null;
  return decodeBase64(d.binary);
}

/** Standard base64 to bytes (atob: browsers and Node >= 16); null when malformed. */
function decodeBase64(s: string): Uint8Array | null {
  let text: string;
  try {
    text = atob(s);
  } catch {
    return null;
  }
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i);
  return out;
}
