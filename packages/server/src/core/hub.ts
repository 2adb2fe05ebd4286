import {
  CloseCode,
  ErrorCode,
  isTemporaryError,
  type OnlineUser,
  type PresenceMember,
  type RequestId,
  type StreamPosition,
} from '@switchboard/protocol';
import type { Broker, BrokerHandler, ControlEnvelope, ControlMessage, Publication } from './ports/broker.js';
import type { Durability } from './durability.js';
import { ChannelContinuity } from './continuity.js';
import type { ChannelAction, Decision, HubHooks } from './ports/hooks.js';
import { newId } from './ids.js';
import { InboundParser, type ParsedMessage } from './inbound.js';
import { NOOP_METRICS, SILENT_LOGGER, type HubMetrics, type Logger } from './ports/observability.js';
import type { HubOptions, NamespaceOptions } from './options.js';
import { Outbound, withPosition } from './outbound.js';
import type { PresenceStore } from './ports/presence-store.js';
import { takeToken } from './rate-limit.js';
import { PendingRequests } from './requests.js';
import { Session } from './session.js';
import type { SessionInit } from './ports/session-port.js';
import { SessionRegistry } from './session-registry.js';
import { TypingTracker } from './typing.js';

export interface HubDeps {
  broker: Broker;
  presence: PresenceStore;
  options: HubOptions;
  hooks?: HubHooks;
  /** Durable archive + offline inbox (optional: without it, `persist` and the inbox are off). */
  durability?: Durability;
  logger?: Logger;
  metrics?: HubMetrics;
  now?: () => number;
}

/** Why `openSession` refused a connection: the transport closes with this code after accepting. */
export interface SessionRejection {
  rejected: true;
  closeCode: number;
  reason: string;
}

export interface HubStats {
  connections: number;
  channels: number;
  subscriptions: number;
  users: number;
  draining: boolean;
}

interface ErrorLike {
  code?: unknown;
  message?: unknown;
}

/** Optional fields of a server frame beyond type and data. */
interface FrameExtra {
  channel?: string | null;
  senderId?: string | null;
  recipientId?: string | null;
  id?: RequestId | undefined;
  messageId?: string;
}

/**
 * The hub: sessions, channels, presence, typing, private messages, heartbeats, limits.
 * Knows no transport, broker or store implementation: transports call `openSession`, `handleText`,
 * `markAlive`, `closeSession`; everything that crosses nodes goes through the Broker and PresenceStore.
 *
 * Fan-out: a publication is serialized once (by the publishing node), its seq spliced in once per node, and
 * the same Outbound object is queued on every local subscriber's sink; sinks coalesce writes per tick.
 */
export class Hub implements BrokerHandler {
  readonly broker: Broker;
  readonly presence: PresenceStore;
  readonly options: HubOptions;
  private readonly hooks: HubHooks;
  private durability: Durability | null;
  private readonly requests = new PendingRequests();
  /** Durable channels whose stream position was restored from the archive on this node. */
  private readonly restored = new Map<string, Promise<void>>();
  private readonly log: Logger;
  private readonly metrics: HubMetrics;
  private readonly now: () => number;
  private readonly parser: InboundParser;
  private readonly channelName: RegExp;

  private readonly sessions = new SessionRegistry();
  private readonly channels = new Map<string, Set<Session>>();
  private readonly brokerSubscriptions = new Map<string, Promise<void>>();
  private readonly typing: TypingTracker;
  private readonly namespaceCache = new Map<string, NamespaceOptions>();
  private subscriptionCount = 0;
  private sweepTimer: NodeJS.Timeout | null = null;
  private draining = false;
  private brokerUp = true;
  /** Last delivered position per channel; bridges broker outages (replay or `recovered: false`). */
  private readonly continuity: ChannelContinuity;
  /** client_id sessions whose own `supersede` announcement has not come back on the control channel yet. */
  private readonly unannounced = new Set<Session>();

  constructor(deps: HubDeps) {
    this.broker = deps.broker;
    this.presence = deps.presence;
    this.options = deps.options;
    this.hooks = deps.hooks ?? {};
    this.durability = deps.durability ?? null;
    this.log = deps.logger ?? SILENT_LOGGER;
    this.metrics = deps.metrics ?? NOOP_METRICS;
    this.now = deps.now ?? Date.now;
    this.parser = new InboundParser(this.options.limits.maxJsonDepth);
    this.typing = new TypingTracker(this.options.typingTimeoutMs);
    this.channelName = new RegExp(`^(?:${this.options.limits.channelNamePattern})$`);
    this.continuity = new ChannelContinuity({
      history: (channel, since, limit) => this.broker.history(channel, { since, limit }),
      deliver: (pub, replayed) => this.deliverPublication(pub, replayed),
      notify: (channel, data) => this.fanOut(channel, new Outbound(this.frame('replay_complete', { channel, ...data }, { channel }), 'replay_complete'), undefined),
      maxRecoveryPublications: this.options.maxRecoveryPublications,
      onError: (err) => this.log.warn({ err }, 'channel re-sync after broker outage failed'),
    });
  }

  get nodeId(): string {
    return this.broker.nodeId;
  }

  /** Give the hub its durable stores; only before `start()`. */
  useDurability(durability: Durability): void {
    this.durability = durability;
  }

  /** Start the broker and the shared heartbeat/typing sweep (one timer for all sessions). */
  async start(): Promise<void> {
    await this.presence.start?.();
    await this.broker.start(this);
    const ping = this.options.heartbeat.pingIntervalMs;
    const tick = Math.max(20, Math.min(1000, ping > 0 ? Math.floor(ping / 5) : 1000, Math.floor(this.options.typingTimeoutMs / 5)));
    this.sweepTimer = setInterval(() => this.sweep(), tick);
    this.sweepTimer.unref();
  }

