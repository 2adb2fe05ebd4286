import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { CloseCode, ErrorCode, isTemporaryError } from '@switchboard/protocol';
import type { Broker } from '../core/ports/broker.js';
import type { NodeRegistry } from '../core/ports/node-registry.js';
import { TEST_PAGE_HTML } from './test-page.js';

/**
 * What the routes ask of the node they serve: the in-process API (`sb.node` passes as it is). Declared by
 * the methods used, not by a class, so any object with these members will do.
 */
export interface NodeApi {
  readonly nodeId: string;
  readonly isBrokerUp: boolean;
  /** The engine, for `/health`'s probe (Broker.ping; an engine without it is judged by isBrokerUp alone). */
  readonly broker: Pick<Broker, 'ping'>;
  stats(): { connections: number; channels: number; subscriptions: number; users: number; draining: boolean };
  publish(channel: string, data: Record<string, unknown>, opts: { senderId?: string; idempotencyKey?: string | undefined }): Promise<{ offset: number; epoch: string }>;
  broadcast(data: Record<string, unknown>): Promise<void>;
  sendToUser(userId: string, type: string, data: Record<string, unknown>): Promise<unknown>;
  disconnectUser(userId: string, code: number): Promise<void>;
  disconnectConnection(connectionId: string, code: number): Promise<void>;
  channelNames(): string[];
  channelPresencePage(channel: string, cursor: string | null, limit: number): Promise<{ members: unknown[]; nextCursor: string | null }>;
  listSessions(): unknown;
  onlineUsersPage(cursor: string | null, limit: number): Promise<{ users: unknown[]; nextCursor: string | null }>;
  setDraining(on: boolean): void;
  /** The client path's channel-name rules (limits.maxChannelNameLength, limits.channelNamePattern). */
  isValidChannel(channel: string): boolean;
}

/** Options of the `apiRoutes` plugin: everything the routes use, handed in by the composition root. */
export interface ApiRoutesOptions {
  node: NodeApi;
  /** Prometheus registry served at `/metrics` (prom-client `Registry`). */
  metrics: { metrics(): Promise<string>; readonly contentType: string };
  /** Live nodes, for `/api/nodes` and `/api/best-node`. */
  nodes: Pick<NodeRegistry, 'best' | 'list'>;
  /** Publish this node's load to the registry now (after a drain change). Never throws. */
  reportLoad: () => Promise<void>;
  /** `broker.type`, shown by `/health`. */
  brokerType: string;
  /** `http.apiKey`: bearer key of `/api/*`; empty means local callers only (see `localCaller`). */
  apiKey: string;
  /** `http.serveDemo`: serve the test page at `/test` (and at `/` unless a route holds it). */
  serveDemo: boolean;
  /** The engine's status for `/health` (default: `brokerProbe(node.broker)` and `node.isBrokerUp`); pass the
   * same function to the metrics so both share one probe. */
  brokerStatus?: () => Promise<'up' | 'down' | 'unresponsive'>;
}

/** Send a JSON error body with a registry code. */
function fail(reply: FastifyReply, status: number, code: string, message: string): FastifyReply {
  return reply.code(status).send({ error: { code, message, temporary: isTemporaryError(code) } });
}

/** True for errors the Redis engine raises when Redis is unreachable (code BROKER_UNAVAILABLE). */
function isBrokerUnavailable(err: unknown): boolean {
  return err !== null && typeof err === 'object' && (err as { code?: unknown }).code === ErrorCode.BROKER_UNAVAILABLE;
}

