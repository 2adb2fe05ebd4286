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

/**
 * One channel subscription. Created by `client.subscribe(channel)`; survives reconnects: the client rejoins
 * with `since` = the position of the last publication seen, so missed publications are replayed
 * (`publication.replayed === true`), duplicates are dropped by seq, and an unrecoverable gap is emitted as
 * `gap`.
 */
export class Subscription extends Emitter<SubscriptionEvents> {
  private _state: SubscriptionState = 'subscribing';
  private readonly tracker = new StreamTracker();
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
  joinData(): { channel: string; since?: StreamPosition } {
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
  handlePublication(frame: ServerFrame): Publication | null {
    if (!this.tracker.accept(frame.seq, frame.epoch)) return null;
    const pub = toPublication(this.channel, frame);
    if (this._state !== 'unsubscribed') this.emit('message', pub);
    return pub;
  }

  /** @internal server `replay_complete` after a recovery. */
  handleReplayComplete(data: { replayed_count?: unknown; recovered?: unknown }): void {
    if (this._state === 'unsubscribed') return;
    this.emit('replay_complete', {
      channel: this.channel,
      replayedCount: typeof data.replayed_count === 'number' ? data.replayed_count : 0,
      recovered: data.recovered !== false,
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
  return pub;
}
