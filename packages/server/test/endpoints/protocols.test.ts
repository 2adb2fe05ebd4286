/**
 * Issue 12: wire-protocol handlers. A handler registered in `SwitchboardOptions.protocols` gets the open socket
 * of the endpoints whose `protocol` names it, after the path, origin and authentication checks, with the
 * identity and path parameters; it holds a connection slot of its address while open; a throw closes 1011;
 * shutdown closes its sockets with 1001.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { SignJWT } from 'jose';
import { WebSocket } from 'ws';
import type { WsProtocolContext, WsProtocolHandler } from '../../src/core/ports/wire-protocol.js';
import { startServer, TestClient, within } from '../helpers.js';

const SECRET = 'test-secret-that-is-at-least-32-bytes-long!!';
const token = (sub: string): Promise<string> =>
  new SignJWT({ username: sub.toUpperCase() }).setProtectedHeader({ alg: 'HS256' }).setSubject(sub).setIssuedAt().setExpirationTime('1h').sign(new TextEncoder().encode(SECRET));

/** A tiny echo protocol that records what it was handed. */
class Echo implements WsProtocolHandler {
  readonly accepted: WsProtocolContext[] = [];
  /** Sockets the handler saw close (server side). */
  closes = 0;
  private listeners = new Set<() => void>();
  accept(ws: WebSocket, ctx: WsProtocolContext): void {
    this.accepted.push(ctx);
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
    ws.on('close', () => {
      this.closes += 1;
      this.notify();
    });
    this.notify();
  }
  private notify(): void {
    for (const l of [...this.listeners]) l();
  }
  /** Resolves once `check()` holds (checked at every hand-over and close). */
  until(check: () => boolean, what: string): Promise<void> {
    if (check()) return Promise.resolve();
    let listener = (): void => {};
    return within(new Promise<void>((r) => {
      listener = () => { if (check()) r(); };
      this.listeners.add(listener);
    }), 3000, what).finally(() => this.listeners.delete(listener));
  }
  /** Resolves once `n` sockets were handed over. */
  handed(n: number): Promise<void> {
    return this.until(() => this.accepted.length >= n, `${n} hand-overs`);
  }
}

function open(url: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}
const nextMessage = (ws: WebSocket): Promise<{ data: Buffer; isBinary: boolean }> =>
  within(new Promise((r) => ws.once('message', (data: Buffer, isBinary: boolean) => r({ data, isBinary }))), 3000, 'a message');
const closed = (ws: WebSocket): Promise<number> => within(new Promise((r) => ws.once('close', (code: number) => r(code))), 3000, 'the close');

describe('wire-protocol handlers (SwitchboardOptions.protocols)', () => {
  it('the handler gets the socket of its endpoint with identity, params, url, path and address', async () => {
    const echo = new Echo();
    const srv = await startServer({
      auth: { jwt: { algorithms: ['HS256'], secret: SECRET } },
      endpoints: {
        '/ws/echo/{doc}': { protocol: 'echo' },
        '/ws/private-echo/{user_id}': { protocol: 'echo', auth: 'required', credentials: ['query'], userParam: 'user_id' },
      },
    }, { protocols: { echo } });
    try {
      const anon = await open(`${srv.ws}/ws/echo/notes%201?x=1`);
      await echo.handed(1);
      anon.send('plain text');
      assert.equal(String((await nextMessage(anon)).data), 'plain text', 'no connect frame first: the handler owns the socket');
      anon.send(Buffer.from([1, 2, 3]));
      const bin = await nextMessage(anon);
      assert.deepEqual([bin.isBinary, [...bin.data]], [true, [1, 2, 3]], 'binary frames reach the handler');
      const ctx = echo.accepted[0]!;
      assert.deepEqual(ctx.params, { doc: 'notes 1' });
      assert.equal(ctx.path, '/ws/echo/notes%201');
      assert.equal(ctx.url.searchParams.get('x'), '1');
      assert.equal(ctx.remoteAddress, '127.0.0.1');
      assert.deepEqual([ctx.identity.userId, ctx.identity.anonymous], [null, true]);

      const mine = await open(`${srv.ws}/ws/private-echo/alice?token=${await token('alice')}`);
      await echo.handed(2);
      assert.deepEqual([echo.accepted[1]!.identity.userId, echo.accepted[1]!.identity.username, echo.accepted[1]!.params.user_id], ['alice', 'ALICE', 'alice']);
      // Refusals happen before the hand-over: the handler never sees these sockets.
      assert.equal(await closed(await open(`${srv.ws}/ws/private-echo/alice`)), 4001);
      assert.equal(await closed(await open(`${srv.ws}/ws/private-echo/alice?token=${await token('bob')}`)), 4031);
      assert.equal(echo.accepted.length, 2);
      assert.equal(srv.sb.node.stats().connections, 0, 'handler sockets are no Switchboard sessions');

      // Shutdown closes what the handler still holds.
      const closes = [closed(anon), closed(mine)];
      await srv.close();
      assert.deepEqual(await Promise.all(closes), [1001, 1001]);
    } finally {
      await srv.close();
    }
  });

  it('a handler socket holds a connection slot of its address; a throwing handler closes 1011', async () => {
    const echo = new Echo();
    const thrower: WsProtocolHandler = { accept: () => { throw new Error('boom'); } };
    const srv = await startServer({ limits: { maxConnectionsPerIp: 2 }, endpoints: { '/p/echo': { protocol: 'echo' }, '/p/boom': { protocol: 'boom' } } }, { protocols: { echo, boom: thrower } });
    try {
      const one = await open(`${srv.ws}/p/echo`);
      const two = await open(`${srv.ws}/p/echo`);
      await echo.handed(2);
      assert.equal(await closed(await open(`${srv.ws}/p/echo`)), 4022);
      const session = await TestClient.connect(`${srv.ws}/ws`);
      assert.equal((await session.closed).code, 4022, 'sessions and handler sockets share the address\'s slots');
      one.close();
      // The transport's close listener (slot release) is registered before the handler's: once the handler saw
      // the close, the slot is free.
      await echo.until(() => echo.closes === 1, 'the server-side close');
      const three = await open(`${srv.ws}/p/echo`);
      await echo.handed(3);
      two.close();
      three.close();
      await echo.until(() => echo.closes === 3, 'the server-side closes');
      assert.equal(await closed(await open(`${srv.ws}/p/boom`)), 1011);
    } finally {
      await srv.close();
    }
  });
});