  // ---------------------------------------------------------------- sessions

  /** Register a new connection. On success the `connect` frame is already queued on its sink. */
  openSession(init: SessionInit): Session | SessionRejection {
    const limits = this.options.limits;
    const userId = init.identity.userId;
    if (this.draining) return { rejected: true, closeCode: CloseCode.GOING_AWAY, reason: 'server draining' };
    const refusal = this.sessions.refusal(userId, init.remoteAddress, limits);
    if (refusal !== null) return { rejected: true, closeCode: CloseCode.TOO_MANY_CONNECTIONS, reason: refusal };
    const now = this.now();
    const s = new Session(newId(), init.sink, init.identity, init.clientId ?? null, init.remoteAddress, init.metadata, now, limits.rateLimit.burst);
    const previous = this.sessions.add(s);
    if (s.clientId !== null) {
      if (previous !== undefined) previous.sink.close(CloseCode.SESSION_SUPERSEDED, 'superseded by a newer connection');
      this.unannounced.add(s);
      this.broker.publishControl({ kind: 'supersede', clientId: s.clientId, keepConnectionId: s.id }).catch((err: unknown) => {
        this.unannounced.delete(s);
        this.log.warn({ err }, 'supersede failed');
      });
    }
    this.send(s, 'connect', {
      connection_id: s.id,
      client_id: s.clientId,
      status: 'connected',
      server_time: new Date(now).toISOString(),
      user_id: userId,
      username: init.identity.username,
      anonymous: init.identity.anonymous,
      node_id: this.nodeId,
      ping_interval_ms: this.options.heartbeat.pingIntervalMs,
      pong_timeout_ms: this.options.heartbeat.pongTimeoutMs,
    });
    this.log.info({ connection_id: s.id, user_id: userId, remote: s.remoteAddress, transport: s.sink.kind }, 'connection opened');
    if (userId !== null) {
      this.presence.userConnected(userId, init.identity.username, s.id).then(
        (count) => {
          if (count === 1) this.controlToAll('user_online', { user_id: userId, username: init.identity.username });
        },
        (err: unknown) => this.log.warn({ err, connection_id: s.id }, 'presence userConnected failed'),
      );
    }
    if (userId !== null && this.durability?.hasInbox) this.deliverInbox(s, userId);
    if (this.hooks.onSessionOpen !== undefined) {
      Promise.resolve()
        .then(() => this.hooks.onSessionOpen!(s))
        .catch((err: unknown) => this.log.error({ err, connection_id: s.id }, 'onSessionOpen hook failed'));
    }
    return s;
  }

  /** The transport saw the connection end (any reason). Idempotent. */
  closeSession(s: Session, code: number): void {
    if (s.closed) return;
    s.closed = true;
    this.sessions.remove(s);
    this.unannounced.delete(s);
    this.requests.dropSession(s.id);
    if (s.channels !== null) for (const channel of [...s.channels.keys()]) this.removeFromChannel(s, channel);
    const userId = s.userId;
    if (userId !== null) {
      this.presence.userDisconnected(userId, s.id).then(
        (left) => {
          if (left === 0) this.controlToAll('user_offline', { user_id: userId, username: s.identity.username });
        },
        (err: unknown) => this.log.warn({ err, connection_id: s.id }, 'presence userDisconnected failed'),
      );
    }
    const duration = this.now() - s.connectedAt;
    this.metrics.connectionClosed(duration, code);
    this.log.info({ connection_id: s.id, user_id: userId, code, duration_ms: duration }, 'connection closed');
    try {
      this.hooks.onSessionClose?.(s, code);
    } catch (err) {
      this.log.error({ err, connection_id: s.id }, 'onSessionClose hook failed');
    }
  }

  /** Transport-level sign of life (WebSocket pong). */
  markAlive(s: Session): void {
    s.lastSeen = this.now();
    s.pingSentAt = 0;
  }

  // ---------------------------------------------------------------- inbound

  /** Handle one text frame from a client. Never throws; failures become `error` frames or closes. */
  handleText(s: Session, text: string): void {
    if (s.closed) return;
    const now = this.now();
    s.lastSeen = now;
    s.pingSentAt = 0;
    const parsed = this.parser.parse(text);
    if ('code' in parsed) {
      this.metrics.messageIn('invalid', text.length);
      this.sendError(s, parsed.code, parsed.message, parsed.id);
      return;
    }
    this.metrics.messageIn(parsed.type, text.length);
    if (parsed.type === 'pong') return;
    const rate = this.options.limits.rateLimit;
    if (!takeToken(s, now, rate.perSecond, rate.burst)) {
      s.dropped += 1;
      if (s.dropped >= rate.closeAfterDropped) {
        s.sink.close(CloseCode.RATE_LIMITED, 'rate limit exceeded');
      } else {
        this.sendError(s, ErrorCode.RATE_LIMITED, `Rate limit of ${rate.perSecond} messages/s exceeded`, parsed.id);
      }
      return;
    }
    s.dropped = 0;
    if (parsed.type !== 'ping' && parsed.type !== 'heartbeat') s.lastActivity = now;
    try {
      const pending = this.dispatch(s, parsed);
      if (pending !== undefined) pending.catch((err: unknown) => this.failRequest(s, parsed.id, err));
    } catch (err) {
      this.failRequest(s, parsed.id, err);
    }
  }

