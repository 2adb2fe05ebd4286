/**
 * Finds the credentials of an HTTP request (WebSocket upgrade or SSE GET).
 *
 * Sources, first present wins (each can be disabled in `auth.sources`):
 *   1. `Authorization: Bearer <token>` header (other schemes are ignored);
 *   2. `Sec-WebSocket-Protocol: switchboard.v1, bearer.<token>` — for browsers, which cannot set headers on
 *      a WebSocket. The server must then echo exactly `switchboard.v1` (never the bearer entry: echoing it
 *      would copy the token into the response); a client that offers `bearer.*` without `switchboard.v1` is
 *      refused, because a browser fails a handshake whose response selects none of its offers;
 *   3. `?token=<token>` query parameter (name configurable);
 *   4. a cookie (default `session_token`), checked by the session hook or as a JWT.
 * Ambiguous input (two query tokens, two bearer subprotocols, an empty bearer) is an INVALID_TOKEN failure,
 * never silently anonymous.
 */
import type { IncomingMessage } from 'node:http';
import type { TokenSourcesConfig } from './config.js';
import { invalidToken, unauthorized, type AuthFailure } from './failures.js';

/** The application subprotocol a server echoes. */
export const SUBPROTOCOL = 'switchboard.v1';
/** Prefix of the subprotocol entry that carries a bearer token: `bearer.<jwt>`. */
export const BEARER_SUBPROTOCOL_PREFIX = 'bearer.';

export type Credential =
  | { kind: 'bearer'; source: 'header' | 'subprotocol' | 'query'; token: string }
  | { kind: 'cookie'; source: 'cookie'; value: string };

export type ExtractResult =
  | { ok: true; credential: Credential | null; subprotocol: string | null }
  | { ok: false; failure: AuthFailure };

/** Splits a `Sec-WebSocket-Protocol` header (one string or repeated headers) into trimmed entries. */
export function parseSubprotocols(header: string | string[] | undefined): string[] {
  if (header === undefined) return [];
  const parts = Array.isArray(header) ? header.join(',') : header;
  return parts.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
}

/**
 * The subprotocol to echo for a set of offers (for `ws`'s `handleProtocols`): `switchboard.v1` when offered,
 * otherwise false (no subprotocol). Never returns a `bearer.*` entry.
 */
export function selectSubprotocol(offers: Iterable<string>): string | false {
  for (const p of offers) if (p === SUBPROTOCOL) return SUBPROTOCOL;
  return false;
}

/** Value of the first cookie called `name` in a Cookie header, URI-decoded when possible; null if absent. */
export function readCookie(header: string | string[] | undefined, name: string): string | null {
  if (header === undefined) return null;
  const all = Array.isArray(header) ? header.join('; ') : header;
  for (const pair of all.split(';')) {
    const eq = pair.indexOf('=');
    if (eq < 0) continue;
    if (pair.slice(0, eq).trim() !== name) continue;
    let v = pair.slice(eq + 1).trim();
    if (v.length >= 2 && v.startsWith('"') && v.endsWith('"')) v = v.slice(1, -1);
    try { return decodeURIComponent(v); } catch { return v; }
  }
  return null;
}

/** Extracts the credential of a request according to `sources` (see the module contract). Never throws. */
export function extractCredential(req: IncomingMessage, url: URL, sources: TokenSourcesConfig): ExtractResult {
  const offers = parseSubprotocols(req.headers['sec-websocket-protocol']);
  const subprotocol = offers.includes(SUBPROTOCOL) ? SUBPROTOCOL : null;

  if (sources.header) {
    const auth = req.headers.authorization;
    if (typeof auth === 'string') {
      const m = /^\s*bearer(?:\s+(.*))?$/i.exec(auth);
      if (m) {
        const token = (m[1] ?? '').trim();
        if (token.length === 0) return { ok: false, failure: invalidToken('empty bearer token') };
        return { ok: true, credential: { kind: 'bearer', source: 'header', token }, subprotocol };
      }
    }
  }

  if (sources.subprotocol) {
    const bearers = offers.filter((p) => p.startsWith(BEARER_SUBPROTOCOL_PREFIX));
    if (bearers.length > 1) return { ok: false, failure: invalidToken('several bearer subprotocols') };
    if (bearers.length === 1) {
      if (!subprotocol) return { ok: false, failure: unauthorized(`bearer subprotocol needs "${SUBPROTOCOL}" offered as well`) };
      const token = bearers[0]!.slice(BEARER_SUBPROTOCOL_PREFIX.length);
      if (token.length === 0) return { ok: false, failure: invalidToken('empty bearer token') };
      return { ok: true, credential: { kind: 'bearer', source: 'subprotocol', token }, subprotocol };
    }
  }

  if (sources.query) {
    const tokens = url.searchParams.getAll(sources.query);
    if (tokens.length > 1) return { ok: false, failure: invalidToken(`several ${sources.query} parameters`) };
    if (tokens.length === 1) {
      if (tokens[0]!.length === 0) return { ok: false, failure: invalidToken('empty token parameter') };
      return { ok: true, credential: { kind: 'bearer', source: 'query', token: tokens[0]! }, subprotocol };
    }
  }

  if (sources.cookie) {
    const value = readCookie(req.headers.cookie, sources.cookie);
    if (value !== null && value.length > 0) return { ok: true, credential: { kind: 'cookie', source: 'cookie', value }, subprotocol };
  }

  return { ok: true, credential: null, subprotocol };
}
