import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import Fastify, { type FastifyInstance, type FastifyPluginAsync } from 'fastify';
import fp from 'fastify-plugin';
import { MemoryBroker } from './broker/memory/memory-broker.js';
import { MemoryPresenceStore } from './broker/memory/memory-presence.js';
import { DEFAULT_CONFIG, Y_WEBSOCKET_PROTOCOL, nodeOptionsFrom, mergeConfig, resolveEndpoints, type DeepPartial, type SwitchboardConfig } from './config.js';
import type { Broker } from './core/ports/broker.js';
import type { HubHooks } from './core/ports/hooks.js';
import { Node } from './core/node.js';
import { shortId } from './core/ids.js';
import { Durability } from './core/durability.js';
import type { NodeRegistry } from './core/ports/node-registry.js';
import { LocalNodeRegistry } from './broker/memory/local-node-registry.js';
import type { Logger } from './core/ports/observability.js';
import type { PresenceStore } from './core/ports/presence-store.js';
import { PromMetrics } from './api/metrics.js';
import { apiRoutes, isLoopback } from './api/routes.js';
import { sseRoute } from './api/sse-route.js';
import { registerStaticAssets } from './api/static-assets.js';
import { createLogger } from './logger.js';
import { createStores, type Stores } from './store/factory.js';
import { startRetention, type Retention } from './store/retention.js';
import type { AuthHooks } from './auth/hooks.js';
import { selectSubprotocol } from './auth/token-source.js';
import { wireAuth, type AuthWiring } from './auth-wiring.js';
import type { HandshakeAuthenticator, OriginCheck } from './core/ports/handshake.js';
import type { WsProtocolHandler } from './core/ports/wire-protocol.js';
import type { EngineErrorHandler } from './broker/redis/errors.js';
import { SseTransport } from './transport/sse-transport.js';
import { WebSocketTransport } from './transport/ws-transport.js';
import { YWebsocketHandler } from './protocols/y-websocket/index.js';

export interface SwitchboardOptions {
  /** Replace the engine (default: memory, or per config.broker). */
  broker?: Broker;
  presence?: PresenceStore;
  /** Node hooks (authorization, snapshot, session events); each one given replaces the auth-backed default of the same name. */
  hooks?: HubHooks;
  /** Hooks of the auth layer: session cookies, permission decisions, Ed25519 key lookup (docs/security.md). */
  authHooks?: AuthHooks;
  /** Replace the authenticator built from config.auth. */
  authenticate?: HandshakeAuthenticator;
  checkOrigin?: OriginCheck;
  logger?: Logger;
  /** Durable stores (default: opened from config.store on start). */
  stores?: Stores;
  /** Node registry for /api/nodes and /api/best-node (default: this node only, or Redis per config). */
  nodeRegistry?: NodeRegistry;
  /** Register Node's default process metrics (default true). */
  defaultMetrics?: boolean;
  /**
   * Wire-protocol handlers by name (e.g. `"y-websocket"`), served on the endpoints whose `protocol` names them
   * (config `endpoints`; docs/configuration.md, "Endpoints"). An endpoint naming a protocol not registered here
   * is a start-up error.
   */
  protocols?: Record<string, WsProtocolHandler>;
}

/**
 * The composition root: builds engine, node, transports, metrics and HTTP routes from a config.
 *
 * Three ways to run it:
 * - standalone: `await sb.listen()` (Fastify server on config.host/port);
 * - attached to your `http.Server`: `sb.attach(server)` (WebSocket upgrades only);
 * - inside your Fastify app: `app.register(sb.fastifyPlugin)`.
 * Then the in-process API: `sb.node.publish`, `broadcast`, `sendToUser`, `disconnectUser`, `stats`, ...
 */
export class Switchboard {
  readonly config: SwitchboardConfig;
  /** The public in-process API: publish, sendToUser, broadcast, disconnect, presence, history, stats. */
  readonly node: Node;
  /** @deprecated Use `node` (the hub was split into Node / Hub / Client; this alias returns the Node). */
  get hub(): Node {
    return this.node;
  }
  readonly metrics: PromMetrics;
  readonly logger: Logger;
  readonly ws: WebSocketTransport;
  /** Server-Sent Events endpoint; `sse.handler` is a `(req, res) => boolean` for a bare http.Server. */
  readonly sse: SseTransport;
  readonly nodes: NodeRegistry;
  /** The auth layer built from config.auth (JWT, cookies, Ed25519, channel rules, origins). */
  readonly auth: AuthWiring;
  /**
   * The y-websocket protocol handler (Yjs documents, docs/documents.md), registered as protocol `"y-websocket"`
   * unless `SwitchboardOptions.protocols` names another handler so; served on the endpoints naming it (by
   * default `/yjs/{doc}` when a namespace is a document namespace).
   */
  readonly yWebsocket: YWebsocketHandler;
  private reportTimer: NodeJS.Timeout | null = null;
  private stores: Stores | null;
  private retention: Retention | null = null;
  private lastCpu = process.cpuUsage();
  private lastCpuAt = Date.now();
  private app: FastifyInstance | null = null;
  private started: Promise<void> | null = null;
  private closing: Promise<void> | null = null;

