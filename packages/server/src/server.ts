import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import Fastify, { type FastifyInstance, type FastifyPluginAsync } from 'fastify';
import fp from 'fastify-plugin';
import { MemoryBroker } from './broker/memory/memory-broker.js';
import { MemoryPresenceStore } from './broker/memory/memory-presence.js';
import { Y_WEBSOCKET_PROTOCOL, nodeOptionsFrom, resolveConfig, resolveEndpoints, type DeepPartial, type SwitchboardConfig } from './config.js';
import type { Broker } from './core/ports/broker.js';
import type { HubHooks } from './core/ports/hooks.js';
import { Node } from './core/node.js';
import { shortId } from './core/ids.js';
import { Durability } from './core/durability.js';
import type { NodeRegistry } from './core/ports/node-registry.js';
import { LocalNodeRegistry } from './broker/memory/local-node-registry.js';
import type { Logger } from './core/ports/observability.js';
import type { PresenceStore } from './core/ports/presence-store.js';
import { PromMetrics, type BrokerStatusName } from './api/metrics.js';
import { apiRoutes, brokerStatusOf, isLoopback } from './api/routes.js';
import { adminRoutes } from './api/admin.js';
import { NodeFigures } from './api/figures.js';
import { sseRoute } from './api/sse-route.js';
import { APPS_DIR, packageDir, registerStaticAssets } from './api/static-assets.js';
import { VERSION } from './version.js';
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

/** Options of `sb.fastifyPlugin` (`app.register(sb.fastifyPlugin, { demo: true })`). */
export interface SwitchboardPluginOptions {
  /** Serve the demo chat at `/` and `/chat/`, the test page at `/test` and the browser SDK at `/sdk/` (default
   * false: an application's own `/` stays its own). The standalone server (`listen()`) follows `http.serveDemo`. */
  demo?: boolean;
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
  /** This node's figures for the admin dashboard (per-second samples, recent errors), reported to the registry. */
  readonly figures: NodeFigures;
  /** The engine's status as `/health` and `/metrics` report it (one shared probe). */
  readonly brokerStatus: () => Promise<BrokerStatusName>;
  private readonly customAuthenticate: boolean;
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
  private isStarted = false;
  private stopping: Promise<void> | null = null;
  private closing: Promise<void> | null = null;

  /**
   * Build a server from a (partial) config, merged over the defaults and checked against the configuration
   * schema: throws ConfigError (every problem with its path, expected type and value) for an unknown key, a
   * wrong type or an out-of-range value, and AuthConfigError / EndpointConfigError for what the auth layer and
   * the endpoint table refuse. Not started: call `listen()`, `start()` or register `fastifyPlugin`.
   */
  constructor(config: DeepPartial<SwitchboardConfig> = {}, options: SwitchboardOptions = {}) {
    this.config = resolveConfig(config);
    const broker = options.broker ?? new MemoryBroker(this.config.nodeId !== null ? { nodeId: this.config.nodeId } : {});
    const nodeId = broker.nodeId ?? shortId();
    // Warnings and errors logged are also kept for the admin dashboard's "recent errors".
    this.logger = recordingLogger(options.logger ?? createLogger(this.config, nodeId), (e) => this.figures.recordError(e));
    this.nodes = options.nodeRegistry ?? new LocalNodeRegistry(nodeId);
    this.stores = options.stores ?? null;
    this.metrics = new PromMetrics(() => this.node.stats(), {
      defaultMetrics: options.defaultMetrics,
      brokerStatus: () => this.brokerStatus(),
      info: { nodeId, broker: this.config.broker.type, version: VERSION },
    });
    this.auth = wireAuth(this.config.auth, options.authHooks);
    this.customAuthenticate = options.authenticate !== undefined;
    this.node = new Node({
      broker,
      presence: options.presence ?? new MemoryPresenceStore(),
      options: nodeOptionsFrom(this.config),
      hooks: { ...this.auth.nodeHooks, ...options.hooks },
      logger: this.logger,
      metrics: this.metrics,
    });
    this.brokerStatus = brokerStatusOf(this.node);
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
    this.figures = new NodeFigures({
      version: VERSION,
      broker: this.config.broker.type,
      stats: () => this.node.stats(),
      brokerUp: () => this.node.isBrokerUp,
      totals: () => this.metrics.totals(),
      channelSizes: (limit) => this.node.channelSizes(limit),
    });
    this.metrics.onErrorSent = (code) => this.figures.recordError({ kind: 'error_frame', code, message: `error frame ${code} sent to a client` });
  }

