import { CloseCode } from '@switchboard/protocol';
import type { CoreContext } from '../context.js';
import type { Hub } from '../hub/hub.js';
import type { Direct } from '../features/direct.js';
import type { Presence } from '../features/presence.js';
import type { PendingRequests } from '../features/requests.js';
import { newId } from '../ids.js';
import type { SessionInit, SessionRejection } from '../ports/session-port.js';
import type { Subscriptions } from './channels.js';
import { Client } from './client.js';

/** What opening and closing a connection touches besides the shared context. */
export interface LifecycleDeps {
  subscriptions: Subscriptions;
  presence: Presence;
  direct: Direct;
  requests: PendingRequests;
  /** The hub, typed with the node's connections. */
  clients: Hub<Client>;
  /** Refuse new connections (drain or shutdown). */
  draining(): boolean;
}

/**
 * Opening and closing connections: connection limits, client-id supersede across the cluster, the `connect`
 * frame, user presence, offline inbox, hooks; and on close, leaving every channel and failing outstanding
 * requests.
 */
export class Lifecycle {
  /** client_id connections whose own `supersede` announcement has not come back on the control channel yet. */
  private readonly unannounced = new Set<Client>();

  constructor(
    private readonly ctx: Pick<CoreContext, 'broker' | 'options' | 'hooks' | 'frames' | 'log' | 'metrics' | 'now'>,
    private readonly deps: LifecycleDeps,
  ) {}

  open(init: SessionInit): Client | SessionRejection {
    const limits = this.ctx.options.limits;
    const userId = init.identity.userId;
    if (this.deps.draining()) return { rejected: true, closeCode: CloseCode.GOING_AWAY, reason: 'server draining' };
    const sessions = this.deps.clients.sessions;
    const refusal = sessions.refusal(userId, init.remoteAddress, limits);
    if (refusal !== null) return { rejected: true, closeCode: CloseCode.TOO_MANY_CONNECTIONS, reason: refusal };
    const now = this.ctx.now();
    const c = new Client(newId(), init.sink, init.identity, init.clientId ?? null, init.remoteAddress, init.metadata, now, limits.rateLimit.burst, limits.subscribeRateLimit.burst);
    const previous = sessions.add(c);
    if (c.clientId !== null) {
      if (previous !== undefined) previous.sink.close(CloseCode.SESSION_SUPERSEDED, 'superseded by a newer connection');
      this.unannounced.add(c);
      this.ctx.broker.publishControl({ kind: 'supersede', clientId: c.clientId, keepConnectionId: c.id }).catch((err: unknown) => {
        this.unannounced.delete(c);
        this.ctx.log.warn({ err }, 'supersede failed');
      });
    }
    this.ctx.frames.send(c, 'connect', {
      connection_id: c.id,
      client_id: c.clientId,
      status: 'connected',
      server_time: new Date(now).toISOString(),
      user_id: userId,
      username: init.identity.username,
      anonymous: init.identity.anonymous,
      node_id: this.ctx.broker.nodeId,
      ping_interval_ms: this.ctx.options.heartbeat.pingIntervalMs,
      pong_timeout_ms: this.ctx.options.heartbeat.pongTimeoutMs,
    });
    this.ctx.log.info({ connection_id: c.id, user_id: userId, remote: c.remoteAddress, transport: c.sink.kind }, 'connection opened');
    this.deps.presence.userConnected(c);
    this.deps.direct.deliverInbox(c);
    const onOpen = this.ctx.hooks.onSessionOpen;
    if (onOpen !== undefined) {
      Promise.resolve()
        .then(() => onOpen(c))
        .catch((err: unknown) => this.ctx.log.error({ err, connection_id: c.id }, 'onSessionOpen hook failed'));
    }
    return c;
  }

  /** The connection ended (any reason). Idempotent. */
  close(c: Client, code: number): void {
    if (c.closed) return;
    c.closed = true;
    c.queue = null;
    this.deps.clients.sessions.remove(c);
    this.unannounced.delete(c);
    this.deps.requests.dropSession(c.id);
    this.deps.subscriptions.removeAll(c);
    this.deps.presence.userDisconnected(c);
    const duration = this.ctx.now() - c.connectedAt;
    this.ctx.metrics.connectionClosed(duration, code);
    this.ctx.log.info({ connection_id: c.id, user_id: c.userId, code, duration_ms: duration }, 'connection closed');
    try {
      this.ctx.hooks.onSessionClose?.(c, code);
    } catch (err) {
      this.ctx.log.error({ err, connection_id: c.id }, 'onSessionClose hook failed');
    }
  }

  /**
   * A `supersede` control message (from any node). The control channel delivers messages in one order to
   * every node: a local holder whose own announcement has not come back yet is newer than this message and
   * must not be closed by it.
   */
  superseded(clientId: string, keepConnectionId: string, originNode: string): void {
    const c = this.deps.clients.sessions.byClient(clientId);
    if (c === undefined) return;
    if (originNode === this.ctx.broker.nodeId) { // the local supersede was handled in open()
      if (c.id === keepConnectionId) this.unannounced.delete(c);
      return;
    }
    if (c.id !== keepConnectionId && !this.unannounced.has(c)) c.sink.close(CloseCode.SESSION_SUPERSEDED, 'superseded by a newer connection');
  }

  /** The broker reconnected: announcements in flight may have been lost with the subscriber connection. */
  brokerReconnected(): void {
    this.unannounced.clear();
  }
}
