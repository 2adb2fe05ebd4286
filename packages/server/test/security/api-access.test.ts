/**
 * Issue 11.1: the key-less server API (`/api/*` with `http.apiKey` empty) answers local callers only, and
 * "local" means more than a loopback socket: the client address (the X-Forwarded-For hops, which a proxy on
 * the same host adds) must be loopback too, and the `Host` header must name a loopback host (a browser page
 * on a rebound DNS name sends its own name). The server warns at start-up when it listens on a non-loopback
 * address with no key.
 */
import { describe, it } from 'node:test';
import { request } from 'node:http';
import net from 'node:net';
import assert from 'node:assert/strict';
import { RecordingLogger } from '../core/fakes.js';
import { startServer } from '../helpers.js';

/** Status of a GET over a real socket to 127.0.0.1 with exactly these headers. */
function statusOf(port: number, path: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
}

/** Send raw bytes to 127.0.0.1:port and resolve with everything the server answered. */
function rawRequest(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1', () => sock.write(text));
    let got = '';
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => (got += d));
    sock.on('end', () => resolve(got));
    sock.on('error', reject);
  });
}

type ErrorBody = { error: { code: string; message: string; temporary: boolean } };

describe('server API without http.apiKey', () => {
  it('refuses a request forwarded for a remote client (trustProxy on): 403 FORBIDDEN', async () => {
    const srv = await startServer({ http: { trustProxy: true } });
    try {
      const app = srv.sb.fastify!;
      const res = await app.inject({ method: 'GET', url: '/api/stats', remoteAddress: '127.0.0.1', headers: { 'x-forwarded-for': '203.0.113.9' } });
      assert.equal(res.statusCode, 403);
      const body = res.json() as ErrorBody;
      assert.equal(body.error.code, 'FORBIDDEN');
      assert.match(body.error.message, /http\.apiKey/);
      // A proxy that appends to a client-supplied X-Forwarded-For: the forged loopback first hop does not help.
      const appended = await app.inject({ method: 'GET', url: '/api/stats', remoteAddress: '127.0.0.1', headers: { 'x-forwarded-for': '127.0.0.1, 203.0.113.9' } });
      assert.equal(appended.statusCode, 403);
      // A local client through a local proxy is still local.
      const local = await app.inject({ method: 'GET', url: '/api/stats', remoteAddress: '127.0.0.1', headers: { 'x-forwarded-for': '127.0.0.1' } });
      assert.equal(local.statusCode, 200);
    } finally {
      await srv.close();
    }
  });

  it('refuses a request relayed by a proxy even when trustProxy is off (X-Forwarded-For, Forwarded, X-Real-IP)', async () => {
    const srv = await startServer();
    try {
      const app = srv.sb.fastify!;
      for (const headers of [{ 'x-forwarded-for': '203.0.113.9' }, { forwarded: 'for=203.0.113.9;proto=https' }, { 'x-real-ip': '203.0.113.9' }]) {
        const res = await app.inject({ method: 'POST', url: '/api/publish', remoteAddress: '127.0.0.1', headers, payload: { channel: 'c', data: {} } });
        assert.equal(res.statusCode, 403, JSON.stringify(headers));
        assert.equal((res.json() as ErrorBody).error.code, 'FORBIDDEN');
      }
      const v6 = await app.inject({ method: 'GET', url: '/api/stats', remoteAddress: '::1', headers: { forwarded: 'for="[::1]:5000"' } });
      assert.equal(v6.statusCode, 200);
    } finally {
      await srv.close();
    }
  });

  it('refuses a foreign Host header (DNS rebinding): 403 FORBIDDEN', async () => {
    const srv = await startServer();
    try {
      const app = srv.sb.fastify!;
      for (const host of ['evil.example', `evil.example:${srv.port}`, 'localhost.evil.example', '127.0.0.1.nip.io', '[2001:db8::1]:80']) {
        const res = await app.inject({ method: 'GET', url: '/api/stats', remoteAddress: '127.0.0.1', headers: { host } });
        assert.equal(res.statusCode, 403, `Host: ${host}`);
        const body = res.json() as ErrorBody;
        assert.equal(body.error.code, 'FORBIDDEN');
        assert.match(body.error.message, /Host/);
      }
      // The same over a real socket; and no Host header at all (HTTP/1.0) is not a loopback Host either.
      assert.equal(await statusOf(srv.port, '/api/stats', { host: 'evil.example' }), 403);
      assert.match(await rawRequest(srv.port, 'GET /api/stats HTTP/1.0\r\n\r\n'), /^HTTP\/1\.[01] 403 /);
    } finally {
      await srv.close();
    }
  });

  it('answers a plain loopback caller with a loopback Host: 200', async () => {
    const srv = await startServer();
    try {
      assert.equal((await fetch(`${srv.http}/api/stats`)).status, 200, 'Host: 127.0.0.1:port');
      assert.equal((await fetch(`http://localhost:${srv.port}/api/channels`)).status, 200, 'Host: localhost:port');
      const app = srv.sb.fastify!;
      for (const host of ['localhost', 'LOCALHOST:8080', '127.0.0.1', '127.1.2.3:80', '[::1]', '[::1]:8080']) {
        const res = await app.inject({ method: 'GET', url: '/api/stats', remoteAddress: '127.0.0.1', headers: { host } });
        assert.equal(res.statusCode, 200, `Host: ${host}`);
      }
      const remote = await app.inject({ method: 'GET', url: '/api/stats', remoteAddress: '203.0.113.7' });
      assert.equal(remote.statusCode, 403);
      // Public on purpose, whatever the caller.
      const best = await app.inject({ method: 'GET', url: '/api/best-node', remoteAddress: '203.0.113.7', headers: { host: 'evil.example' } });
      assert.equal(best.statusCode, 200);
    } finally {
      await srv.close();
    }
  });

  it('with http.apiKey set, the key decides (no loopback rule)', async () => {
    const srv = await startServer({ http: { apiKey: 'k3y', trustProxy: true } });
    try {
      const app = srv.sb.fastify!;
      const res = await app.inject({ method: 'GET', url: '/api/stats', remoteAddress: '198.51.100.4', headers: { host: 'api.example', 'x-forwarded-for': '203.0.113.9', authorization: 'Bearer k3y' } });
      assert.equal(res.statusCode, 200);
    } finally {
      await srv.close();
    }
  });

  it('warns at start-up when the API has no key and the server listens on a non-loopback address', async () => {
    const open = new RecordingLogger();
    const srv = await startServer({ host: '0.0.0.0' }, { logger: open });
    await srv.close();
    const warned = open.entries.filter((e) => e.level === 'warn' && /apiKey/.test(e.msg));
    assert.equal(warned.length, 1, `warnings: ${JSON.stringify(open.at('warn'))}`);

    const local = new RecordingLogger();
    const quiet = await startServer({ host: '127.0.0.1' }, { logger: local });
    await quiet.close();
    assert.deepEqual(local.entries.filter((e) => e.level === 'warn' && /apiKey/.test(e.msg)), []);

    const keyed = new RecordingLogger();
    const withKey = await startServer({ host: '0.0.0.0', http: { apiKey: 'k3y' } }, { logger: keyed });
    await withKey.close();
    assert.deepEqual(keyed.entries.filter((e) => e.level === 'warn' && /apiKey/.test(e.msg)), []);
  });
});
