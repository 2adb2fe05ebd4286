/**
 * Hub-level unit tests: a connection's commands take effect in the order received (ADR 0006). A command that
 * waits (here: a held broker operation) holds the later ones; ping / heartbeat / response pass it.
 * Fake broker, fake sinks, fake clock; no sockets, no sleeps.
 */
import { afterEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ControllablePresence, flush, Harness, type Frame } from './fakes.js';

/** [type, id] of frames, for compact order assertions. */
function shape(frames: Frame[]): Array<[string, unknown]> {
  return frames.map((f) => [f.type, f.id ?? null]);
}

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

describe('join then message', () => {
  it('while the join is held the message is not published; after release: subscribed, then the own publication at offset+1', async () => {
    h = await Harness.start();
    // Three earlier publications, so the join's offset is not 0 and seq = offset + 1 means something.
    for (let i = 0; i < 3; i++) await h.node.publish('room', { n: i });
    const a = h.open();
    h.broker.hold('subscribe', 'position');
    const mark = a.sink.mark();

    a.send({ type: 'join_channel', id: 1, data: { channel: 'room' } });
    a.send({ type: 'message', id: 2, data: { channel: 'room', text: 'hi' } });
    await flush();
    assert.equal(h.broker.held('subscribe'), 1, 'the join waits for the broker subscription');
    assert.equal(h.broker.count('publish'), 3, 'the message must not reach the broker while the join waits');
    assert.deepEqual(a.sink.since(mark), [], 'nothing is answered while the join waits');

    h.broker.release('subscribe');
    await flush();
    assert.equal(h.broker.held('position'), 1, 'the join now waits for its position read');
    assert.equal(h.broker.count('publish'), 3, 'still not published');
    assert.deepEqual(a.sink.since(mark), []);

    h.broker.release('position');
    await flush();
    const got = a.sink.since(mark);
    assert.deepEqual(shape(got), [['subscribed', 1], ['message', null], ['ok', 2]]);
    const [sub, msg, ok] = got as [Frame, Frame, Frame];
    assert.equal(sub.data.offset, 3);
    assert.equal(msg.seq, sub.data.offset + 1);
    assert.equal(msg.epoch, sub.data.epoch);
    assert.equal(msg.data.text, 'hi');
    assert.equal(msg.sender_id, a.client.id);
    assert.deepEqual(ok.data, { channel: 'room', offset: sub.data.offset + 1, epoch: sub.data.epoch });
  });

  it('a publication that arrives while the join is still running is buffered and delivered after subscribed, once', async () => {
    const presence = new ControllablePresence();
    h = await Harness.start({ presence });
    const a = h.open();
    presence.gate.hold('join'); // the join has its position and waits for the presence write
    const mark = a.sink.mark();
    a.send({ type: 'join_channel', id: 1, data: { channel: 'room' } });
    await flush();
    assert.equal(presence.gate.held('join').length, 1);
    await h.node.publish('room', { n: 'during join' });
    await flush();
    assert.deepEqual(a.sink.since(mark), [], 'nothing before subscribed');

    presence.gate.releaseAll('join');
    await flush();
    const got = a.sink.since(mark);
    assert.deepEqual(shape(got), [['subscribed', 1], ['message', null]]);
    assert.equal(got[0]!.data.offset, 0);
    assert.equal(got[1]!.seq, 1);
    assert.equal(got[1]!.data.n, 'during join');
  });
});