  /** A binary frame arrived: Switchboard speaks JSON text frames. */
  handleBinary(s: Session): void {
    this.sendError(s, ErrorCode.BINARY_NOT_SUPPORTED, 'Binary frames are not supported; send JSON text frames', undefined);
  }

  private dispatch(s: Session, m: ParsedMessage): Promise<void> | void {
    const d = m.data;
    switch (m.type) {
      case 'join_channel':
        return this.join(s, d.channel as string, d.since as StreamPosition | undefined, m.id);
      case 'leave_channel':
        return this.leave(s, d.channel as string, m.id);
      case 'message':
        return this.publishFromClient(s, d, m.id);
      case 'private_message':
        return this.privateMessage(s, d, m.id);
      case 'typing':
        return this.setTyping(s, d.channel as string, d.is_typing as boolean, m.id);
      case 'heartbeat':
        if (m.id !== undefined) this.send(s, 'ok', {}, { id: m.id });
        return;
      case 'ping':
        this.send(s, 'pong', { timestamp: new Date(this.now()).toISOString() }, { id: m.id });
        return;
      case 'online_users':
        return this.onlineUsers().then((users) => this.send(s, 'online_users', { users }, { id: m.id }));
      case 'presence':
        return this.presenceRequest(s, d.channel as string, m.id);
      case 'history':
        return this.historyRequest(s, d, m.id);
      case 'broadcast':
        return this.broadcastFromClient(s, d, m.id);
      case 'refresh':
        return this.refresh(s, d.token as string, m.id);
      case 'ack':
        return this.ackInbox(s, d.ids as string[], m.id);
      case 'response':
        if (!this.requests.settle(s.id, d)) this.sendError(s, ErrorCode.NOT_FOUND, 'No outstanding request with that request_id', m.id);
        return;
      default:
        this.sendError(s, ErrorCode.UNAVAILABLE, `"${m.type}" is not available on this endpoint`, m.id);
        return;
    }
  }

  // ---------------------------------------------------------------- channels

  /**
   * Subscribe a session to a channel on the server's initiative (SSE `?channels=`, `last_sequence` on
   * connect, backend code). Same checks, recovery and frames as a client `join_channel`; failures are sent
   * to the session as `error` frames, never thrown.
   */
  subscribe(s: Session, channel: string, since?: StreamPosition): Promise<void> {
    return this.join(s, channel, since, undefined).catch((err: unknown) => this.failRequest(s, undefined, err));
  }

  /** Leave a channel on the server's initiative. */
  unsubscribe(s: Session, channel: string): void {
    this.removeFromChannel(s, channel);
  }

  private async join(s: Session, channel: string, since: StreamPosition | undefined, id: RequestId | undefined): Promise<void> {
    if (!this.checkChannel(s, channel, id)) return;
    if (s.channels?.has(channel)) {
      const position = await this.broker.position(channel);
      this.send(s, 'subscribed', { channel, offset: position.offset, epoch: position.epoch, members: await this.memberCount(channel) }, { channel, id });
      return;
    }
    if (s.channelCount >= this.options.limits.maxChannelsPerConnection) {
      this.sendError(s, ErrorCode.TOO_MANY_CHANNELS, `At most ${this.options.limits.maxChannelsPerConnection} channels per connection`, id);
      return;
    }
    if (!(await this.allowed(s, 'subscribe', channel, id)) || s.closed) return;
    // Register first, buffering live publications, so nothing published during the recovery read is lost.
    const buffer: Publication[] = [];
    if (s.channels === null) s.channels = new Map();
    s.channels.set(channel, buffer);
    let members = this.channels.get(channel);
    if (members === undefined) this.channels.set(channel, (members = new Set()));
    members.add(s);
    this.subscriptionCount += 1;
    const ns = this.namespace(channel);
    try {
      await this.restorePosition(channel);
      await this.ensureBrokerSubscription(channel);
      let position: StreamPosition;
      let replay: Publication[] = [];
      let recovered: boolean | undefined;
      if (since !== undefined && since.epoch === '') {
        // Seed 001 form (`?last_sequence=N` without an epoch): assume the stream was not reset.
        since = { offset: since.offset, epoch: (await this.broker.position(channel)).epoch };
      }
      if (since !== undefined) {
        const max = this.options.maxRecoveryPublications;
        const h = await this.broker.history(channel, { since, limit: max + 1 });
        position = h.position;
        recovered = h.recoverable && h.publications.length <= max;
        if (recovered) {
          replay = h.publications;
        } else if (ns.persist && this.durability?.hasArchive) {
          const archived = await this.durability.recover(channel, since, position, max);
          if (archived !== null) {
            recovered = true;
            replay = archived;
          }
        }
      } else if (ns.snapshot) {
        const h = await this.broker.history(channel, { limit: 1 });
        position = h.position;
        replay = h.publications;
      } else {
        position = await this.broker.position(channel);
      }
      let snapshot: Record<string, unknown> | null = null;
      if (ns.snapshot && this.hooks.snapshot !== undefined) snapshot = await this.hooks.snapshot(channel);
      if (s.closed || s.channels?.get(channel) !== buffer) return; // left while we were reading
      const member = this.member(s);
      if (ns.presence) {
        await this.presence.join(channel, member);
        this.ephemeral(channel, 'presence', { action: 'joined', ...member, channel }, s.id);
      }
      const subscribed: Record<string, unknown> = {
        channel,
        offset: position.offset,
        epoch: position.epoch,
        members: await this.memberCount(channel),
      };
      if (recovered !== undefined) subscribed.recovered = recovered;
      this.send(s, 'subscribed', subscribed, { channel, id });
      if (snapshot !== null) this.send(s, 'snapshot', snapshot, { channel });
      let last = position.offset;
      if (replay.length > 0) {
        for (const pub of replay) {
          s.sink.send(new Outbound(withPosition(pub.frame, pub.offset, pub.epoch, since !== undefined), 'message', pub.offset, channel, pub.epoch));
        }
        last = replay[replay.length - 1]!.offset;
      }
      if (since !== undefined) {
        this.send(s, 'replay_complete', { channel, replayed_count: replay.length, recovered, offset: last, epoch: position.epoch }, { channel });
      }
      for (const pub of buffer) {
        if (pub.epoch !== position.epoch || pub.offset > last) this.deliverTo(s, pub, this.live(pub));
      }
      s.channels.set(channel, null);
      this.continuity.joined(channel, position);
    } catch (err) {
      if (s.channels?.get(channel) === buffer) this.removeFromChannel(s, channel, false);
      throw err;
    }
  }

