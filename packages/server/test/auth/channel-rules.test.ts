import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  anonymousIdentity, AuthConfigError, createChannelAuthorizer, identityFromInit,
  type AuthorizerConfig, type AuthzDecision, type PermissionRequest, type Identity,
} from '../../src/auth/index.js';

const anon = anonymousIdentity('guest');
const alice = identityFromInit({ userId: 'alice', roles: ['member'], permissions: ['admin:broadcast'], claims: { collective: 'alpha', teams: ['red', 'blue'], beta: true } }, 'jwt');
const admin = identityFromInit({ userId: 'root', roles: ['admin'] }, 'jwt');

const base: AuthorizerConfig = {
  channels: {
    default: 'allow',
    rules: {
      'chat:*': { subscribe: 'any', publish: 'authenticated' },
      'user:{userId}': { subscribe: 'owner' },
      'orders:{collective}': { subscribe: 'claim:collective' },
      'team:{teams}': { '*': 'claim:teams' },
      'beta:*': { subscribe: 'claim:beta' },
      'admin:*': { subscribe: 'role:admin' },
      'ops:*': { subscribe: 'permission:ops:read', history: 'none' },
      'chat:announcements': { subscribe: 'any', publish: 'role:admin' },
      'vip:{room}': { subscribe: ['role:admin', 'hook'] },
      'locked': { '*': 'deny' },
    },
  },
  messages: { admin_broadcast: 'permission:admin:broadcast', shutdown: 'none' },
  privateMessages: 'authenticated',
  channelsMode: 'grant',
  hookTimeoutMs: 100,
};

function allowed(d: AuthzDecision, why = '') { assert.equal(d.allowed, true, `${why} ${JSON.stringify(d)}`); }
function denied(d: AuthzDecision, code: string, why = '') {
  assert.equal(d.allowed, false, why);
  if (!d.allowed) assert.equal(d.code, code, `${why} ${d.message}`);
}

test('any / authenticated / none, with UNAUTHORIZED for anonymous and FORBIDDEN otherwise', async () => {
  const z = createChannelAuthorizer(base);
  allowed(await z.authorize(anon, 'subscribe', 'chat:lobby'));
  denied(await z.authorize(anon, 'publish', 'chat:lobby'), 'UNAUTHORIZED');
  allowed(await z.authorize(alice, 'publish', 'chat:lobby'));
  // Presence/history inherit subscribe.
  allowed(await z.authorize(anon, 'history', 'chat:lobby'));
  denied(await z.authorize(admin, 'subscribe', 'locked'), 'FORBIDDEN');
  denied(await z.authorize(anon, 'subscribe', 'locked'), 'FORBIDDEN', 'none is not fixable by logging in');
  // Exact name beats the pattern.
  denied(await z.authorize(alice, 'publish', 'chat:announcements'), 'FORBIDDEN');
  allowed(await z.authorize(admin, 'publish', 'chat:announcements'));
  // No rule: default allow.
  allowed(await z.authorize(anon, 'publish', 'random-room'));
  const strict = createChannelAuthorizer({ ...base, channels: { ...base.channels, default: 'deny' } });
  denied(await strict.authorize(alice, 'subscribe', 'random-room'), 'FORBIDDEN');
  const perAction = createChannelAuthorizer({ ...base, channels: { rules: {}, default: { subscribe: 'any', publish: 'authenticated' } } });
  allowed(await perAction.authorize(anon, 'subscribe', 'x'));
  denied(await perAction.authorize(anon, 'publish', 'x'), 'UNAUTHORIZED');
});

