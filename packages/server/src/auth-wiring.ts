import type { HubHooks } from './core/ports/hooks.js';
import type { ConnectionInfo } from './core/ports/hooks.js';
import { createAuth, type Auth } from './auth/authenticator.js';
import type { AuthConfigInput } from './auth/config.js';
import { ed25519Handshake } from './auth/ed25519-handshake.js';
import { toHandshakeAuthenticator, toOriginCheck, toSessionIdentity } from './auth/handshake-adapter.js';
import type { AuthHooks } from './auth/hooks.js';
import { anonymousIdentity, type Identity } from './auth/identity.js';
import type { ChallengeHandshake, HandshakeAuthenticator, OriginCheck } from './core/ports/handshake.js';
import { anonymousAuthenticator } from './auth/anonymous.js';
import type { AuthSection } from './config.js';

export interface AuthWiring {
  auth: Auth;
  authenticate: HandshakeAuthenticator;
  checkOrigin: OriginCheck;
  /** The Ed25519 challenge-response as a handshake strategy (`{http.ed25519Path}/{collective_id}`). */
  challenge: ChallengeHandshake;
  /** Hub hooks backed by the channel rules, message-type rules, private-message policy and token refresh. */
  nodeHooks: HubHooks;
  /** Whether client-chosen user ids are honoured (no credential method configured). */
  trustClientIds: boolean;
  /**
   * Which credentials the built authenticator can verify: bearer tokens (auth.jwt) and session cookies (the
   * validateSession hook, or a JWT per auth.sources.cookieVerify). An endpoint that accepts only credentials
   * nobody can verify is a configuration error (config.ts, resolveEndpoints).
   */
  verifies: { tokens: boolean; cookies: boolean };
}

/** The auth Identity of a session (anonymous when the session was admitted without one). */
export function identityOf(s: ConnectionInfo): Identity {
  return (s.identity.auth as Identity | undefined) ?? anonymousIdentity(s.identity.username);
}

/**
 * Composition-root glue between the auth layer and the node/transports. Throws AuthConfigError on a bad
 * `auth` section, so a misconfigured server fails at start-up.
 */
export function wireAuth(section: AuthSection, hooks: AuthHooks = {}): AuthWiring {
  const { trustClientIds, ...input } = section;
  // SWITCHBOARD_JWT_SECRET alone means HS256.
  if (input.jwt && input.jwt.secret && (input.jwt.algorithms === undefined || input.jwt.algorithms.length === 0)) {
    input.jwt = { ...input.jwt, algorithms: ['HS256'] };
  }
  const auth = createAuth(input as AuthConfigInput, hooks);
  const credentialMethods = auth.config.jwt !== null || hooks.validateSession !== undefined;
  const trust = trustClientIds && !credentialMethods;
  const nodeHooks: HubHooks = {
    authorizeChannel: (s, action, channel) => auth.channels.check(identityOf(s), action, channel),
    channelDecisionForAll: (action, channel) => auth.channels.decisionForAll(action, channel),
    // Only a token's channel list (grant or restrict) makes a connection's decision differ from the shared one.
    hasOwnChannelDecisions: (s) => (s.identity.auth as Identity | undefined)?.channels != null,
    authorizePrivate: (s, recipient) => auth.channels.authorizePrivateMessage(identityOf(s), recipient),
    authorizeType: (s, type) => auth.channels.authorizeMessage(identityOf(s), type),
    refreshToken: async (s, token) => {
      const r = await auth.refresh(identityOf(s), token);
      if (!r.ok) return { ok: false, code: r.failure.code, message: r.failure.message };
      s.identity = toSessionIdentity(r.identity);
      return { ok: true, expiresAt: r.expiresAt };
    },
  };
  const tokens = !trust && auth.config.jwt !== null;
  const verify = auth.config.sources.cookieVerify;
  const cookies = !trust && (verify === 'hook' ? hooks.validateSession !== undefined : verify === 'jwt' ? auth.config.jwt !== null : hooks.validateSession !== undefined || auth.config.jwt !== null);
  return {
    verifies: { tokens, cookies },
    auth,
    authenticate: trust ? anonymousAuthenticator(true) : toHandshakeAuthenticator(auth),
    checkOrigin: toOriginCheck(auth),
    challenge: ed25519Handshake(auth.ed25519),
    nodeHooks,
    trustClientIds: trust,
  };
}
