import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { CloseCode, ErrorCode, isTemporaryError } from '@switchboard/protocol';
import type { NodeDetails, NodeInfo, NodeRegistry, RecentError } from '../core/ports/node-registry.js';
import { apiKeyCheck } from './routes.js';
import { contentType, SHARED_FILES } from './static-assets.js';

/** What the admin routes ask of the node (`sb.node` passes as it is). */
export interface AdminNodeApi {
  readonly nodeId: string;
  stats(): { connections: number; channels: number; subscriptions: number; users: number; draining: boolean };
  listSessions(): Array<{ connection_id: string; user_id: string | null; username: string | null; channels: string[]; connected_at: string; remote_address: string; transport: string }>;
  channelPresencePage(channel: string, cursor: string | null, limit: number): Promise<{ members: unknown[]; nextCursor: string | null }>;
  onlineUsersPage(cursor: string | null, limit: number): Promise<{ users: Array<{ user_id: string; username?: string | null }>; nextCursor: string | null }>;
  disconnectUser(userId: string, code: number): Promise<void>;
  disconnectConnection(connectionId: string, code: number): Promise<void>;
  publish(channel: string, data: Record<string, unknown>, opts: { senderId?: string }): Promise<{ offset: number; epoch: string }>;
  isValidChannel(channel: string): boolean;
}

export interface AdminRoutesOptions {
  /** `http.adminToken`; empty: the dashboard is off (`/admin` answers 404 saying how to turn it on). */
  token: string;
  node: AdminNodeApi;
  /** Every live node's last report (figures in `details`). */
  nodes: Pick<NodeRegistry, 'list'>;
  /** This node's current figures (`full`: every kept sample). */
  figures: (full: boolean) => NodeDetails;
  /** Folder with the dashboard's index.html, admin.js, admin.css. */
  appDir: string;
  /** Folder of the files shared by the browser apps (apps/shared: SHARED_FILES), served as `/admin/<name>`. */
  sharedDir: string;
  /** Folder of the installed uplot package's `dist/` (null: not installed; the plots are left out). */
  uplotDir: string | null;
}

/** Path of the dashboard. */
export const ADMIN_PATH = '/admin';
/** Users scanned (cluster-wide online users) per search at most. */
const SEARCH_USER_SCAN = 10_000;
const SEARCH_RESULTS = 100;

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function fail(reply: FastifyReply, status: number, code: string, message: string): FastifyReply {
  return reply.code(status).send({ error: { code, message, temporary: isTemporaryError(code) } });
}

/**
 * The admin dashboard (`/admin`, static page + uPlot) and its JSON API (`/admin/api/*`, bearer `token`, compared
 * in constant time). Cluster-wide where the data is: nodes and their figures come from the node registry (each
 * node reports every `broker.nodeReportIntervalMs`; this node's own figures are live), channel members and
 * online users from the presence store, disconnects and publications go through the broker. The connection
 * search lists this node's connections (user search and disconnects cover the cluster).
 */