  /**
   * Build a server from a config, choosing the engine it names (memory by default). Not started:
   * call `listen()`, `start()` or register `fastifyPlugin`.
   */
  static async create(config: DeepPartial<SwitchboardConfig> = {}, options: SwitchboardOptions = {}): Promise<Switchboard> {
    const full = resolveConfig(config);
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
      this.figures.start();
      await this.reportLoad();
      this.reportTimer = setInterval(() => void this.reportLoad(), this.config.broker.nodeReportIntervalMs);
      this.reportTimer.unref();
      this.isStarted = true;
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
        details: this.figures.details(),
      });
    } catch (err) {
      this.logger.warn({ err }, 'node report failed');
    }
  }

  /**
   * Route WebSocket upgrades of `server` to Switchboard (a path that is no endpoint is answered with HTTP 404,
   * `NOT_FOUND`) and start the node
   * (engine, stores, registry) if it is not started yet: upgrades arriving before it is ready wait for it. If
   * starting fails, the error is logged and every upgrade is answered 503; the returned promise (resolved once
   * the node runs) rejects with that error. For SSE on a bare server, call `sb.sse.handler(req, res)` first in
   * your request listener (it returns false for other paths). `sb.close()` stops it all (not `server.close()`).
   */
  attach(server: Server): Promise<void> {
    const ready = this.start();
    let failed = false;
    ready.catch((err: unknown) => {
      failed = true;
      this.logger.error({ err }, 'switchboard failed to start: WebSocket upgrades are refused with 503');
    });
    const upgrade = (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      if (!this.ws.handleUpgrade(req, socket, head)) this.ws.notFound(socket);
    };
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      if (this.isStarted) upgrade(req, socket, head);
      else if (failed) refuseUpgrade(socket);
      else ready.then(() => upgrade(req, socket, head), () => refuseUpgrade(socket));
    });
    if (server.listening) this.warnOnListen(server.address());
    else server.once('listening', () => this.warnOnListen(server.address()));
    return ready;
  }

  /**
   * Fastify plugin: health, metrics, the server API, SSE, the admin dashboard (when `http.adminToken` is set) and
   * WebSocket upgrades on app.server; the demo pages only with `{ demo: true }`. The node starts when the plugin
   * is registered and shuts down gracefully with the app (`app.close()`: every WebSocket and SSE connection gets
   * `shutdown` and 4091 first, so the close does not wait for them).
   */
  readonly fastifyPlugin: FastifyPluginAsync<SwitchboardPluginOptions> = fp(async (app: FastifyInstance, options: SwitchboardPluginOptions) => {
    await this.registerOn(app, options.demo === true, false);
  }, { name: 'switchboard' });

  private async registerOn(app: FastifyInstance, demo: boolean, standalone: boolean): Promise<void> {
    await this.attach(app.server);
    // Before the HTTP server stops: open WebSocket and SSE connections would otherwise keep app.close() waiting.
    app.addHook('preClose', async () => this.stop());
    app.addHook('onClose', async () => this.stop());
    if (demo) await registerStaticAssets(app);
    await app.register(apiRoutes, {
      node: this.node,
      metrics: this.metrics.registry,
      nodes: this.nodes,
      reportLoad: () => this.reportLoad(),
      brokerType: this.config.broker.type,
      apiKey: this.config.http.apiKey,
      serveDemo: demo,
      brokerStatus: this.brokerStatus,
    });
    if (this.config.sse.enabled) await app.register(sseRoute, { path: this.sse.path, handle: this.sse.handler });
    // The dashboard: when a token is set; a standalone server also says at /admin how to turn it on.
    if (this.config.http.adminToken !== '' || standalone) {
      const uplot = packageDir('uplot');
      await app.register(adminRoutes, {
        token: this.config.http.adminToken,
        node: this.node,
        nodes: this.nodes,
        figures: (full) => this.figures.details(full),
        appDir: `${APPS_DIR}admin`,
        sharedDir: `${APPS_DIR}shared`,
        uplotDir: uplot === null ? null : `${uplot}/dist`,
      });
    }
  }

  /** Warnings worth a line once the server listens on a non-loopback address. */
  private warnOnListen(address: ReturnType<Server['address']>): void {
    if (address === null || typeof address === 'string' || isLoopback(address.address)) return;
    if (this.config.http.apiKey === '') this.warnKeylessApi(address);
    if (this.auth.trustClientIds && !this.customAuthenticate) {
      this.logger.warn(
        { address: address.address, port: address.port },
        'development identities are trusted and the server listens on a non-loopback address: any client can claim any ' +
          'user id with ?user_id= (auth.trustClientIds, on while no credential method is configured). Configure auth.jwt or ' +
          'a session hook, or set auth.trustClientIds=false (docs/security.md)',
      );
    }
  }

  /**
   * Logged once the server listens: the server API has no key (http.apiKey) and the address is reachable from
   * other machines. The key-less API answers only loopback callers with a loopback Host header, but a reverse
   * proxy on this host that adds no forwarding header and rewrites Host makes every caller look local.
   */
  private warnKeylessApi(address: { address: string; port: number }): void {
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
    await app.register(fp(async (instance: FastifyInstance) => this.registerOn(instance, this.config.http.serveDemo, true), { name: 'switchboard' }));
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
      await this.stop();
      if (this.app !== null) await this.app.close();
    })();
    return this.closing;
  }

  /** close() without the standalone HTTP server: what an embedding app's close runs (preClose hook). */
  private stop(): Promise<void> {
    this.stopping ??= (async () => {
      await this.start().catch(() => undefined);
      if (this.reportTimer !== null) clearInterval(this.reportTimer);
      this.figures.stop();
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
    })();
    return this.stopping;
  }
}

