import { CloseCode, ErrorCode, type OnlineUser, type PresenceMember, type StreamPosition } from '@switchboard/protocol';
import type { Client } from './client/client.js';
import type { CoreContext } from './context.js';
import type { UserDelivery } from './features/direct.js';
import type { Durability } from './durability.js';
import { Heartbeat } from './client/heartbeat.js';
import type { HistoryPage, HistoryRequest } from './features/history.js';
import type { PublishRequest } from './features/publish.js';
import { Frames } from './frames.js';
import { Hub, type ConnectionSummary } from './hub/hub.js';
import { Namespaces } from './namespaces.js';
import type { NodeOptions, NamespaceOptions } from './options.js';
import { closeEverything } from './node-shutdown.js';
import { assemble, closeParts, sweepParts, type NodeParts } from './parts.js';
import type { Broker, Publication } from './ports/broker.js';
import type { DocumentStore } from './ports/document-store.js';
import type { Documents } from './features/documents.js';
import type { HubHooks } from './ports/hooks.js';
import { NOOP_METRICS, SILENT_LOGGER, type NodeMetrics, type Logger } from './ports/observability.js';
import type { MembersPage, OnlineUsersPage, PresenceStore } from './ports/presence-store.js';
import type { SessionHandle, SessionInit, SessionPort, SessionRejection, SlotReservation } from './ports/session-port.js';

export interface NodeDeps {
  broker: Broker;
  presence: PresenceStore;
  options: NodeOptions;
  hooks?: HubHooks;
  /** Durable archive + offline inbox (optional: without it, `persist` and the inbox are off). */
  durability?: Durability;
  logger?: Logger;
  metrics?: NodeMetrics;
  now?: () => number;
}

export interface NodeStats {
  connections: number;
  channels: number;
  subscriptions: number;
  users: number;
  draining: boolean;
}

/**
 * The Node: Switchboard's public in-process API and lifecycle (centrifuge's node.go). Publish, address users
 * and connections, broadcast, disconnect, read presence and history, stats; start and shut down.
 *
 * It wires the parts and owns nothing else: the Hub (index + fan-out), the per-connection command pipeline
 * (ordered dispatch), and the features (presence, typing, direct messages + inbox, history, requests,
 * continuity, durability). Transports reach it only through the SessionPort it implements; engines only
 * through the broker handler (BrokerEvents).
 */
export class Node implements SessionPort {
  readonly broker: Broker;
  readonly presence: PresenceStore;
  readonly options: NodeOptions;
  private readonly ctx: CoreContext;
  private readonly hub: Hub<Client>;
  private readonly parts: NodeParts;
  private sweepTimer: NodeJS.Timeout | null = null;
  private isDraining = false;

  constructor(deps: NodeDeps) {
    this.broker = deps.broker;
    this.presence = deps.presence;
    this.options = deps.options;
    const now = deps.now ?? Date.now;
    const log = deps.logger ?? SILENT_LOGGER;
    const metrics = deps.metrics ?? NOOP_METRICS;
    this.hub = new Hub<Client>(metrics);
    this.ctx = {
      options: deps.options, broker: deps.broker, presence: deps.presence, hooks: deps.hooks ?? {}, log, metrics, now,
      hub: this.hub, frames: new Frames(now, metrics, log), namespaces: new Namespaces(deps.options), durability: deps.durability ?? null,
    };
    this.parts = assemble(this.ctx, this.hub, () => this.isDraining);
  }

  get nodeId(): string {
    return this.broker.nodeId;
  }

  /** Give the node its durable stores; only before `start()`. */
  useDurability(durability: Durability): void {
    this.ctx.durability = durability;
  }

  /** Give the node its document store (SQLite, PostgreSQL; null: documents in memory only); only before `start()`. */
  useDocumentStore(store: DocumentStore | null): void {
    this.parts.documents.useStore(store);
  }

  /**
   * Yjs document channels (namespaces with `documents: "yjs"`, docs/documents.md): attach peers (the
   * y-websocket endpoint does), read or write a document from the server side, its operation log.
   */
  get documents(): Documents {
    return this.parts.documents;
  }

  /** Start the engine and the shared heartbeat/typing sweep (one timer for all connections). */
  async start(): Promise<void> {
    await this.presence.start?.();
    await this.broker.start(this.parts.events);
    this.sweepTimer = setInterval(() => sweepParts(this.parts, this.ctx.now()), Heartbeat.tickMs(this.options));
    this.sweepTimer.unref();
  }