test('owner, claim (captured and presence), role, permission', async () => {
  const z = createChannelAuthorizer(base);
  allowed(await z.authorize(alice, 'subscribe', 'user:alice'));
  allowed(await z.authorize(alice, 'publish', 'user:alice'), 'publish inherits owner');
  denied(await z.authorize(alice, 'subscribe', 'user:bob'), 'FORBIDDEN');
  denied(await z.authorize(anon, 'subscribe', 'user:null'), 'UNAUTHORIZED');
  allowed(await z.authorize(alice, 'subscribe', 'user:bob:x'), '{userId} does not span ":": no rule matches, default allow');
  allowed(await z.authorize(alice, 'subscribe', 'orders:alpha'));
  denied(await z.authorize(alice, 'subscribe', 'orders:beta'), 'FORBIDDEN');
  allowed(await z.authorize(alice, 'publish', 'team:red'));
  denied(await z.authorize(alice, 'publish', 'team:green'), 'FORBIDDEN');
  allowed(await z.authorize(alice, 'subscribe', 'beta:x'));
  denied(await z.authorize(admin, 'subscribe', 'beta:x'), 'FORBIDDEN');
  allowed(await z.authorize(admin, 'subscribe', 'admin:metrics'));
  denied(await z.authorize(alice, 'subscribe', 'admin:metrics'), 'FORBIDDEN');
  const ops = identityFromInit({ userId: 'o', permissions: ['ops:read'] }, 'jwt');
  allowed(await z.authorize(ops, 'subscribe', 'ops:deploys'));
  allowed(await z.authorize(ops, 'presence', 'ops:deploys'));
  denied(await z.authorize(ops, 'history', 'ops:deploys'), 'FORBIDDEN');
  denied(await z.authorize(alice, 'subscribe', 'ops:deploys'), 'FORBIDDEN');
});

test('channel allowlist claim: grant mode and restrict mode', async () => {
  const carol = identityFromInit({ userId: 'carol', channels: ['admin:reports', 'news:*'] }, 'jwt');
  const grant = createChannelAuthorizer(base);
  allowed(await grant.authorize(carol, 'subscribe', 'admin:reports'), 'granted despite role rule');
  allowed(await grant.authorize(carol, 'publish', 'news:today'));
  denied(await grant.authorize(carol, 'subscribe', 'admin:other'), 'FORBIDDEN');
  allowed(await grant.authorize(carol, 'subscribe', 'random'), 'unlisted -> rules/default');
  const restrict = createChannelAuthorizer({ ...base, channelsMode: 'restrict' });
  denied(await restrict.authorize(carol, 'subscribe', 'random'), 'FORBIDDEN');
  allowed(await restrict.authorize(carol, 'subscribe', 'news:today'));
  denied(await restrict.authorize(carol, 'subscribe', 'admin:reports'), 'FORBIDDEN', 'listed, but the rule still applies');
  allowed(await restrict.authorize(alice, 'subscribe', 'random'), 'no claim: unaffected');
});

test('hook terms: asked only when needed, with the request; failures and timeouts deny', async () => {
  const asked: PermissionRequest[] = [];
  const z = createChannelAuthorizer({ ...base, privateMessages: 'hook', messages: { ...base.messages, moderate: ['role:admin', 'hook'] } }, {
    async checkPermission(id: Identity, req: PermissionRequest) {
      asked.push(req);
      if (req.kind === 'channel' && req.params['room'] === 'boom') throw new Error('down');
      if (req.kind === 'channel' && req.params['room'] === 'slow') return new Promise<boolean>(() => {});
      if (req.kind === 'private_message') return req.recipientId !== 'blocked';
      return id.userId === 'alice';
    },
  });
  allowed(await z.authorize(admin, 'subscribe', 'vip:lounge'));
  assert.equal(asked.length, 0, 'role term sufficed, hook not asked');
  allowed(await z.authorize(alice, 'subscribe', 'vip:lounge'));
  assert.deepEqual({ ...asked[0], params: { ...(asked[0] as { params: object }).params } }, { kind: 'channel', action: 'subscribe', channel: 'vip:lounge', params: { room: 'lounge' } });
  denied(await z.authorize(identityFromInit({ userId: 'bob' }, 'jwt'), 'subscribe', 'vip:lounge'), 'FORBIDDEN');
  denied(await z.authorize(alice, 'subscribe', 'vip:boom'), 'AUTH_UNAVAILABLE');
  denied(await z.authorize(alice, 'subscribe', 'vip:slow'), 'AUTH_UNAVAILABLE');
  allowed(await z.authorizePrivateMessage(alice, 'bob'));
  denied(await z.authorizePrivateMessage(alice, 'blocked'), 'FORBIDDEN');
  allowed(await z.authorizeMessage(alice, 'moderate'));
  // Hook required but not configured: denied.
  const none = createChannelAuthorizer(base);
  denied(await none.authorize(alice, 'subscribe', 'vip:lounge'), 'FORBIDDEN');
  // check() is synchronous when no hook is involved.
  const sync = none.check(alice, 'publish', 'chat:lobby');
  assert.ok(!(sync instanceof Promise) && sync.allowed);
});