  constructor(config: DeepPartial<SwitchboardConfig> = {}, options: SwitchboardOptions = {}) {
    this.config = mergeConfig(DEFAULT_CONFIG, config);
    const broker = options.broker ?? new MemoryBroker(this.config.nodeId !== null ? { nodeId: this.config.nodeId } : {});
    const nodeId = broker.nodeId ?? shortId();
    this.logger = options.logger ?? createLogger(this.config, nodeId);
    this.nodes = options.nodeRegistry ?? new LocalNodeRegistry(nodeId);
    this.stores = options.stores ?? null;
    this.metrics = new PromMetrics(() => this.node.stats(), { defaultMetrics: options.defaultMetrics });
    this.auth = wireAuth(this.config.auth, options.authHooks);
    this.node = new Node({
      broker,
      presence: options.presence ?? new MemoryPresenceStore(),
      options: nodeOptionsFrom(this.config),
      hooks: { ...this.auth.nodeHooks, ...options.hooks },
      logger: this.logger,
      metrics: this.metrics,
    });
    const authenticate: HandshakeAuthenticator = options.authenticate ?? this.auth.authenticate;
    const checkOrigin: OriginCheck = options.checkOrigin ?? this.auth.checkOrigin;
    this.yWebsocket = new YWebsocketHandler({
      documents: this.node.documents,
      maxPayload: this.config.documents.maxUpdateBytes + 1024,
      maxQueuedBytes: Math.max(this.config.limits.maxQueuedBytes, 4 * this.config.documents.maxUpdateBytes),
      pingIntervalMs: this.config.heartbeat.pingIntervalMs,
      logger: this.logger,
    });
    const protocols: Record<string, WsProtocolHandler> = { [Y_WEBSOCKET_PROTOCOL]: this.yWebsocket, ...options.protocols };
    const endpoints = resolveEndpoints(this.config, {
      protocols: Object.keys(protocols),
      tokens: this.auth.verifies.tokens,
      cookies: this.auth.verifies.cookies,
      inbox: options.stores !== undefined ? options.stores.inbox !== null : this.config.store.driver !== 'none',
      customAuthenticator: options.authenticate !== undefined,
    });
    this.ws = new WebSocketTransport(this.node, {
      path: this.config.http.wsPath,
      endpoints,
      protocols,
      maxMessageBytes: this.config.limits.maxMessageBytes,
      maxQueuedBytes: this.config.limits.maxQueuedBytes,
      authenticate,
      checkOrigin,
      selectSubprotocol,
      requireAuth: this.config.auth.required,
      rejectAuthAtHandshake: this.config.auth.rejectAt === 'handshake',
      challenge: { handshake: this.auth.challenge, timeoutMs: this.auth.auth.config.handshakeTimeoutMs },
      trustProxy: this.config.http.trustProxy,
      logger: this.logger,
    });
    this.sse = new SseTransport(this.node, {
      path: this.config.sse.path,
      retryMs: this.config.sse.retryMs,
      maxEventIdBytes: this.config.sse.maxEventIdBytes,
      maxQueuedBytes: this.config.limits.maxQueuedBytes,
      authenticate,
      checkOrigin,
      credentialedOrigin: (origin) => this.auth.auth.origins.isListed(origin),
      requireAuth: this.config.auth.required,
      trustProxy: this.config.http.trustProxy,
      logger: this.logger,
    });
  }