  // ---------------------------------------------------------------- SessionPort (transports)

  openSession(init: SessionInit): Client | SessionRejection {
    return this.parts.lifecycle.open(init);
  }

  reserveSlot(remoteAddress: string): SlotReservation | SessionRejection {
    return this.hub.sessions.reserve(remoteAddress, this.options.limits);
  }

  openClientSession(init: SessionInit): Promise<Client | SessionRejection> {
    return this.parts.lifecycle.openClaimed(init).catch((err: unknown): SessionRejection => {
      this.ctx.log.error({ err }, 'opening a client id session failed');
      return { rejected: true, closeCode: CloseCode.INTERNAL_ERROR, reason: 'internal error' };
    });
  }

  handleText(s: SessionHandle, text: string): void {
    this.parts.pipeline.text(s as Client, text);
  }

  handleBinary(s: SessionHandle, data?: Uint8Array): void {
    this.parts.binaryFrames.handle(s as Client, data, this.ctx.now()); // documents, binary namespaces, or refused
  }

  markAlive(s: SessionHandle): void {
    const c = s as Client;
    c.lastSeen = this.ctx.now();
    c.pingSentAt = 0;
  }

  closeSession(s: SessionHandle, code: number): void {
    this.parts.lifecycle.close(s as Client, code);
    this.parts.nativeDocuments.closed(s);
  }

  /**
   * Subscribe a connection to a channel on the server's initiative (SSE `?channels=`, `last_sequence` on
   * connect, backend code): queued behind its pending commands, same checks, recovery and frames as a client
   * `join_channel`; failures reach the connection as `error` frames.
   */
  subscribe(s: SessionHandle, channel: string, since?: StreamPosition): void {
    this.parts.pipeline.enqueue(s as Client, { type: 'join_channel', data: since === undefined ? { channel } : { channel, since }, id: undefined });
  }

  /**
   * Take a connection out of a channel on the server's initiative (no reply frame): queued behind the
   * connection's pending commands, like `subscribe`, so subscribe-then-unsubscribe ends unsubscribed.
   */
  unsubscribe(s: SessionHandle, channel: string): void {
    this.parts.pipeline.enqueue(s as Client, { type: 'server_leave', data: { channel }, id: undefined });
  }

  frame(type: string, data: Record<string, unknown>): string {
    return this.ctx.frames.frame(type, data);
  }

  get draining(): boolean {
    return this.isDraining;
  }

  get maxChannelsPerConnection(): number {
    return this.options.limits.maxChannelsPerConnection;
  }

  /** The WebSocket frame limit: larger than limits.maxMessageBytes only for document frames (BinaryFrames). */
  get maxFrameBytes(): number {
    return this.parts.documents.transportFrameBytes;
  }

  // ---------------------------------------------------------------- public API

  /**
   * Publish `data` to a channel (from the server side). Resolves once the broker accepted it: stored in
   * history, delivered to every node, and archived for `persist` namespaces.
   */
  publish(channel: string, data: Record<string, unknown>, opts: PublishRequest = {}): Promise<Publication> {
    return this.parts.publisher.publish(channel, data, opts);
  }

  /** Send a frame of `type` to every connection of a user, on every node; offline users get it in their inbox. */
  sendToUser(userId: string, type: string, data: Record<string, unknown>): Promise<UserDelivery> {
    return this.parts.direct.toUser(userId, type, data, null);
  }

  /** Send a frame to one connection, wherever it is. */
  sendToConnection(connectionId: string, type: string, data: Record<string, unknown>): Promise<void> {
    return this.parts.direct.toConnection(connectionId, type, data);
  }

  /** Send a `broadcast` frame (or `type`) to every connection on every node. */
  broadcast(data: Record<string, unknown>, type = 'broadcast', senderId: string | null = null): Promise<void> {
    return this.parts.direct.broadcast(data, type, senderId);
  }

  /** Close one connection, wherever it is. */
  async disconnectConnection(connectionId: string, code: number = CloseCode.NORMAL, reason = 'disconnected by server'): Promise<void> {
    await this.broker.publishControl({ kind: 'disconnect_connection', connectionId, code, reason });
  }