test('permission-guarded message types and private-message policy', async () => {
  const z = createChannelAuthorizer(base);
  allowed(await z.authorizeMessage(alice, 'admin_broadcast'));
  denied(await z.authorizeMessage(admin, 'admin_broadcast'), 'FORBIDDEN');
  denied(await z.authorizeMessage(anon, 'admin_broadcast'), 'UNAUTHORIZED');
  denied(await z.authorizeMessage(admin, 'shutdown'), 'FORBIDDEN');
  allowed(await z.authorizeMessage(anon, 'message'), 'unlisted types allowed');
  allowed(await z.authorizePrivateMessage(alice, 'bob'));
  denied(await z.authorizePrivateMessage(anon, 'bob'), 'UNAUTHORIZED');
  const anyone = createChannelAuthorizer({ ...base, privateMessages: 'any' });
  allowed(await anyone.authorizePrivateMessage(anon, 'bob'));
});

test('invalid rules are refused at start-up with the offending path', () => {
  const bad: Array<[AuthorizerConfig['channels'], RegExp]> = [
    [{ default: 'allow', rules: { 'chat:*': { subscribe: 'everyone' } } }, /unknown requirement/],
    [{ default: 'allow', rules: { 'chat:*': { subscribe: 'owner' } } }, /\{userId\}/],
    [{ default: 'allow', rules: { 'chat:*': { read: 'any' } as never } }, /unknown action/],
    [{ default: 'allow', rules: { 'x:{a}:{a}': { subscribe: 'any' } } }, /twice/],
    [{ default: 'allow', rules: { 'x:{a': { subscribe: 'any' } } }, /placeholder/],
    [{ default: 'owner', rules: {} }, /\{userId\}/],
    [{ default: 'allow', rules: { 'x': 'any' as never } }, /object/],
  ];
  for (const [channels, re] of bad) {
    assert.throws(() => createChannelAuthorizer({ ...base, channels }), (e: unknown) => e instanceof AuthConfigError && re.test(e.message), JSON.stringify(channels));
  }
  assert.throws(() => createChannelAuthorizer({ ...base, messages: { x: 'owner' } }), AuthConfigError);
});

test('decisionForAll: the shared decision when the rule ignores the identity, null when it does not; agrees with check', async () => {
  const z = createChannelAuthorizer(base);
  const cases: Array<[string, string, boolean | null]> = [
    ['subscribe', 'chat:lobby', true], ['publish', 'chat:lobby', null], ['subscribe', 'locked', false],
    ['subscribe', 'random-room', true], ['subscribe', 'admin:x', null], ['subscribe', 'user:bob', null],
    ['subscribe', 'vip:1', null], ['history', 'ops:x', false], ['subscribe', 'ops:x', null],
  ];
  for (const [action, channel, want] of cases) {
    assert.equal(z.decisionForAll(action as 'subscribe', channel), want, `${action} ${channel}`);
    // Wherever it answers, every identity without a channel list gets that answer from check().
    if (want !== null) for (const id of [anon, alice, admin]) assert.equal((await z.authorize(id, action as 'subscribe', channel)).allowed, want, `${action} ${channel} ${id.userId}`);
  }
});
