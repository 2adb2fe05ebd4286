/**
 * End-to-end over real WebSockets: shows the seam the transport uses (authenticate at the upgrade, echo the
 * subprotocol via handleProtocols, answer failures at the handshake or with a close code).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, STATUS_CODES } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';
import { isTemporaryError } from '@switchboard/protocol';
import { createAuth, selectSubprotocol, type AuthConfigInput } from '../../src/auth/index.js';
import { hmacKey, mint, SECRET } from './helpers.js';

async function start(cfg: AuthConfigInput) {
  const auth = createAuth(cfg);
  const wss = new WebSocketServer({ noServer: true, handleProtocols: (protocols) => selectSubprotocol(protocols) });
  const server = createServer();
  server.on('upgrade', (req, socket, head) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    void auth.authenticate(req, url, { required: true }).then((r) => {
      if (!r.ok && r.failure.rejectAt === 'handshake') {
        // The body of every HTTP error (docs/security.md): {"error": {"code", "message", "temporary"}}.
        const body = JSON.stringify({ error: { code: r.failure.code, message: r.failure.message, temporary: isTemporaryError(r.failure.code) } });
        socket.end(`HTTP/1.1 ${r.failure.httpStatus} ${STATUS_CODES[r.failure.httpStatus]}\r\nConnection: close\r\n` +
          `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
        return;
      }
      wss.handleUpgrade(req, socket, head, (ws) => {
        if (!r.ok) { ws.close(r.failure.closeCode, r.failure.message); return; }
        ws.send(JSON.stringify({ type: 'connect', data: { user_id: r.identity.userId } }));
      });
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}/ws`;
  return {
    url,
    close: async () => {
      for (const c of wss.clients) c.terminate();
      wss.close();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

type Outcome = { kind: 'open'; protocol: string; first: string } | { kind: 'close'; code: number; reason: string } | { kind: 'http'; status: number };
function connect(url: string, protocols: string[], headers: Record<string, string> = {}): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocols, { headers });
    let opened = false;
    ws.on('message', (d) => { resolve({ kind: 'open', protocol: ws.protocol, first: String(d) }); ws.close(); });
    ws.on('open', () => { opened = true; });
    ws.on('close', (code, reason) => { if (opened) resolve({ kind: 'close', code, reason: String(reason) }); });
    ws.on('unexpected-response', (_req, res) => { resolve({ kind: 'http', status: res.statusCode ?? 0 }); res.resume(); ws.terminate(); });
    ws.on('error', (e) => { if (!opened) reject(e); });
  });
}

test('browser-style subprotocol token: accepted with switchboard.v1 echoed; bad/expired token closed 4002/4003', async () => {
  const srv = await start({ jwt: { algorithms: ['HS256'], secret: SECRET }, origins: { allow: ['https://app.example.com'] } });
  try {
    const good = await connect(srv.url, ['switchboard.v1', `bearer.${await mint({ alg: 'HS256', key: hmacKey(), sub: 'alice' })}`]);
    assert.equal(good.kind, 'open');
    if (good.kind === 'open') {
      assert.equal(good.protocol, 'switchboard.v1');
      assert.equal(JSON.parse(good.first).data.user_id, 'alice');
    }
    assert.deepEqual(await connect(srv.url, ['switchboard.v1', 'bearer.x.y.z']), { kind: 'close', code: 4002, reason: 'malformed token' });
    const expired = await connect(srv.url, ['switchboard.v1', `bearer.${await mint({ alg: 'HS256', key: hmacKey(), expIn: -60 })}`]);
    assert.deepEqual(expired, { kind: 'close', code: 4003, reason: 'token expired' });
    assert.deepEqual(await connect(srv.url, ['switchboard.v1']), { kind: 'close', code: 4001, reason: 'authentication required' });
    assert.deepEqual(await connect(srv.url, ['switchboard.v1'], { origin: 'https://evil.example' }), { kind: 'http', status: 403 });
  } finally {
    await srv.close();
  }
});

test('rejectAt "handshake": credential failures become HTTP 401 before the upgrade', async () => {
  const srv = await start({ jwt: { algorithms: ['HS256'], secret: SECRET }, rejectAt: 'handshake' });
  try {
    assert.deepEqual(await connect(`${srv.url}?token=bad`, []), { kind: 'http', status: 401 });
    const ok = await connect(`${srv.url}?token=${await mint({ alg: 'HS256', key: hmacKey(), sub: 'bob' })}`, []);
    assert.ok(ok.kind === 'open' && JSON.parse(ok.first).data.user_id === 'bob');
  } finally {
    await srv.close();
  }
});