describe('pipelined pairs take effect in order', () => {
  it('join then leave: subscribed, then unsubscribed; nothing left behind', async () => {
    h = await Harness.start();
    const a = h.open();
    h.broker.hold('subscribe');
    const mark = a.sink.mark();
    a.send({ type: 'join_channel', id: 1, data: { channel: 'room' } });
    a.send({ type: 'leave_channel', id: 2, data: { channel: 'room' } });
    await flush();
    assert.deepEqual(a.sink.since(mark), []);

    h.broker.release('subscribe');
    await flush();
    assert.deepEqual(shape(a.sink.since(mark)), [['subscribed', 1], ['unsubscribed', 2]]);
    assert.equal(a.client.inChannel('room'), false);
    assert.deepEqual({ ...h.node.stats(), draining: undefined }, { connections: 1, channels: 0, subscriptions: 0, users: 0, draining: undefined });
    assert.equal(await h.presence.count('room'), 0);
    assert.equal(h.broker.subscribedChannels.has('room'), false, 'the broker interest was dropped after the subscribe completed');
  });

  it('join then typing: subscribed, then ok; other members see the join and the typing event', async () => {
    // presenceBatchMs 0: every batch at the end of its turn (the fake clock does not move real timers).
    h = await Harness.start({ options: { presenceBatchMs: 0 } });
    const b = h.open();
    b.send({ type: 'join_channel', id: 'b', data: { channel: 'room' } });
    await flush();
    const a = h.open();
    // `room` already has broker interest (b), so the join waits on its position read instead.
    h.broker.hold('position');
    const markA = a.sink.mark();
    const markB = b.sink.mark();
    a.send({ type: 'join_channel', id: 1, data: { channel: 'room' } });
    a.send({ type: 'typing', id: 2, data: { channel: 'room', is_typing: true } });
    await flush();
    assert.deepEqual(a.sink.since(markA), []);
    assert.deepEqual(b.sink.since(markB), [], 'no typing event while the join waits');

    h.broker.release('position');
    await flush();
    assert.deepEqual(shape(a.sink.since(markA)), [['subscribed', 1], ['ok', 2]]);
    // Join announcements are batched (end of the turn at the earliest), typing is not: b sees both, the
    // typing event possibly first (docs/protocol.md "Presence").
    const seen = b.sink.since(markB);
    assert.deepEqual(seen.map((f) => f.type).sort(), ['presence', 'typing']);
    assert.equal(seen.find((f) => f.type === 'presence')!.data.action, 'joined');
    assert.deepEqual(seen.find((f) => f.type === 'typing')!.data, { user_id: a.client.id, username: null, is_typing: true, typing_users: [a.client.id] });
  });

  it('join then publish on a publishRequiresMembership namespace: subscribed, own message, ok (no NOT_SUBSCRIBED)', async () => {
    h = await Harness.start({ options: { namespaces: { members: { publishRequiresMembership: true } } } });
    const a = h.open();
    // The rule is on: publishing without joining is refused.
    a.send({ type: 'message', id: 0, data: { channel: 'members:other' } });
    assert.equal(a.sink.byId(0)[0]?.data.code, 'NOT_SUBSCRIBED');

    h.broker.hold('subscribe');
    const mark = a.sink.mark();
    a.send({ type: 'join_channel', id: 1, data: { channel: 'members:room' } });
    a.send({ type: 'message', id: 2, data: { channel: 'members:room', text: 'x' } });
    await flush();
    assert.deepEqual(a.sink.since(mark), []);
    h.broker.release('subscribe');
    await flush();
    const got = a.sink.since(mark);
    assert.deepEqual(shape(got), [['subscribed', 1], ['message', null], ['ok', 2]]);
    assert.equal(got[1]!.seq, 1);
    assert.equal(got[2]!.data.offset, 1);
  });
});

describe('duplicate joins', () => {
  it('the same channel twice, pipelined (ids 1 and 2): both answered subscribed under their own ids; one subscription', async () => {
    h = await Harness.start();
    const a = h.open();
    h.broker.hold('subscribe');
    const mark = a.sink.mark();
    a.send({ type: 'join_channel', id: 1, data: { channel: 'room' } });
    a.send({ type: 'join_channel', id: 2, data: { channel: 'room' } });
    await flush();
    assert.deepEqual(a.sink.since(mark), []);
    h.broker.release('subscribe');
    await flush();

    const got = a.sink.since(mark);
    assert.deepEqual(shape(got), [['subscribed', 1], ['subscribed', 2]]);
    for (const f of got) assert.equal(f.data.channel, 'room');
    assert.equal(got[1]!.data.offset, got[0]!.data.offset);
    assert.equal(got[1]!.data.epoch, got[0]!.data.epoch);
    assert.equal(got[0]!.data.members, 1);
    assert.equal(got[1]!.data.members, 1, 'the duplicate reports the completed join, not a half-done one');
    assert.equal(h.node.stats().subscriptions, 1);
    assert.equal(h.node.stats().channels, 1);
    assert.equal(h.broker.count('subscribe'), 1);

    // One membership: a publication arrives once.
    const before = a.sink.mark();
    await h.node.publish('room', { n: 1 });
    await flush();
    assert.deepEqual(a.sink.since(before).map((f) => [f.type, f.seq]), [['message', 1]]);

    // A later duplicate reports the current position.
    a.send({ type: 'join_channel', id: 3, data: { channel: 'room' } });
    await flush();
    const third = a.sink.byId(3);
    assert.deepEqual(shape(third), [['subscribed', 3]]);
    assert.equal(third[0]!.data.offset, 1);
    assert.equal(h.node.stats().subscriptions, 1);
  });
});

