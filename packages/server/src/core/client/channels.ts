import { ErrorCode, type RequestId, type StreamPosition } from '@switchboard/protocol';
import { fireAndLog, type CoreContext } from '../context.js';
import type { ChannelContinuity } from '../features/continuity.js';
import type { Presence } from '../features/presence.js';
import type { StreamRestore } from '../features/stream-restore.js';
import type { Typing } from '../features/typing.js';
import { liveOutbound, replayedOutbound } from '../hub/hub.js';
import type { Publication } from '../ports/broker.js';
import { UNKNOWN_EPOCH } from '../ports/session-port.js';
import type { Access } from './access.js';
import type { Client } from './client.js';

/** What a join needs besides the shared context. */
export interface ChannelDeps {
  access: Access;
  presence: Presence;
  typing: Typing;
  continuity: ChannelContinuity;
  restore: StreamRestore;
}

/**
 * The join/leave state machine of a connection's channels.
 *
 * join: name check -> duplicate? (answer with the current state) -> channel limit -> RESERVE the slot
 * synchronously (member in the hub index, state = a buffer for live publications) -> authorization (sync when
 * the hook is) -> broker interest, recovery read -> presence -> `subscribed`, replay, buffered publications
 * (de-duplicated by offset) -> live. Since the reservation precedes the first await, limits hold even for
 * joins started by the server while the client's own commands run, and a publication that arrives during
 * the join is buffered, never lost. Any failure after the reservation releases it.
 */
export class Subscriptions {
  /** Broker subscriptions by channel (ref-counted by local membership). */
  private readonly interest = new Map<string, Promise<void>>();

  constructor(
    private readonly ctx: Pick<CoreContext, 'hub' | 'broker' | 'namespaces' | 'options' | 'hooks' | 'durability' | 'frames' | 'log'>,
    private readonly deps: ChannelDeps,
  ) {}

  /** A `join_channel` command (client or server initiated). */
  join(c: Client, channel: string, since: StreamPosition | undefined, id: RequestId | undefined): void | Promise<void> {
    if (!this.deps.access.checkChannel(c, channel, id)) return;
    if (c.inChannel(channel)) return this.answerDuplicate(c, channel, id);
    const max = this.ctx.options.limits.maxChannelsPerConnection;
    if (c.channelCount >= max) {
      this.ctx.frames.error(c, ErrorCode.TOO_MANY_CHANNELS, `At most ${max} channels per connection`, id);
      return;
    }
    const buffer: Publication[] = [];
    this.ctx.hub.addMember(c, channel, buffer);
    const allowed = this.deps.access.channel(c, 'subscribe', channel, id);
    if (allowed === false) {
      this.release(c, channel, buffer);
      return;
    }
    if (allowed === true) return this.complete(c, channel, since, id, buffer);
    return allowed.then((ok) => (ok ? this.complete(c, channel, since, id, buffer) : this.release(c, channel, buffer)));
  }

  /** Joining a channel the client is in is answered with the current state, under the new request's id. */
  private async answerDuplicate(c: Client, channel: string, id: RequestId | undefined): Promise<void> {
    const position = await this.ctx.broker.position(channel);
    const members = await this.deps.presence.count(channel);
    this.ctx.frames.send(c, 'subscribed', { channel, offset: position.offset, epoch: position.epoch, members }, { channel, id });
  }

