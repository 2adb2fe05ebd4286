/**
 * Presence and the control plane at scale (issue 10): join and leave storms on the memory engine and on two
 * nodes sharing a real Redis; coalesced announcements; the member cap; pushed counts; opt-in user events;
 * no `left` storm at shutdown. Every wait is for frames (TestClient.until / next), never a sleep.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { Switchboard } from '../src/server.js';
import { mergeConfig, type DeepPartial, type SwitchboardConfig } from '../src/config.js';
import { requireRedisUrl } from './redis/redis-process.js';
import { TestClient, userEvent, type Frame, type TestServer } from './helpers.js';

type Member = { connection_id: string; user_id: string | null };

const servers: TestServer[] = [];
const clients: TestClient[] = [];
after(async () => {
  for (const c of clients) c.close();
  for (const s of servers) await s.close().catch(() => undefined);
});

/** A server on the memory engine, or on Redis with `prefix` (nodes sharing a prefix form one cluster). */
async function start(config: DeepPartial<SwitchboardConfig> = {}, redisPrefix?: string): Promise<TestServer> {
  const base: DeepPartial<SwitchboardConfig> = {
    host: '127.0.0.1', port: 0, log: { level: 'silent' }, store: { driver: 'none' }, http: { serveDemo: false },
    limits: { maxConnectionsPerIp: 0 },
  };
  if (redisPrefix !== undefined) base.broker = { type: 'redis', redisUrl: requireRedisUrl(), keyPrefix: redisPrefix };
  const sb = await Switchboard.create(mergeConfig(base, config) as DeepPartial<SwitchboardConfig>, { defaultMetrics: false });
  const port = await sb.listen();
  const srv: TestServer = { sb, port, ws: `ws://127.0.0.1:${port}`, http: `http://127.0.0.1:${port}`, close: () => sb.close() } as TestServer;
  servers.push(srv);
  return srv;
}

async function connect(srv: TestServer, query: string): Promise<TestClient> {
  const c = await TestClient.connect(`${srv.ws}/ws${query}`);
  clients.push(c);
  return c;
}

/** `n` identified connections (user ids `${prefix}${i}`), opened 50 at a time. */
async function connectMany(srv: TestServer, n: number, prefix: string): Promise<TestClient[]> {
  const out: TestClient[] = [];
  for (let i = 0; i < n; i += 50) {
    out.push(...(await Promise.all(Array.from({ length: Math.min(50, n - i) }, (_, j) => connect(srv, `?user_id=${prefix}${i + j}`)))));
  }
  return out;
}

/** Send every join at once, then wait for every `subscribed`. */
async function joinAll(cs: TestClient[], channel: string): Promise<void> {
  for (const c of cs) c.send({ type: 'join_channel', data: { channel } });
  await Promise.all(cs.map((c) => c.next((f) => f.type === 'subscribed' && f.data.channel === channel, 10_000)));
}

const CONTROL = new Set(['presence', 'presence_diff', 'presence_count', 'user_online', 'user_offline', 'users_diff']);

/**
 * A member that rebuilds the channel's member set from what it is told: the `presence` reply right after it
 * joined, then every `presence` / `presence_diff` frame; and the count from `presence_count`.
 */
class Watcher {
  readonly members = new Map<string, Member>();
  count = -1;
  announcements = 0;
  control = 0;

  private constructor(readonly client: TestClient, readonly channel: string) {
    client.onFrame = (f) => this.apply(f);
  }

  static async join(srv: TestServer, channel: string, userId: string): Promise<Watcher> {
    const c = await connect(srv, `?user_id=${userId}`);
    await c.join(channel);
    const w = new Watcher(c, channel);
    const reply = await c.request('presence', { channel, limit: 1000 });
    for (const m of reply.data.members as Member[]) w.members.set(m.connection_id, m);
    return w;
  }

  private apply(f: Frame): void {
    if (CONTROL.has(f.type)) this.control++;
    if (f.channel !== this.channel) return;
    if (f.type === 'presence') {
      this.announcements++;
      if (f.data.action === 'joined') this.members.set(f.data.connection_id, f.data as Member);
      else this.members.delete(f.data.connection_id);
    } else if (f.type === 'presence_diff') {
      this.announcements++;
      for (const m of f.data.joins as Member[]) this.members.set(m.connection_id, m);
      for (const m of f.data.leaves as Member[]) this.members.delete(m.connection_id);
    } else if (f.type === 'presence_count') {
      this.count = f.data.members as number;
    }
  }

  until(check: (w: Watcher) => boolean, what: string, timeoutMs = 10_000): Promise<void> {
    return this.client.until(() => check(this), what, timeoutMs);
  }

  users(): string[] {
    return [...this.members.values()].map((m) => m.user_id ?? '').sort();
  }
}

/** Tallies user events (seed frames and users_diff) seen by one connection. */
class UserWatcher {
  readonly online = new Set<string>();
  readonly offline = new Set<string>();
  frames = 0;