  private async leave(s: Session, channel: string, id: RequestId | undefined): Promise<void> {
    if (s.channels === null || !s.channels.has(channel)) {
      this.sendError(s, ErrorCode.NOT_SUBSCRIBED, `Not in channel "${channel.slice(0, 200)}"`, id);
      return;
    }
    this.removeFromChannel(s, channel);
    this.send(s, 'unsubscribed', { channel }, { channel, id });
  }

  /** Drop the session from a channel: local membership, typing, presence (+ `left` frame), broker interest. */
  private removeFromChannel(s: Session, channel: string, announce = true): void {
    if (s.channels === null || !s.channels.delete(channel)) return;
    this.subscriptionCount -= 1;
    const members = this.channels.get(channel);
    if (members !== undefined) {
      members.delete(s);
      if (members.size === 0) {
        this.channels.delete(channel);
        this.continuity.forget(channel);
        const pending = this.brokerSubscriptions.get(channel);
        this.brokerSubscriptions.delete(channel);
        if (pending !== undefined) {
          this.fireAndLog(pending.then(() => (this.channels.has(channel) ? undefined : this.broker.unsubscribe(channel))), 'unsubscribe');
        }
      }
    }
    if (!announce) return;
    if (this.typing.isTyping(channel, s.actorId) && !this.actorStillIn(s, channel)) {
      this.typingEvent(channel, s, false);
    }
    if (this.namespace(channel).presence) {
      this.fireAndLog(this.presence.leave(channel, s.id), 'presence leave');
      this.ephemeral(channel, 'presence', { action: 'left', ...this.member(s), channel }, s.id);
    }
  }

  private ensureBrokerSubscription(channel: string): Promise<void> {
    let pending = this.brokerSubscriptions.get(channel);
    if (pending === undefined) {
      pending = this.broker.subscribe(channel);
      this.brokerSubscriptions.set(channel, pending);
      pending.catch(() => {
        if (this.brokerSubscriptions.get(channel) === pending) this.brokerSubscriptions.delete(channel);
      });
    }
    return pending;
  }

  private async publishFromClient(s: Session, data: Record<string, unknown>, id: RequestId | undefined): Promise<void> {
    const channel = data.channel as string;
    if (!this.checkChannel(s, channel, id)) return;
    if (this.namespace(channel).publishRequiresMembership && !s.channels?.has(channel)) {
      this.sendError(s, ErrorCode.NOT_SUBSCRIBED, `Join "${channel.slice(0, 200)}" before publishing`, id);
      return;
    }
    if (!(await this.allowed(s, 'publish', channel, id))) return;
    const { exclude_self, idempotency_key, ...payload } = data;
    payload.user_id = s.userId;
    payload.username = s.identity.username;
    const pub = await this.publish(channel, payload, {
      senderId: s.actorId,
      excludeConnectionId: exclude_self === true ? s.id : undefined,
      idempotencyKey: idempotency_key as string | undefined,
    });
    if (id !== undefined) this.send(s, 'ok', { channel, offset: pub.offset, epoch: pub.epoch }, { channel, id });
  }

  /**
   * Publish `data` to a channel from the server side (HTTP API, backend code) or on behalf of a client.
   * Resolves once the broker accepted it (stored in history and delivered to every node).
   */
  async publish(
    channel: string,
    data: Record<string, unknown>,
    opts: { senderId?: string | null; excludeConnectionId?: string | undefined; idempotencyKey?: string | undefined; type?: string } = {},
  ): Promise<Publication> {
    const ns = this.namespace(channel);
    const messageId = newId();
    const senderId = opts.senderId ?? null;
    const frame = this.frame(opts.type ?? 'message', data, { channel, senderId, messageId });
    await this.restorePosition(channel);
    const pub = await this.broker.publish(channel, frame, {
      history: { size: ns.historySize, ttlMs: ns.historyTtlMs },
      idempotencyKey: opts.idempotencyKey,
      idempotencyWindowMs: this.options.idempotencyWindowMs,
      excludeConnectionId: opts.excludeConnectionId,
    });
    // Archive once, on the publishing node; a repeated idempotency key returns the first publication, whose
    // frame carries its own message id (the store treats the same id at the same offset as a no-op).
    if (ns.persist && this.durability?.hasArchive && pub.frame === frame) {
      await this.durability.archivePublication(pub, messageId, senderId);
    }
    return pub;
  }

  /**
   * Durable channels continue their numbering across restarts: before this node first touches a persisted
   * channel, the broker's stream is seeded from the archive's newest record (engines that keep streams
   * themselves may ignore it). Cached per channel.
   */
  private restorePosition(channel: string): Promise<void> {
    if (!this.namespace(channel).persist || !this.durability?.hasArchive || this.broker.restorePosition === undefined) return Promise.resolve();
    let p = this.restored.get(channel);
    if (p === undefined) {
      p = this.durability.latest(channel).then((pos) => (pos === null ? undefined : this.broker.restorePosition!(channel, pos)));
      this.restored.set(channel, p);
      p.catch(() => this.restored.delete(channel));
    }
    return p;
  }

