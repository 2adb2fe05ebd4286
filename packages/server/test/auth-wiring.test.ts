import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, sign } from 'node:crypto';
import { SignJWT } from 'jose';
import { startServer, TestClient } from './helpers.js';

const SECRET = 'test-secret-that-is-at-least-32-bytes-long!!';
const key = new TextEncoder().encode(SECRET);

function token(sub: string, claims: Record<string, unknown> = {}, exp: string | number = '1h'): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setSubject(sub).setIssuedAt().setExpirationTime(exp).sign(key);
}

const authConfig = {
  auth: {
    jwt: { algorithms: ['HS256' as const], secret: SECRET },
    channels: {
      default: 'allow' as const,
      rules: {
        'user:{userId}': { subscribe: 'owner' },
        'admin:*': { '*': 'role:admin' },
        'chat:*': { subscribe: 'any', publish: 'authenticated' },
      },
    },
  },
};

describe('authentication and authorization configured from config.auth', () => {
  it('seed 000 test_authentication_required: /ws/authenticated refuses no token, accepts a valid one', async () => {
    const srv = await startServer(authConfig);
    try {
      const anon = await TestClient.connect(`${srv.ws}/ws/authenticated`, {}, false);
      assert.equal((await anon.closed).code, 4001);
      const t = await token('u-42', { username: 'Ada', roles: ['admin'] });
      const c = await TestClient.connect(`${srv.ws}/ws/authenticated?token=${t}`);
      const connect = c.frames.find((f) => f.type === 'connect') ?? (await c.next('connect').catch(() => null));
      void connect;
      const me = await c.request('online_users');
      assert.ok(me.data.users.some((u: { user_id: string; username: string }) => u.user_id === 'u-42' && u.username === 'Ada'));
      c.close();
    } finally {
      await srv.close();
    }
  });

  it('maps token failures to 4002 (bad signature) and 4003 (expired); ignores ?user_id= once JWT is configured', async () => {
    const srv = await startServer(authConfig);
    try {
      const forged = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('x').setExpirationTime('1h').sign(new TextEncoder().encode('another-secret-another-secret-another!'));
      const bad = await TestClient.connect(`${srv.ws}/ws?token=${forged}`, {}, false);
      assert.equal((await bad.closed).code, 4002);
      const old = await token('u1', {}, Math.floor(Date.now() / 1000) - 60);
      const expired = await TestClient.connect(`${srv.ws}/ws?token=${old}`, {}, false);
      assert.equal((await expired.closed).code, 4003);
      const spoof = await TestClient.connect(`${srv.ws}/ws?user_id=victim`);
      assert.equal((await spoof.request('online_users')).data.users.length, 0, 'anonymous client cannot claim a user id');
      spoof.close();
    } finally {
      await srv.close();
    }
  });

  it('applies channel rules: owner channels, role-guarded namespaces, publish needs authentication', async () => {
    const srv = await startServer(authConfig);
    try {
      const alice = await TestClient.connect(`${srv.ws}/ws?token=${await token('alice')}`);
      assert.equal((await alice.join('user:alice')).type, 'subscribed');
      const other = await alice.join('user:bob');
      assert.equal(other.type, 'error');
      assert.equal(other.data.code, 'FORBIDDEN');
      assert.equal((await alice.join('admin:ops')).data.code, 'FORBIDDEN');
      const admin = await TestClient.connect(`${srv.ws}/ws?token=${await token('root', { roles: ['admin'] })}`);
      assert.equal((await admin.join('admin:ops')).type, 'subscribed');
      const anon = await TestClient.connect(`${srv.ws}/ws`);
      assert.equal((await anon.join('chat:lobby')).type, 'subscribed');
      const denied = await anon.request('message', { channel: 'chat:lobby', text: 'hi' });
      assert.equal(denied.data.code, 'UNAUTHORIZED');
      assert.equal(anon.closeInfo, null, 'a denied request keeps the connection');
      // Typing is writing to the channel: checked as a publish, refused like one, and not delivered.
      const deniedTyping = await anon.request('typing', { channel: 'chat:lobby', is_typing: true });
      assert.deepEqual([deniedTyping.type, deniedTyping.data.code], ['error', 'UNAUTHORIZED']);
      await alice.join('chat:lobby');
      await alice.expectNoFrame((f) => f.type === 'typing', 'the refused typing event reached nobody', { ping: true });
      assert.equal((await alice.request('typing', { channel: 'chat:lobby', is_typing: true })).type, 'ok');
      await anon.next((f) => f.type === 'typing' && f.data.user_id === 'alice');
      assert.equal((await alice.request('message', { channel: 'chat:lobby', text: 'hi' })).type, 'ok');
      for (const c of [alice, admin, anon]) c.close();
    } finally {
      await srv.close();
    }
  });

  it('admin_broadcast needs the admin:broadcast permission', async () => {
    const srv = await startServer(authConfig);
    try {
      const listener = await TestClient.connect(`${srv.ws}/ws`);
      const plain = await TestClient.connect(`${srv.ws}/ws?token=${await token('p')}`);
      assert.equal((await plain.request('admin_broadcast', { notice: 'no' })).data.code, 'FORBIDDEN');
      const boss = await TestClient.connect(`${srv.ws}/ws?token=${await token('boss', { permissions: ['admin:broadcast'] })}`);
      assert.equal((await boss.request('admin_broadcast', { notice: 'yes' })).type, 'ok');
      const b = await listener.next('broadcast');
      assert.equal(b.data.notice, 'yes');
      assert.equal(b.sender_id, 'boss');
      for (const c of [listener, plain, boss]) c.close();
    } finally {
      await srv.close();
    }
  });

  it('closes with 4003 when the token expires, unless refreshed in time', async () => {
    const srv = await startServer({ ...authConfig, heartbeat: { pingIntervalMs: 100, pongTimeoutMs: 1000, idleTimeoutMs: 0 } });
    try {
      const soon = Math.floor(Date.now() / 1000) + 2;
      const lazy = await TestClient.connect(`${srv.ws}/ws?token=${await token('lazy', {}, soon)}`);
      const keen = await TestClient.connect(`${srv.ws}/ws?token=${await token('keen', {}, soon)}`);
      const wrong = await keen.request('refresh', { token: await token('someone-else') });
      assert.equal(wrong.type, 'error');
      assert.equal(wrong.data.code, 'INVALID_TOKEN');
      const ok = await keen.request('refresh', { token: await token('keen', {}, '1h') });
      assert.equal(ok.type, 'ok');
      assert.ok((ok.data.expires_at as number) > Date.now() + 30 * 60_000);
      assert.equal((await lazy.closed).code, 4003);
      // The expiry check that closed `lazy` looked at `keen` too (same old expiry): a close of `keen` would
      // come before the barrier's reply, which rejects on a close.
      await keen.barrier();
      assert.equal(keen.closeInfo, null);
      keen.close();
    } finally {
      await srv.close();
    }
  });
});

