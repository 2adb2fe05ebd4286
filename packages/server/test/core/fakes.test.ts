/** The fakes themselves: holding releases in call order with the real engine's results; failures; the clock. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { brokerUnavailable, ControllableBroker, FakeClock, flush } from './fakes.js';

const HISTORY = { history: { size: 10, ttlMs: 60_000 } };

describe('ControllableBroker', () => {
  it('a held call does not happen until released; releases go oldest first and settle with the real results', async () => {
    const clock = new FakeClock();
    const b = new ControllableBroker(clock.now);
    const delivered: number[] = [];
    await b.start({ onPublication: (p) => delivered.push(p.offset), onEphemeral() {}, onControl() {} });
    await b.subscribe('room');
    b.hold('publish');
    const settled: number[] = [];
    const p1 = b.publish('room', '{"n":1}', HISTORY).then((p) => settled.push(p.offset));
    const p2 = b.publish('room', '{"n":2}', HISTORY).then((p) => settled.push(p.offset));
    await flush();
    assert.equal(b.held('publish'), 2);
    assert.deepEqual(delivered, [], 'nothing published while held');
    assert.deepEqual((await b.inner.position('room')).offset, 0);

    b.release('publish');
    await flush();
    assert.deepEqual(delivered, [1]);
    assert.deepEqual(settled, [1]);
    b.release();
    await Promise.all([p1, p2]);
    assert.deepEqual(delivered, [1, 2]);
    assert.deepEqual(settled, [1, 2]);
    assert.throws(() => b.release(), /nothing held/);
    assert.equal(b.count('publish', 'room'), 2);
    await b.close();
  });

  it('failWith rejects later calls with the given error; fail() rejects a held call without performing it', async () => {
    const b = new ControllableBroker();
    b.failWith('position', brokerUnavailable);
    await assert.rejects(b.position('x'), { code: 'BROKER_UNAVAILABLE' });
    b.failWith('position', null);
    assert.equal((await b.position('x')).offset, 0);

    b.hold('subscribe');
    const s = b.subscribe('x');
    await flush();
    b.gate.fail(new Error('nope'), 'subscribe');
    await assert.rejects(s, /nope/);
    assert.equal(b.subscribedChannels.has('x'), false);
  });
});

describe('FakeClock', () => {
  it('moves only when advanced', () => {
    const c = new FakeClock(1000);
    assert.equal(c.now(), 1000);
    assert.equal(c.advance(250), 1250);
    assert.equal(c.now(), 1250);
  });
});
