/**
 * closeSession while a join is in flight: whichever step the join is waiting on (broker subscribe, position
 * read, presence write, authorization hook), once it resumes nothing is sent, the node's stats return to 0,
 * presence keeps no member and the broker keeps no interest. Fake broker / presence / sinks; no sleeps.
 */
import { afterEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Decision } from '../../src/core/ports/hooks.js';
import type { SessionIdentity } from '../../src/core/ports/session-port.js';
import { ControllablePresence, flush, Harness, NO_RATE_LIMITS } from './fakes.js';

const ALICE: SessionIdentity = { userId: 'u1', username: 'alice', anonymous: false };
const ZERO = { connections: 0, channels: 0, subscriptions: 0, users: 0, draining: false };

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

describe('closeSession while a join is held', () => {
  for (const step of ['subscribe', 'position'] as const) {
    it(`held at broker ${step}: after release nothing is sent, stats back to 0, no presence member, no broker interest`, async () => {
      h = await Harness.start({ options: NO_RATE_LIMITS });
      const a = h.open(ALICE);
      await flush();
      h.broker.hold(step);
      a.send({ type: 'join_channel', id: 1, data: { channel: 'room' } });
      a.send({ type: 'message', id: 2, data: { channel: 'room' } }); // queued behind the join
      await flush();
      assert.equal(h.broker.held(step), 1);
      assert.deepEqual({ ...h.node.stats() }, { connections: 1, channels: 1, subscriptions: 1, users: 1, draining: false });

      const mark = a.sink.mark();
      h.node.closeSession(a.client, 1000);
      assert.deepEqual({ ...h.node.stats() }, ZERO, 'forgotten at once');
      assert.equal(a.client.closed, true);

      h.broker.unhold(step);
      h.broker.releaseAll();
      await flush();
      assert.deepEqual(a.sink.since(mark), [], 'nothing is sent after closeSession');
      assert.deepEqual({ ...h.node.stats() }, ZERO);
      assert.equal(await h.presence.count('room'), 0);
      assert.deepEqual(await h.presence.members('room'), []);
      assert.equal(h.broker.count('publish'), 0, 'the queued message was dropped with the connection');
      assert.equal(h.broker.subscribedChannels.has('room'), false, 'the broker subscription was dropped once it completed');
      assert.deepEqual(h.node.channelNames(), []);
    });
  }

  it('held at the presence write: the member the join wrote is removed again; nothing is sent', async () => {
    const presence = new ControllablePresence();
    h = await Harness.start({ options: NO_RATE_LIMITS, presence });
    const watcher = h.open();
    watcher.send({ type: 'join_channel', id: 'w', data: { channel: 'room' } });
    await flush();
    const a = h.open(ALICE);
    await flush();
    presence.gate.hold('join');
    a.send({ type: 'join_channel', id: 1, data: { channel: 'room' } });
    await flush();
    assert.equal(presence.gate.held('join').length, 1);

    const mark = a.sink.mark();
    h.node.closeSession(a.client, 1000);
    presence.gate.releaseAll('join'); // the presence write lands after the close
    await flush();
    assert.deepEqual(a.sink.since(mark), []);
    assert.equal(await presence.inner.count('room'), 1, 'only the watcher is left');
    assert.deepEqual((await presence.inner.members('room')).map((m) => m.connection_id), [watcher.client.id]);
    assert.deepEqual({ ...h.node.stats() }, { connections: 1, channels: 1, subscriptions: 1, users: 0, draining: false });
    assert.equal(h.broker.subscribedChannels.has('room'), true, 'the watcher still needs the channel');
  });

  it('held at an async authorization hook: after the hook allows, nothing is sent and stats stay 0', async () => {
    let decide: ((d: Decision) => void) | undefined;
    h = await Harness.start({
      options: NO_RATE_LIMITS,
      hooks: { authorizeChannel: () => new Promise<Decision>((resolve) => (decide = resolve)) },
    });
    const a = h.open(ALICE);
    await flush();
    a.send({ type: 'join_channel', id: 1, data: { channel: 'room' } });
    await flush();
    assert.ok(decide !== undefined);
    const mark = a.sink.mark();
    h.node.closeSession(a.client, 1000);
    decide({ allowed: true });
    await flush();
    assert.deepEqual(a.sink.since(mark), []);
    assert.deepEqual({ ...h.node.stats() }, ZERO);
    assert.equal(await h.presence.count('room'), 0);
  });

  it(
    'held at an async authorization hook: no broker subscription is left behind for a channel nobody is in',
    async () => {
      let decide: ((d: Decision) => void) | undefined;
      h = await Harness.start({
        options: NO_RATE_LIMITS,
        hooks: { authorizeChannel: () => new Promise<Decision>((resolve) => (decide = resolve)) },
      });
      const a = h.open();
      a.send({ type: 'join_channel', id: 1, data: { channel: 'leaky' } });
      await flush();
      h.node.closeSession(a.client, 1000);
      decide!({ allowed: true });
      await flush();
      assert.deepEqual(h.node.channelNames(), []);
      assert.equal(h.broker.count('subscribe', 'leaky') - h.broker.count('unsubscribe', 'leaky'), 0, 'every broker subscribe is undone');
      assert.equal(h.broker.subscribedChannels.has('leaky'), false, 'the engine is not subscribed to a channel with no local member');
    },
  );
});