  /** Close every connection of a user, on every node. */
  async disconnectUser(userId: string, code: number = CloseCode.NORMAL, reason = 'disconnected by server'): Promise<void> {
    await this.broker.publishControl({ kind: 'disconnect_user', userId, code, reason });
  }

  /** Ask one local connection something and await its `response` (seed 002 request/response). Rejects
   * with a RequestError: TIMEOUT, NOT_FOUND (no such connection, or it closed), or the client's code. */
  request(connectionId: string, method: string, params: Record<string, unknown>, timeoutMs = 10_000): Promise<Record<string, unknown>> {
    const c = this.hub.sessions.get(connectionId);
    if (c === undefined) return Promise.reject(Object.assign(new Error('No such connection on this node'), { code: ErrorCode.NOT_FOUND }));
    const { requestId, answer } = this.parts.requests.open(c.id, timeoutMs);
    this.ctx.frames.send(c, 'request', { request_id: requestId, method, params });
    return answer;
  }

  /** Every online user of the cluster. O(all online users): for admin views of small clusters. */
  onlineUsers(): Promise<OnlineUser[]> {
    return this.parts.presence.onlineUsers();
  }

  /** One page of the cluster's online users: start with cursor null, pass `nextCursor` back until null. */
  onlineUsersPage(cursor: string | null, limit = 100): Promise<OnlineUsersPage> {
    return this.parts.presence.onlineUsersPage(cursor, limit);
  }

  /** Members of a channel on every node (O(members): for small channels; page with channelPresencePage). */
  channelPresence(channel: string): Promise<PresenceMember[]> {
    return this.parts.presence.members(channel);
  }

  /** One page of a channel's members: start with cursor null, pass `nextCursor` back until null. */
  channelPresencePage(channel: string, cursor: string | null, limit = 100): Promise<MembersPage> {
    return this.parts.presence.membersPage(channel, cursor, limit);
  }

  /** One page of a channel's history (archive for `persist` namespaces, the broker's window otherwise; a document's operation log). */
  channelHistory(channel: string, query: HistoryRequest = {}): Promise<HistoryPage> {
    return this.parts.history.read(channel, query);
  }

  /** Options of the channel's namespace. */
  namespace(channel: string): NamespaceOptions {
    return this.ctx.namespaces.of(channel);
  }

  /** Whether `channel` is a valid channel name (limits.maxChannelNameLength, limits.channelNamePattern). */
  isValidChannel(channel: string): boolean {
    return this.parts.access.isValidChannel(channel);
  }

  stats(): NodeStats {
    const hub = this.hub;
    return { connections: hub.sessions.size, channels: hub.channelCount, subscriptions: hub.subscriptions, users: hub.sessions.userCount, draining: this.isDraining };
  }

  get isBrokerUp(): boolean {
    return this.parts.events.brokerUp;
  }

  /** Names of channels with at least one local subscriber. */
  channelNames(): string[] {
    return this.hub.channelNames();
  }

  /** Local members (live and joining) per channel, largest first, at most `limit` channels (admin figures). */
  channelSizes(limit = Number.POSITIVE_INFINITY): Array<[string, number]> {
    return this.hub.channelSizes(limit);
  }

  /** Snapshot of local connections (admin API). */
  listSessions(): ConnectionSummary[] {
    return this.hub.summaries();
  }

  getSession(connectionId: string): Client | undefined {
    return this.hub.sessions.get(connectionId);
  }

  // ---------------------------------------------------------------- lifecycle

  /** Stop accepting new connections (drain mode) without closing existing ones. */
  setDraining(on: boolean): void {
    this.isDraining = on;
  }

  /**
   * Graceful shutdown: refuse new connections, send `shutdown`, let sinks flush their queues and close with
   * `code`, wait until every connection is gone or the deadline passes (then terminate the rest).
   * Call `stopEngine()` afterwards.
   */
  async shutdown(deadlineMs: number, code: number = CloseCode.SERVER_SHUTDOWN): Promise<void> {
    this.isDraining = true;
    if (this.sweepTimer !== null) clearInterval(this.sweepTimer);
    this.sweepTimer = null;
    await closeEverything(this.ctx, this.parts, this.hub.sessions, code, deadlineMs);
  }

  /** Release the engine (after shutdown and after transports finished closing). */
  async stopEngine(): Promise<void> {
    closeParts(this.parts);
    await this.broker.close();
    await this.presence.close();
  }
}
