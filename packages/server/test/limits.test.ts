import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, TestClient } from './helpers.js';

describe('bad input keeps the connection up and other clients unaffected', () => {
  it('answers each bad frame with an error code, then still works', async () => {
    const srv = await startServer({ limits: { maxJsonDepth: 8 } });
    try {
      const bystander = await TestClient.connect(`${srv.ws}/ws`);
      await bystander.join('calm');
      const c = await TestClient.connect(`${srv.ws}/ws`);
      const cases: Array<[string, string]> = [
        ['{not json', 'INVALID_JSON'],
        ['[1,2]', 'INVALID_MESSAGE'],
        ['{"data":{}}', 'INVALID_MESSAGE'],
        ['{"type":"launch_missiles"}', 'UNKNOWN_TYPE'],
        ['{"type":"join_channel","data":{}}', 'INVALID_MESSAGE'],
        ['{"type":"join_channel","data":{"channel":42}}', 'INVALID_MESSAGE'],
        ['{"type":"typing","data":{"channel":"x","is_typing":"yes"}}', 'INVALID_MESSAGE'],
        ['{"type":"message","data":"text"}', 'INVALID_MESSAGE'],
        [`{"type":"message","data":{"channel":"calm","x":${'['.repeat(20)}${']'.repeat(20)}}}`, 'PAYLOAD_TOO_DEEP'],
        ['{"type":"message","data":{"channel":"calm","__proto__":{"admin":true}}}', 'FORBIDDEN_KEY'],
        ['{"type":"message","data":{"channel":"calm","a":{"constructor":{"prototype":{}}}}}', 'FORBIDDEN_KEY'],
        ['{"type":"join_channel","data":{"channel":"bad channel name!"}}', 'INVALID_CHANNEL'],
        [`{"type":"join_channel","data":{"channel":"${'x'.repeat(300)}"}}`, 'INVALID_CHANNEL'],
      ];
      for (const [text, code] of cases) {
        c.send(text);
        const err = await c.next('error');
        assert.equal(err.data.code, code, `for ${text.slice(0, 60)}`);
        assert.equal(typeof err.data.message, 'string');
      }
      c.socket.send(Buffer.from([1, 2, 3]), { binary: true });
      assert.equal((await c.next('error')).data.code, 'BINARY_NOT_SUPPORTED');
      c.send({ type: 'launch', id: 'req-9' });
      assert.equal((await c.next('error')).id, 'req-9');
      assert.equal((await c.request('ping')).type, 'pong');
      assert.equal(c.closeInfo, null);
      assert.equal(({} as Record<string, unknown>).admin, undefined);
      bystander.send({ type: 'message', data: { channel: 'calm', ok: 1 } });
      assert.equal((await bystander.next('message')).data.ok, 1);
      c.close();
      bystander.close();
    } finally {
      await srv.close();
    }
  });
});

