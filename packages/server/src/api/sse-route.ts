import type { FastifyInstance } from 'fastify';
import type { Switchboard } from '../server.js';

/**
 * `GET <sse.path>` (default `/events`): the Server-Sent Events stream. The reply is hijacked and the raw
 * response handed to the SSE transport (which writes its own status, headers and error bodies).
 * Does nothing when `sse.enabled` is false.
 */
export function registerSse(app: FastifyInstance, sb: Switchboard): void {
  if (!sb.config.sse.enabled) return;
  const transport = sb.sse;
  app.get(transport.path, { exposeHeadRoute: false }, (req, reply) => {
    reply.hijack();
    transport.handle(req.raw, reply.raw);
  });
}
