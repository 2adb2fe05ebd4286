/**
 * Issue 11: a client id (`/ws/{client_id}`) belongs to the user that holds it. Only the same user (or, for an
 * anonymous holder, another anonymous connection) may supersede the holder; anybody else is refused with 4013
 * CLIENT_ID_TAKEN and the holder is left alone. One node, memory engine, JWT users plus anonymous access.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { SignJWT } from 'jose';
import { CloseCode, isTerminalCloseCode } from '@switchboard/protocol';
import { startServer, TestClient, within, type WatchedServer } from './helpers.js';

const SECRET = 'test-secret-that-is-at-least-32-bytes-long!!';
const key = new TextEncoder().encode(SECRET);
/** CloseCode.CLIENT_ID_TAKEN (read through the registry so this file also runs against builds without it). */
const CLIENT_ID_TAKEN = 4013;
const token = (sub: string): Promise<string> =>
  new SignJWT({ username: sub }).setProtectedHeader({ alg: 'HS256' }).setSubject(sub).setIssuedAt().setExpirationTime('1h').sign(key);

/** The close of `c`, failing the test (instead of hanging it) if the server keeps it open. */
const closedWithin = (c: TestClient): Promise<{ code: number; reason: string }> => within(c.closed, 3000, 'the close');

describe('client id ownership (issue 11)', () => {
  let srv: WatchedServer;
  const open: TestClient[] = [];
  let n = 0;
  /** A fresh client id per test: tests do not see each other's claims. */
  const freshId = (): string => `device-${++n}-${Date.now().toString(36)}`;
  const connect = async (clientId: string, user: string | null): Promise<TestClient> => {
    const query = user === null ? '' : `?token=${await token(user)}`;
    const c = await TestClient.connect(`${srv.ws}/ws/${clientId}${query}`);
    open.push(c);
    return c;
  };
  /** The holder is untouched: still open, still answering, still in its channel, nothing closed it. */
  const assertUntouched = async (holder: TestClient, channel: string): Promise<void> => {
    await holder.barrier();
    assert.equal(holder.closeInfo, null, 'the holder stays connected');
    const members = await srv.sb.node.presence.count(channel);
    assert.equal(members, 1, 'the holder is still in its channel');
    await holder.expectNoFrame((f) => f.type === 'presence' || f.type === 'shutdown', 'the holder is told nothing');
  };

  before(async () => {
    srv = await startServer({ auth: { jwt: { algorithms: ['HS256'], secret: SECRET } } });
  });
  after(async () => {
    for (const c of open) c.close();
    await srv.close();
  });

  it('4013 CLIENT_ID_TAKEN is in the registry: final, in the session range', () => {
    assert.equal((CloseCode as Record<string, number>).CLIENT_ID_TAKEN, CLIENT_ID_TAKEN);
    assert.equal(isTerminalCloseCode(CLIENT_ID_TAKEN), true);
  });

  it('another user cannot take a client id: refused with 4013, the holder stays', async () => {
    const id = freshId();
    const alice = await connect(id, 'alice');
    await alice.join(`room-${id}`);
    const mallory = await connect(id, 'mallory');
    const refused = await closedWithin(mallory);
    assert.equal(refused.code, CLIENT_ID_TAKEN, `refused with 4013, got ${refused.code} ${refused.reason}`);
    assert.equal(mallory.frames.find((f) => f.type === 'connect'), undefined, 'the refused connection never got a session');
    await assertUntouched(alice, `room-${id}`);
    assert.equal((await alice.request('ping')).type, 'pong');
  });

  it('an anonymous connection cannot take over an identified holder', async () => {
    const id = freshId();
    const alice = await connect(id, 'alice');
    await alice.join(`room-${id}`);
    const anon = await connect(id, null);
    assert.equal((await closedWithin(anon)).code, CLIENT_ID_TAKEN);
    await assertUntouched(alice, `room-${id}`);
  });

  it('an identified user cannot take over an anonymous holder either (only the holder\'s own kind supersedes)', async () => {
    const id = freshId();
    const anon = await connect(id, null);
    await anon.join(`room-${id}`);
    const bob = await connect(id, 'bob');
    assert.equal((await closedWithin(bob)).code, CLIENT_ID_TAKEN);
    await assertUntouched(anon, `room-${id}`);
  });

  it('the same user supersedes its own connection: 4011 for the old one, as before', async () => {
    const id = freshId();
    const first = await connect(id, 'alice');
    await first.join(`room-${id}`);
    const second = await connect(id, 'alice');
    assert.equal((await closedWithin(first)).code, CloseCode.SESSION_SUPERSEDED);
    await second.barrier();
    assert.equal(second.closeInfo, null, 'the newer connection stays');
    // And the newer one now holds the id for alice: another user is still refused.
    const mallory = await connect(id, 'mallory');
    assert.equal((await closedWithin(mallory)).code, CLIENT_ID_TAKEN);
    await second.barrier();
    assert.equal(second.closeInfo, null);
  });

  it('anonymous connections supersede anonymous holders (seed 001 reconnect with the same id)', async () => {
    const id = freshId();
    const first = await connect(id, null);
    const second = await connect(id, null);
    assert.equal((await closedWithin(first)).code, CloseCode.SESSION_SUPERSEDED);
    await second.barrier();
    assert.equal(second.closeInfo, null);
  });

  it('the claim is released when the holder closes: the id is free for anybody', async () => {
    const id = freshId();
    const alice = await connect(id, 'alice');
    const aliceId = alice.connectionId;
    alice.close();
    await srv.sessions.closeOf(aliceId);
    const bob = await connect(id, 'bob');
    await bob.barrier();
    assert.equal(bob.closeInfo, null, 'bob holds the id alice released');
    // A refused connection releases nothing: bob still holds it.
    const carol = await connect(id, 'carol');
    assert.equal((await closedWithin(carol)).code, CLIENT_ID_TAKEN);
    const again = await connect(id, 'carol');
    assert.equal((await closedWithin(again)).code, CLIENT_ID_TAKEN);
    await bob.barrier();
    assert.equal(bob.closeInfo, null);
  });

  it('a superseded connection that closes does not release the newer holder\'s claim', async () => {
    const id = freshId();
    const first = await connect(id, 'alice');
    const firstId = first.connectionId;
    const second = await connect(id, 'alice');
    assert.equal((await closedWithin(first)).code, CloseCode.SESSION_SUPERSEDED);
    await srv.sessions.closeOf(firstId);
    const mallory = await connect(id, 'mallory');
    assert.equal((await closedWithin(mallory)).code, CLIENT_ID_TAKEN, 'alice\'s newer connection still owns the id');
    await second.barrier();
    assert.equal(second.closeInfo, null);
  });

  it('frames sent right after the upgrade are not lost while the claim is decided', async () => {
    const id = freshId();
    const c = await TestClient.connect(`${srv.ws}/ws/${id}?token=${await token('alice')}`, {}, false);
    open.push(c);
    c.send({ type: 'join_channel', data: { channel: `early-${id}` }, id: 'early' });
    const sub = await c.next((f) => f.id === 'early');
    assert.equal(sub.type, 'subscribed');
    assert.ok(c.frames.length === 0 || c.frames.every((f) => f.type !== 'error'));
  });
});