  // ---------------------------------------------------------------- users

  private async privateMessage(s: Session, data: Record<string, unknown>, id: RequestId | undefined): Promise<void> {
    const recipient = data.recipient_id as string;
    if (this.hooks.authorizePrivate !== undefined) {
      const decision = await this.decide(() => this.hooks.authorizePrivate!(s, recipient));
      if (!decision.allowed) {
        this.sendError(s, decision.code, decision.message, id);
        return;
      }
    }
    const payload = { ...data, user_id: s.userId, username: s.identity.username };
    const result = await this.deliverToUser(recipient, 'private', payload, s.actorId);
    if (id !== undefined) this.send(s, 'ok', { recipient_id: recipient, ...result }, { id });
  }

  /** Send to every connection of a user, or keep it in the user's offline inbox when they have none. */
  private async deliverToUser(userId: string, type: string, data: Record<string, unknown>, senderId: string | null): Promise<{ delivered: boolean; stored: boolean; message_id: string }> {
    const messageId = newId();
    const frame = this.frame(type, data, { senderId, recipientId: userId, messageId });
    const online = this.sessions.hasUser(userId) || (await this.presenceUserOnline(userId));
    if (online) {
      await this.broker.publishControl({ kind: 'user', userId, frame });
      return { delivered: true, stored: false, message_id: messageId };
    }
    const stored = this.durability !== null && (await this.durability.store(userId, messageId, frame));
    return { delivered: false, stored, message_id: messageId };
  }

  /** Send the user's offline inbox, oldest first, each frame flagged `"inbox":true`; the client acks ids. */
  private deliverInbox(s: Session, userId: string): void {
    this.durability!.pending(userId).then(
      (items) => {
        if (s.closed) return;
        for (const item of items) s.sink.send(new Outbound('{"inbox":true,' + item.frame.slice(1), 'inbox'));
        this.metrics.messagesOut('inbox', items.length);
      },
      (err: unknown) => this.log.warn({ err, connection_id: s.id }, 'inbox delivery failed'),
    );
  }

  private async ackInbox(s: Session, ids: string[], id: RequestId | undefined): Promise<void> {
    if (s.userId === null) {
      this.sendError(s, ErrorCode.UNAUTHORIZED, 'Only identified users have an inbox', id);
      return;
    }
    const removed = await (this.durability?.ack(s.userId, ids) ?? Promise.resolve(0));
    if (id !== undefined) this.send(s, 'ok', { removed }, { id });
  }

  /**
   * Ask one local connection something and await its `response` (seed 002 request/response). Rejects with a
   * RequestError: TIMEOUT, NOT_FOUND (no such connection, or it closed), or the code the client answered.
   */
  request(connectionId: string, method: string, params: Record<string, unknown>, timeoutMs = 10_000): Promise<Record<string, unknown>> {
    const s = this.sessions.get(connectionId);
    if (s === undefined) return Promise.reject(Object.assign(new Error('No such connection on this node'), { code: ErrorCode.NOT_FOUND }));
    const { requestId, answer } = this.requests.open(s.id, timeoutMs);
    this.send(s, 'request', { request_id: requestId, method, params });
    return answer;
  }

  private async presenceUserOnline(userId: string): Promise<boolean> {
    if (this.sessions.hasUser(userId)) return true;
    const users = await this.presence.onlineUsers();
    return users.some((u) => u.user_id === userId);
  }

  /** Send a frame of `type` to every connection of a user, on every node. */
  async sendToUser(userId: string, type: string, data: Record<string, unknown>): Promise<{ delivered: boolean; stored: boolean; message_id: string }> {
    return this.deliverToUser(userId, type, data, null);
  }

  /** Send a frame to one connection, wherever it is. */
  async sendToConnection(connectionId: string, type: string, data: Record<string, unknown>): Promise<void> {
    await this.broker.publishControl({ kind: 'connection', connectionId, frame: this.frame(type, data) });
  }

  /** Send a `broadcast` frame (or `type`) to every connection on every node. */
  async broadcast(data: Record<string, unknown>, type = 'broadcast', senderId: string | null = null): Promise<void> {
    await this.broker.publishControl({ kind: 'all', frame: this.frame(type, data, { senderId }) });
  }

  private async broadcastFromClient(s: Session, data: Record<string, unknown>, id: RequestId | undefined): Promise<void> {
    const decision = this.hooks.authorizeType !== undefined
      ? await this.decide(() => this.hooks.authorizeType!(s, 'broadcast'))
      : { allowed: false as const, code: ErrorCode.FORBIDDEN, message: 'broadcast needs the admin:broadcast permission' };
    if (!decision.allowed) {
      this.sendError(s, decision.code, decision.message, id);
      return;
    }
    await this.broadcast({ ...data, user_id: s.userId, username: s.identity.username }, 'broadcast', s.actorId);
    if (id !== undefined) this.send(s, 'ok', {}, { id });
  }

  async disconnectConnection(connectionId: string, code: number = CloseCode.NORMAL, reason = 'disconnected by server'): Promise<void> {
    await this.broker.publishControl({ kind: 'disconnect_connection', connectionId, code, reason });
  }

  async disconnectUser(userId: string, code: number = CloseCode.NORMAL, reason = 'disconnected by server'): Promise<void> {
    await this.broker.publishControl({ kind: 'disconnect_user', userId, code, reason });
  }

