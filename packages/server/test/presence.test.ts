import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, TestClient, userEvent, type Frame, type TestServer } from './helpers.js';
import { MemoryPresenceStore } from '../src/broker/memory/memory-presence.js';

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
    const watcher = await TestClient.connect(`${srv.ws}/ws?user_id=watcher&user_events=1`);
    await watcher.next((f) => f.type === 'subscribed' && f.data.channel === '$users');
    const c1 = await TestClient.connect(`${srv.ws}/ws?user_id=carol&username=Carol`);
    const online = await watcher.next(userEvent('online', 'carol'));
    const carolOnline = online.type === 'user_online' ? online.data : online.data.online.find((u: { user_id: string }) => u.user_id === 'carol');
    assert.equal(carolOnline.username, 'Carol');
    const c2 = await TestClient.connect(`${srv.ws}/ws?user_id=carol&username=Carol`);
    const list = await watcher.request('online_users');
    const carol = list.data.users.find((u: { user_id: string }) => u.user_id === 'carol');
    assert.equal(carol.connections, 2);
    c1.close();
    await c1.closed;
    c2.close();
    await watcher.next(userEvent('offline', 'carol'));
    const onlines = watcher.frames.filter(userEvent('online', 'carol'));
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

describe('online users at scale', () => {
  it('routes a private message to a user on another node by that user\'s presence, never by listing all users', async () => {
    const presence = new MemoryPresenceStore();
    let listed = 0;
    const list = presence.onlineUsers.bind(presence);
    presence.onlineUsers = () => {
      listed++;
      return list();
    };
    const srv = await startServer({ store: { driver: 'none' } }, { presence });
    try {
      // "remote" is online on another node: only the shared presence store knows it.
      await presence.userConnected('remote', 'Remote', 'conn-on-node-b');
      const sender = await TestClient.connect(`${srv.ws}/ws?user_id=sender`);
      const toRemote = await sender.request('private_message', { recipient_id: 'remote', text: 'hi' });
      assert.equal(toRemote.data.delivered, true, 'sent through the broker to the node that holds the user');
      const toNobody = await sender.request('private_message', { recipient_id: 'nobody', text: 'hi' });
      assert.deepEqual([toNobody.data.delivered, toNobody.data.stored], [false, false]);
      assert.equal(listed, 0, 'no listing of every online user');
      sender.close();
    } finally {
      await srv.close();
    }
  });

  it('pages online_users: every user exactly once with its connection count, at most `limit` per page', async () => {
    const srv = await startServer({ store: { driver: 'none' }, limits: { maxConnectionsPerIp: 0 } });
    const clients: TestClient[] = [];
    try {
      for (let i = 0; i < 120; i++) clients.push(await TestClient.connect(`${srv.ws}/ws?user_id=u${String(i).padStart(3, '0')}`));
      clients.push(await TestClient.connect(`${srv.ws}/ws?user_id=u007`)); // a second connection of one user
      const asker = clients[0]!;
      const seen = new Map<string, number>();
      let cursor: string | null = null;
      let pages = 0;
      do {
        const reply: Frame = await asker.request('online_users', cursor === null ? { limit: 50 } : { limit: 50, cursor });
        assert.ok(reply.data.users.length <= 50, 'page bounded by limit');
        for (const u of reply.data.users as Array<{ user_id: string; connections: number }>) {
          assert.equal(seen.has(u.user_id), false, `${u.user_id} listed once`);
          seen.set(u.user_id, u.connections);
        }
        cursor = reply.data.next_cursor as string | null;
        pages++;
      } while (cursor !== null && pages < 10);
      assert.equal(seen.size, 120);
      assert.equal(seen.get('u007'), 2);
      assert.ok(pages >= 3, `walked ${pages} pages`);
      const firstPage = await asker.request('online_users');
      assert.equal(firstPage.data.users.length, 100, 'default page size');
      assert.equal(typeof firstPage.data.next_cursor, 'string');
      const api = await (await fetch(`${srv.http}/api/users/online?limit=500`)).json() as { users: unknown[]; next_cursor: string | null };
      assert.deepEqual([api.users.length, api.next_cursor], [120, null]);
    } finally {
      for (const c of clients) c.close();
      await srv.close();
    }
  });
});

describe('development identities', () => {
  it('a connection that gives only a username is that user: private messages reach it by name', async () => {
    const srv = await startServer({ store: { driver: 'none' } });
    try {
      const bob = await TestClient.connect(`${srv.ws}/ws?username=bob`);
      const whoAmI = await bob.request('online_users');
      assert.deepEqual(whoAmI.data.users.map((u: { user_id: string }) => u.user_id), ['bob'], 'identified as bob');
      const ann = await TestClient.connect(`${srv.ws}/ws?username=ann`);
      const ok = await ann.request('private_message', { recipient_id: 'bob', text: 'psst' });
      assert.equal(ok.data.delivered, true);
      const got = await bob.next('private');
      assert.deepEqual([got.data.text, got.sender_id], ['psst', 'ann']);
      for (const c of [bob, ann]) c.close();
    } finally {
      await srv.close();
    }
  });
});
