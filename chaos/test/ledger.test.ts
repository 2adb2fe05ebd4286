/**
 * The chaos run's accounting (src/ledger.ts): what counts as lost without warning, lost but flagged,
 * duplicate and out of order, and to which phase each is attributed.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { analyze, ChannelTruth, type LogEvent } from '../src/ledger.js';

function truthOf(entries: Array<[string, number, number]>): ChannelTruth {
  const t = new ChannelTruth('c');
  for (const [epoch, offset, at] of entries) t.record(epoch, offset, at, true);
  return t;
}

/** Phases: before t=100 "a", from 100 "b". */
const phaseOf = (t: number): string => (t < 100 ? 'a' : 'b');

function run(truth: ChannelTruth, log: LogEvent[], checkTail = true) {
  return analyze({ truth: new Map([['c', truth]]), logs: new Map([['s', new Map([['c', log]])]]), phaseOf, checkTail });
}

const msg = (t: number, epoch: string, offset: number): LogEvent => ({ kind: 'msg', t, epoch, offset });

describe('chaos ledger', () => {
  it('everything after the start, once and in order: nothing to report', () => {
    const truth = truthOf([['e', 1, 10], ['e', 2, 20], ['e', 3, 30]]);
    const r = run(truth, [{ kind: 'start', t: 15, epoch: 'e', offset: 1 }, msg(25, 'e', 2), msg(35, 'e', 3)]);
    assert.deepEqual(r.issues, []);
    assert.equal(r.checked, 2);
  });

  it('a gap is lost without warning, attributed to the phase its publications were made in', () => {
    const truth = truthOf([['e', 1, 10], ['e', 2, 20], ['e', 3, 120], ['e', 4, 130]]);
    const r = run(truth, [{ kind: 'start', t: 5, epoch: 'e', offset: 0 }, msg(15, 'e', 1), msg(140, 'e', 4)]);
    assert.equal(r.byPhase.get('a')!.unflaggedLost, 1);
    assert.equal(r.byPhase.get('b')!.unflaggedLost, 1);
    assert.deepEqual(r.issues.map((i) => [i.kind, i.offset]), [['lost', 2], ['lost', 3]]);
  });

  it('publications after the last one received are lost at the end (tail), unless the tail is not checked', () => {
    const truth = truthOf([['e', 1, 10], ['e', 2, 20]]);
    assert.equal(run(truth, [{ kind: 'start', t: 5, epoch: 'e', offset: 0 }, msg(15, 'e', 1)]).byPhase.get('a')!.unflaggedLost, 1);
    assert.equal(run(truth, [{ kind: 'start', t: 5, epoch: 'e', offset: 0 }, msg(15, 'e', 1)], false).byPhase.get('a'), undefined);
  });

  it('recovered:false moves the cursor: what it skips is lost but flagged, across an epoch change too', () => {
    const truth = truthOf([['e', 1, 10], ['e', 2, 20], ['e', 3, 30], ['f', 1, 110], ['f', 2, 120]]);
    const r = run(truth, [
      { kind: 'start', t: 5, epoch: 'e', offset: 0 },
      msg(15, 'e', 1),
      { kind: 'flag', t: 115, epoch: 'f', offset: 1, via: 'replay_complete' },
      msg(125, 'f', 2),
    ]);
    assert.deepEqual(r.issues, []);
    assert.equal(r.byPhase.get('a')!.flaggedLost, 2, 'e:2 and e:3');
    assert.equal(r.byPhase.get('b')!.flaggedLost, 1, 'f:1');
    assert.equal(r.byPhase.get('b')!.flaggedLostNewEpoch, 1, 'f:1 is of the new epoch');
    assert.equal(r.byPhase.get('a')!.flaggedLostNewEpoch, 0);
    assert.equal(r.byPhase.get('b')!.flags, 1);
  });

  it('an epoch change without a flag loses the old epoch\'s rest without warning', () => {
    const truth = truthOf([['e', 1, 10], ['e', 2, 20], ['f', 1, 110]]);
    const r = run(truth, [{ kind: 'start', t: 5, epoch: 'e', offset: 0 }, msg(15, 'e', 1), msg(115, 'f', 1)]);
    assert.deepEqual(r.issues.map((i) => [i.kind, i.epoch, i.offset]), [['lost', 'e', 2]]);
  });

  it('a flag for an epoch nothing was published in yet stands after every epoch seen before it', () => {
    const truth = truthOf([['e', 1, 10], ['e', 2, 20], ['g', 1, 150]]);
    const r = run(truth, [
      { kind: 'start', t: 5, epoch: 'e', offset: 0 },
      msg(15, 'e', 1),
      { kind: 'flag', t: 105, epoch: 'f', offset: 0, via: 'subscribed' },
      msg(155, 'g', 1),
    ]);
    assert.equal(r.byPhase.get('a')!.flaggedLost, 1, 'e:2 flagged');
    assert.deepEqual(r.issues, []);
  });

  it('the same publication twice is a duplicate; an older one after a newer one is out of order', () => {
    const truth = truthOf([['e', 1, 10], ['e', 2, 20], ['e', 3, 30]]);
    const r = run(truth, [{ kind: 'start', t: 5, epoch: 'e', offset: 0 }, msg(11, 'e', 1), msg(31, 'e', 3), msg(32, 'e', 2), msg(33, 'e', 3)]);
    assert.equal(r.byPhase.get('a')!.outOfOrder, 1);
    assert.equal(r.byPhase.get('a')!.duplicates, 1);
    // e:2 arrived (late): counted out of order, and lost as the cursor had passed it.
    assert.equal(r.byPhase.get('a')!.unflaggedLost, 1);
  });

  it('positions received but never acked are publications too (their ack was lost)', () => {
    const truth = truthOf([['e', 1, 10], ['e', 3, 30]]);
    truth.record('e', 2, 20, false);
    const r = run(truth, [{ kind: 'start', t: 5, epoch: 'e', offset: 0 }, msg(11, 'e', 1), msg(21, 'e', 2), msg(31, 'e', 3)]);
    assert.deepEqual(r.issues, []);
  });
});