export const adminRoutes = fp<AdminRoutesOptions>(async (app: FastifyInstance, opts: AdminRoutesOptions) => {
  const off = opts.token === '';
  const page = async (reply: FastifyReply, dir: string | null, file: string): Promise<FastifyReply> => {
    if (dir === null) return fail(reply, 404, ErrorCode.NOT_FOUND, 'uplot is not installed');
    let body: Buffer;
    try {
      body = await readFile(join(dir, file));
    } catch {
      return fail(reply, 503, ErrorCode.UNAVAILABLE, `The admin dashboard file ${file} is missing from the server package`);
    }
    return reply.header('cache-control', 'no-cache').type(contentType(file)).send(body);
  };
  const offPage = (reply: FastifyReply) =>
    reply.code(404).type('text/plain; charset=utf-8').send('The admin dashboard is off: set http.adminToken (flag --admin-token, env SWITCHBOARD_ADMIN_TOKEN) and restart.\n');

  app.get(ADMIN_PATH, (_req, reply) => (off ? offPage(reply) : page(reply, opts.appDir, 'index.html')));
  app.get(`${ADMIN_PATH}/`, (_req, reply) => (off ? offPage(reply) : page(reply, opts.appDir, 'index.html')));
  if (off) return;
  for (const file of ['admin.js', 'admin.css']) app.get(`${ADMIN_PATH}/${file}`, (_req, reply) => page(reply, opts.appDir, file));
  for (const file of SHARED_FILES) app.get(`${ADMIN_PATH}/${file}`, (_req, reply) => page(reply, opts.sharedDir, file));
  app.get(`${ADMIN_PATH}/vendor/uPlot.iife.min.js`, (_req, reply) => page(reply, opts.uplotDir, 'uPlot.iife.min.js'));
  app.get(`${ADMIN_PATH}/vendor/uPlot.min.css`, (_req, reply) => page(reply, opts.uplotDir, 'uPlot.min.css'));

  const tokenMatches = apiKeyCheck(opts.token);
  const node = opts.node;

  /** Every live node with its figures; this node's entry carries its live figures. */
  const nodesNow = async (full: boolean): Promise<NodeInfo[]> => {
    const listed = await opts.nodes.list();
    const mine = opts.figures(full);
    const stats = node.stats();
    const self: NodeInfo = { ...(listed.find((n) => n.nodeId === node.nodeId) ?? { cpu: 0, memoryRss: process.memoryUsage.rss(), updatedAt: Date.now() }), nodeId: node.nodeId, connections: stats.connections, draining: stats.draining, details: mine };
    return [self, ...listed.filter((n) => n.nodeId !== node.nodeId)];
  };

  await app.register(async (api) => {
    api.addHook('onRequest', async (req: FastifyRequest, reply: FastifyReply) => {
      if (!tokenMatches(req.headers.authorization)) return fail(reply, 401, ErrorCode.UNAUTHORIZED, 'Missing or wrong admin token');
    });
    api.setErrorHandler(async (err, _req, reply) => {
      const code = (err as { code?: unknown }).code;
      if (code === ErrorCode.BROKER_UNAVAILABLE) return fail(reply, 503, ErrorCode.BROKER_UNAVAILABLE, 'Broker unavailable, try again');
      throw err;
    });

    // Nodes: load and figures, each with its last minute of samples (this node: every sample after `since`).
    api.get<{ Querystring: { since?: string } }>(`${ADMIN_PATH}/api/overview`, async (req) => {
      const since = Number(req.query.since ?? 0) || 0;
      const nodes = await nodesNow(true);
      const errors: Array<RecentError & { node: string }> = [];
      for (const n of nodes) for (const e of n.details?.recentErrors ?? []) errors.push({ ...e, node: n.nodeId });
      errors.sort((a, b) => b.time - a.time);
      const view = nodes.map(({ details, ...n }) => {
        if (details === undefined) return n;
        const { recentErrors: _e, topChannels: _c, ...figures } = details;
        return { ...n, details: { ...figures, series: n.nodeId === node.nodeId ? figures.series.filter((x) => x[0] > since) : figures.series } };
      });
      return { node_id: node.nodeId, time: Date.now(), nodes: view, errors: errors.slice(0, 100) };
    });

    // Channels across the cluster: local member counts summed over the nodes' reports (top channels per node).
    api.get<{ Querystring: { q?: string } }>(`${ADMIN_PATH}/api/channels`, async (req) => {
      const q = (req.query.q ?? '').toLowerCase();
      const merged = new Map<string, { channel: string; members: number; nodes: Record<string, number> }>();
      for (const n of await nodesNow(true)) {
        for (const [channel, count] of n.details?.topChannels ?? []) {
          if (q !== '' && !channel.toLowerCase().includes(q)) continue;
          const entry = merged.get(channel) ?? { channel, members: 0, nodes: {} };
          entry.members += count;
          entry.nodes[n.nodeId] = count;
          merged.set(channel, entry);
        }
      }
      const channels = [...merged.values()].sort((a, b) => b.members - a.members || (a.channel < b.channel ? -1 : 1)).slice(0, 500);
      return { channels };
    });

    api.get<{ Params: { channel: string }; Querystring: { cursor?: string } }>(`${ADMIN_PATH}/api/channels/:channel/presence`, async (req) => {
      const p = await node.channelPresencePage(req.params.channel, req.query.cursor || null, 200);
      return { channel: req.params.channel, members: p.members, next_cursor: p.nextCursor };
    });

    // Search: this node's connections by id, user, name, address or channel; the cluster's online users by id/name.
    api.get<{ Querystring: { q?: string } }>(`${ADMIN_PATH}/api/search`, async (req) => {
      const q = (req.query.q ?? '').trim().toLowerCase();
      const has = (v: string | null | undefined) => v != null && v.toLowerCase().includes(q);
      const connections = node.listSessions()
        .filter((c) => q === '' || has(c.connection_id) || has(c.user_id) || has(c.username) || has(c.remote_address) || c.channels.some(has))
        .slice(0, SEARCH_RESULTS)
        .map((c) => ({ ...c, node: node.nodeId }));
      const users: Array<{ user_id: string; username?: string | null }> = [];
      let cursor: string | null = null;
      let scanned = 0;
      do {
        const pageOf: Awaited<ReturnType<AdminNodeApi['onlineUsersPage']>> = await node.onlineUsersPage(cursor, 1000);
        scanned += pageOf.users.length;
        for (const u of pageOf.users) if (q === '' || has(u.user_id) || has(u.username)) users.push(u);
        cursor = pageOf.nextCursor;
      } while (cursor !== null && users.length < SEARCH_RESULTS && scanned < SEARCH_USER_SCAN);
      return { connections, users: users.slice(0, SEARCH_RESULTS), users_complete: cursor === null };
    });

    api.post<{ Params: { connectionId: string } }>(`${ADMIN_PATH}/api/connections/:connectionId/disconnect`, async (req) => {
      await node.disconnectConnection(req.params.connectionId, CloseCode.NORMAL);
      return { ok: true };
    });

    api.post<{ Params: { userId: string } }>(`${ADMIN_PATH}/api/users/:userId/disconnect`, async (req) => {
      await node.disconnectUser(req.params.userId, CloseCode.NORMAL);
      return { ok: true };
    });

    api.post(`${ADMIN_PATH}/api/publish`, async (req, reply) => {
      const body = req.body;
      if (!isObject(body) || typeof body.channel !== 'string' || !isObject(body.data)) {
        return fail(reply, 400, ErrorCode.INVALID_MESSAGE, 'Body must be {"channel": string, "data": object}');
      }
      if (!node.isValidChannel(body.channel)) return fail(reply, 400, ErrorCode.INVALID_CHANNEL, 'Invalid channel name');
      const pub = await node.publish(body.channel, body.data, { senderId: 'admin' });
      return { channel: body.channel, offset: pub.offset, epoch: pub.epoch };
    });
  });
}, { name: 'switchboard-admin' });