  constructor(readonly client: TestClient) {
    client.onFrame = (f) => {
      if (f.type === 'user_online') this.online.add(f.data.user_id);
      else if (f.type === 'user_offline') this.offline.add(f.data.user_id);
      else if (f.type === 'users_diff') {
        for (const u of f.data.online as Array<{ user_id: string }>) this.online.add(u.user_id);
        for (const u of f.data.offline as Array<{ user_id: string }>) this.offline.add(u.user_id);
      } else return;
      this.frames++;
    };
  }

  until(check: (u: UserWatcher) => boolean, what: string, timeoutMs = 10_000): Promise<void> {
    return this.client.until(() => check(this), what, timeoutMs);
  }
}

const ids = (prefix: string, n: number, extra: string[] = []) => [...Array.from({ length: n }, (_, i) => `${prefix}${i}`), ...extra].sort();

describe('presence storms on the memory engine', () => {
  it('a join storm and a leave storm: every watcher ends with the right member set and count, from few coalesced frames', async () => {
    const srv = await start({ channels: { defaults: { maxAnnouncedMembers: 1000 } } });
    const watchers = [await Watcher.join(srv, 'storm', 'w0'), await Watcher.join(srv, 'storm', 'w1'), await Watcher.join(srv, 'storm', 'w2')];
    const wIds = ['w0', 'w1', 'w2'];
    const before = watchers.map((w) => w.announcements);
    const crowd = await connectMany(srv, 200, 'u');
    await joinAll(crowd, 'storm');
    for (const w of watchers) await w.until((x) => x.members.size === 203 && x.count === 203, 'the member set and count after the join storm');
    for (const w of watchers) {
      assert.deepEqual(w.users(), ids('u', 200, wIds));
      const frames = w.announcements - before[watchers.indexOf(w)]!;
      assert.ok(frames < 40, `200 joins reached a watcher in ${frames} announcement frames (one per join would be 200)`);
    }
    const mid = watchers.map((w) => w.announcements);
    for (const c of crowd) c.close();
    for (const w of watchers) await w.until((x) => x.members.size === 3 && x.count === 3, 'the member set and count after the leave storm');
    for (const w of watchers) {
      assert.deepEqual(w.users(), wIds);
      assert.ok(w.announcements - mid[watchers.indexOf(w)]! < 40, 'leaves coalesced too');
    }
  });

  it('above maxAnnouncedMembers no announcements, only coalesced counts; the paged presence list is complete', async () => {
    const srv = await start({ channels: { defaults: { maxAnnouncedMembers: 20, countIntervalMs: 200 } } });
    const w = await Watcher.join(srv, 'big', 'w');
    const crowd = await connectMany(srv, 150, 'b');
    await joinAll(crowd, 'big');
    await w.until((x) => x.count === 151, 'the pushed count reaches 151');
    assert.ok(w.members.size <= 21, `announcements stop at the cap (the watcher was told of ${w.members.size - 1} joins)`);
    assert.ok(w.control <= 50, `${w.control} control frames for a 150-join storm`);
    const seen = new Set<string>();
    let cursor: string | null = null;
    do {
      const page: Frame = await w.client.request('presence', cursor === null ? { channel: 'big', limit: 40 } : { channel: 'big', limit: 40, cursor });
      assert.ok(page.data.members.length <= 40);
      for (const m of page.data.members as Member[]) {
        assert.equal(seen.has(m.connection_id), false, 'each member once');
        seen.add(m.connection_id);
      }
      cursor = page.data.next_cursor as string | null;
    } while (cursor !== null);
    assert.equal(seen.size, 151);
  });

  it('a single join keeps the seed presence frame; several in one batch make one presence_diff', async () => {
    const srv = await start({ channels: { defaults: { countIntervalMs: 0 } } });
    const w = await Watcher.join(srv, 'shape', 'w');
    const one = await connect(srv, '?user_id=solo&username=Solo');
    await one.join('shape');
    const single = await w.client.next((f) => f.type === 'presence' || f.type === 'presence_diff');
    assert.equal(single.type, 'presence');
    assert.deepEqual(single.data, { action: 'joined', connection_id: one.connectionId, user_id: 'solo', username: 'Solo', channel: 'shape' });
    await one.expectNoFrame((f) => f.type === 'presence', 'the joiner is not told about itself');
    const pair = await connectMany(srv, 2, 'pair');
    await joinAll(pair, 'shape');
    const diff = await w.client.next((f) => f.type === 'presence' || f.type === 'presence_diff');
    assert.equal(diff.type, 'presence_diff');
    assert.deepEqual((diff.data.joins as Member[]).map((m) => m.user_id).sort(), ['pair0', 'pair1']);
    assert.deepEqual(diff.data.leaves, []);
    assert.equal(diff.data.channel, 'shape');
  });
});

