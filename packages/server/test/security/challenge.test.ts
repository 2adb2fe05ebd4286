/**
 * Issue 11.2: the Ed25519 challenge endpoint (`{http.ed25519Path}/{collective_id}`).
 * - Pending challenges hold a connection slot of their address (limits.maxConnectionsPerIp): one address
 *   cannot fill the pending table and lock key holders out with 4022.
 * - A challenge is bound to the socket it was issued on: its nonce answered on another socket is refused (4001).
 * - The challenge phase ends after auth.handshakeTimeoutMs (4004), and a client that ignores the close frame
 *   does not keep the socket.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import net from 'node:net';
import { resolveAuthConfig } from '../../src/auth/config.js';
import { startServer, TestClient, type Frame } from '../helpers.js';

const { publicKey, privateKey } = generateKeyPairSync('ed25519');
const raw = (publicKey.export({ format: 'jwk' }) as { x: string }).x;
const keys = { 'team-7': raw };

/** Connect to a challenge endpoint; resolves with the first thing that happens: the challenge or the close. */
async function challenge(url: string): Promise<{ c: TestClient; ch: Frame | null; close: { code: number; reason: string } | null }> {
  const c = await TestClient.connect(url, {}, false);
  const first = await Promise.race([c.next('auth_challenge', 5000).then((f) => ({ f })), c.closed.then((info) => ({ info }))]);
  return 'f' in first ? { c, ch: first.f, close: null } : { c, ch: null, close: first.info };
}

function signed(ch: Frame): string {
  return sign(null, Buffer.from(ch.data.challenge as string, 'utf8'), privateKey).toString('base64');
}