describe('Ed25519 challenge-response (seed 001) configured from config.auth.ed25519', () => {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const raw = (publicKey.export({ format: 'jwk' }) as { x: string }).x;
  const wrong = generateKeyPairSync('ed25519').privateKey;

  async function challenged(url: string) {
    const c = await TestClient.connect(url, {}, false);
    const ch = await c.next('auth_challenge');
    return { c, ch };
  }

  it('authenticates a collective that signs the challenge; wrong key, replay, timeout and unknown collective are refused', async () => {
    const srv = await startServer({ auth: { ed25519: { keys: { 'team-7': raw }, challengeTtlMs: 400 } } });
    try {
      const url = `${srv.ws}/ws/collective/team-7`;
      const { c, ch } = await challenged(url);
      assert.match(ch.data.challenge, /^switchboard-ed25519-auth-v1\|team-7\|[0-9a-f]{64}\|/);
      const sig = sign(null, Buffer.from(ch.data.challenge), privateKey).toString('base64');
      c.send({ type: 'auth_response', data: { signature: sig } });
      const connect = await c.next('connect');
      assert.equal(connect.data.user_id, 'team-7');
      assert.equal(connect.data.anonymous, false);

      const replay = await challenged(url);
      replay.c.send({ type: 'auth_response', data: { signature: sig, nonce: ch.data.nonce } });
      assert.equal((await replay.c.closed).code, 4001);

      const bad = await challenged(url);
      bad.c.send({ type: 'auth_response', data: { signature: sign(null, Buffer.from(bad.ch.data.challenge), wrong).toString('base64') } });
      assert.equal((await bad.c.closed).code, 4001);

      const silent = await challenged(url);
      assert.equal((await silent.c.closed).code, 4004);

      const stranger = await challenged(`${srv.ws}/ws/collective/nobody`);
      stranger.c.send({ type: 'auth_response', data: { signature: sign(null, Buffer.from(stranger.ch.data.challenge), privateKey).toString('base64') } });
      assert.equal((await stranger.c.closed).code, 4001);
      c.close();
    } finally {
      await srv.close();
    }
  });

  it('refuses to start with a small-order public key', async () => {
    const smallOrder = Buffer.alloc(32).toString('base64url'); // y=0: order 4
    await assert.rejects(startServer({ auth: { ed25519: { keys: { weak: smallOrder } } } }), /SMALL_ORDER|small-order|small order/i);
  });
});