describe('presence storms across two nodes on Redis', () => {
  it('joins and leaves split over two nodes: watchers on both nodes end with the same set and count', async () => {
    const prefix = `sbp-${randomUUID().slice(0, 8)}:`;
    const config = { channels: { defaults: { maxAnnouncedMembers: 1000, countIntervalMs: 300 } } };
    const [a, b] = [await start(config, prefix), await start(config, prefix)];
    const watchers = [await Watcher.join(a, 'x', 'wa'), await Watcher.join(b, 'x', 'wb')];
    const crowd = [...(await connectMany(a, 60, 'ra')), ...(await connectMany(b, 60, 'rb'))];
    await joinAll(crowd, 'x');
    const expected = [...ids('ra', 60), ...ids('rb', 60), 'wa', 'wb'].sort();
    for (const w of watchers) await w.until((x) => x.members.size === 122 && x.count === 122, 'set and count after the storm', 15_000);
    for (const w of watchers) {
      assert.deepEqual(w.users(), expected);
      assert.ok(w.announcements < 40, `${w.announcements} announcement frames for 120 joins over 2 nodes`);
    }
    for (const c of crowd) c.close();
    for (const w of watchers) await w.until((x) => x.members.size === 2 && x.count === 2, 'set and count after the leave storm', 15_000);
  });

  it('a node shutting down sends the other node one coalesced departure, not a left storm', async () => {
    const prefix = `sbs-${randomUUID().slice(0, 8)}:`;
    const config = { channels: { defaults: { maxAnnouncedMembers: 1000, countIntervalMs: 0 } } };
    const [a, b] = [await start(config, prefix), await start(config, prefix)];
    const w = await Watcher.join(b, 'room', 'watcher');
    const observer = await connect(b, '?user_id=observer&user_events=1');
    await observer.next((f) => f.type === 'subscribed' && f.data.channel === '$users');
    const users = new UserWatcher(observer);
    const leaving = await connectMany(a, 80, 'gone');
    await joinAll(leaving, 'room');
    await w.until((x) => x.members.size === 81, 'all 80 joins seen on the other node');
    await users.until((u) => u.online.size === 80, 'the 80 users online');
    const announcementsBefore = w.announcements;
    const userFramesBefore = users.frames;
    await a.close();
    await w.until((x) => x.members.size === 1, 'every departure of the stopped node');
    await users.until((u) => u.offline.size === 80, 'the 80 users offline');
    assert.deepEqual(w.users(), ['watcher']);
    assert.ok(w.announcements - announcementsBefore <= 2, `${w.announcements - announcementsBefore} presence frames for 80 departures`);
    assert.ok(users.frames - userFramesBefore <= 2, `${users.frames - userFramesBefore} user-event frames for 80 users going offline`);
  });
});

describe('user events are opt-in', () => {
  it('nobody gets user_online/user_offline by default; $users members do, never about their own user', async () => {
    const srv = await start();
    const plain = await connect(srv, '?user_id=plain');
    const viaQuery = await connect(srv, '?user_id=q&user_events=1');
    await viaQuery.next((f) => f.type === 'subscribed' && f.data.channel === '$users');
    const viaJoin = await connect(srv, '?user_id=j');
    assert.equal((await viaJoin.join('$users')).type, 'subscribed');
    await viaQuery.barrier();
    const own = await connect(srv, '?user_id=q'); // a second connection of q: no event (q is online already)
    const newcomer = await connect(srv, '?user_id=new&username=New');
    for (const c of [viaQuery, viaJoin]) await c.next(userEvent('online', 'new'));
    await plain.expectNoFrame((f) => CONTROL.has(f.type), 'no user events without opting in');
    await viaQuery.expectNoFrame(userEvent('online', 'q'), 'not told about its own user');
    newcomer.close();
    for (const c of [viaQuery, viaJoin]) await c.next(userEvent('offline', 'new'));
    own.close();
    await viaQuery.expectNoFrame(userEvent('offline', 'q'), 'q is still online (this connection)');
    const forbidden = await viaJoin.request('message', { channel: '$users', text: 'hi' });
    assert.deepEqual([forbidden.type, forbidden.data.code], ['error', 'FORBIDDEN']);
  });

  it('a burst of users coming online reaches an opted-in client as few users_diff frames', async () => {
    const srv = await start();
    const client = await connect(srv, '?user_id=watch&user_events=1');
    await client.next((f) => f.type === 'subscribed' && f.data.channel === '$users');
    await client.barrier();
    const watcher = new UserWatcher(client);
    const burst = await Promise.all(Array.from({ length: 40 }, (_, i) => connect(srv, `?user_id=burst${i}`)));
    await watcher.until((u) => u.online.size === 40, 'all 40 online');
    assert.deepEqual([...watcher.online].sort(), ids('burst', 40));
    assert.ok(watcher.frames <= 10, `${watcher.frames} frames for 40 users coming online`);
    const online = watcher.frames;
    for (const c of burst) c.close();
    await watcher.until((u) => u.offline.size === 40, 'all 40 offline');
    assert.ok(watcher.frames - online <= 5, `${watcher.frames - online} frames for 40 users going offline at once`);
  });
});
