import { fireAndLog, type CoreContext } from '../context.js';
import type { Member } from '../hub/member.js';
import { Outbound } from '../outbound.js';

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

/**
 * Typing indicators: a member's typing state travels as an ephemeral channel event; every node applies
 * every event to its TypingTracker and delivers it with the channel's `typing_users`; entries stop by
 * themselves after typingTimeoutMs (the node's sweep calls `expire`).
 */
export class Typing {
  private readonly tracker: TypingTracker;

  constructor(private readonly ctx: Pick<CoreContext, 'broker' | 'hub' | 'frames' | 'log' | 'now' | 'options'>) {
    this.tracker = new TypingTracker(ctx.options.typingTimeoutMs);
  }

  /** A member starts or stops typing in a channel: the event goes to every node. */
  set(c: Member, channel: string, isTyping: boolean): void {
    this.publish(channel, c, isTyping);
  }

  /** The member left the channel: if it was typing and no other connection of its actor is in it, stop. */
  left(c: Member, channel: string): void {
    if (this.tracker.isTyping(channel, c.actorId) && !this.actorStillIn(c, channel)) this.publish(channel, c, false);
  }

  private publish(channel: string, c: Member, isTyping: boolean): void {
    const frame = this.ctx.frames.frame('typing', { user_id: c.actorId, username: c.identity.username, is_typing: isTyping }, { channel, senderId: c.actorId });
    fireAndLog(this.ctx.log, this.ctx.broker.publishEphemeral(channel, frame, c.id), 'typing');
  }

  /** A typing event from any node: apply it, then deliver it with `typing_users`. */
  apply(channel: string, frame: string, exclude: string | undefined): void {
    let event: { data: { user_id: string; username: string | null; is_typing: boolean } };
    try {
      event = JSON.parse(frame);
    } catch {
      return;
    }
    const { user_id, username, is_typing } = event.data;
    this.tracker.apply(channel, user_id, username, is_typing, this.ctx.now());
    this.deliver(channel, user_id, username, is_typing, exclude);
  }

  /** Stop the indicators that timed out (every node expires its own copy). */
  expire(now: number): void {
    for (const e of this.tracker.expire(now)) this.deliver(e.channel, e.actor, e.username, false, undefined);
  }

  private deliver(channel: string, actor: string, username: string | null, isTyping: boolean, exclude: string | undefined): void {
    const data = { user_id: actor, username, is_typing: isTyping, typing_users: this.tracker.users(channel) };
    this.ctx.hub.fanOut(channel, new Outbound(this.ctx.frames.frame('typing', data, { channel, senderId: actor }), 'typing'), exclude);
  }

  private actorStillIn(c: Member, channel: string): boolean {
    const members = this.ctx.hub.membersOf(channel);
    if (members === undefined) return false;
    for (const other of members) if (other !== c && other.actorId === c.actorId) return true;
    return false;
  }
}
