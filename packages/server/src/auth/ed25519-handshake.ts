/**
 * The Ed25519 challenge-response (seed 001) as a `ChallengeHandshake` strategy (core/ports/handshake.ts):
 * the `auth_challenge` frame out, the `auth_response` frame in, the verdict from `Ed25519Authenticator`.
 * The transport keeps the socket and the deadline and knows nothing of Ed25519 (docs/security.md).
 */
import type { AuthOutcome, ChallengeHandshake } from '../core/ports/handshake.js';
import type { Ed25519Authenticator } from './ed25519.js';
import { unauthorized, type AuthFailure } from './failures.js';
import { toSessionIdentity } from './handshake-adapter.js';

/**
 * One pending challenge: the collective the connection claims and the nonce issued to it. The transport keeps
 * one per connection and hands it back with that connection's answer, so the verdict only ever looks at the
 * nonce this connection was given.
 */
export interface Ed25519Pending {
  readonly collectiveId: string;
  readonly nonce: string;
}

function refused(f: AuthFailure): AuthOutcome {
  return { ok: false, closeCode: f.closeCode, httpStatus: f.httpStatus, code: f.code, message: f.message };
}

/** Challenge-response over `ed` for the collective of the endpoint (`{ed25519Path}/{collective_id}`). */
export function ed25519Handshake(ed: Ed25519Authenticator): ChallengeHandshake<Ed25519Pending> {
  return {
    begin(endpoint) {
      const collectiveId = endpoint.collectiveId ?? '';
      const issued = ed.issueChallenge(collectiveId);
      if (!issued.ok) return { ok: false, closeCode: issued.failure.closeCode, message: issued.failure.message };
      const c = issued.challenge;
      const timeout = ed.timeoutFailure();
      return {
        ok: true,
        firstFrame: JSON.stringify({
          type: 'auth_challenge',
          data: { collective_id: collectiveId, nonce: c.nonce, challenge: c.challenge, expires_at: new Date(c.expiresAt).toISOString(), expires_in: Math.round((c.expiresAt - Date.now()) / 1000) },
          timestamp: new Date().toISOString(),
        }),
        expiresAt: c.expiresAt,
        timeout: { closeCode: timeout.closeCode, message: timeout.message },
        handle: { collectiveId, nonce: c.nonce },
      };
    },

    async finish(pending, message) {
      let msg: { type?: unknown; data?: { signature?: unknown; nonce?: unknown } } | null = null;
      try {
        msg = message === null ? null : JSON.parse(message);
      } catch {
        msg = null;
      }
      if (msg === null || msg.type !== 'auth_response' || typeof msg.data?.signature !== 'string') {
        ed.cancel(pending.nonce);
        return refused(unauthorized('expected auth_response with a signature'));
      }
      // A challenge is bound to the connection it was issued on: the answer may repeat its nonce, but a nonce
      // issued to another connection (still pending there, or used) is refused without touching that one.
      if (msg.data.nonce !== undefined && msg.data.nonce !== pending.nonce) {
        ed.cancel(pending.nonce);
        return refused(unauthorized('nonce was not issued to this connection'));
      }
      const r = await ed.verifyResponse({ collectiveId: pending.collectiveId, nonce: pending.nonce, signature: msg.data.signature });
      return r.ok ? { ok: true, identity: toSessionIdentity(r.identity) } : refused(r.failure);
    },

    cancel(pending) {
      ed.cancel(pending.nonce);
    },
  };
}