  private async complete(c: Client, channel: string, since: StreamPosition | undefined, id: RequestId | undefined, buffer: Publication[]): Promise<void> {
    const ns = this.ctx.namespaces.of(channel);
    let announced = false;
    try {
      const restoring = this.deps.restore.ensure(channel);
      if (restoring !== undefined) await restoring;
      // Closed or left while authorizing or restoring: take no broker interest for a channel nobody joins.
      if (!this.stillJoining(c, channel, buffer)) return;
      await this.brokerInterest(channel);
      const broker = this.ctx.broker;
      let position: StreamPosition;
      let replay: Publication[] = [];
      let recovered: boolean | undefined;
      /** Where the frames after `subscribed` continue from: the head, or 0 when a new epoch is replayed from its start. */
      let from: number | undefined;
      if (since !== undefined && since.epoch === '') {
        // Seed 001 form (`?last_sequence=N` without an epoch): assume the stream was not reset.
        since = { offset: since.offset, epoch: (await broker.position(channel)).epoch };
      }
      if (since !== undefined && since.epoch === UNKNOWN_EPOCH) {
        // The transport could not read the client's position: nothing can be proven missed or already seen.
        position = await broker.position(channel);
        recovered = false;
      } else if (since !== undefined) {
        const max = this.ctx.options.maxRecoveryPublications;
        const h = await broker.history(channel, { since, limit: max + 1 });
        position = h.position;
        recovered = h.recoverable && h.publications.length <= max;
        const durability = this.ctx.durability;
        if (recovered) {
          replay = h.publications;
        } else if (ns.persist && durability !== null && durability.hasArchive) {
          const archived = await durability.recover(channel, since, position, max);
          if (archived !== null) {
            recovered = true;
            replay = archived;
          }
        }
        if (!recovered && position.epoch !== since.epoch) {
          // The client's stream is gone (a new epoch: history expired, broker restarted without persistence).
          // Every publication of the new epoch is one it has not seen: after the `recovered: false` notice,
          // deliver them from offset 1 when the window still holds them all.
          const fresh = await broker.history(channel, { since: { offset: 0, epoch: position.epoch }, limit: max + 1 });
          position = fresh.position;
          if (fresh.recoverable && fresh.publications.length <= max) {
            replay = fresh.publications;
            from = 0;
          }
        }
      } else if (ns.snapshot) {
        const h = await broker.history(channel, { limit: 1 });
        position = h.position;
        replay = h.publications;
      } else {
        position = await broker.position(channel);
      }
      const snapshot = ns.snapshot && this.ctx.hooks.snapshot !== undefined ? await this.ctx.hooks.snapshot(channel) : null;
      if (!this.stillJoining(c, channel, buffer)) return;
      announced = true;
      await this.deps.presence.joined(c, channel);
      const members = await this.deps.presence.count(channel);
      if (!this.stillJoining(c, channel, buffer)) {
        this.deps.presence.left(c, channel); // left or closed while presence was being written
        return;
      }
      const subscribed: Record<string, unknown> = { channel, offset: from ?? position.offset, epoch: position.epoch, members };
      if (recovered !== undefined) subscribed.recovered = recovered;
      this.ctx.frames.send(c, 'subscribed', subscribed, { channel, id });
      if (snapshot !== null) this.ctx.frames.send(c, 'snapshot', snapshot, { channel });
      let last = position.offset;
      for (const pub of replay) c.sink.send(since !== undefined ? replayedOutbound(pub) : liveOutbound(pub));
      if (replay.length > 0) last = replay[replay.length - 1]!.offset;
      if (since !== undefined) {
        this.ctx.frames.send(c, 'replay_complete', { channel, replayed_count: replay.length, recovered, offset: last, epoch: position.epoch }, { channel });
      }
      for (const pub of buffer) {
        if ((pub.epoch !== position.epoch || pub.offset > last) && pub.excludeConnectionId !== c.id) c.sink.send(liveOutbound(pub));
      }
      this.ctx.hub.markLive(c, channel);
      this.deps.continuity.joined(channel, position);
    } catch (err) {
      if (this.stillJoining(c, channel, buffer)) this.release(c, channel, buffer);
      if (announced) this.deps.presence.left(c, channel);
      throw err;
    }
  }

  /** The join is still the current one (not left or closed meanwhile). */
  private stillJoining(c: Client, channel: string, buffer: Publication[]): boolean {
    return !c.closed && c.channels?.get(channel) === buffer;
  }

  /** Undo a reservation that did not become a membership. */
  private release(c: Client, channel: string, buffer: Publication[]): void {
    if (c.channels?.get(channel) === buffer) this.remove(c, channel, false);
  }

  /** A `leave_channel` command. */
  leave(c: Client, channel: string, id: RequestId | undefined): void {
    if (!c.inChannel(channel)) {
      this.ctx.frames.error(c, ErrorCode.NOT_SUBSCRIBED, `Not in channel "${channel.slice(0, 200)}"`, id);
      return;
    }
    this.remove(c, channel, true);
    this.ctx.frames.send(c, 'unsubscribed', { channel }, { channel, id });
  }

  /**
   * Take the client out of a channel: index, broker interest when it was the last local member, and, for a
   * live member when `announce` is set, typing and presence (a join cut short undoes its own presence).
   */
  remove(c: Client, channel: string, announce: boolean): void {
    const wasLive = c.channels?.get(channel) === null;
    const result = this.ctx.hub.removeMember(c, channel);
    if (result === 'absent') return;
    if (result === 'empty') this.dropInterest(channel);
    if (!announce || !wasLive) return;
    this.deps.typing.left(c, channel);
    this.deps.presence.left(c, channel);
  }

  /** Remove the client from every channel (it closed). */
  removeAll(c: Client): void {
    if (c.channels === null) return;
    for (const channel of [...c.channels.keys()]) this.remove(c, channel, true);
  }

  private brokerInterest(channel: string): Promise<void> {
    let pending = this.interest.get(channel);
    if (pending === undefined) {
      pending = this.ctx.broker.subscribe(channel);
      this.interest.set(channel, pending);
      const mine = pending;
      pending.catch(() => {
        if (this.interest.get(channel) === mine) this.interest.delete(channel);
      });
    }
    return pending;
  }

  private dropInterest(channel: string): void {
    this.deps.continuity.forget(channel);
    const pending = this.interest.get(channel);
    if (pending === undefined) return;
    this.interest.delete(channel);
    const broker = this.ctx.broker;
    fireAndLog(this.ctx.log, pending.then(() => (this.ctx.hub.hasChannel(channel) ? undefined : broker.unsubscribe(channel))), 'unsubscribe');
  }
}
