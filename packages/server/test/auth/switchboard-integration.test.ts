/** The auth layer plugged into the real Switchboard server through the handshake adapters. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WebSocket } from 'ws';
import { Switchboard } from '../../src/server.js';
import { createAuth } from '../../src/auth/index.js';
import { toHandshakeAuthenticator, toOriginCheck } from '../../src/auth/handshake-adapter.js';
import { hmacKey, mint, SECRET } from './helpers.js';

function connect(url: string, protocols: string[], headers: Record<string, string> = {}): Promise<{ open: boolean; first?: Record<string, unknown>; code?: number; status?: number }> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, protocols, { headers });
    ws.on('message', (d) => { resolve({ open: true, first: JSON.parse(String(d)) }); ws.terminate(); });
    ws.on('close', (code) => resolve({ open: false, code }));
    ws.on('unexpected-response', (_q, res) => { resolve({ open: false, status: res.statusCode }); res.resume(); ws.terminate(); });
    ws.on('error', () => undefined);
  });
}

test('Switchboard with toHandshakeAuthenticator: token identity reaches the connect frame; bad token closes 4002; bad origin 403', async () => {
  const auth = createAuth({ jwt: { algorithms: ['HS256'], secret: SECRET }, origins: { allow: ['https://app.example.com'] } });
  const sb = await Switchboard.create({ host: '127.0.0.1', port: 0, log: { level: 'silent' }, store: { sqlitePath: ':memory:' } }, {
    authenticate: toHandshakeAuthenticator(auth),
    checkOrigin: toOriginCheck(auth),
  });
  const port = await sb.listen();
  const url = `ws://127.0.0.1:${port}/ws`;
  try {
    const good = await connect(url, ['switchboard.v1', `bearer.${await mint({ alg: 'HS256', key: hmacKey(), sub: 'alice', claims: { username: 'Alice' } })}`]);
    assert.ok(good.open, JSON.stringify(good));
    const data = good.first!['data'] as Record<string, unknown>;
    assert.equal(good.first!['type'], 'connect');
    assert.deepEqual([data['user_id'], data['username'], data['anonymous']], ['alice', 'Alice', false]);
    assert.equal((await connect(`${url}?token=bad`, [])).code, 4002);
    assert.equal((await connect(url, [], { origin: 'https://app.example.com.evil.com' })).status, 403);
  } finally {
    await sb.close();
  }
});
