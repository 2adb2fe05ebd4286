import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';

/** Options of the `sseRoute` plugin: the SSE endpoint's path and the transport's request handler. */
export interface SseRouteOptions {
  /** `sse.path` (default `/events`). */
  path: string;
  /** Writes the stream (its own status, headers and error bodies) on the raw response. */
  handle: (req: IncomingMessage, res: ServerResponse) => unknown;
}

/**
 * `GET <path>` (default `/events`): the Server-Sent Events stream. The reply is hijacked and the raw
 * response handed to the SSE transport. A Fastify plugin that adds its route to the instance it is
 * registered on; register it only when `sse.enabled`.
 */
export const sseRoute = fp<SseRouteOptions>(async (app: FastifyInstance, opts: SseRouteOptions) => {
  app.get(opts.path, { exposeHeadRoute: false }, (req, reply) => {
    reply.hijack();
    opts.handle(req.raw, reply.raw);
  });
}, { name: 'switchboard-sse' });
