import { randomBytes, randomUUID } from 'node:crypto';

/** A random id for connections and messages (UUID v4 text). */
export function newId(): string {
  return randomUUID();
}

/** A short random token (base64url), e.g. for stream epochs and node ids. */
export function shortId(bytes = 6): string {
  return randomBytes(bytes).toString('base64url');
}
