import type { StreamPosition } from '@switchboard/protocol';
import type { HistoryResult, Publication } from '../ports/broker.js';

/** What ChannelContinuity needs from the node. */
export interface ContinuityHost {
  /** Read the channel's stream after `since` (Broker.history). */
  history(channel: string, since: StreamPosition, limit: number): Promise<HistoryResult>;
  /** Fan a publication out to the channel's local subscribers (`replayed`: it was missed live). */
  deliver(pub: Publication, replayed: boolean): void;
  /** Tell the channel's local subscribers how the re-sync went (`replay_complete` frame). */
  notify(channel: string, data: { replayed_count: number; recovered: boolean; offset: number; epoch: string }): void;
  /** Recoveries longer than this are reported `recovered: false`. */
  maxRecoveryPublications: number;
  onError(err: unknown): void;
}

/**
 * Continuity of channel streams on one node across broker outages.
 *
 * Remembers, per channel with local subscribers, the position of the last publication this node delivered.
 * When the broker goes down, live publications of those channels are held (while the subscriber connection
 * is down nothing arrives anyway; this orders anything arriving around the reconnect). When it comes back,
 * each channel is read from its last delivered position: missed publications are delivered (marked
 * `replayed`), then the held ones not already covered, in offset order. If continuity cannot be proven
 * (the stream was lost — a Redis restart without persistence gives a new epoch — or more than
 * maxRecoveryPublications were missed) subscribers get `replay_complete {recovered: false}` instead of a
 * silent gap. When the stream was lost, that notice is at the start of the new epoch (offset 0) and the new
 * epoch's publications follow from offset 1 (marked `replayed`) if the window still holds them all, so
 * nothing published after the loss is missed; otherwise the notice carries the new top. A failed read
 * (Redis away again) keeps holding and retries.
 */
export class ChannelContinuity {
  private readonly positions = new Map<string, StreamPosition>();
  private readonly held = new Map<string, Publication[]>();
  private readonly inFlight = new Set<string>();
  private up = true;
  private retryTimer: NodeJS.Timeout | null = null;

  constructor(private readonly host: ContinuityHost) {}

  /**
   * A live publication for a channel with local subscribers. Returns true if the caller must not deliver it:
   * it is held (outage), or it was already delivered by a re-sync (the history read and the pub/sub
   * connection are different sockets: a publication can arrive live after the read that returned it).
   * Otherwise records its position and returns false (the caller delivers it).
   */
  hold(pub: Publication): boolean {
    if (this.held.size !== 0) {
      const held = this.held.get(pub.channel);
      if (held !== undefined) {
        held.push(pub);
        return true;
      }
    }
    const p = this.positions.get(pub.channel);
    if (p === undefined) {
      this.positions.set(pub.channel, { offset: pub.offset, epoch: pub.epoch });
    } else {
      if (pub.offset <= p.offset && pub.epoch === p.epoch) return true;
      p.offset = pub.offset;
      p.epoch = pub.epoch;
    }
    return false;
  }

  /** A local subscriber completed a join at `position`: the channel's starting point if none is known. */
  joined(channel: string, position: StreamPosition): void {
    if (!this.positions.has(channel)) this.positions.set(channel, { offset: position.offset, epoch: position.epoch });
  }

  /** The last local subscriber left the channel. */
  forget(channel: string): void {
    this.positions.delete(channel);
    this.held.delete(channel);
  }

  /** The broker connection is down: hold live publications of every tracked channel. */
  down(): void {
    this.up = false;
    for (const channel of this.positions.keys()) if (!this.held.has(channel)) this.held.set(channel, []);
  }

  /** The broker is back: re-sync every held channel. */
  resume(): void {
    this.up = true;
    void this.resyncAll();
  }

  /** Stop the retry timer (shutdown). */
  close(): void {
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    this.retryTimer = null;
  }

  private track(channel: string, offset: number, epoch: string): void {
    const p = this.positions.get(channel);
    if (p === undefined) {
      this.positions.set(channel, { offset, epoch });
    } else {
      p.offset = offset;
      p.epoch = epoch;
    }
  }

  private async resyncAll(): Promise<void> {
    const channels = [...this.held.keys()].filter((c) => !this.inFlight.has(c));
    for (let i = 0; i < channels.length; i += 64) {
      await Promise.all(channels.slice(i, i + 64).map((c) => this.resync(c)));
    }
  }

  private async resync(channel: string): Promise<void> {
    const since = this.positions.get(channel);
    const held = this.held.get(channel);
    if (since === undefined || held === undefined) return;
    this.inFlight.add(channel);
    try {
      const max = this.host.maxRecoveryPublications;
      let h: HistoryResult;
      /** Publications of a NEW epoch from its offset 1, when the stream this node followed is gone. */
      let fresh: Publication[] | null = null;
      try {
        h = await this.host.history(channel, { offset: since.offset, epoch: since.epoch }, max + 1);
        if (!(h.recoverable && h.publications.length <= max) && h.position.epoch !== since.epoch) {
          // The stream was lost (Redis restarted without persistence: a new epoch). Nothing of the new epoch
          // reached this node's subscribers (it would have moved `since`), so all of it is missed: read it
          // from the start and deliver it after the gap notice, when the window still holds it all.
          const start = await this.host.history(channel, { offset: 0, epoch: h.position.epoch }, max + 1);
          if (start.recoverable && start.publications.length <= max) fresh = start.publications;
          h = { publications: [], position: start.position, recoverable: false };
        }
      } catch (err) {
        this.host.onError(err);
        if (this.up) this.scheduleRetry();
        return;
      }
      if (this.held.get(channel) !== held) return; // everybody left meanwhile
      this.held.delete(channel);
      const recovered = h.recoverable && h.publications.length <= max;
      if (recovered) {
        for (const pub of h.publications) {
          this.host.deliver(pub, true);
          this.track(channel, pub.offset, pub.epoch);
        }
        if (h.publications.length > 0) {
          const at = this.positions.get(channel)!;
          this.host.notify(channel, { replayed_count: h.publications.length, recovered: true, offset: at.offset, epoch: at.epoch });
        }
      } else if (fresh !== null) {
        // Gap notice at the start of the new epoch (offset 0), then its publications from offset 1.
        this.track(channel, 0, h.position.epoch);
        this.host.notify(channel, { replayed_count: 0, recovered: false, offset: 0, epoch: h.position.epoch });
        for (const pub of fresh) {
          this.host.deliver(pub, true);
          this.track(channel, pub.offset, pub.epoch);
        }
      } else {
        this.track(channel, h.position.offset, h.position.epoch);
        this.host.notify(channel, { replayed_count: 0, recovered: false, offset: h.position.offset, epoch: h.position.epoch });
      }
      const at = this.positions.get(channel)!;
      for (const pub of held) {
        if (pub.epoch !== at.epoch || pub.offset > at.offset) {
          this.track(channel, pub.offset, pub.epoch);
          this.host.deliver(pub, false);
        }
      }
    } finally {
      this.inFlight.delete(channel);
    }
  }

  private scheduleRetry(): void {
    if (this.retryTimer !== null) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      if (this.up) void this.resyncAll();
    }, 250);
    this.retryTimer.unref();
  }
}
