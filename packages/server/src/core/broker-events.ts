import type { Lifecycle } from './client/lifecycle.js';
import type { CoreContext } from './context.js';
import type { ChannelContinuity } from './features/continuity.js';
import type { Documents } from './features/documents.js';
import { isBusFrame } from './features/documents-wire.js';
import type { PresenceAnnouncer } from './features/announcements.js';
import type { Typing } from './features/typing.js';
import type { UserEvents } from './features/user-events.js';
import { USERS_CHANNEL } from './namespaces.js';
import { Outbound } from './outbound.js';
import type { BrokerHandler, BrokerStatus, ControlEnvelope, Publication } from './ports/broker.js';

/**
 * Traffic from the broker (every node's, this one's included) into this node: publications through the
 * continuity guard to the hub's fan-out, ephemeral channel events (typing, presence announcements, user events), control messages
 * addressed to users, connections or everybody, and the broker's up/down status.
 */
export class BrokerEvents implements BrokerHandler {
  private up = true;

  constructor(
    private readonly ctx: Pick<CoreContext, 'hub' | 'log' | 'metrics' | 'now'>,
    private readonly continuity: ChannelContinuity,
    private readonly typing: Typing,
    private readonly announcer: PresenceAnnouncer,
    private readonly users: UserEvents,
    private readonly lifecycle: Lifecycle,
    private readonly documents: Documents,
  ) {}

  get brokerUp(): boolean {
    return this.up;
  }

  onPublication(pub: Publication): void {
    const hub = this.ctx.hub;
    if (hub.hasChannel(pub.channel)) {
      if (this.continuity.hold(pub)) return;
    } else if (!hub.patterns.matchesAny(pub.channel)) {
      return;
    }
    hub.deliver(pub, false);
    this.ctx.metrics.publicationDelivered?.(this.ctx.now() - pub.time);
  }

  onEphemeral(channel: string, frame: string, exclude: string | undefined): void {
    if (isBusFrame(frame)) this.documents.receiveBus(channel, frame);
    else if (channel === USERS_CHANNEL) this.users.receive(frame);
    else if (frame.startsWith('{"type":"typing"')) this.typing.apply(channel, frame, exclude);
    else this.announcer.receive(channel, frame, exclude);
  }

  onControl(msg: ControlEnvelope): void {
    const hub = this.ctx.hub;
    switch (msg.kind) {
      case 'user':
        hub.toUser(msg.userId, new Outbound(msg.frame, 'private'));
        return;
      case 'connection':
        hub.sessions.get(msg.connectionId)?.sink.send(new Outbound(msg.frame, 'direct'));
        return;
      case 'all':
        hub.toAll(new Outbound(msg.frame, 'broadcast'));
        return;
      case 'disconnect_connection':
        hub.sessions.get(msg.connectionId)?.sink.close(msg.code, msg.reason);
        return;
      case 'disconnect_user':
        for (const c of [...(hub.sessions.ofUser(msg.userId) ?? [])]) c.sink.close(msg.code, msg.reason);
        return;
      case 'supersede':
        this.lifecycle.superseded(msg.clientId, msg.keepConnectionId, msg.originNode, msg.generation);
        return;
    }
  }

  onStatus(status: BrokerStatus): void {
    const wasUp = this.up;
    this.up = status === 'up';
    this.ctx.log.warn({ status }, 'broker status changed');
    if (status === 'down' && wasUp) this.continuity.down();
    else if (status === 'up' && !wasUp) {
      this.lifecycle.brokerReconnected();
      this.continuity.resume();
      this.documents.brokerUp();
    }
  }

  /** Stop background work (shutdown). */
  close(): void {
    this.continuity.close();
  }
}
