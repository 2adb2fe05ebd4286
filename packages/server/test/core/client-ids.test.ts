/**
 * Client id claims in the core (issue 11), on the fakes: the claim is decided before a session exists, and
 * every way a claimed connection does not become (or stops being) the holder gives the claim back. No sleeps.
 */
import { afterEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { CloseCode } from '@switchboard/protocol';
import type { ControlMessage } from '../../src/core/ports/broker.js';
import type { SessionIdentity, SessionRejection } from '../../src/core/ports/session-port.js';
import type { Client } from '../../src/core/client/client.js';
import { ControllablePresence, FakeSink, flush, Harness, NO_RATE_LIMITS } from './fakes.js';

const ALICE: SessionIdentity = { userId: 'alice', username: 'alice', anonymous: false };
const MALLORY: SessionIdentity = { userId: 'mallory', username: 'mallory', anonymous: false };

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

function openWithId(harness: Harness, identity: SessionIdentity, clientId: string, sink = new FakeSink()): Promise<Client | SessionRejection> {
  return harness.node.openClientSession({ sink, identity, clientId, remoteAddress: '10.0.0.1' });
}

function rejected(r: Client | SessionRejection): SessionRejection {
  assert.ok('rejected' in r, 'expected a rejection');
  return r;
}

function opened(r: Client | SessionRejection): Client {
  assert.ok(!('rejected' in r), `expected a session, got ${'rejected' in r ? `${r.closeCode} ${r.reason}` : ''}`);
  return r;
}

describe('client id claims in the core', () => {
  it('no session (no connect frame, no stats) until the claim is decided', async () => {
    const presence = new ControllablePresence();
    h = await Harness.start({ options: NO_RATE_LIMITS, presence });
    presence.gate.hold('claimClientId');
    const sink = new FakeSink();
    const pending = openWithId(h, ALICE, 'dev-1', sink);
    await flush();
    assert.equal(sink.frames.length, 0, 'nothing sent while claiming');
    assert.equal(h.node.stats().connections, 0);
    presence.gate.releaseAll('claimClientId');
    const c = opened(await pending);
    assert.equal(sink.frames[0]?.type, 'connect');
    assert.equal(sink.frames[0]?.data.client_id, 'dev-1');
    assert.equal(c.clientId, 'dev-1');
  });

  it('another owner is refused with 4013 and the holder gets nothing', async () => {
    h = await Harness.start({ options: NO_RATE_LIMITS });
    const holderSink = new FakeSink();
    opened(await openWithId(h, ALICE, 'dev-2', holderSink));
    const mark = holderSink.frames.length;
    const r = rejected(await openWithId(h, MALLORY, 'dev-2'));
    assert.equal(r.closeCode, CloseCode.CLIENT_ID_TAKEN);
    assert.deepEqual(holderSink.closes, []);
    assert.deepEqual(holderSink.frames.slice(mark), []);
    assert.equal(h.node.stats().connections, 1);
  });

  it('engine unreachable: refused with 4092 (fail closed), nothing registered', async () => {
    const presence = new ControllablePresence();
    h = await Harness.start({ options: NO_RATE_LIMITS, presence });
    presence.gate.failWith('claimClientId', () => Object.assign(new Error('redis down'), { code: 'BROKER_UNAVAILABLE' }));
    const r = rejected(await openWithId(h, ALICE, 'dev-3'));
    assert.equal(r.closeCode, CloseCode.SERVER_ERROR);
    assert.equal(h.node.stats().connections, 0);
    presence.gate.failWith('claimClientId', null);
    opened(await openWithId(h, MALLORY, 'dev-3')); // nothing was claimed for alice
  });

  it('the node started draining while the claim was in flight: refused, and the claim given back', async () => {
    const presence = new ControllablePresence();
    h = await Harness.start({ options: NO_RATE_LIMITS, presence });
    presence.gate.hold('claimClientId');
    const pending = openWithId(h, ALICE, 'dev-4');
    await flush();
    h.node.setDraining(true);
    presence.gate.releaseAll('claimClientId');
    assert.equal(rejected(await pending).closeCode, CloseCode.GOING_AWAY);
    await flush();
    assert.equal((await presence.inner.claimClientId('dev-4', 'mallory', 'probe')).ok, true, 'the id is free');
  });

  it('the transport\'s connection ended while claiming: closeSession on the new handle releases the claim', async () => {
    h = await Harness.start({ options: NO_RATE_LIMITS });
    const c = opened(await openWithId(h, ALICE, 'dev-5'));
    h.node.closeSession(c, 1006);
    await flush();
    opened(await openWithId(h, MALLORY, 'dev-5'));
  });

  it('a claim overtaken by a newer claim announced from another node opens nothing (4011) and is given back', async () => {
    const presence = new ControllablePresence();
    h = await Harness.start({ options: NO_RATE_LIMITS, presence });
    presence.gate.hold('claimClientId');
    const pending = openWithId(h, ALICE, 'dev-6');
    await flush();
    // Another node's connection of alice claimed the id after ours and announced it before our claim resolved.
    h.broker.handler!.onControl({ kind: 'supersede', clientId: 'dev-6', keepConnectionId: 'elsewhere', generation: Number.MAX_SAFE_INTEGER, originNode: 'node-other' });
    presence.gate.releaseAll('claimClientId');
    assert.equal(rejected(await pending).closeCode, CloseCode.SESSION_SUPERSEDED);
    assert.equal(h.node.stats().connections, 0);
    await flush();
    assert.equal((await presence.inner.claimClientId('dev-6', 'mallory', 'probe')).ok, true, 'our claim was given back');
  });

  it('announcements carry the claim\'s generation; an older one from another node leaves the holder alone, a newer one closes it', async () => {
    h = await Harness.start({ options: NO_RATE_LIMITS });
    const sent: ControlMessage[] = [];
    const publish = h.broker.publishControl.bind(h.broker);
    h.broker.publishControl = (m) => { sent.push(m); return publish(m); };
    const sink = new FakeSink();
    const c = opened(await openWithId(h, ALICE, 'dev-7', sink));
    const mine = sent.find((m) => m.kind === 'supersede' && m.clientId === 'dev-7');
    assert.ok(mine?.kind === 'supersede' && mine.keepConnectionId === c.id);
    const generation = mine.generation!;
    assert.ok(generation > 0, 'the announcement carries the generation');
    h.broker.handler!.onControl({ kind: 'supersede', clientId: 'dev-7', keepConnectionId: 'elsewhere', generation: generation - 1, originNode: 'node-other' });
    assert.equal(sink.closes.length, 0, 'an older claim does not close the holder');
    h.broker.handler!.onControl({ kind: 'supersede', clientId: 'dev-7', keepConnectionId: 'elsewhere', generation: generation + 1, originNode: 'node-other' });
    assert.deepEqual(sink.closes.map((x) => x.code), [CloseCode.SESSION_SUPERSEDED], 'a newer claim does');
    assert.equal(c.clientId, 'dev-7');
  });

  it('openSession (the synchronous path) refuses a client id instead of skipping the claim', async () => {
    h = await Harness.start({ options: NO_RATE_LIMITS });
    const r = h.node.openSession({ sink: new FakeSink(), identity: ALICE, clientId: 'dev-8', remoteAddress: '10.0.0.1' });
    assert.ok('rejected' in r);
    assert.equal(r.closeCode, CloseCode.INTERNAL_ERROR);
  });
});
