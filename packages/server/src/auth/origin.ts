/**
 * Origin allowlist (Cross-Site WebSocket Hijacking defence).
 *
 * Matching is exact on the serialised origin `scheme://host[:port]`: the configured entries and the
 * request's `Origin` header are both parsed with WHATWG URL and compared as whole strings, so
 * `https://good.com.evil.com`, `https://evil.com/https://good.com`, `https://good.com@evil.com`,
 * `http://good.com` (other scheme) and `https://good.com:8443` (other port) never match `https://good.com`.
 * A header that carries a path, query, fragment or credentials is not an origin and is refused.
 * `Origin: null` (opaque origin: sandboxed iframe, file:, data:) is refused unless "null" is listed.
 */
import { AuthConfigError, type OriginConfig } from './config.js';

export type OriginVerdict =
  /** `explicit`: matched a listed origin (not just "*"); `missing`: no Origin header. */
  | { ok: true; origin: string | null; explicit: boolean }
  | { ok: false; origin: string; reason: string };

export interface OriginPolicy {
  /** Checks an Origin header value (undefined when absent). Pure and synchronous. */
  check(origin: string | string[] | undefined): OriginVerdict;
  /** True when `origin` is listed explicitly (used to allow cookie credentials). */
  isListed(origin: string): boolean;
}

/** Parses an origin string to its canonical serialisation, or null if it is not exactly an origin. */
export function canonicalOrigin(raw: string): string | null {
  if (raw.length === 0 || raw.length > 2048) return null;
  let u: URL;
  try { u = new URL(raw); } catch { return null; }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return null;
  if (u.username !== '' || u.password !== '' || u.search !== '' || u.hash !== '') return null;
  // An origin has no path; URL turns "https://a.com" into pathname "/", so only accept an empty raw path.
  const afterScheme = raw.slice(raw.indexOf('//') + 2);
  if (afterScheme.includes('/') || afterScheme.includes('\\')) return null;
  return u.origin;
}

/** Compiles the origin section; throws AuthConfigError for an entry that is not exactly an origin. */
export function createOriginPolicy(cfg: OriginConfig): OriginPolicy {
  const any = cfg.allow === '*';
  const listed = new Set<string>();
  let allowNull = false;
  if (!any) {
    (cfg.allow as string[]).forEach((entry, i) => {
      if (entry === 'null') { allowNull = true; return; }
      if (entry === '*') throw new AuthConfigError(`origins.allow[${i}]`, 'use "allow": "*" instead of a "*" entry');
      if (typeof entry === 'string' && entry.includes('*')) throw new AuthConfigError(`origins.allow[${i}]`, 'wildcards are not supported: list each origin');
      const c = typeof entry === 'string' ? canonicalOrigin(entry) : null;
      if (!c) throw new AuthConfigError(`origins.allow[${i}]`, `${JSON.stringify(entry)} is not an origin (scheme://host[:port], no path, no wildcard)`);
      listed.add(c);
    });
  }

  return {
    check(origin) {
      if (Array.isArray(origin)) return { ok: false, origin: origin.join(','), reason: 'several Origin headers' };
      if (origin === undefined || origin === '') {
        return cfg.allowMissing ? { ok: true, origin: null, explicit: false } : { ok: false, origin: '', reason: 'Origin header required' };
      }
      if (origin === 'null') {
        return allowNull ? { ok: true, origin, explicit: true } : { ok: false, origin, reason: 'opaque origin "null" not allowed' };
      }
      const c = canonicalOrigin(origin);
      if (c && listed.has(c)) return { ok: true, origin: c, explicit: true };
      if (any) return { ok: true, origin: c ?? origin, explicit: false };
      return { ok: false, origin, reason: c ? 'origin not in allowlist' : 'malformed Origin header' };
    },
    isListed(origin) {
      if (origin === 'null') return allowNull;
      const c = canonicalOrigin(origin);
      return c !== null && listed.has(c);
    },
  };
}
