/**
 * Pattern subscriptions (issue 12): `prefix:*` (and `*` where allowed), delivered with their concrete channel,
 * authorized per matched channel, once per connection, recovered per concrete channel, limited per
 * connection; on the memory engine and on two nodes sharing a real Redis.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import { Switchboard } from '../src/server.js';
import { mergeConfig, type DeepPartial, type SwitchboardConfig } from '../src/config.js';
import { requireRedisUrl } from './redis/redis-process.js';
import { TestClient, type Frame, type TestServer } from './helpers.js';

const servers: TestServer[] = [];
const clients: TestClient[] = [];
after(async () => {
  for (const c of clients) c.close();
  for (const s of servers) await s.close().catch(() => undefined);
});

async function start(config: DeepPartial<SwitchboardConfig> = {}, redisPrefix?: string, sharded = false): Promise<TestServer> {
  const base: DeepPartial<SwitchboardConfig> = { host: '127.0.0.1', port: 0, log: { level: 'silent' }, store: { driver: 'none' }, http: { serveDemo: false } };
  if (redisPrefix !== undefined) base.broker = { type: 'redis', redisUrl: requireRedisUrl(), keyPrefix: redisPrefix, sharded };
  const sb = await Switchboard.create(mergeConfig(base, config) as DeepPartial<SwitchboardConfig>, { defaultMetrics: false });
  const port = await sb.listen();
  const srv = { sb, port, ws: `ws://127.0.0.1:${port}`, http: `http://127.0.0.1:${port}`, close: () => sb.close() } as TestServer;
  servers.push(srv);
  return srv;
}

async function connect(srv: TestServer, query = ''): Promise<TestClient> {
  const c = await TestClient.connect(`${srv.ws}/ws${query}`);
  clients.push(c);
  return c;
}

const messages = (c: TestClient) => c.frames.filter((f) => f.type === 'message');

const SECRET = 'pattern-test-secret-pattern-test-secret!';
const token = (sub: string, claims: Record<string, unknown> = {}) => new SignJWT(claims).setProtectedHeader({ alg: 'HS256' })
  .setSubject(sub).setIssuedAt().setExpirationTime('1h').sign(new TextEncoder().encode(SECRET));

for (const engine of ['memory', 'redis'] as const) {
  describe(`pattern subscriptions on the ${engine} engine`, () => {
    const prefix = () => (engine === 'redis' ? `sbpat-${randomUUID().slice(0, 8)}:` : undefined);

    it('news:* receives every news:… channel with its concrete channel and seq, nothing else; leave stops it', async () => {
      const srv = await start({}, prefix());
      const sub = await connect(srv);
      const ok = await sub.request('join_channel', { channel: 'news:*' });
      assert.deepEqual([ok.type, ok.data.channel, ok.data.pattern], ['subscribed', 'news:*', true]);
      const pub = await connect(srv);
      for (const [channel, text] of [['news:eu', 'a'], ['sport:eu', 'x'], ['news', 'y'], ['news:eu:fr', 'b'], ['news:us', 'c']]) {
        assert.equal((await pub.request('message', { channel, text })).type, 'ok');
      }
      await sub.until(() => messages(sub).length === 3, 'three news publications');
      await sub.expectNoFrame((f) => f.type === 'message' && f.data.text !== 'a' && f.data.text !== 'b' && f.data.text !== 'c', 'no other channel', { ping: true });
      assert.deepEqual(messages(sub).map((f) => [f.channel, f.data.text, f.seq]), [['news:eu', 'a', 1], ['news:eu:fr', 'b', 1], ['news:us', 'c', 1]]);
      const left = await sub.request('leave_channel', { channel: 'news:*' });
      assert.deepEqual([left.type, left.data.channel], ['unsubscribed', 'news:*']);
      await pub.request('message', { channel: 'news:eu', text: 'after' });
      await sub.expectNoFrame((f) => f.type === 'message' && f.data.text === 'after', 'nothing after leaving', { ping: true });
    });

    it('each matched channel is authorized by the channel rules; the pattern itself is authorized as a subscribe', async () => {
      const srv = await start({
        auth: { channels: { default: 'allow', rules: { 'news:secret': { subscribe: 'none', publish: 'any' }, 'admin:*': { subscribe: 'none' } } } },
      }, prefix());
      const sub = await connect(srv);
      await sub.request('join_channel', { channel: 'news:*' });
      const refused = await sub.request('join_channel', { channel: 'admin:*' });
      assert.deepEqual([refused.type, refused.data.code], ['error', 'FORBIDDEN']);
      const pub = await connect(srv);
      assert.equal((await pub.request('message', { channel: 'news:secret', text: 'hidden' })).type, 'ok', 'published (only subscribing is forbidden)');
      await pub.request('message', { channel: 'news:open', text: 'shown' });
      await sub.next((f) => f.type === 'message' && f.data.text === 'shown');
      await sub.expectNoFrame((f) => f.type === 'message' && f.data.text === 'hidden', 'a channel the rules forbid is not delivered', { ping: true });
    });

    it('a publication reaches a connection once, whether it is in the channel, in overlapping patterns, or both', async () => {
      const srv = await start({ channels: { globalPattern: true } }, prefix());
      const sub = await connect(srv);
      await sub.join('news:eu');
      for (const channel of ['news:*', '*']) assert.equal((await sub.request('join_channel', { channel })).type, 'subscribed');
      const pub = await connect(srv);
      for (let i = 1; i <= 3; i++) await pub.request('message', { channel: 'news:eu', i });
      await pub.request('message', { channel: 'other', i: 4 });
      await pub.request('message', { channel: 'news:us', i: 5 }); // matched by both patterns, not joined
      await sub.until(() => messages(sub).length >= 5, 'five publications');
      await sub.expectNoFrame(() => false, 'settled', { ping: true });
      assert.deepEqual(messages(sub).map((f) => [f.channel, f.data.i]), [['news:eu', 1], ['news:eu', 2], ['news:eu', 3], ['other', 4], ['news:us', 5]]);
    });

    it('* is refused unless channels.globalPattern; patterns per connection are limited', async () => {
      const srv = await start({ limits: { maxPatternsPerConnection: 2 } }, prefix());
      const c = await connect(srv);
      const star = await c.request('join_channel', { channel: '*' });
      assert.deepEqual([star.type, star.data.code, star.data.temporary], ['error', 'FORBIDDEN', false]);
      for (const channel of ['a:*', 'b:*']) assert.equal((await c.request('join_channel', { channel })).type, 'subscribed');
      const third = await c.request('join_channel', { channel: 'c:*' });
      assert.deepEqual([third.type, third.data.code], ['error', 'TOO_MANY_CHANNELS']);
      const bad = await c.request('join_channel', { channel: 'no colon*' });
      assert.deepEqual([bad.type, bad.data.code], ['error', 'INVALID_CHANNEL']);
      const again = await c.request('join_channel', { channel: 'a:*' });
      assert.deepEqual([again.type, again.data.pattern], ['subscribed', true], 'a duplicate join is answered');
    });

    it('recovers each concrete channel listed in positions: missed publications replayed, then replay_complete', async () => {
      const srv = await start({}, prefix());
      const pub = await connect(srv);
      const seen = await connect(srv);
      await seen.request('join_channel', { channel: 'feed:*' });
      await pub.request('message', { channel: 'feed:a', n: 1 });
      const first = await seen.next('message');
      seen.close();
      for (let n = 2; n <= 4; n++) await pub.request('message', { channel: 'feed:a', n });
      const back = await connect(srv);
      const positions = { 'feed:a': { offset: first.seq!, epoch: first.epoch! }, 'other:x': { offset: 0, epoch: first.epoch! } };
      back.send({ type: 'join_channel', id: 'j', data: { channel: 'feed:*', positions } });
      assert.equal((await back.next((f) => f.id === 'j')).type, 'subscribed');
      const replayed: Frame[] = [];
      for (let i = 0; i < 3; i++) replayed.push(await back.next('message'));
      assert.deepEqual(replayed.map((f) => [f.channel, f.data.n, f.replayed]), [['feed:a', 2, true], ['feed:a', 3, true], ['feed:a', 4, true]]);
      const done = await back.next('replay_complete');
      assert.deepEqual([done.data.channel, done.data.replayed_count, done.data.recovered], ['feed:a', 3, true]);
      await pub.request('message', { channel: 'feed:a', n: 5 });
      const live = await back.next('message');
      assert.deepEqual([live.data.n, live.replayed], [5, undefined]);
    });
  });
}

describe('pattern authorization by identity', () => {
  // Each matched channel's decision: shared by every connection when the rule does not look at the identity
  // (decided once per publication), per connection when it does (roles) or when the token carries its own
  // channel list (grant or restrict); the three kinds side by side on one server.
  const rules = { default: 'allow', rules: { 'news:vip': { subscribe: 'role:vip', publish: 'any' }, 'news:closed': { subscribe: 'none', publish: 'any' } } };
  const texts = (c: TestClient) => messages(c).map((f) => `${f.channel}=${f.data.text}`).sort();

  for (const mode of ['grant', 'restrict'] as const) {
    it(`rules by role, "none" and a token channel list (${mode}) each decide per matched channel`, async () => {
      const srv = await start({ auth: { jwt: { algorithms: ['HS256'], secret: SECRET }, claims: { channelsMode: mode }, channels: rules } });
      const plain = await connect(srv, `?token=${await token('plain')}`);
      const vip = await connect(srv, `?token=${await token('vip', { roles: ['vip'] })}`);
      // grant: the list adds news:closed to what the rules allow; restrict: only listed channels (the glob
      // news:* lists the pattern and every news channel), the rules still apply to them.
      const list = mode === 'grant' ? ['news:closed'] : ['news:*'];
      const listed = await connect(srv, `?token=${await token('listed', { channels: list })}`);
      for (const c of [plain, vip, listed]) assert.equal((await c.request('join_channel', { channel: 'news:*' })).type, 'subscribed');
      if (mode === 'restrict') {
        const unlisted = await connect(srv, `?token=${await token('unlisted', { channels: ['news:a'] })}`);
        const refused = await unlisted.request('join_channel', { channel: 'news:*' });
        assert.deepEqual([refused.type, refused.data.code], ['error', 'FORBIDDEN'], 'restrict: a pattern the list does not cover is refused');
      }
      const pub = await connect(srv, `?token=${await token('publisher')}`);
      for (const ch of ['news:a', 'news:b', 'news:vip', 'news:closed', 'news:end']) {
        assert.equal((await pub.request('message', { channel: ch, text: ch.slice(5) })).type, 'ok', ch);
      }
      const ended = (c: TestClient) => c.until(() => messages(c).some((f) => f.data.text === 'end'), 'the last publication');
      await Promise.all([plain, vip, listed].map(ended));
      await plain.expectNoFrame(() => false, 'settled', { ping: true });
      assert.deepEqual(texts(plain), ['news:a=a', 'news:b=b', 'news:end=end'], 'no role: not vip, not closed');
      assert.deepEqual(texts(vip), ['news:a=a', 'news:b=b', 'news:end=end', 'news:vip=vip'], 'role vip: vip too');
      assert.deepEqual(texts(listed), mode === 'grant'
        ? ['news:a=a', 'news:b=b', 'news:closed=closed', 'news:end=end']
        : ['news:a=a', 'news:b=b', 'news:end=end'], `${mode}: the token's list`);
    });
  }
});

describe('pattern subscriptions across two nodes on Redis', () => {
  it('a publication on one node reaches pattern subscribers on the other once, next to a channel member', async () => {
    const p = `sbpat2-${randomUUID().slice(0, 8)}:`;
    const [a, b] = [await start({}, p), await start({}, p)];
    const both = await connect(b); // in the channel AND in the pattern
    await both.join('room:1');
    await both.request('join_channel', { channel: 'room:*' });
    const onlyPattern = await connect(b);
    await onlyPattern.request('join_channel', { channel: 'room:*' });
    const pub = await connect(a);
    for (let i = 1; i <= 5; i++) await pub.request('message', { channel: i % 2 ? 'room:1' : 'room:2', i });
    for (const c of [both, onlyPattern]) {
      await c.until(() => messages(c).length >= 5, 'five publications');
      await c.expectNoFrame(() => false, 'settled', { ping: true });
      assert.deepEqual(messages(c).map((f) => [f.channel, f.data.i]), [['room:1', 1], ['room:2', 2], ['room:1', 3], ['room:2', 4], ['room:1', 5]]);
    }
  });

  it('with sharded pub/sub (no patterns in Redis) a pattern join is refused UNAVAILABLE (final)', async () => {
    const srv = await start({}, `sbpat3-${randomUUID().slice(0, 8)}:`, true);
    const c = await connect(srv);
    const r = await c.request('join_channel', { channel: 'x:*' });
    assert.deepEqual([r.type, r.data.code, r.data.temporary], ['error', 'UNAVAILABLE', false]);
    assert.equal((await c.request('join_channel', { channel: 'x:*' })).data.code, 'UNAVAILABLE', 'and the slot was released');
  });
});
