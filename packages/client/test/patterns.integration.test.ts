/**
 * SDK pattern subscriptions against a real server behind a cuttable TCP proxy: publications of every matching
 * channel with their concrete channel, and recovery of each concrete channel after a reconnect.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Publication } from '@switchboard/client';
import { setupProxied as setup, until } from './helpers.js';

test('subscribe("feed:*"): every feed channel, each recovered after a reconnect, no duplicate, no loss', async (t) => {
  const { srv, clients, proxy } = await setup(t);
  const a = clients.make(proxy.url);
  const pub = clients.make(srv.url);
  await Promise.all([a.connect(), pub.connect()]);
  const feed = a.subscribe('feed:*');
  const got: Publication[] = [];
  feed.on('message', (p) => got.push(p));
  const completes: Array<{ channel: string; replayedCount: number; recovered: boolean }> = [];
  feed.on('replay_complete', (e) => completes.push(e));
  await feed.ready();
  await pub.publish('feed:a', { n: 1 });
  await pub.publish('feed:b', { n: 2 });
  await pub.publish('other', { n: 0 });
  await until(a, () => got.length === 2, 'the two feed publications');

  proxy.mode = 'refuse';
  proxy.cut();
  await until(a, () => a.status === 'reconnecting', 'drop noticed');
  await pub.publish('feed:a', { n: 3 });
  await pub.publish('feed:b', { n: 4 });
  await pub.publish('feed:a', { n: 5 });
  proxy.mode = 'forward';
  await until(a, () => completes.length === 2, 'a replay_complete per concrete channel');
  await pub.publish('feed:b', { n: 6 });
  await until(a, () => got.length === 6, 'the live one after the replays');

  assert.deepEqual(got.map((p) => [p.channel, p.data.n]).sort(), [['feed:a', 1], ['feed:a', 3], ['feed:a', 5], ['feed:b', 2], ['feed:b', 4], ['feed:b', 6]]);
  assert.deepEqual(got.filter((p) => p.replayed).map((p) => p.data.n).sort(), [3, 4, 5], 'the missed ones replayed');
  assert.deepEqual(completes.map((c) => [c.channel, c.replayedCount, c.recovered]).sort(), [['feed:a', 2, true], ['feed:b', 1, true]]);
  assert.deepEqual(got.filter((p) => p.channel === 'feed:a').map((p) => p.seq), [1, 2, 3], 'per channel in order');
});
