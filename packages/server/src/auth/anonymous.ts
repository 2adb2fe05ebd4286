import type { HandshakeAuthenticator } from '../core/ports/handshake.js';

/**
 * Anonymous identities. With `trustClientIds` (development default when no authentication is configured),
 * `?user_id=` and `?username=` are taken as given so the demo can address users, and a connection that
 * gives only a username is the user of that name (`?username=bob` can be sent private messages as `bob`);
 * otherwise user_id is null.
 */
export function anonymousAuthenticator(trustClientIds: boolean): HandshakeAuthenticator {
  return async (_req, url, endpoint) => {
    if (endpoint.requireAuth) {
      return { ok: false, closeCode: 4001, httpStatus: 401, code: 'UNAUTHORIZED', message: 'Authentication required' };
    }
    const username = url.searchParams.get('username')?.slice(0, 64) || null;
    const userId = trustClientIds ? url.searchParams.get('user_id')?.slice(0, 128) || username : null;
    return { ok: true, identity: { userId, username, anonymous: true } };
  };
}
