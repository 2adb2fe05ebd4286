/**
 * Identity: who is on the other end of a connection, as decided by the authenticator.
 * Immutable (frozen); a token refresh produces a new Identity.
 */
import type { ClaimsConfig } from './config.js';

export type AuthMethod = 'anonymous' | 'jwt' | 'session' | 'ed25519';

export interface Identity {
  /** Stable user id (`sub` of a JWT, session user id, Ed25519 collective id); null when anonymous. */
  readonly userId: string | null;
  /** Display name; null when unknown. Never used for authorization. */
  readonly username: string | null;
  readonly anonymous: boolean;
  readonly method: AuthMethod;
  readonly roles: readonly string[];
  readonly permissions: readonly string[];
  /** Channel allowlist (names or patterns) from the token; null when the token has no such claim. */
  readonly channels: readonly string[] | null;
  /** All verified claims (JWT payload / session claims); `claim:<c>` rules read these. */
  readonly claims: Readonly<Record<string, unknown>>;
  /** Free application metadata (the `metadata` claim or what a session hook returned). */
  readonly metadata: Readonly<Record<string, unknown>>;
  /** When the credentials stop being valid (ms since epoch); null = no expiry. The node closes with 4003 then. */
  readonly expiresAt: number | null;
}

/** What a session hook (or an Ed25519 key entry) returns to describe a user. */
export interface IdentityInit {
  userId: string;
  username?: string | null;
  roles?: readonly string[];
  permissions?: readonly string[];
  channels?: readonly string[] | null;
  claims?: Record<string, unknown>;
  metadata?: Record<string, unknown>;
  /** ms since epoch; null/undefined = no expiry. */
  expiresAt?: number | null;
}

const MAX_NAME = 128;
const MAX_LIST = 256;

function cleanName(v: unknown): string | null {
  if (typeof v !== 'string') return null;
  const s = v.trim();
  return s.length === 0 ? null : s.slice(0, MAX_NAME);
}

function cleanList(v: unknown): string[] {
  let items: unknown[];
  if (typeof v === 'string') items = v.split(/\s+/);
  else if (Array.isArray(v)) items = v;
  else return [];
  const out: string[] = [];
  for (const x of items) {
    if (typeof x === 'string' && x.length > 0 && x.length <= MAX_NAME) out.push(x);
    if (out.length >= MAX_LIST) break;
  }
  return out;
}

function plainObject(v: unknown): Record<string, unknown> {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return {};
  const out: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
  for (const [k, val] of Object.entries(v as Record<string, unknown>)) {
    if (k === '__proto__' || k === 'constructor' || k === 'prototype') continue;
    out[k] = val;
  }
  return out;
}

/** Reads a claim by dot path ("realm_access.roles") using own properties only. */
export function readClaim(claims: Readonly<Record<string, unknown>>, path: string): unknown {
  let cur: unknown = claims;
  for (const part of path.split('.')) {
    if (cur === null || typeof cur !== 'object' || !Object.prototype.hasOwnProperty.call(cur, part)) return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

/** The identity of a connection that presented no credentials. */
export function anonymousIdentity(username?: string | null): Identity {
  return Object.freeze({
    userId: null,
    username: cleanName(username ?? null),
    anonymous: true,
    method: 'anonymous' as const,
    roles: Object.freeze([]),
    permissions: Object.freeze([]),
    channels: null,
    claims: Object.freeze({}),
    metadata: Object.freeze({}),
    expiresAt: null,
  });
}

/**
 * Builds an Identity from verified JWT claims. `sub` must be a non-empty string (the JWT verifier
 * guarantees it). Lists are bounded (256 entries, 128 chars each); non-string entries are dropped.
 */
export function identityFromClaims(payload: Readonly<Record<string, unknown>>, cfg: ClaimsConfig, method: AuthMethod = 'jwt'): Identity {
  const claims = plainObject(payload);
  const usernameClaims = Array.isArray(cfg.username) ? cfg.username : [cfg.username];
  let username: string | null = null;
  for (const c of usernameClaims) {
    username = cleanName(readClaim(claims, c));
    if (username) break;
  }
  const channelsClaim = readClaim(claims, cfg.channels);
  const exp = claims['exp'];
  return Object.freeze({
    userId: String(claims['sub']),
    username,
    anonymous: false,
    method,
    roles: Object.freeze(cleanList(readClaim(claims, cfg.roles))),
    permissions: Object.freeze(cleanList(readClaim(claims, cfg.permissions))),
    channels: channelsClaim === undefined ? null : Object.freeze(cleanList(channelsClaim)),
    claims: Object.freeze(claims),
    metadata: Object.freeze(plainObject(readClaim(claims, cfg.metadata))),
    expiresAt: typeof exp === 'number' && Number.isFinite(exp) ? exp * 1000 : null,
  });
}

/** Builds an Identity from what a session hook / key registry returned. */
export function identityFromInit(init: IdentityInit, method: AuthMethod): Identity {
  return Object.freeze({
    userId: String(init.userId),
    username: cleanName(init.username ?? null),
    anonymous: false,
    method,
    roles: Object.freeze(cleanList(init.roles ?? [])),
    permissions: Object.freeze(cleanList(init.permissions ?? [])),
    channels: init.channels == null ? null : Object.freeze(cleanList(init.channels)),
    claims: Object.freeze(plainObject(init.claims ?? {})),
    metadata: Object.freeze(plainObject(init.metadata ?? {})),
    expiresAt: typeof init.expiresAt === 'number' && Number.isFinite(init.expiresAt) ? init.expiresAt : null,
  });
}