describe('ping, heartbeat and response pass a held command', () => {
  it('ping is answered (pong) before the held join and the message queued behind it; heartbeat (ok) too', async () => {
    h = await Harness.start();
    const a = h.open();
    h.broker.hold('subscribe');
    const mark = a.sink.mark();
    a.send({ type: 'join_channel', id: 1, data: { channel: 'room' } });
    a.send({ type: 'message', id: 2, data: { channel: 'room' } });
    a.send({ type: 'ping', id: 'p' });
    a.send({ type: 'heartbeat', id: 'hb' });
    // Answered at once: no flush needed, no release.
    assert.deepEqual(shape(a.sink.since(mark)), [['pong', 'p'], ['ok', 'hb']]);
    await flush();
    assert.deepEqual(shape(a.sink.since(mark)), [['pong', 'p'], ['ok', 'hb']]);
    assert.equal(h.broker.count('publish'), 0);

    h.broker.release('subscribe');
    await flush();
    assert.deepEqual(shape(a.sink.since(mark)), [['pong', 'p'], ['ok', 'hb'], ['subscribed', 1], ['message', null], ['ok', 2]]);
  });

  it('response settles node.request() while a join is held', async () => {
    h = await Harness.start();
    const a = h.open();
    const answer = h.node.request(a.client.id, 'confirm', { q: 1 });
    const req = a.sink.ofType('request')[0];
    assert.ok(req !== undefined, 'request frame sent');
    assert.equal(req.data.method, 'confirm');

    h.broker.hold('subscribe');
    const mark = a.sink.mark();
    a.send({ type: 'join_channel', id: 1, data: { channel: 'room' } });
    a.send({ type: 'response', data: { request_id: req.data.request_id, result: { yes: true } } });
    // Settled without releasing the join (a queued response would never settle: race it against a flush).
    const settled = await Promise.race([answer.then((v) => ({ v })), flush().then(() => null)]);
    assert.deepEqual(settled, { v: { yes: true } });
    assert.equal(h.broker.held('subscribe'), 1, 'the join is still held');
    assert.deepEqual(a.sink.since(mark), []);

    h.broker.release('subscribe');
    await flush();
    assert.deepEqual(shape(a.sink.since(mark)), [['subscribed', 1]]);
  });
});

describe('server-initiated subscribe and unsubscribe', () => {
  it('node.subscribe() is queued behind a held client command', async () => {
    h = await Harness.start();
    const a = h.open();
    h.broker.hold('subscribe');
    const mark = a.sink.mark();
    a.send({ type: 'join_channel', id: 1, data: { channel: 'first' } });
    h.node.subscribe(a.client, 'second');
    await flush();
    assert.deepEqual(h.broker.gate.calls.filter((c) => c.op === 'subscribe').map((c) => c.channel), ['first'], 'the server join waits its turn');
    h.broker.unhold('subscribe');
    h.broker.releaseAll();
    await flush();
    const got = a.sink.since(mark);
    assert.deepEqual(got.map((f) => [f.type, f.data.channel, f.id ?? null]), [['subscribed', 'first', 1], ['subscribed', 'second', null]]);
  });

  it(
    'node.subscribe() then node.unsubscribe() while a client command waits: the connection ends up NOT in the channel',
    async () => {
      h = await Harness.start();
      const a = h.open();
      h.broker.hold('subscribe');
      a.send({ type: 'join_channel', id: 1, data: { channel: 'room' } }); // waits
      h.node.subscribe(a.client, 'news'); // queued behind it
      h.node.unsubscribe(a.client, 'news'); // the server changed its mind
      h.broker.unhold('subscribe');
      h.broker.releaseAll();
      await flush();
      assert.equal(a.client.inChannel('room'), true);
      assert.equal(a.client.inChannel('news'), false, 'the later unsubscribe must win over the earlier subscribe');
    },
  );
});