describe('Ed25519 challenge endpoint hardening', () => {
  it('pending challenges count against limits.maxConnectionsPerIp: the 31st connection from the address is refused with 4022', async () => {
    const srv = await startServer({ limits: { maxConnectionsPerIp: 30 }, auth: { ed25519: { keys } } });
    const pending: TestClient[] = [];
    try {
      const url = `${srv.ws}/ws/collective/team-7`;
      for (let i = 0; i < 30; i++) {
        const p = await challenge(url);
        assert.ok(p.ch !== null, `challenge ${i + 1} issued (got close ${JSON.stringify(p.close)})`);
        pending.push(p.c);
      }
      const extra = await challenge(url);
      assert.equal(extra.ch, null, '31st challenge must not be issued');
      assert.equal(extra.close?.code, 4022);
      const plain = await TestClient.connect(`${srv.ws}/ws`);
      assert.equal((await plain.closed).code, 4022, 'a plain connection from the same address is refused too');

      // A pending challenge that goes away gives its slot back; a key holder then gets in.
      pending.shift()!.close();
      let holder: Awaited<ReturnType<typeof challenge>> | null = null;
      const deadline = Date.now() + 3000;
      while (Date.now() < deadline) {
        holder = await challenge(url);
        if (holder.ch !== null) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      assert.ok(holder?.ch, 'a slot is free again once a pending challenge closed');
      holder.c.send({ type: 'auth_response', data: { nonce: holder.ch.data.nonce, signature: signed(holder.ch) } });
      const connect = await holder.c.next('connect');
      assert.equal(connect.data.user_id, 'team-7');
      // The opened session holds exactly one slot (its reservation was handed over, not added).
      assert.equal(srv.sb.node.stats().connections, 1);
      const over = await challenge(url);
      assert.equal(over.close?.code, 4022, '29 pending + 1 session = 30: still full');
      holder.c.close();
    } finally {
      for (const c of pending) c.close();
      await srv.close();
    }
  });

  it('a challenge answer over limits.maxMessageBytes closes with 1009, though the socket takes larger document frames', async () => {
    const srv = await startServer({ auth: { ed25519: { keys } } });
    try {
      assert.ok(srv.sb.node.maxFrameBytes > srv.sb.config.limits.maxMessageBytes, 'a document namespace raises the socket limit');
      const p = await challenge(`${srv.ws}/ws/collective/team-7`);
      assert.ok(p.ch);
      p.c.send({ type: 'auth_response', data: { nonce: p.ch.data.nonce, signature: signed(p.ch), pad: 'x'.repeat(srv.sb.config.limits.maxMessageBytes) } });
      assert.equal((await p.c.closed).code, 1009);
    } finally {
      await srv.close();
    }
  });

  it('a challenge is bound to its socket: its nonce answered on another socket is refused with 4001', async () => {
    const srv = await startServer({ auth: { ed25519: { keys } } });
    try {
      const url = `${srv.ws}/ws/collective/team-7`;
      const a = await challenge(url);
      const b = await challenge(url);
      assert.ok(a.ch && b.ch);
      // B answers with A's (still pending) nonce and a valid signature of A's challenge.
      b.c.send({ type: 'auth_response', data: { nonce: a.ch.data.nonce, signature: signed(a.ch) } });
      const closed = await Promise.race([b.c.closed, b.c.next('connect', 3000).then(() => ({ code: -1, reason: 'B was authenticated with A\'s nonce' }))]);
      assert.equal(closed.code, 4001, closed.reason);
      // A's challenge is untouched: A still authenticates with it.
      a.c.send({ type: 'auth_response', data: { nonce: a.ch.data.nonce, signature: signed(a.ch) } });
      assert.equal((await a.c.next('connect')).data.user_id, 'team-7');
      a.c.close();
    } finally {
      await srv.close();
    }
  });

  it('a silent challenge is closed with 4004 after auth.handshakeTimeoutMs, and its expiry says so', async () => {
    const srv = await startServer({ auth: { handshakeTimeoutMs: 300, ed25519: { keys } } });
    try {
      const started = Date.now();
      const silent = await challenge(`${srv.ws}/ws/collective/team-7`);
      assert.ok(silent.ch);
      assert.ok(Date.parse(silent.ch.data.expires_at as string) - started <= 1000, `expires_at ${silent.ch.data.expires_at as string} within the handshake timeout`);
      const timeout = new Promise<{ code: number; reason: string }>((r) => setTimeout(() => r({ code: -1, reason: 'still open after 3 s' }), 3000).unref());
      const closed = await Promise.race([silent.c.closed, timeout]);
      assert.equal(closed.code, 4004, closed.reason);
      assert.ok(Date.now() - started < 2000, `closed after ${Date.now() - started} ms`);
    } finally {
      await srv.close();
    }
  });

  it('a client that ignores the 4004 close frame is cut off shortly after, not ~30 s later', async () => {
    const srv = await startServer({ auth: { handshakeTimeoutMs: 200, ed25519: { keys } } });
    try {
      const started = Date.now();
      const sock = net.connect(srv.port, '127.0.0.1');
      const chunks: Buffer[] = [];
      sock.on('data', (d) => chunks.push(d)); // never answers anything
      sock.on('error', () => {});
      sock.write(`GET /ws/collective/team-7 HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
      const ended = await Promise.race([
        new Promise<number>((r) => sock.once('close', () => r(Date.now() - started))),
        new Promise<number>((r) => setTimeout(() => r(-1), 5000).unref()),
      ]);
      sock.destroy();
      assert.ok(ended > 0, 'the server kept the silent socket for more than 5 s');
      const bytes = Buffer.concat(chunks);
      const close = bytes.indexOf(Buffer.from([0x88]));
      assert.ok(close > 0, 'a close frame was sent');
      assert.equal(bytes.readUInt16BE(close + 2), 4004);
    } finally {
      await srv.close();
    }
  });

  it('auth.handshakeTimeoutMs is validated', () => {
    assert.equal(resolveAuthConfig({}).handshakeTimeoutMs, 10_000);
    assert.throws(() => resolveAuthConfig({ handshakeTimeoutMs: 0 }), /handshakeTimeoutMs/);
  });
});