describe('limits', () => {
  it('closes frames over maxMessageBytes with 1009', async () => {
    const srv = await startServer({ limits: { maxMessageBytes: 1024 } });
    try {
      const c = await TestClient.connect(`${srv.ws}/ws`);
      c.send({ type: 'message', data: { channel: 'x', pad: 'y'.repeat(2000) } });
      assert.equal((await c.closed).code, 1009);
      const d = await TestClient.connect(`${srv.ws}/ws`);
      assert.equal((await d.request('ping')).type, 'pong');
      d.close();
    } finally {
      await srv.close();
    }
  });

  it('rate limits with RATE_LIMITED errors, then closes sustained floods with 4021', async () => {
    const srv = await startServer({ limits: { rateLimit: { perSecond: 10, burst: 5, closeAfterDropped: 20 } } });
    try {
      const c = await TestClient.connect(`${srv.ws}/ws`);
      for (let i = 0; i < 8; i++) c.send({ type: 'ping', id: i });
      const replies = [];
      for (let i = 0; i < 8; i++) replies.push(await c.next((f) => f.id === i));
      assert.equal(replies.filter((r) => r.type === 'pong').length, 5);
      assert.equal(replies.filter((r) => r.type === 'error' && r.data.code === 'RATE_LIMITED').length, 3);
      for (let i = 0; i < 40; i++) c.send({ type: 'ping' });
      assert.equal((await c.closed).code, 4021);
    } finally {
      await srv.close();
    }
  });

  it('refuses connections over the total, per-user and per-IP limits with 4022', async () => {
    const srv = await startServer({ limits: { maxConnections: 3, maxConnectionsPerUser: 2, maxConnectionsPerIp: 0 } });
    try {
      const u1 = await TestClient.connect(`${srv.ws}/ws?user_id=same`);
      const u2 = await TestClient.connect(`${srv.ws}/ws?user_id=same`);
      const u3 = await TestClient.connect(`${srv.ws}/ws?user_id=same`, {}, false);
      assert.equal((await u3.closed).code, 4022);
      const other = await TestClient.connect(`${srv.ws}/ws?user_id=other`);
      const over = await TestClient.connect(`${srv.ws}/ws?user_id=fourth`, {}, false);
      assert.equal((await over.closed).code, 4022);
      assert.equal(u1.closeInfo, null);
      for (const c of [u1, u2, other]) c.close();
    } finally {
      await srv.close();
    }
    const ipSrv = await startServer({ limits: { maxConnectionsPerIp: 1 } });
    try {
      const a = await TestClient.connect(`${ipSrv.ws}/ws`);
      const b = await TestClient.connect(`${ipSrv.ws}/ws`, {}, false);
      assert.equal((await b.closed).code, 4022);
      a.close();
    } finally {
      await ipSrv.close();
    }
  });

  it('bounds channels per connection', async () => {
    const srv = await startServer({ limits: { maxChannelsPerConnection: 2 } });
    try {
      const c = await TestClient.connect(`${srv.ws}/ws`);
      await c.join('c1');
      await c.join('c2');
      const r = await c.join('c3');
      assert.equal(r.data.code, 'TOO_MANY_CHANNELS');
      c.close();
    } finally {
      await srv.close();
    }
  });

  it('disconnects a slow consumer with 4023 and keeps server memory bounded', async () => {
    const srv = await startServer({ limits: { maxQueuedBytes: 512 * 1024 } });
    try {
      const slow = await TestClient.connect(`${srv.ws}/ws`);
      const fast = await TestClient.connect(`${srv.ws}/ws`);
      await slow.join('firehose');
      await fast.join('firehose');
      (slow.socket as unknown as { _socket: { pause(): void } })._socket.pause();
      const payload = { pad: 'z'.repeat(32 * 1024) }; // loopback kernel buffers hold several MB: push well past them
      // Paced by the fast client, not by a clock: it never has more than WINDOW publications (128 KiB) unread,
      // so it stays far under the bound however slow the machine, while the paused one's backlog only grows.
      const WINDOW = 4;
      let sent = 0;
      let fastGot = 0;
      while (sent < 3000 && srv.sb.node.stats().connections === 2) {
        await srv.sb.node.publish('firehose', payload);
        sent++;
        if (sent - fastGot > WINDOW) {
          await fast.next('message', 5000);
          fastGot++;
        }
      }
      assert.equal(await srv.sessions.closeOf(slow.connectionId), 4023, `the slow consumer is dropped (after ${sent} publications)`);
      assert.equal(srv.sb.node.stats().connections, 1, 'only the slow consumer is dropped');
      (slow.socket as unknown as { _socket: { resume(): void } })._socket.resume();
      const closed = await slow.closed;
      assert.equal(closed.code, 4023);
      // The fast client gets every publication, then nothing else, and stays connected.
      while (fastGot < sent) {
        await fast.next('message', 5000);
        fastGot++;
      }
      await fast.expectNoFrame((f) => f.type === 'message', 'no publication beyond those sent');
      assert.equal(fast.closeInfo, null, 'the fast client stays connected');
      fast.close();
    } finally {
      await srv.close();
    }
  });
});