  onlineUsers(): Promise<OnlineUser[]> {
    return this.presence.onlineUsers();
  }

  // ---------------------------------------------------------------- presence, typing, history

  private async presenceRequest(s: Session, channel: string, id: RequestId | undefined): Promise<void> {
    if (!this.checkChannel(s, channel, id) || !(await this.allowed(s, 'presence', channel, id))) return;
    const members = await this.presence.members(channel);
    this.send(s, 'presence', { channel, members }, { channel, id });
  }

  /** Members of a channel on every node. */
  channelPresence(channel: string): Promise<PresenceMember[]> {
    return this.presence.members(channel);
  }

  private memberCount(channel: string): Promise<number> {
    return this.presence.count(channel);
  }

  private setTyping(s: Session, channel: string, isTyping: boolean, id: RequestId | undefined): void {
    if (s.channels === null || !s.channels.has(channel)) {
      this.sendError(s, ErrorCode.NOT_SUBSCRIBED, `Join "${channel.slice(0, 200)}" before typing in it`, id);
      return;
    }
    this.typingEvent(channel, s, isTyping);
    if (id !== undefined) this.send(s, 'ok', {}, { id });
  }

  private typingEvent(channel: string, s: Session, isTyping: boolean): void {
    const frame = this.frame('typing', { user_id: s.actorId, username: s.identity.username, is_typing: isTyping }, { channel, senderId: s.actorId });
    this.fireAndLog(this.broker.publishEphemeral(channel, frame, s.id), 'typing');
  }

  /** Apply a typing event (from any node) to this node's typing state and deliver it with `typing_users`. */
  private applyTyping(channel: string, frame: string, exclude: string | undefined): void {
    let event: { data: { user_id: string; username: string | null; is_typing: boolean } };
    try {
      event = JSON.parse(frame);
    } catch {
      return;
    }
    const { user_id, username, is_typing } = event.data;
    this.typing.apply(channel, user_id, username, is_typing, this.now());
    this.deliverTypingFrame(channel, user_id, username, is_typing, exclude);
  }

  private deliverTypingFrame(channel: string, actor: string, username: string | null, isTyping: boolean, exclude: string | undefined): void {
    const typingUsers = this.typing.users(channel);
    const out = new Outbound(
      this.frame('typing', { user_id: actor, username, is_typing: isTyping, typing_users: typingUsers }, { channel, senderId: actor }),
      'typing',
    );
    this.fanOut(channel, out, exclude);
  }

  private actorStillIn(s: Session, channel: string): boolean {
    const members = this.channels.get(channel);
    if (members === undefined) return false;
    for (const other of members) if (other !== s && other.actorId === s.actorId) return true;
    return false;
  }

  private async historyRequest(s: Session, d: Record<string, unknown>, id: RequestId | undefined): Promise<void> {
    const channel = d.channel as string;
    if (!this.checkChannel(s, channel, id) || !(await this.allowed(s, 'history', channel, id))) return;
    const limit = (d.limit as number | undefined) ?? 50;
    let before = d.before as number | undefined;
    if (this.namespace(channel).persist && this.durability?.hasArchive) {
      const page = await this.durability.history(channel, { limit, before, after: d.after as number | undefined, skip: d.offset as number | undefined });
      const publications = page.publications.map((p) => ({ ...JSON.parse(p.frame), seq: p.offset, epoch: p.epoch }));
      this.send(s, 'history', { channel, publications, has_more: page.hasMore, source: 'archive' }, { channel, id });
      return;
    }
    await this.restorePosition(channel);
    const position = await this.broker.position(channel);
    if (before === undefined && typeof d.offset === 'number') before = position.offset - d.offset + 1;
    const result = d.after !== undefined
      ? await this.broker.history(channel, { since: { offset: d.after as number, epoch: position.epoch }, limit })
      : await this.broker.history(channel, { before, limit });
    const publications = result.publications.map((p) => ({ ...JSON.parse(p.frame), seq: p.offset, epoch: p.epoch }));
    this.send(s, 'history', { channel, publications, offset: result.position.offset, epoch: result.position.epoch }, { channel, id });
  }

  private async refresh(s: Session, token: string, id: RequestId | undefined): Promise<void> {
    if (this.hooks.refreshToken === undefined) {
      this.sendError(s, ErrorCode.UNAVAILABLE, 'Token refresh is not configured', id);
      return;
    }
    const result = await this.hooks.refreshToken(s, token);
    if (!result.ok) {
      this.sendError(s, result.code, result.message, id);
      return;
    }
    s.identity = { ...s.identity, expiresAt: result.expiresAt };
    this.send(s, 'ok', { expires_at: result.expiresAt ?? null }, { id });
  }

  // ---------------------------------------------------------------- broker callbacks

  onPublication(pub: Publication): void {
    if (!this.channels.has(pub.channel) || this.continuity.hold(pub)) return;
    this.deliverPublication(pub, false);
  }

  /** Fan a publication out to local subscribers (queued on those still joining). */
  private deliverPublication(pub: Publication, replayed: boolean): void {
    const members = this.channels.get(pub.channel);
    if (members === undefined) return;
    const out = replayed
      ? new Outbound(withPosition(pub.frame, pub.offset, pub.epoch, true), 'message', pub.offset, pub.channel, pub.epoch)
      : this.live(pub);
    let delivered = 0;
    for (const s of members) {
      if (s.id === pub.excludeConnectionId) continue;
      const state = s.channels!.get(pub.channel);
      if (state === null) {
        s.sink.send(out);
        delivered++;
      } else if (state !== undefined) {
        state.push(pub);
      }
    }
    this.metrics.messagesOut('message', delivered);
  }

