import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, TestClient, type WatchedServer } from './helpers.js';

describe('health, metrics, server API', () => {
  let srv: WatchedServer;
  before(async () => {
    srv = await startServer({ http: { apiKey: 'k3y' } });
  });
  after(() => srv.close());

  it('reports health with connection, channel, subscription and user counts (seed 002)', async () => {
    const a = await TestClient.connect(`${srv.ws}/ws?user_id=h1`);
    const b = await TestClient.connect(`${srv.ws}/ws?user_id=h1`);
    await a.join('h-a');
    await a.join('h-b');
    await b.join('h-a');
    const res = await fetch(`${srv.http}/health`);
    assert.equal(res.status, 200);
    const h = (await res.json()) as Record<string, unknown>;
    assert.equal(h.status, 'healthy');
    assert.equal(h.active_connections, 2);
    assert.equal(h.channels, 2);
    assert.equal(h.total_subscriptions, 3);
    assert.equal(h.unique_users, 1);
    a.close();
    b.close();
    await srv.sessions.until(() => srv.sb.node.stats().connections === 0, 'both sessions closed on the server');
    const after = (await (await fetch(`${srv.http}/health`)).json()) as Record<string, unknown>;
    assert.equal(after.active_connections, 0);
    assert.equal(after.total_subscriptions, 0);
  });

  it('exposes Prometheus metrics with the seed 002 names', async () => {
    const a = await TestClient.connect(`${srv.ws}/ws`);
    await a.join('m');
    a.send({ type: 'message', data: { channel: 'm', x: 1 } });
    await a.next('message');
    const text = await (await fetch(`${srv.http}/metrics`)).text();
    assert.match(text, /^websocket_connections_total 1$/m);
    assert.match(text, /websocket_messages_total\{type="message",direction="inbound"\} 1/);
    assert.match(text, /websocket_messages_total\{type="message",direction="outbound"\} 1/);
    assert.match(text, /websocket_message_size_bytes_bucket/);
    assert.match(text, /websocket_connection_duration_seconds_bucket/);
    const closes1005 = async () => Number(/websocket_connection_duration_seconds_count\{code="1005"\} (\d+)/.exec(await (await fetch(`${srv.http}/metrics`)).text())?.[1] ?? 0);
    const before = await closes1005();
    a.close();
    assert.equal(await srv.sessions.closeOf(a.connectionId), 1005);
    // The close is counted before the onSessionClose hook runs.
    assert.equal(await closes1005(), before + 1, 'duration metric');
  });

  it('requires the API key on /api/*', async () => {
    const denied = await fetch(`${srv.http}/api/stats`);
    assert.equal(denied.status, 401);
    assert.equal(((await denied.json()) as { error: { code: string } }).error.code, 'UNAUTHORIZED');
    const ok = await fetch(`${srv.http}/api/stats`, { headers: { authorization: 'Bearer k3y' } });
    assert.equal(ok.status, 200);
  });

  it('refuses a wrong API key of the same or of another length with 401', async () => {
    for (const key of ['k3x', 'K3Y', 'k3', 'k3yy', '', 'a-much-longer-key-than-the-real-one']) {
      const res = await fetch(`${srv.http}/api/stats`, { headers: { authorization: `Bearer ${key}` } });
      assert.equal(res.status, 401, `key ${JSON.stringify(key)}`);
      assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'UNAUTHORIZED');
    }
    for (const header of ['k3y', 'bearer k3y', 'Bearer  k3y', 'Basic k3y']) {
      const res = await fetch(`${srv.http}/api/stats`, { headers: { authorization: header } });
      assert.equal(res.status, 401, `header ${JSON.stringify(header)}`);
    }
  });

  it('applies the WebSocket channel-name rules to POST /api/publish (400 INVALID_CHANNEL)', async () => {
    const publish = (channel: string) => fetch(`${srv.http}/api/publish`, {
      method: 'POST',
      headers: { authorization: 'Bearer k3y', 'content-type': 'application/json' },
      body: JSON.stringify({ channel, data: { x: 1 } }),
    });
    for (const channel of ['c'.repeat(201), 'room 1', 'ok\n', 'caf\u00e9', '']) {
      const res = await publish(channel);
      assert.equal(res.status, 400, `channel ${JSON.stringify(channel)}`);
      const body = (await res.json()) as { error: { code: string; temporary: boolean } };
      assert.equal(body.error.code, 'INVALID_CHANNEL');
      assert.equal(body.error.temporary, false);
    }
    for (const channel of ['c'.repeat(200), 'news:sports/eu@1']) {
      const res = await publish(channel);
      assert.equal(res.status, 200, `channel ${channel.slice(0, 20)}`);
      assert.equal(((await res.json()) as { channel: string }).channel, channel);
    }
  });

  it('rejects a malformed publish body with 400 INVALID_MESSAGE', async () => {
    const res = await fetch(`${srv.http}/api/publish`, {
      method: 'POST',
      headers: { authorization: 'Bearer k3y', 'content-type': 'application/json' },
      body: JSON.stringify({ channel: 5 }),
    });
    assert.equal(res.status, 400);
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'INVALID_MESSAGE');
  });

  it('disconnects a user through the API on every connection', async () => {
    const a = await TestClient.connect(`${srv.ws}/ws?user_id=kick`);
    const b = await TestClient.connect(`${srv.ws}/ws?user_id=kick`);
    const res = await fetch(`${srv.http}/api/users/kick/disconnect`, {
      method: 'POST',
      headers: { authorization: 'Bearer k3y', 'content-type': 'application/json' },
      body: JSON.stringify({ code: 4031 }),
    });
    assert.equal(res.status, 200);
    assert.equal((await a.closed).code, 4031);
    assert.equal((await b.closed).code, 4031);
  });

  it('serves the HTML test page', async () => {
    const res = await fetch(`${srv.http}/test`);
    assert.equal(res.status, 200);
    assert.match(await res.text(), /Switchboard test client/);
  });

  it('drain mode refuses new WebSocket connections with 503', async () => {
    const res = await fetch(`${srv.http}/api/drain`, { method: 'POST', headers: { authorization: 'Bearer k3y', 'content-type': 'application/json' }, body: '{}' });
    assert.equal(res.status, 200);
    await assert.rejects(TestClient.connect(`${srv.ws}/ws`), /503/);
    assert.equal((await fetch(`${srv.http}/health`)).status, 503);
    await fetch(`${srv.http}/api/drain`, { method: 'POST', headers: { authorization: 'Bearer k3y', 'content-type': 'application/json' }, body: '{"enabled":false}' });
    const c = await TestClient.connect(`${srv.ws}/ws`);
    c.close();
  });
});

describe('server API without an API key', () => {
  it('answers loopback callers only', async () => {
    const srv = await startServer();
    try {
      const app = srv.sb.fastify!;
      const remote = await app.inject({ method: 'POST', url: '/api/publish', remoteAddress: '203.0.113.7', payload: { channel: 'c', data: {} } });
      assert.equal(remote.statusCode, 403);
      assert.equal((remote.json() as { error: { code: string } }).error.code, 'FORBIDDEN');
      const local = await app.inject({ method: 'GET', url: '/api/stats', remoteAddress: '127.0.0.1' });
      assert.equal(local.statusCode, 200);
      const mapped = await app.inject({ method: 'GET', url: '/api/stats', remoteAddress: '::ffff:127.0.0.1' });
      assert.equal(mapped.statusCode, 200);
      const best = await app.inject({ method: 'GET', url: '/api/best-node', remoteAddress: '203.0.113.7' });
      assert.equal(best.statusCode, 200, 'best-node stays public');
      assert.equal((await app.inject({ method: 'GET', url: '/health', remoteAddress: '203.0.113.7' })).statusCode, 200);
    } finally {
      await srv.close();
    }
  });
});