/** Answer an upgrade request with 503 (the node could not start) and close the socket. */
function refuseUpgrade(socket: Duplex): void {
  socket.end('HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
}

/** A Logger that also hands every warning and error to `record` (the admin dashboard's recent errors). */
function recordingLogger(base: Logger, record: (e: { kind: 'log'; level: string; code?: string; message: string }) => void): Logger {
  const keep = (level: string, fields: object, msg: string) => {
    const f = fields as { context?: unknown; err?: { code?: unknown; message?: unknown } };
    const code = typeof f.context === 'string' ? f.context : typeof f.err?.code === 'string' ? f.err.code : undefined;
    const detail = typeof f.err?.message === 'string' ? `: ${f.err.message}` : '';
    try {
      record({ kind: 'log', level, ...(code !== undefined ? { code } : {}), message: `${msg}${detail}`.slice(0, 500) });
    } catch {
      // Logging never fails because of the dashboard.
    }
  };
  return {
    debug: (fields, msg) => base.debug(fields, msg),
    info: (fields, msg) => base.info(fields, msg),
    warn: (fields, msg) => {
      keep('warn', fields, msg);
      base.warn(fields, msg);
    },
    error: (fields, msg) => {
      keep('error', fields, msg);
      base.error(fields, msg);
    },
  };
}

/** The shortest positive history ttl of the channel defaults and every namespace (no expiry anywhere: unbounded). */
function shortestHistoryTtlMs(config: SwitchboardConfig): number {
  const ttls = [config.channels.defaults.historyTtlMs, ...Object.values(config.channels.namespaces).map((n) => n.historyTtlMs)]
    .filter((t): t is number => typeof t === 'number' && t > 0);
  return ttls.length > 0 ? Math.min(...ttls) : Number.MAX_SAFE_INTEGER;
}