  onEphemeral(channel: string, frame: string, exclude: string | undefined): void {
    if (frame.startsWith('{"type":"typing"')) {
      this.applyTyping(channel, frame, exclude);
      return;
    }
    this.fanOut(channel, new Outbound(frame, 'presence'), exclude);
  }

  onControl(msg: ControlEnvelope): void {
    switch (msg.kind) {
      case 'user': {
        const set = this.sessions.ofUser(msg.userId);
        if (set === undefined) return;
        const out = new Outbound(msg.frame, 'private');
        for (const s of set) s.sink.send(out);
        this.metrics.messagesOut('private', set.size);
        return;
      }
      case 'connection': {
        const s = this.sessions.get(msg.connectionId);
        if (s !== undefined) s.sink.send(new Outbound(msg.frame, 'direct'));
        return;
      }
      case 'all': {
        const out = new Outbound(msg.frame, 'broadcast');
        for (const s of this.sessions.values()) s.sink.send(out);
        this.metrics.messagesOut('broadcast', this.sessions.size);
        return;
      }
      case 'disconnect_connection':
        this.sessions.get(msg.connectionId)?.sink.close(msg.code, msg.reason);
        return;
      case 'disconnect_user':
        for (const s of [...(this.sessions.ofUser(msg.userId) ?? [])]) s.sink.close(msg.code, msg.reason);
        return;
      case 'supersede': {
        // The control channel delivers messages in one order to every node. A local session whose own
        // announcement has not come back yet is newer than this message: it must not be closed by it.
        const s = this.sessions.byClient(msg.clientId);
        if (s === undefined) return;
        if (msg.originNode === this.nodeId) { // local supersede was handled in openSession
          if (s.id === msg.keepConnectionId) this.unannounced.delete(s);
          return;
        }
        if (s.id !== msg.keepConnectionId && !this.unannounced.has(s)) s.sink.close(CloseCode.SESSION_SUPERSEDED, 'superseded by a newer connection');
        return;
      }
    }
  }

  onStatus(status: 'up' | 'down'): void {
    const wasUp = this.brokerUp;
    this.brokerUp = status === 'up';
    this.log.warn({ status }, 'broker status changed');
    if (status === 'down' && wasUp) this.continuity.down();
    else if (status === 'up' && !wasUp) {
      this.unannounced.clear(); // their echoes may have been lost with the subscriber connection
      this.continuity.resume();
    }
  }

  // ---------------------------------------------------------------- heartbeat sweep

  private sweep(): void {
    const now = this.now();
    const hb = this.options.heartbeat;
    let ping: Outbound | null = null;
    for (const s of this.sessions.values()) {
      if (hb.pingIntervalMs > 0) {
        // Only WebSocket clients can answer; a dead SSE client shows up as a failed write instead.
        if (s.pingSentAt > 0 && now - s.pingSentAt > hb.pongTimeoutMs && s.sink.kind === 'ws') {
          s.sink.close(CloseCode.SESSION_EXPIRED, 'heartbeat timeout');
          continue;
        }
        if (now - s.lastPingAt >= hb.pingIntervalMs) {
          ping ??= new Outbound(this.frame('ping', { timestamp: new Date(now).toISOString() }), 'ping');
          s.sink.send(ping);
          s.sink.probe?.();
          s.lastPingAt = now;
          if (s.pingSentAt === 0) s.pingSentAt = now;
        }
      }
      // Idle means "sent nothing": only WebSocket clients can send, so SSE streams never go idle.
      if (hb.idleTimeoutMs > 0 && now - s.lastActivity > hb.idleTimeoutMs && s.sink.kind === 'ws') {
        s.sink.close(CloseCode.SESSION_EXPIRED, 'idle timeout');
        continue;
      }
      const exp = s.identity.expiresAt;
      if (exp !== undefined && now >= exp) s.sink.close(CloseCode.TOKEN_EXPIRED, 'token expired');
    }
    for (const e of this.typing.expire(now)) this.deliverTypingFrame(e.channel, e.actor, e.username, false, undefined);
  }

  // ---------------------------------------------------------------- shutdown, stats

