import { CloseCode } from '@switchboard/protocol';
import { fireAndLog, type CoreContext } from '../context.js';
import type { Hub } from '../hub/hub.js';
import type { Direct } from '../features/direct.js';
import type { Presence } from '../features/presence.js';
import type { PendingRequests } from '../features/requests.js';
import { newId } from '../ids.js';
import type { ClientIdClaim } from '../ports/client-ids.js';
import type { SessionInit, SessionRejection } from '../ports/session-port.js';
import type { Subscriptions } from './channels.js';
import type { PatternSubscriptions } from './patterns.js';
import { Client } from './client.js';

/** What opening and closing a connection touches besides the shared context. */
export interface LifecycleDeps {
  subscriptions: Subscriptions;
  patterns: PatternSubscriptions;
  presence: Presence;
  direct: Direct;
  requests: PendingRequests;
  /** The hub, typed with the node's connections. */
  clients: Hub<Client>;
  /** Refuse new connections (drain or shutdown). */
  draining(): boolean;
}

const SUPERSEDED = 'superseded by a newer connection';

/**
 * Opening and closing connections: connection limits, client ids (claimed cluster-wide, supersede of the
 * same owner's previous holder), the `connect` frame, user presence, offline inbox, hooks; and on close,
 * leaving every channel, releasing the client id and failing outstanding requests.
 *
 * Client ids (issue 11): a client id belongs to its holder's owner (ClientIdRegistry, core/ports/client-ids.ts).
 * `openClaimed` claims the id in the engine BEFORE the connection becomes the holder; another owner's claim
 * refuses it with 4013 and touches nothing. A successful claim carries a generation (the engine orders the
 * claims of one id); the node closes its previous local holder and announces `supersede` with the generation,
 * and each node closes a local holder whose claim is older.
 */
export class Lifecycle {
  /** client_id connections whose own `supersede` announcement has not come back on the control channel yet
   * (orders announcements without a generation, from nodes that predate claims). */
  private readonly unannounced = new Set<Client>();
  /** Local client id holders -> the generation of their claim (released on close). */
  private readonly claims = new Map<Client, number>();
  /** Client ids this node is claiming right now -> how many claims are in flight and the largest generation
   * other nodes announced meanwhile (a claim overtaken before it resolved opens nothing). */
  private readonly claiming = new Map<string, { inFlight: number; seen: number }>();

  constructor(
    private readonly ctx: Pick<CoreContext, 'broker' | 'presence' | 'options' | 'hooks' | 'frames' | 'log' | 'metrics' | 'now'>,
    private readonly deps: LifecycleDeps,
  ) {
    ctx.presence.onClientIdLost?.((clientId, connectionId) => this.claimLost(clientId, connectionId));
  }

  /** Open a connection without a client id (those go through `openClaimed`). */
  open(init: SessionInit): Client | SessionRejection {
    if ((init.clientId ?? null) !== null) {
      this.ctx.log.error({ client_id: init.clientId }, 'openSession with a client id: use openClientSession');
      return { rejected: true, closeCode: CloseCode.INTERNAL_ERROR, reason: 'client ids need openClientSession' };
    }
    return this.refusal(init) ?? this.register(init, newId(), 0);
  }

  /**
   * Open a connection with a client id: claim the id for the connection's owner first (see the class comment),
   * then register it exactly like `open`. Never rejects for an engine failure: that refuses the connection
   * (4092, fail closed).
   */
  async openClaimed(init: SessionInit): Promise<Client | SessionRejection> {
    const clientId = init.clientId ?? null;
    if (clientId === null) return this.open(init);
    const early = this.refusal(init);
    if (early !== null) return early;
    const userId = init.identity.userId;
    const id = newId();
    let pending = this.claiming.get(clientId);
    if (pending === undefined) this.claiming.set(clientId, (pending = { inFlight: 0, seen: 0 }));
    pending.inFlight += 1;
    let claim: ClientIdClaim;
    try {
      claim = await this.ctx.presence.claimClientId(clientId, userId, id);
    } catch (err) {
      this.ctx.log.warn({ err, client_id: clientId, user_id: userId }, 'client id claim failed: connection refused');
      return { rejected: true, closeCode: CloseCode.SERVER_ERROR, reason: 'client id registry unavailable' };
    } finally {
      pending.inFlight -= 1;
      if (pending.inFlight === 0 && this.claiming.get(clientId) === pending) this.claiming.delete(clientId);
    }
    if (!claim.ok) {
      this.ctx.log.info({ client_id: clientId, user_id: userId, holder_user_id: claim.holderUserId }, 'client id held by another owner: connection refused');
      return { rejected: true, closeCode: CloseCode.CLIENT_ID_TAKEN, reason: 'client id taken' };
    }
    const holder = this.deps.clients.sessions.byClient(clientId);
    const holderGeneration = holder === undefined ? 0 : (this.claims.get(holder) ?? 0);
    const refusal = pending.seen > claim.generation || holderGeneration > claim.generation
      ? { rejected: true as const, closeCode: CloseCode.SESSION_SUPERSEDED, reason: SUPERSEDED } // overtaken while claiming
      : this.refusal(init); // draining or limits may have changed while claiming
    if (refusal !== null) {
      fireAndLog(this.ctx.log, this.ctx.presence.releaseClientId(clientId, id), 'client id release');
      return refusal;
    }
    return this.register(init, id, claim.generation);
  }

