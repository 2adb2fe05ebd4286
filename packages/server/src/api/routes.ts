import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { CloseCode, ErrorCode, isTemporaryError } from '@switchboard/protocol';
import type { Switchboard } from '../server.js';
import { registerSse } from './sse-route.js';
import { TEST_PAGE_HTML } from './test-page.js';

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

/**
 * HTTP routes: health, metrics, the test page, and the server API a backend uses (publish, broadcast,
 * send to user, disconnect, list channels/presence/stats). `/api/*` requires `Authorization: Bearer <apiKey>`
 * when http.apiKey is set.
 */
export async function registerRoutes(app: FastifyInstance, sb: Switchboard): Promise<void> {
  const hub = sb.hub;
  const apiKey = sb.config.http.apiKey;

  app.get('/health', async (_req, reply) => {
    const stats = hub.stats();
    const status = stats.draining ? 'draining' : hub.isBrokerUp ? 'healthy' : 'degraded';
    return reply.code(status === 'healthy' ? 200 : 503).send({
      status,
      node_id: hub.nodeId,
      broker: sb.config.broker.type,
      broker_status: hub.isBrokerUp ? 'up' : 'down',
      active_connections: stats.connections,
      channels: stats.channels,
      total_subscriptions: stats.subscriptions,
      unique_users: stats.users,
      uptime_seconds: Math.round(process.uptime()),
    });
  });

  registerSse(app, sb);

  app.get('/metrics', async (_req, reply) => {
    const body = await sb.metrics.registry.metrics();
    return reply.header('content-type', sb.metrics.registry.contentType).send(body);
  });

  if (sb.config.http.serveDemo) {
    app.get('/test', async (_req, reply) => reply.type('text/html; charset=utf-8').send(TEST_PAGE_HTML));
    if (!app.hasRoute({ method: 'GET', url: '/' })) {
      app.get('/', async (_req, reply) => reply.type('text/html; charset=utf-8').send(TEST_PAGE_HTML));
    }
  }

  // Public on purpose (no API key): clients and proxies ask it where to connect.
  app.get('/api/best-node', async (_req, reply) => {
    let best;
    try {
      best = await sb.nodes.best();
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
        // No key configured: the server API answers only on loopback (safe default for 0.0.0.0).
        if (!isLoopback(req.socket.remoteAddress)) {
          return fail(reply, 403, ErrorCode.FORBIDDEN, 'The server API is loopback-only until http.apiKey is set');
        }
      } else if (req.headers.authorization !== `Bearer ${apiKey}`) {
        return fail(reply, 401, ErrorCode.UNAUTHORIZED, 'Missing or wrong API key');
      }
    });

    api.post('/api/publish', async (req, reply) => {
      const body = req.body;
      if (!isObject(body) || typeof body.channel !== 'string' || !isObject(body.data)) {
        return fail(reply, 400, ErrorCode.INVALID_MESSAGE, 'Body must be {"channel": string, "data": object}');
      }
      const pub = await hub.publish(body.channel, body.data, {
        senderId: typeof body.sender_id === 'string' ? body.sender_id : 'server',
        idempotencyKey: typeof body.idempotency_key === 'string' ? body.idempotency_key : undefined,
      });
      return { channel: body.channel, offset: pub.offset, epoch: pub.epoch };
    });

    api.post('/api/broadcast', async (req, reply) => {
      const body = req.body;
      if (!isObject(body) || !isObject(body.data)) return fail(reply, 400, ErrorCode.INVALID_MESSAGE, 'Body must be {"data": object}');
      await hub.broadcast(body.data);
      return { ok: true };
    });

    api.post<{ Params: { userId: string } }>('/api/users/:userId/send', async (req, reply) => {
      const body = req.body;
      if (!isObject(body) || !isObject(body.data)) return fail(reply, 400, ErrorCode.INVALID_MESSAGE, 'Body must be {"type"?: string, "data": object}');
      const type = typeof body.type === 'string' ? body.type : 'notification';
      return hub.sendToUser(req.params.userId, type, body.data);
    });

    api.post<{ Params: { userId: string } }>('/api/users/:userId/disconnect', async (req) => {
      await hub.disconnectUser(req.params.userId, closeCodeFrom(req.body));
      return { ok: true };
    });

    api.post<{ Params: { connectionId: string } }>('/api/connections/:connectionId/disconnect', async (req) => {
      await hub.disconnectConnection(req.params.connectionId, closeCodeFrom(req.body));
      return { ok: true };
    });

    api.get('/api/stats', async () => ({ node_id: hub.nodeId, ...hub.stats() }));
    api.get('/api/channels', async () => ({ channels: hub.channelNames() }));
    api.get<{ Params: { channel: string } }>('/api/channels/:channel/presence', async (req) => ({
      channel: req.params.channel,
      members: await hub.channelPresence(req.params.channel),
    }));
    api.get('/api/connections', async () => ({ connections: hub.listSessions() }));
    api.get('/api/nodes', async () => ({ nodes: await sb.nodes.list() }));
    api.get('/api/users/online', async () => ({ users: await hub.onlineUsers() }));
    api.post('/api/drain', async (req) => {
      const on = !(isObject(req.body) && req.body.enabled === false);
      hub.setDraining(on);
      await sb.reportLoad(); // /api/best-node stops choosing this node now, not at the next report
      return { draining: on };
    });
  });
}

/** 127.0.0.0/8, ::1 and their IPv4-mapped forms. */
export function isLoopback(address: string | undefined): boolean {
  if (address === undefined) return false;
  const v4 = address.startsWith('::ffff:') ? address.slice(7) : address;
  return v4 === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(v4);
}

function closeCodeFrom(body: unknown): number {
  const code = isObject(body) && typeof body.code === 'number' ? body.code : CloseCode.NORMAL;
  return code === 1000 || (code >= 3000 && code <= 4999) ? code : CloseCode.NORMAL;
}
