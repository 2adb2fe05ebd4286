import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify from 'fastify';
import WebSocket from 'ws';
import { Switchboard } from '../src/server.js';
import { RecordingLogger } from './core/fakes.js';
import { TestClient, within } from './helpers.js';
import { RawSseClient } from './sse/sse-client.js';

const quiet = { log: { level: 'silent' as const }, store: { driver: 'none' as const } };

describe('embedding Switchboard in an application', () => {
  it('attaches to an existing http.Server: WebSocket upgrades on /ws, the app keeps its own routes', async () => {
    const sb = new Switchboard(quiet, { defaultMetrics: false });
    await sb.start();
    const server = createServer((_req, res) => res.end('app says hi'));
    await sb.attach(server);
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

  it('attach() on its own, as the README shows it (no start()): it starts the node and messages are delivered', async () => {
    const sb = new Switchboard(quiet, { defaultMetrics: false });
    const server = createServer((_req, res) => res.end('app'));
    const attached = sb.attach(server); // not awaited: upgrades that come early wait for the node
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    try {
      const c = await TestClient.connect(`ws://127.0.0.1:${port}/ws`);
      await attached;
      await c.join('lobby');
      await sb.node.publish('lobby', { content: 'from the backend' });
      assert.equal((await c.next('message')).data.content, 'from the backend');
      await sb.close();
      assert.equal((await c.closed).code, 4091);
    } finally {
      server.close();
    }
  });

  it('attach() refuses loudly when the node cannot start: logged error, rejected promise, upgrades answered 503', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sb-attach-'));
    const blocker = join(dir, 'not-a-folder');
    writeFileSync(blocker, 'a file where the database folder should be');
    const logger = new RecordingLogger();
    const sb = new Switchboard({ log: { level: 'silent' }, store: { driver: 'sqlite', sqlitePath: join(blocker, 'db', 'x.db') } }, { defaultMetrics: false, logger });
    const server = createServer((_req, res) => res.end('app'));
    const attached = sb.attach(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    try {
      await assert.rejects(attached);
      assert.ok(logger.entries.some((e) => e.level === 'error' && /failed to start/.test(e.msg)), JSON.stringify(logger.entries));
      const status = await new Promise<number>((resolve, reject) => {
        const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`);
        ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
        ws.on('open', () => reject(new Error('opened')));
        ws.on('error', () => undefined);
      });
      assert.equal(status, 503);
    } finally {
      server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the Fastify plugin serves the demo only when asked', async () => {
    const plain = Fastify();
    plain.get('/', async () => 'the app home');
    const sb = new Switchboard(quiet, { defaultMetrics: false });
    await plain.register(sb.fastifyPlugin);
    try {
      assert.equal((await plain.inject({ url: '/' })).body, 'the app home');
      for (const url of ['/test', '/chat/', '/sdk/switchboard.js', '/admin']) assert.equal((await plain.inject({ url })).statusCode, 404, url);
      assert.equal((await plain.inject({ url: '/health' })).statusCode, 200);
    } finally {
      await plain.close();
    }

    const demo = Fastify();
    const sb2 = new Switchboard(quiet, { defaultMetrics: false });
    await demo.register(sb2.fastifyPlugin, { demo: true });
    try {
      const home = await demo.inject({ url: '/' });
      assert.equal(home.statusCode, 200);
      assert.match(home.body, /Switchboard chat/);
      assert.equal((await demo.inject({ url: '/test' })).statusCode, 200);
      assert.match((await demo.inject({ url: '/sdk/switchboard.js' })).body, /SwitchboardClient/);
    } finally {
      await demo.close();
    }
  });

  it('app.close() closes the plugin too: open WebSocket and SSE connections get 4091 / end, and the close does not hang', async () => {
    const sb = new Switchboard({ ...quiet, shutdown: { deadlineMs: 2000 } }, { defaultMetrics: false });
    const app = Fastify(); // no forceCloseConnections: the plugin must end its own connections
    await app.register(sb.fastifyPlugin);
    await app.listen({ host: '127.0.0.1', port: 0 });
    const port = (app.server.address() as { port: number }).port;
    const c = await TestClient.connect(`ws://127.0.0.1:${port}/ws`);
    await c.join('room');
    const sse = await RawSseClient.open(`http://127.0.0.1:${port}/events?channels=room`);
    assert.equal(sse.status, 200);
    await within(app.close(), 5000, 'app.close() with open connections');
    assert.equal((await c.closed).code, 4091);
    await within(sse.ended, 1000, 'the SSE stream ended');
    assert.equal(sb.node.stats().connections, 0);
    await sb.close(); // idempotent after the app closed it
  });

  it('warns when development identities are trusted on a non-loopback address', async () => {
    const run = async (config: object, host: string): Promise<string[]> => {
      const logger = new RecordingLogger();
      const sb = new Switchboard({ ...quiet, host, port: 0, ...config }, { defaultMetrics: false, logger });
      await sb.listen();
      await sb.close();
      return logger.entries.filter((e) => e.level === 'warn' && /development identities/.test(e.msg)).map((e) => e.msg);
    };
    assert.equal((await run({}, '0.0.0.0')).length, 1, 'trustClientIds on 0.0.0.0');
    assert.deepEqual(await run({}, '127.0.0.1'), [], 'loopback only');
    assert.deepEqual(await run({ auth: { trustClientIds: false } }, '0.0.0.0'), [], 'trustClientIds off');
    assert.deepEqual(await run({ auth: { jwt: { secret: 'x'.repeat(32) } } }, '0.0.0.0'), [], 'a credential method turns client ids off');
  });
});