  /**
   * Build a server from a config, choosing the engine it names (memory by default). Not started:
   * call `listen()`, `start()` or register `fastifyPlugin`.
   */
  static async create(config: DeepPartial<SwitchboardConfig> = {}, options: SwitchboardOptions = {}): Promise<Switchboard> {
    const full = mergeConfig(DEFAULT_CONFIG, config);
    // Engine errors no caller can receive: logged at warn and counted (switchboard_broker_errors_total). The
    // engines connect only on start(), after `sb` is assigned.
    let sb: Switchboard | undefined;
    const onError: EngineErrorHandler = (err, context, details) => {
      if (sb === undefined) return;
      sb.metrics.brokerError(context);
      sb.logger.warn({ err, context, ...details }, `redis engine error (${context})`);
    };
    if (full.broker.type === 'redis' && options.broker === undefined) {
      const { RedisBroker, RedisPresenceStore, RedisNodeRegistry, parseSentinels } = await import('./broker/redis/index.js');
      const nodeId = full.nodeId ?? shortId();
      const redis = {
        url: full.broker.redisUrl,
        nodeId,
        keyPrefix: full.broker.keyPrefix,
        commandTimeoutMs: full.broker.commandTimeoutMs,
        sentinels: parseSentinels(full.broker.sentinels),
        sentinelName: full.broker.sentinelName,
        onError,
      };
      options = {
        ...options,
        // A position read on a channel without a stream stays recoverable no longer than any stream lives.
        broker: new RedisBroker({ ...redis, sharded: full.broker.sharded, emptyEpochTtlMs: shortestHistoryTtlMs(full) }),
        presence: options.presence ?? new RedisPresenceStore({ ...redis, presenceTtlMs: full.broker.presenceTtlMs, nodeTimeoutMs: full.broker.nodeTimeoutMs }),
        // A node that stops reporting (crashed) leaves /api/nodes after three missed reports, or sooner when its
        // presence heartbeats stop (nodeTimeoutMs).
        nodeRegistry: options.nodeRegistry ?? new RedisNodeRegistry({ ...redis, ttlMs: Math.max(1000, 3 * full.broker.nodeReportIntervalMs), nodeTimeoutMs: full.broker.nodeTimeoutMs }),
      };
    }
    sb = new Switchboard(full, options);
    return sb;
  }

  /** Start the engine, the node registry and the heartbeat sweep. Idempotent. */
  start(): Promise<void> {
    this.started ??= (async () => {
      await this.openStores();
      await this.node.start();
      await this.nodes.start();
      await this.reportLoad();
      this.reportTimer = setInterval(() => void this.reportLoad(), this.config.broker.nodeReportIntervalMs);
      this.reportTimer.unref();
    })();
    return this.started;
  }

  /** createStores, with what to do when a SQLite file is held by another server process. */
  private async createStoresWithHint(config: Parameters<typeof createStores>[0]): Promise<Stores> {
    try {
      return await createStores(config);
    } catch (err) {
      const e = err as { code?: string; message?: string };
      if (config.driver === 'sqlite' && e.code === 'STORE_UNAVAILABLE') {
        throw Object.assign(new Error(`${e.message}. SQLite allows one server process per file: give each process its own store.sqlitePath, or use store.driver=postgres (clusters) or none`), { code: e.code });
      }
      throw err;
    }
  }

  /** Open the configured stores (unless given) and hand them to the node; start archive retention. */
  private async openStores(): Promise<void> {
    const c = this.config.store;
    this.stores ??= await this.createStoresWithHint({
      driver: c.driver,
      sqlitePath: c.sqlitePath,
      postgresUrl: c.postgresUrl || undefined,
      postgresPoolSize: c.postgresPoolSize,
      postgresConnectTimeoutMs: c.postgresConnectTimeoutMs,
      postgresQueryTimeoutMs: c.postgresQueryTimeoutMs,
      inboxMaxPerUser: c.inboxMaxPerUser,
    });
    this.node.useDurability(new Durability(this.stores.messages, this.stores.inbox, { inboxTtlMs: c.inboxTtlMs, inboxDeliverLimit: c.inboxDeliverLimit }));
    this.node.useDocumentStore(this.stores.documents ?? null);
    this.retention = startRetention(this.stores, {
      intervalMs: c.retentionIntervalMs,
      olderThanMs: c.retentionMaxAgeMs > 0 ? c.retentionMaxAgeMs : undefined,
      keepPerChannel: c.retentionKeepPerChannel > 0 ? c.retentionKeepPerChannel : undefined,
      onError: (err) => this.logger.warn({ err }, 'store retention failed'),
      documentsKeep: this.config.documents.historyKeep,
    });
  }

  /**
   * Publish this node's load to the registry (CPU since the last report, RSS, connections, drain flag).
   * Runs every broker.nodeReportIntervalMs; call it to publish a change at once (e.g. after drain). Never throws.
   */
  async reportLoad(): Promise<void> {
    const now = Date.now();
    const cpu = process.cpuUsage(this.lastCpu);
    const elapsed = Math.max(1, now - this.lastCpuAt) * 1000;
    this.lastCpu = process.cpuUsage();
    this.lastCpuAt = now;
    const stats = this.node.stats();
    try {
      await this.nodes.report({
        connections: stats.connections,
        cpu: Math.round(((cpu.user + cpu.system) / elapsed) * 1000) / 1000,
        memoryRss: process.memoryUsage.rss(),
        draining: stats.draining,
        ...(this.config.http.publicUrl !== '' ? { address: this.config.http.publicUrl } : {}),
      });
    } catch (err) {
      this.logger.warn({ err }, 'node report failed');
    }
  }

