import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, TestClient, type TestServer } from './helpers.js';

describe('client ids and supersede', () => {
  let srv: TestServer;
  before(async () => {
    srv = await startServer();
  });
  after(() => srv.close());

  it('a second connection with the same client_id closes the first with 4011', async () => {
    const first = await TestClient.connect(`${srv.ws}/ws/device-1`);
    await first.join('s');
    const second = await TestClient.connect(`${srv.ws}/ws/device-1`);
    const closed = await first.closed;
    assert.equal(closed.code, 4011);
    await second.barrier(); // rejects if the newer connection is closed too
    assert.equal(second.closeInfo, null);
    const sub = await second.join('s');
    assert.equal(sub.data.members, 1, 'the superseded connection left the channel');
    const connect = second.connectionId;
    assert.notEqual(connect, first.connectionId);
    second.close();
  });

  it('different client ids coexist', async () => {
    const a = await TestClient.connect(`${srv.ws}/ws/dev-a`);
    const b = await TestClient.connect(`${srv.ws}/ws/dev-b`);
    assert.equal((await a.request('ping')).type, 'pong');
    assert.equal(a.closeInfo, null);
    a.close();
    b.close();
  });
});
