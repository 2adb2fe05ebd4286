// Presence at scale (issue 10) through the SDK against a REAL server (in-process, memory engine, default
// config). Tests marked "(issue-10 server)" need the server side of the change (presence_count frames,
// presence paging, user events only for connections that opted in); the others pass against servers before
// and after it, because the SDK turns presence_diff / users_diff into the same events as single frames.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { MembersEvent, SwitchboardClient } from '@switchboard/client';
import { setupProxied as setup, until } from './helpers.js';

/** Records the user events a client emits, as `online:<id>` / `offline:<id>`. */
function userEvents(client: SwitchboardClient): string[] {
  const seen: string[] = [];
  client.on('user_online', (u) => seen.push(`online:${u.user_id}`));
  client.on('user_offline', (u) => seen.push(`offline:${u.user_id}`));
  return seen;
}

test('a burst of joins and leaves reaches a member as one presence event per connection; members follows', async (t) => {
  const { srv, clients } = await setup(t);
  const observer = clients.make(srv.url);
  await observer.connect();
  const sub = observer.subscribe('lobby');
  const events: string[] = [];
  sub.on('presence', (p) => {
    assert.equal(p.channel, 'lobby');
    events.push(`${p.action}:${p.connection_id}`);
  });
  await sub.ready();
  assert.equal(sub.members, 1);

  const others = Array.from({ length: 5 }, (_, i) => clients.make(srv.url, { params: { user_id: `u${i}` } }));
  await Promise.all(others.map((c) => c.connect()));
  await Promise.all(others.map((c) => c.subscribe('lobby').ready()));
  const ids = others.map((c) => c.connection!.connection_id).sort();
  await until(observer, () => events.length === 5, 'five joins announced');
  assert.deepEqual(events.map((e) => e.split(':')[0]), Array(5).fill('joined'));
  assert.deepEqual(events.map((e) => e.slice('joined:'.length)).sort(), ids);
  await until(observer, () => sub.members === 6, 'members = 6');

  for (const c of others) c.close();
  await until(observer, () => events.length === 10, 'five leaves announced');
  assert.deepEqual(events.slice(5).map((e) => e.slice('left:'.length)).sort(), ids);
  await until(observer, () => sub.members === 1, 'members = 1');
});

test('userEvents: user_online / user_offline per user, bursts included', async (t) => {
  const { srv, clients } = await setup(t);
  const watcher = clients.make(srv.url, { userEvents: true, params: { user_id: 'watcher' } });
  const seen = userEvents(watcher);
  await watcher.connect();
  await watcher.userEventsSubscription!.ready();
  assert.deepEqual([...watcher.subscriptions.keys()], []);

  const users = ['ann', 'bob', 'cy'].map((id) => clients.make(srv.url, { params: { user_id: id } }));
  await Promise.all(users.map((c) => c.connect()));
  await until(watcher, () => ['ann', 'bob', 'cy'].every((id) => seen.includes(`online:${id}`)), 'three users online');
  for (const c of users) c.close();
  await until(watcher, () => ['ann', 'bob', 'cy'].every((id) => seen.includes(`offline:${id}`)), 'three users offline');
  for (const id of ['ann', 'bob', 'cy']) assert.ok(seen.indexOf(`online:${id}`) < seen.indexOf(`offline:${id}`), seen.join(' '));
});

test('(issue-10 server) user events go only to connections that opted in, never about their own user', async (t) => {
  const { srv, clients } = await setup(t);
  const watcher = clients.make(srv.url, { userEvents: true, params: { user_id: 'watcher' } });
  const plain = clients.make(srv.url, { params: { user_id: 'plain' } });
  const watcherSeen = userEvents(watcher);
  const plainSeen = userEvents(plain);
  await Promise.all([watcher.connect(), plain.connect()]);
  await watcher.userEventsSubscription!.ready();

  // dan opts in with ?user_events=1: he must not hear about his own first connection.
  const dan = clients.make(srv.url, { params: { user_id: 'dan', user_events: '1' } });
  const danSeen = userEvents(dan);
  await dan.connect();
  await until(watcher, () => watcherSeen.includes('online:dan'), 'watcher sees dan online');
  const carol = clients.make(srv.url, { params: { user_id: 'carol' } });
  await carol.connect();
  await until([watcher, dan], () => watcherSeen.includes('online:carol') && danSeen.includes('online:carol'), 'opted-in connections see carol');
  // Events are batched (channels.presenceBatchMs), so dan may also hear of users who came online just before
  // he opted in (plain); never of himself.
  assert.ok(danSeen.includes('online:carol') && !danSeen.some((e) => e.endsWith(':dan')), `dan hears of carol, not of himself: ${danSeen.join(' ')}`);
  assert.ok(!watcherSeen.some((e) => e.endsWith(':watcher')), `no event about the watcher itself: ${watcherSeen.join(' ')}`);

  // Ordering barrier for `plain`: its own $users join is answered after every event sent to it before.
  await plain.subscribe('$users').ready();
  assert.equal(plainSeen.join(' '), '', 'no user events before opting in');
  carol.close();
  await until(plain, () => plainSeen.includes('offline:carol'), 'after opting in, plain sees carol leave');
});

test('(issue-10 server) presence_count frames set subscription.members and emit members', async (t) => {
  // Announcements off for the namespace: only the pushed counts can tell the observer about the newcomers.
  const { srv, clients } = await setup(t, { channels: { namespaces: { quiet: { joinLeave: false } } } });
  const observer = clients.make(srv.url);
  await observer.connect();
  const sub = observer.subscribe('quiet:hall');
  const counts: MembersEvent[] = [];
  sub.on('members', (e) => counts.push(e));
  await sub.ready();
  const others = Array.from({ length: 3 }, () => clients.make(srv.url));
  await Promise.all(others.map((c) => c.connect()));
  await Promise.all(others.map((c) => c.subscribe('quiet:hall').ready()));
  // Counts are pushed at most once per countIntervalMs (default 1000 ms).
  await until(observer, () => counts.some((e) => e.source === 'count' && e.members === 4), 'a presence_count of 4', 5000);
  assert.equal(sub.members, 4);
});

test('(issue-10 server) presencePage pages a channel with next_cursor; presence() walks every page', async (t) => {
  const { srv, clients } = await setup(t);
  const members = Array.from({ length: 5 }, (_, i) => clients.make(srv.url, { params: { user_id: `m${i}` } }));
  await Promise.all(members.map((c) => c.connect()));
  await Promise.all(members.map((c) => c.subscribe('big').ready()));
  const ids = members.map((c) => c.connection!.connection_id).sort();
  const reader = members[0]!;

  const first = await reader.presencePage('big', { limit: 2 });
  assert.equal(first.members.length, 2);
  assert.equal(typeof first.nextCursor, 'string');
  const walked = [...first.members];
  let cursor = first.nextCursor;
  while (cursor !== null) {
    const page = await reader.presencePage('big', { cursor, limit: 2 });
    assert.ok(page.members.length <= 2);
    walked.push(...page.members);
    cursor = page.nextCursor;
  }
  assert.deepEqual(walked.map((m) => m.connection_id).sort(), ids);
  assert.deepEqual((await reader.presence('big')).map((m) => m.connection_id).sort(), ids);
});
