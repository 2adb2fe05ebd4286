import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import Fastify from 'fastify';
import { Switchboard } from '../src/server.js';
import { TestClient } from './helpers.js';

const quiet = { log: { level: 'silent' as const }, store: { driver: 'none' as const } };

describe('embedding Switchboard in an application', () => {
  it('attaches to an existing http.Server: WebSocket upgrades on /ws, the app keeps its own routes', async () => {
    const sb = new Switchboard(quiet, { defaultMetrics: false });
    await sb.start();
    const server = createServer((_req, res) => res.end('app says hi'));
    sb.attach(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    try {
      assert.equal(await (await fetch(`http://127.0.0.1:${port}/anything`)).text(), 'app says hi');
      const c = await TestClient.connect(`ws://127.0.0.1:${port}/ws`);
      await c.join('embedded');
      await sb.node.publish('embedded', { from: 'backend' });
      assert.equal((await c.next('message')).data.from, 'backend');
      assert.equal(sb.hub, sb.node, 'sb.hub stays a (deprecated) alias of sb.node');
      await assert.rejects(TestClient.connect(`ws://127.0.0.1:${port}/not-ours`));
      await sb.close();
      assert.equal((await c.closed).code, 4091);
    } finally {
      server.close();
    }
  });

  it('registers as a Fastify plugin next to the app routes', async () => {
    const sb = new Switchboard({ ...quiet, http: { serveDemo: false } }, { defaultMetrics: false });
    const app = Fastify();
    app.get('/mine', async () => ({ mine: true }));
    await app.register(sb.fastifyPlugin);
    await app.listen({ host: '127.0.0.1', port: 0 });
    const port = (app.server.address() as { port: number }).port;
    try {
      assert.deepEqual(await (await fetch(`http://127.0.0.1:${port}/mine`)).json(), { mine: true });
      assert.equal((await fetch(`http://127.0.0.1:${port}/health`)).status, 200);
      const c = await TestClient.connect(`ws://127.0.0.1:${port}/ws`);
      assert.equal((await c.request('ping')).type, 'pong');
      const stats = (await (await fetch(`http://127.0.0.1:${port}/api/stats`)).json()) as { connections: number };
      assert.equal(stats.connections, 1);
      c.close();
    } finally {
      await sb.close();
      await app.close();
    }
  });
});