  /**
   * Route WebSocket upgrades of `server` to Switchboard; upgrades to a path that is no endpoint are answered
   * with HTTP 404 (`NOT_FOUND`). For SSE on a bare server, call `sb.sse.handler(req, res)` first in your
   * request listener (it returns false for other paths). To share the server's upgrades with another
   * WebSocket library, call `sb.ws.handleUpgrade(req, socket, head)` yourself instead: it returns false for
   * paths that are not Switchboard's.
   */
  attach(server: Server): void {
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      if (!this.ws.handleUpgrade(req, socket, head)) this.ws.notFound(socket);
    });
  }

  /** Fastify plugin: routes (health, metrics, API, test page) plus WebSocket upgrades on app.server. */
  readonly fastifyPlugin: FastifyPluginAsync = fp(async (app: FastifyInstance) => {
    await this.start();
    this.attach(app.server);
    if (this.config.http.apiKey === '') app.addHook('onListen', async () => this.warnKeylessApi(app.server.address()));
    if (this.config.http.serveDemo) await registerStaticAssets(app);
    await app.register(apiRoutes, {
      node: this.node,
      metrics: this.metrics.registry,
      nodes: this.nodes,
      reportLoad: () => this.reportLoad(),
      brokerType: this.config.broker.type,
      apiKey: this.config.http.apiKey,
      serveDemo: this.config.http.serveDemo,
    });
    if (this.config.sse.enabled) await app.register(sseRoute, { path: this.sse.path, handle: this.sse.handler });
  }, { name: 'switchboard' });

  /**
   * Logged once the server listens: the server API has no key (http.apiKey) and the address is reachable from
   * other machines. The key-less API answers only loopback callers with a loopback Host header, but a reverse
   * proxy on this host that adds no forwarding header and rewrites Host makes every caller look local.
   */
  private warnKeylessApi(address: ReturnType<Server['address']>): void {
    if (address === null || typeof address === 'string' || isLoopback(address.address)) return;
    this.logger.warn(
      { address: address.address, port: address.port },
      'http.apiKey is empty and the server listens on a non-loopback address: /api/* answers loopback callers only, ' +
        'but a reverse proxy on this host can make remote callers look local. Set http.apiKey (docs/security.md, "Server API")',
    );
  }

  /** Start a standalone server on config.host:config.port (port 0: any free port). Resolves to the port. */
  async listen(): Promise<number> {
    const app = Fastify({ logger: false, bodyLimit: this.config.limits.maxMessageBytes, forceCloseConnections: true });
    this.app = app;
    await app.register(this.fastifyPlugin);
    await app.listen({ host: this.config.host, port: this.config.port });
    const address = app.server.address();
    return typeof address === 'object' && address !== null ? address.port : this.config.port;
  }

  /** The standalone Fastify instance (after listen), e.g. to add routes or use `inject` in tests. */
  get fastify(): FastifyInstance | null {
    return this.app;
  }

  /**
   * Graceful shutdown: refuse new connections, send `shutdown`, deliver what is queued, close every
   * connection with 4091, then stop the HTTP server and the engine, within config.shutdown.deadlineMs.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await this.start();
      if (this.reportTimer !== null) clearInterval(this.reportTimer);
      const started = Date.now();
      const deadline = this.config.shutdown.deadlineMs;
      await this.node.shutdown(deadline);
      this.yWebsocket.close();
      await this.ws.drain(Math.max(0, deadline - (Date.now() - started)));
      await this.sse.drain(Math.max(0, deadline - (Date.now() - started)));
      this.ws.close();
      await this.node.stopEngine();
      await this.nodes.close().catch(() => undefined);
      this.retention?.stop();
      await this.stores?.close();
      if (this.app !== null) await this.app.close();
    })();
    return this.closing;
  }
}

/** The shortest positive history ttl of the channel defaults and every namespace (no expiry anywhere: unbounded). */
function shortestHistoryTtlMs(config: SwitchboardConfig): number {
  const ttls = [config.channels.defaults.historyTtlMs, ...Object.values(config.channels.namespaces).map((n) => n.historyTtlMs)]
    .filter((t): t is number => typeof t === 'number' && t > 0);
  return ttls.length > 0 ? Math.min(...ttls) : Number.MAX_SAFE_INTEGER;
}
