import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, TestClient, type TestServer } from './helpers.js';

describe('presence, online users, private messages', () => {
  let srv: TestServer;
  before(async () => {
    srv = await startServer();
  });
  after(() => srv.close());

  it('announces joined/left to the other members, not to the joiner', async () => {
    const a = await TestClient.connect(`${srv.ws}/ws?user_id=pa&username=Ann`);
    await a.join('room');
    const b = await TestClient.connect(`${srv.ws}/ws?user_id=pb&username=Bob`);
    const sub = await b.join('room');
    assert.equal(sub.data.members, 2);
    const joined = await a.next('presence');
    assert.deepEqual(
      { action: joined.data.action, user_id: joined.data.user_id, username: joined.data.username, channel: joined.data.channel },
      { action: 'joined', user_id: 'pb', username: 'Bob', channel: 'room' },
    );
    assert.equal(joined.data.connection_id, b.connectionId);
    // Presence of b's own join would be sent during the join: the barrier (a command) runs after it.
    await b.expectNoFrame((f) => f.type === 'presence', 'the joiner is not told about its own join');
    const members = await a.request('presence', { channel: 'room' });
    assert.deepEqual(members.data.members.map((m: { user_id: string }) => m.user_id).sort(), ['pa', 'pb']);
    b.close();
    const left = await a.next('presence');
    assert.equal(left.data.action, 'left');
    assert.equal(left.data.user_id, 'pb');
    a.close();
  });

  it('sends user_online on a first connection and user_offline after the last one', async () => {
    const watcher = await TestClient.connect(`${srv.ws}/ws?user_id=watcher`);
    const c1 = await TestClient.connect(`${srv.ws}/ws?user_id=carol&username=Carol`);
    const online = await watcher.next((f) => f.type === 'user_online' && f.data.user_id === 'carol');
    assert.equal(online.data.username, 'Carol');
    const c2 = await TestClient.connect(`${srv.ws}/ws?user_id=carol&username=Carol`);
    const list = await watcher.request('online_users');
    const carol = list.data.users.find((u: { user_id: string }) => u.user_id === 'carol');
    assert.equal(carol.connections, 2);
    c1.close();
    await c1.closed;
    c2.close();
    await watcher.next((f) => f.type === 'user_offline' && f.data.user_id === 'carol');
    const onlines = watcher.frames.filter((f) => f.type === 'user_online' && f.data.user_id === 'carol');
    assert.equal(onlines.length, 0, 'second connection must not announce user_online again');
    watcher.close();
  });

  it('delivers private messages to every connection of the recipient only', async () => {
    const d1 = await TestClient.connect(`${srv.ws}/ws?user_id=dave`);
    const d2 = await TestClient.connect(`${srv.ws}/ws?user_id=dave`);
    const other = await TestClient.connect(`${srv.ws}/ws?user_id=eve`);
    const sender = await TestClient.connect(`${srv.ws}/ws?user_id=frank&username=Frank`);
    const ok = await sender.request('private_message', { recipient_id: 'dave', content: 'psst' });
    assert.equal(ok.type, 'ok');
    assert.equal(ok.data.delivered, true);
    for (const c of [d1, d2]) {
      const p = await c.next('private');
      assert.equal(p.data.content, 'psst');
      assert.equal(p.sender_id, 'frank');
      assert.equal(p.recipient_id, 'dave');
      assert.equal(p.data.username, 'Frank');
    }
    // Both recipients have it, so the delivery pass is over: a copy for eve would precede the barrier's reply.
    await other.expectNoFrame((f) => f.type === 'private', 'another user gets no copy');
    for (const c of [d1, d2, other, sender]) c.close();
  });

  it('sends to a user through the server API', async () => {
    const g = await TestClient.connect(`${srv.ws}/ws?user_id=gina`);
    const res = await fetch(`${srv.http}/api/users/gina/send`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ type: 'notification', data: { title: 'hello' } }),
    });
    assert.equal(res.status, 200);
    assert.equal((await g.next('notification')).data.title, 'hello');
    g.close();
  });
});