function brokerUnavailable(reply: FastifyReply): FastifyReply {
  return fail(reply, 503, ErrorCode.BROKER_UNAVAILABLE, 'Broker unavailable, try again');
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** `/health` fails the broker probe when PING gets no answer within this long. */
const HEALTH_PROBE_TIMEOUT_MS = 1000;
/** `/health` reuses a probe result for this long: frequent health checks cost the broker one PING per interval. */
const HEALTH_PROBE_INTERVAL_MS = 1000;

/**
 * The broker probe behind `/health`: `Broker.ping` at most once per HEALTH_PROBE_INTERVAL_MS (concurrent
 * checks share the probe in flight), resolving true when the broker answered in time.
 */
export function brokerProbe(broker: NodeApi['broker']): () => Promise<boolean> {
  let last: { ok: boolean; at: number } | null = null;
  let running: Promise<boolean> | null = null;
  return () => {
    if (broker.ping === undefined) return Promise.resolve(true);
    if (last !== null && Date.now() - last.at < HEALTH_PROBE_INTERVAL_MS) return Promise.resolve(last.ok);
    running ??= broker.ping(HEALTH_PROBE_TIMEOUT_MS).then(() => true, () => false).then((ok) => {
      last = { ok, at: Date.now() };
      running = null;
      return ok;
    });
    return running;
  };
}

/**
 * The engine's status as `/health` reports it: `down` while a connection is lost, `unresponsive` while connected
 * but a PING gets no answer in time (probed at most once per second), else `up`.
 */
export function brokerStatusOf(node: Pick<NodeApi, 'broker' | 'isBrokerUp'>): () => Promise<'up' | 'down' | 'unresponsive'> {
  const probe = brokerProbe(node.broker);
  return async () => (!node.isBrokerUp ? 'down' : (await probe()) ? 'up' : 'unresponsive');
}

/**
 * HTTP routes: health, metrics, the test page, and the server API a backend uses (publish, broadcast,
 * send to user, disconnect, list channels/presence/stats). `/api/*` requires `Authorization: Bearer <apiKey>`
 * when `apiKey` is set (compared in constant time); without a key it answers local callers only
 * (`localCaller`). A Fastify plugin that adds its routes to the instance it is registered on
 * (fastify-plugin): `app.register(apiRoutes, options)`.
 */
export const apiRoutes = fp<ApiRoutesOptions>(async (app: FastifyInstance, opts: ApiRoutesOptions) => {
  const node = opts.node;
  const apiKey = opts.apiKey;
  const keyMatches = apiKeyCheck(apiKey);

  // Connected is not enough: a stalled Redis keeps its connections open while every command times out.
  const brokerStatusNow = opts.brokerStatus ?? brokerStatusOf(node);
  app.get('/health', async (_req, reply) => {
    const brokerStatus = await brokerStatusNow();
    const stats = node.stats();
    const status = stats.draining ? 'draining' : brokerStatus === 'up' ? 'healthy' : 'degraded';
    return reply.code(status === 'healthy' ? 200 : 503).send({
      status,
      node_id: node.nodeId,
      broker: opts.brokerType,
      broker_status: brokerStatus,
      active_connections: stats.connections,
      channels: stats.channels,
      total_subscriptions: stats.subscriptions,
      unique_users: stats.users,
      uptime_seconds: Math.round(process.uptime()),
    });
  });

  app.get('/metrics', async (_req, reply) => {
    const body = await opts.metrics.metrics();
    return reply.header('content-type', opts.metrics.contentType).send(body);
  });

  if (opts.serveDemo) {
    app.get('/test', async (_req, reply) => reply.type('text/html; charset=utf-8').send(TEST_PAGE_HTML));
    if (!app.hasRoute({ method: 'GET', url: '/' })) {
      app.get('/', async (_req, reply) => reply.type('text/html; charset=utf-8').send(TEST_PAGE_HTML));
    }
  }

  // Public on purpose (no API key): clients and proxies ask it where to connect.
  app.get('/api/best-node', async (_req, reply) => {
    let best;
    try {
      best = await opts.nodes.best();
    } catch (err) {
      if (isBrokerUnavailable(err)) return brokerUnavailable(reply);
      throw err;
    }
    return best === null ? fail(reply, 503, ErrorCode.UNAVAILABLE, 'No live node accepts connections') : best;
  });

  app.register(async (api) => {
    // Redis unreachable: 503 with the registry code (fail fast, retry later), not a 500.
    api.setErrorHandler(async (err, _req, reply) => {
      if (isBrokerUnavailable(err)) return brokerUnavailable(reply);
      throw err;
    });
    api.addHook('onRequest', async (req: FastifyRequest, reply: FastifyReply) => {
      if (apiKey === '') {
        // No key configured: the server API answers only local callers (safe default for 0.0.0.0).
        const refusal = localCaller(req.raw);
        if (refusal !== null) return fail(reply, 403, ErrorCode.FORBIDDEN, refusal);
      } else if (!keyMatches(req.headers.authorization)) {
        return fail(reply, 401, ErrorCode.UNAUTHORIZED, 'Missing or wrong API key');
      }
    });

    api.post('/api/publish', async (req, reply) => {
      const body = req.body;
      if (!isObject(body) || typeof body.channel !== 'string' || !isObject(body.data)) {
        return fail(reply, 400, ErrorCode.INVALID_MESSAGE, 'Body must be {"channel": string, "data": object}');
      }
      if (!node.isValidChannel(body.channel)) {
        return fail(reply, 400, ErrorCode.INVALID_CHANNEL, 'Invalid channel name (see limits.maxChannelNameLength and limits.channelNamePattern)');
      }
      const pub = await node.publish(body.channel, body.data, {
        senderId: typeof body.sender_id === 'string' ? body.sender_id : 'server',
        idempotencyKey: typeof body.idempotency_key === 'string' ? body.idempotency_key : undefined,
      });
      return { channel: body.channel, offset: pub.offset, epoch: pub.epoch };
    });

    api.post('/api/broadcast', async (req, reply) => {
      const body = req.body;
      if (!isObject(body) || !isObject(body.data)) return fail(reply, 400, ErrorCode.INVALID_MESSAGE, 'Body must be {"data": object}');
      await node.broadcast(body.data);
      return { ok: true };
    });

    api.post<{ Params: { userId: string } }>('/api/users/:userId/send', async (req, reply) => {
      const body = req.body;
      if (!isObject(body) || !isObject(body.data)) return fail(reply, 400, ErrorCode.INVALID_MESSAGE, 'Body must be {"type"?: string, "data": object}');
      const type = typeof body.type === 'string' ? body.type : 'notification';
      return node.sendToUser(req.params.userId, type, body.data);
    });

    api.post<{ Params: { userId: string } }>('/api/users/:userId/disconnect', async (req) => {
      await node.disconnectUser(req.params.userId, closeCodeFrom(req.body));
      return { ok: true };
    });

    api.post<{ Params: { connectionId: string } }>('/api/connections/:connectionId/disconnect', async (req) => {
      await node.disconnectConnection(req.params.connectionId, closeCodeFrom(req.body));
      return { ok: true };
    });

    api.get('/api/stats', async () => ({ node_id: node.nodeId, ...node.stats() }));
    api.get('/api/channels', async () => ({ channels: node.channelNames() }));
    api.get<{ Params: { channel: string }; Querystring: { cursor?: string; limit?: string } }>('/api/channels/:channel/presence', async (req) => {
      const page = await node.channelPresencePage(req.params.channel, req.query.cursor || null, pageLimit(req.query.limit));
      return { channel: req.params.channel, members: page.members, next_cursor: page.nextCursor };
    });
    api.get('/api/connections', async () => ({ connections: node.listSessions() }));
    // Each node's load and figures (without the per-second samples, channel list and errors the admin API shows).
    api.get('/api/nodes', async () => ({
      nodes: (await opts.nodes.list()).map(({ details, ...n }) => {
        if (details === undefined) return n;
        const { series: _s, topChannels: _c, recentErrors: _e, ...figures } = details;
        return { ...n, details: figures };
      }),
    }));
    api.get<{ Querystring: { cursor?: string; limit?: string } }>('/api/users/online', async (req) => {
      const page = await node.onlineUsersPage(req.query.cursor || null, pageLimit(req.query.limit));
      return { users: page.users, next_cursor: page.nextCursor };
    })
    api.post('/api/drain', async (req) => {
      const on = !(isObject(req.body) && req.body.enabled === false);
      node.setDraining(on);
      await opts.reportLoad(); // /api/best-node stops choosing this node now, not at the next report
      return { draining: on };
    });
  });
}, { name: 'switchboard-api' });

/**
 * `Authorization` header check against `Bearer <apiKey>` in constant time: both sides are hashed to 32 bytes
 * first, so the comparison takes the same time whatever the header holds, its length included.
 */
export function apiKeyCheck(apiKey: string): (header: string | undefined) => boolean {
  const expected = sha256(`Bearer ${apiKey}`);
  return (header) => timingSafeEqual(sha256(header ?? ''), expected);
}

function sha256(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}


/** 127.0.0.0/8, ::1 and their IPv4-mapped forms. */
export function isLoopback(address: string | undefined): boolean {
  if (address === undefined) return false;
  const v4 = address.startsWith('::ffff:') ? address.slice(7) : address;
  return v4 === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(v4);
}

/**
 * A `Host` header naming this machine by a loopback name: `localhost`, `127.x.x.x` or `[::1]`, with or without
 * a port. Anything else (a DNS name that a browser page resolved to 127.0.0.1: DNS rebinding) is refused.
 */
export function isLoopbackHost(host: string | undefined): boolean {
  if (host === undefined) return false;
  const m = /^(?:\[([0-9a-f:.]+)\]|([a-z0-9.-]+))(?::\d{1,5})?$/i.exec(host.trim());
  if (m === null) return false;
  const name = (m[1] ?? m[2]!).toLowerCase();
  return name === 'localhost' || isLoopback(name);
}

/**
 * Every client address a proxy recorded on the request: each `X-Forwarded-For` hop, each `for=` of
 * `Forwarded` (RFC 7239, brackets and port removed), and `X-Real-IP`. Empty for a request no proxy relayed.
 */
function forwardedAddresses(req: IncomingMessage): string[] {
  const out: string[] = [];
  const list = (v: string | string[] | undefined): string[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);
  for (const h of list(req.headers['x-forwarded-for'])) for (const hop of h.split(',')) out.push(hop.trim());
  for (const h of list(req.headers['x-real-ip'])) out.push(h.trim());
  for (const h of list(req.headers.forwarded)) {
    for (const m of h.matchAll(/(?:^|[;,\s])for\s*=\s*("[^"]*"|[^;,\s]*)/gi)) {
      const v = m[1]!.replace(/^"|"$/g, '');
      const bracketed = /^\[([^\]]*)\]/.exec(v);
      out.push(bracketed !== null ? bracketed[1]! : v.replace(/:\d+$/, ''));
    }
  }
  return out;
}

/**
 * Why a request may not use the key-less server API, or null when it comes from this machine:
 * - the socket peer is loopback, and so is every client address a proxy recorded on the request
 *   (`forwardedAddresses`). This covers the client address as `http.trustProxy` reads it (X-Forwarded-For's
 *   first hop, transport/remote-address.ts) and is stricter on purpose: it holds whatever `trustProxy` says
 *   (a proxy on this host makes every request look loopback, and operators forget `trustProxy`), and a
 *   proxy that appends to a client-sent X-Forwarded-For cannot pass a forged loopback first hop;
 * - the `Host` header is a loopback name (DNS rebinding: a page on evil.example resolved to 127.0.0.1
 *   sends `Host: evil.example`).
 */
export function localCaller(req: IncomingMessage): string | null {
  const forwarded = forwardedAddresses(req);
  if (!isLoopback(req.socket.remoteAddress) || !forwarded.every((a) => isLoopback(a))) {
    return 'Without http.apiKey the server API answers only callers on this machine (loopback client address, not relayed for a remote client); set http.apiKey';
  }
  if (!isLoopbackHost(req.headers.host)) {
    return 'Without http.apiKey the server API answers only a loopback Host header (localhost, 127.0.0.1, [::1]); set http.apiKey';
  }
  return null;
}

/** `?limit=` of a paged listing: 100 when absent or not a number (engines clamp to 1..1000). */
function pageLimit(raw: string | undefined): number {
  const n = Number(raw ?? 100);
  return Number.isFinite(n) ? n : 100;
}

function closeCodeFrom(body: unknown): number {
  const code = isObject(body) && typeof body.code === 'number' ? body.code : CloseCode.NORMAL;
  return code === 1000 || (code >= 3000 && code <= 4999) ? code : CloseCode.NORMAL;
}