  /**
   * Graceful shutdown: refuse new sessions, send `shutdown`, let sinks flush their queues and close with
   * `code`, wait until every session is gone or the deadline passes (then terminate the rest).
   * Call `stopEngine()` afterwards.
   */
  async shutdown(deadlineMs: number, code: number = CloseCode.SERVER_SHUTDOWN): Promise<void> {
    this.draining = true;
    if (this.sweepTimer !== null) clearInterval(this.sweepTimer);
    this.sweepTimer = null;
    const notice = new Outbound(this.frame('shutdown', { reason: 'server shutdown', reconnect: true }), 'shutdown');
    for (const s of this.sessions.values()) {
      s.sink.send(notice);
      s.sink.close(code, 'server shutdown');
    }
    const deadline = this.now() + deadlineMs;
    while (this.sessions.size > 0 && this.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    for (const s of [...this.sessions.values()]) {
      s.sink.terminate();
      this.closeSession(s, code);
    }
  }

  /** Release the engine (after shutdown and after transports finished closing). */
  async stopEngine(): Promise<void> {
    this.continuity.close();
    await this.broker.close();
    await this.presence.close();
  }

  /** Stop accepting new sessions (drain mode) without closing existing ones. */
  setDraining(on: boolean): void {
    this.draining = on;
  }

  stats(): HubStats {
    return {
      connections: this.sessions.size,
      channels: this.channels.size,
      subscriptions: this.subscriptionCount,
      users: this.sessions.userCount,
      draining: this.draining,
    };
  }

  get isBrokerUp(): boolean {
    return this.brokerUp;
  }

  /** Names of channels with at least one local subscriber. */
  channelNames(): string[] {
    return [...this.channels.keys()];
  }

  /** Snapshot of local connections (admin API). */
  listSessions(): Array<{ connection_id: string; user_id: string | null; username: string | null; channels: string[]; connected_at: string; remote_address: string; transport: string }> {
    return [...this.sessions.values()].map((s) => ({
      connection_id: s.id,
      user_id: s.userId,
      username: s.identity.username,
      channels: s.channels === null ? [] : [...s.channels.keys()],
      connected_at: new Date(s.connectedAt).toISOString(),
      remote_address: s.remoteAddress,
      transport: s.sink.kind,
    }));
  }

  getSession(connectionId: string): Session | undefined {
    return this.sessions.get(connectionId);
  }

  // ---------------------------------------------------------------- helpers

  /** Options of the channel's namespace (part before the first `:`), merged over the defaults; cached. */
  namespace(channel: string): NamespaceOptions {
    const colon = channel.indexOf(':');
    const name = colon < 0 ? '' : channel.slice(0, colon);
    let ns = this.namespaceCache.get(name);
    if (ns === undefined) {
      ns = { ...this.options.channelDefaults, ...(this.options.namespaces[name] ?? {}) };
      this.namespaceCache.set(name, ns);
    }
    return ns;
  }

  private live(pub: Publication): Outbound {
    return new Outbound(withPosition(pub.frame, pub.offset, pub.epoch), 'message', pub.offset, pub.channel, pub.epoch);
  }

  private deliverTo(s: Session, pub: Publication, out: Outbound): void {
    if (s.id !== pub.excludeConnectionId) s.sink.send(out);
  }

  private fanOut(channel: string, out: Outbound, exclude: string | undefined): void {
    const members = this.channels.get(channel);
    if (members === undefined) return;
    let n = 0;
    for (const s of members) {
      if (s.id === exclude || s.channels!.get(channel) !== null) continue;
      s.sink.send(out);
      n++;
    }
    this.metrics.messagesOut(out.type, n);
  }

  private ephemeral(channel: string, type: string, data: Record<string, unknown>, exclude: string): void {
    this.fireAndLog(this.broker.publishEphemeral(channel, this.frame(type, data, { channel }), exclude), type);
  }

  private controlToAll(type: string, data: Record<string, unknown>): void {
    const msg: ControlMessage = { kind: 'all', frame: this.frame(type, data) };
    this.fireAndLog(this.broker.publishControl(msg), type);
  }

  private member(s: Session): PresenceMember {
    return { connection_id: s.id, user_id: s.userId, username: s.identity.username };
  }

  private checkChannel(s: Session, channel: string, id: RequestId | undefined): boolean {
    if (channel.length > this.options.limits.maxChannelNameLength || !this.channelName.test(channel)) {
      this.sendError(s, ErrorCode.INVALID_CHANNEL, `Invalid channel name (max ${this.options.limits.maxChannelNameLength} characters of ${this.options.limits.channelNamePattern})`, id);
      return false;
    }
    return true;
  }

  private async allowed(s: Session, action: ChannelAction, channel: string, id: RequestId | undefined): Promise<boolean> {
    if (this.hooks.authorizeChannel === undefined) return true;
    const decision = await this.decide(() => this.hooks.authorizeChannel!(s, action, channel));
    if (!decision.allowed) this.sendError(s, decision.code, decision.message, id);
    return decision.allowed;
  }

  private async decide(fn: () => Decision | Promise<Decision>): Promise<Decision> {
    try {
      return await fn();
    } catch (err) {
      this.log.error({ err }, 'authorization hook failed');
      return { allowed: false, code: ErrorCode.INTERNAL, message: 'Authorization failed' };
    }
  }

  /** Serialize a server frame (seed 000 envelope). */
  frame(type: string, data: Record<string, unknown>, extra: FrameExtra = {}): string {
    const f: Record<string, unknown> = {
      type,
      data,
      timestamp: new Date(this.now()).toISOString(),
      message_id: extra.messageId ?? newId(),
      sender_id: extra.senderId ?? null,
      recipient_id: extra.recipientId ?? null,
      channel: extra.channel ?? null,
    };
    if (extra.id !== undefined) f.id = extra.id;
    return JSON.stringify(f);
  }

  /** Queue a frame on one session. */
  send(s: Session, type: string, data: Record<string, unknown>, extra: FrameExtra = {}): void {
    s.sink.send(new Outbound(this.frame(type, data, extra), type));
    this.metrics.messagesOut(type, 1);
  }

  sendError(s: Session, code: string, message: string, id: RequestId | undefined): void {
    this.metrics.errorSent(code);
    this.send(s, 'error', { code, message, temporary: isTemporaryError(code) }, { id });
  }

  private failRequest(s: Session, id: RequestId | undefined, err: unknown): void {
    const e = err as ErrorLike;
    if (e !== null && typeof e === 'object' && e.code === ErrorCode.BROKER_UNAVAILABLE) {
      this.sendError(s, ErrorCode.BROKER_UNAVAILABLE, 'Broker unavailable, try again', id);
      return;
    }
    this.log.error({ err, connection_id: s.id }, 'request failed');
    this.sendError(s, ErrorCode.INTERNAL, 'Internal error', id);
  }

  private fireAndLog(p: Promise<unknown>, what: string): void {
    p.catch((err: unknown) => this.log.warn({ err }, `${what} failed`));
  }
}