  /** Why the node refuses a connection now (draining, connection limits), or null. */
  private refusal(init: SessionInit): SessionRejection | null {
    if (this.deps.draining()) return { rejected: true, closeCode: CloseCode.GOING_AWAY, reason: 'server draining' };
    const refusal = this.deps.clients.sessions.refusal(init.identity.userId, init.remoteAddress, this.ctx.options.limits);
    return refusal === null ? null : { rejected: true, closeCode: CloseCode.TOO_MANY_CONNECTIONS, reason: refusal };
  }

  /** Register an admitted connection; `generation`: its client id claim (connections with a client id). */
  private register(init: SessionInit, id: string, generation: number): Client {
    const limits = this.ctx.options.limits;
    const userId = init.identity.userId;
    const sessions = this.deps.clients.sessions;
    const now = this.ctx.now();
    const c = new Client(id, init.sink, init.identity, init.clientId ?? null, init.remoteAddress, init.metadata, now, limits.rateLimit.burst, limits.subscribeRateLimit.burst);
    const previous = sessions.add(c);
    if (c.clientId !== null) {
      this.claims.set(c, generation);
      if (previous !== undefined) previous.sink.close(CloseCode.SESSION_SUPERSEDED, SUPERSEDED);
      this.unannounced.add(c);
      this.ctx.broker.publishControl({ kind: 'supersede', clientId: c.clientId, keepConnectionId: c.id, generation }).catch((err: unknown) => {
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
    if (this.claims.delete(c)) fireAndLog(this.ctx.log, this.ctx.presence.releaseClientId(c.clientId!, c.id), 'client id release');
    this.deps.requests.dropSession(c.id);
    this.deps.subscriptions.removeAll(c);
    this.deps.patterns.removeAll(c);
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
   * A `supersede` control message (from any node): a connection claimed `clientId` with `generation`. A local
   * holder with an older claim closes with 4011; a newer one stays, and so does a claim of this node still in
   * flight that the message overtook (it is refused when it resolves with an older generation). Messages
   * without a generation (nodes that predate claims) fall back to the control channel's order: a local holder
   * whose own announcement has not come back yet is newer than the message.
   */
  superseded(clientId: string, keepConnectionId: string, originNode: string, generation?: number): void {
    const self = originNode === this.ctx.broker.nodeId;
    if (!self && generation !== undefined) {
      const pending = this.claiming.get(clientId);
      if (pending !== undefined && generation > pending.seen) pending.seen = generation;
    }
    const c = this.deps.clients.sessions.byClient(clientId);
    if (c === undefined) return;
    if (self) { // the local supersede was handled when the connection was registered
      if (c.id === keepConnectionId) this.unannounced.delete(c);
      return;
    }
    if (c.id === keepConnectionId) return;
    const mine = this.claims.get(c);
    const older = generation !== undefined && mine !== undefined && mine > 0 ? mine < generation : !this.unannounced.has(c);
    if (older) c.sink.close(CloseCode.SESSION_SUPERSEDED, SUPERSEDED);
  }

  /** The engine found that a local holder's claim now names another connection (see ClientIdRegistry
   * .onClientIdLost): the newer claim wins, the local holder closes with 4011. */
  private claimLost(clientId: string, connectionId: string): void {
    const c = this.deps.clients.sessions.get(connectionId);
    if (c === undefined || c.closed || c.clientId !== clientId) return;
    this.claims.delete(c); // nothing left to release
    this.ctx.log.warn({ connection_id: c.id, client_id: clientId }, 'client id claim lost to a newer connection');
    c.sink.close(CloseCode.SESSION_SUPERSEDED, SUPERSEDED);
  }

  /** The broker reconnected: announcements in flight may have been lost with the subscriber connection. */
  brokerReconnected(): void {
    this.unannounced.clear();
  }
}
