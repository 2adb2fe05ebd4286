/**
 * Application hooks of the auth layer (code, not config). All optional; all may be async.
 * A hook that throws or does not answer within `auth.hookTimeoutMs` fails closed (AUTH_UNAVAILABLE /
 * denied), it never lets a request through.
 */
import type { IncomingMessage } from 'node:http';
import type { ChannelAction } from './config.js';
import type { Identity, IdentityInit } from './identity.js';

/** What a permission question is about (passed to `checkPermission`). */
export type PermissionRequest =
  | { kind: 'channel'; action: ChannelAction; channel: string; params: Readonly<Record<string, string>> }
  | { kind: 'message'; messageType: string }
  | { kind: 'private_message'; recipientId: string };

export interface AuthHooks {
  /**
   * Validates a session cookie value (seed 004 `validate_session`). Return the user, or null when the
   * session is unknown/expired (-> UNAUTHORIZED 4001).
   */
  validateSession?(cookieValue: string, req: IncomingMessage): Promise<IdentityInit | null> | IdentityInit | null;
  /**
   * Decides a "hook" requirement (seed 002 `check_permission`). Return true to allow.
   */
  checkPermission?(identity: Identity, request: PermissionRequest): Promise<boolean> | boolean;
  /**
   * Looks up the Ed25519 public key of a collective that is not in the configured registry. Return the key
   * (raw 32 bytes, base64/base64url/hex string, or PEM) or an entry with roles, or null when unknown.
   */
  resolveEd25519Key?(collectiveId: string): Promise<string | Uint8Array | { publicKey: string | Uint8Array; username?: string; roles?: string[]; permissions?: string[] } | null>;
}

/** Thrown by `withTimeout` when a hook does not settle in time. */
export class HookTimeoutError extends Error {
  constructor(name: string, ms: number) {
    super(`${name} hook did not answer within ${ms} ms`);
    this.name = 'HookTimeoutError';
  }
}

/** Runs `fn` and rejects with HookTimeoutError after `ms`. The timer is cleared as soon as `fn` settles. */
export async function withTimeout<T>(name: string, ms: number, fn: () => Promise<T> | T): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      Promise.resolve().then(fn),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new HookTimeoutError(name, ms)), ms);
      }),
    ]);
  } finally {
    if (timer) clearTimeout(timer);
  }
}
