import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, TestClient, within, type TestServer } from './helpers.js';

describe('typing indicators', () => {
  let srv: TestServer;
  before(async () => {
    srv = await startServer({ typing: { timeoutMs: 300 } });
  });
  after(() => srv.close());

  it('broadcasts typing with typing_users and stops by itself after the timeout', async () => {
    const a = await TestClient.connect(`${srv.ws}/ws?user_id=ta&username=Tia`);
    const b = await TestClient.connect(`${srv.ws}/ws?user_id=tb`);
    await a.join('t1');
    await b.join('t1');
    a.send({ type: 'typing', data: { channel: 't1', is_typing: true } });
    const on = await b.next('typing');
    assert.equal(on.data.user_id, 'ta');
    assert.equal(on.data.is_typing, true);
    assert.deepEqual(on.data.typing_users, ['ta']);
    const started = Date.now();
    const off = await b.next('typing', 2000);
    assert.equal(off.data.is_typing, false);
    assert.deepEqual(off.data.typing_users, []);
    assert.ok(Date.now() - started >= 200, 'auto-stop must wait for the timeout');
    a.close();
    b.close();
  });

  it('clears typing when the typer leaves or disconnects', async () => {
    // Its own server with a typing timeout far beyond the test: the stops below can only come from the leave
    // and from the close, however long the machine takes (no race against the auto-stop).
    const own = await startServer({ typing: { timeoutMs: 60_000 } });
    try {
      const a = await TestClient.connect(`${own.ws}/ws?user_id=tc`);
      const b = await TestClient.connect(`${own.ws}/ws?user_id=td`);
      await a.join('t2');
      await b.join('t2');
      a.send({ type: 'typing', data: { channel: 't2', is_typing: true } });
      assert.equal((await b.next('typing')).data.is_typing, true);
      await a.request('leave_channel', { channel: 't2' });
      const left = await b.next('typing');
      assert.deepEqual({ user: left.data.user_id, on: left.data.is_typing, users: left.data.typing_users }, { user: 'tc', on: false, users: [] });
      await a.join('t2');
      a.send({ type: 'typing', data: { channel: 't2', is_typing: true } });
      assert.equal((await b.next('typing')).data.is_typing, true);
      a.close();
      const off = await b.next('typing');
      assert.equal(off.data.is_typing, false);
      assert.equal(off.data.user_id, 'tc');
      b.close();
    } finally {
      await own.close();
    }
  });

  it('refuses typing in a channel not joined', async () => {
    const a = await TestClient.connect(`${srv.ws}/ws`);
    const r = await a.request('typing', { channel: 'zz', is_typing: true });
    assert.equal(r.data.code, 'NOT_SUBSCRIBED');
    a.close();
  });
});

describe('heartbeats and idle timeout', () => {
  let srv: TestServer;
  before(async () => {
    srv = await startServer({ heartbeat: { pingIntervalMs: 100, pongTimeoutMs: 150, idleTimeoutMs: 0 } });
  });
  after(() => srv.close());

  it('pings, and keeps a client that answers pong', async () => {
    const c = await TestClient.connect(`${srv.ws}/ws`, {});
    const ping = await c.next('ping', 1000);
    assert.equal(typeof ping.data.timestamp, 'string');
    await c.next('ping', 1000);
    await c.next('ping', 1000);
    assert.equal(c.closeInfo, null);
    c.close();
  });

  it('closes a silent client with 4012 after the pong timeout', async () => {
    const c = await TestClient.connect(`${srv.ws}/ws`, { autoPong: false });
    c.autoPong = false;
    const closed = await within(c.closed, 2000, 'the server to close a silent client');
    assert.equal(closed.code, 4012);
  });

  it('answers a client ping with pong', async () => {
    const c = await TestClient.connect(`${srv.ws}/ws`);
    const r = await c.request('ping');
    assert.equal(r.type, 'pong');
    c.close();
  });
});

describe('idle timeout', () => {
  it('closes with 4012 when no application message arrives in time', async () => {
    const srv = await startServer({ heartbeat: { pingIntervalMs: 0, pongTimeoutMs: 1000, idleTimeoutMs: 200 } });
    try {
      const idle = await TestClient.connect(`${srv.ws}/ws`);
      const busy = await TestClient.connect(`${srv.ws}/ws`);
      const timer = setInterval(() => busy.send({ type: 'online_users' }), 50);
      const closed = await idle.closed;
      assert.equal(closed.code, 4012);
      assert.equal(busy.closeInfo, null);
      clearInterval(timer);
      busy.close();
    } finally {
      await srv.close();
    }
  });
});
