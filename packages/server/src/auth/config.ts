/**
 * The `auth` section of the server configuration: TypeScript types, defaults and validation.
 *
 * Everything here is plain JSON (a config file can hold it). Behaviour that needs code (session lookup,
 * permission decisions, key lookup) is passed separately as hooks (see hooks.ts).
 *
 * `resolveAuthConfig(partial)` merges a partial section over the defaults and validates it; it throws an
 * `AuthConfigError` naming the offending path, so a bad config fails at start-up, never at the first request.
 */

/** JWS algorithms Switchboard accepts. `none` is not in the list and can never be configured. */
export const JWT_ALGORITHMS = [
  'HS256', 'HS384', 'HS512',
  'RS256', 'RS384', 'RS512',
  'PS256', 'PS384', 'PS512',
  'ES256', 'ES384', 'ES512',
  'EdDSA', 'Ed25519',
] as const;
export type JwtAlgorithm = (typeof JWT_ALGORITHMS)[number];

/** True for the HMAC algorithms (verified with `jwt.secret`, never with a public key). */
export function isHmacAlgorithm(alg: string): boolean {
  return alg === 'HS256' || alg === 'HS384' || alg === 'HS512';
}

export interface JwtConfig {
  /**
   * Pinned algorithms: a token whose header `alg` is not listed is rejected (INVALID_TOKEN). Required.
   * HS* algorithms verify with `secret` only; asymmetric ones with `publicKey` / `jwksFile` / `jwksUrl` only.
   */
  algorithms: JwtAlgorithm[];
  /** HMAC secret (UTF-8). At least 32 bytes. A PEM string here is a config error (key confusion). */
  secret?: string | null;
  /** PEM public key (SPKI "BEGIN PUBLIC KEY" or "BEGIN CERTIFICATE") for RS*, PS*, ES*, EdDSA. */
  publicKey?: string | null;
  /** Path of a JWKS JSON file (`{"keys":[...]}`), read once at start-up. Tokens select a key by `kid`. */
  jwksFile?: string | null;
  /** URL of a JWKS document, fetched on demand and cached (see the `jwks*` timings). */
  jwksUrl?: string | null;
  /** How long a fetched JWKS is used before it is fetched again (ms). Default 600000 (10 min). */
  jwksCacheMaxAgeMs?: number;
  /** Minimum time between two fetches, also when an unknown `kid` arrives (ms). Default 30000. */
  jwksCooldownMs?: number;
  /** Timeout of one JWKS fetch (ms). Default 5000. */
  jwksTimeoutMs?: number;
  /** Expected `iss` (one or any of several). Checked only when set. */
  issuer?: string | string[] | null;
  /** Expected `aud` (the token must name one of these). Checked only when set. */
  audience?: string | string[] | null;
  /** Leeway for `exp`, `nbf` and `iat` checks, seconds. Default 5. */
  clockToleranceSec?: number;
  /** Optional upper bound on token age from `iat`, seconds (the token must then carry `iat`). */
  maxTokenAgeSec?: number | null;
  /**
   * Refuse tokens whose header has no `kid` (INVALID_TOKEN), whatever key would verify them. Default false:
   * a kid-less token is verified with `publicKey` when one is set, else with the JWKS key that fits its `alg`
   * when exactly one does (a one-key JWKS accepts it), and refused as ambiguous when several do.
   */
  requireKid?: boolean;
}

/** Where identity fields come from in the verified JWT claims (dot paths allowed: "realm_access.roles"). */
export interface ClaimsConfig {
  /** Claim(s) holding the display name, first present string wins. Default ["username","preferred_username","name"]. */
  username: string | string[];
  /** Claim holding roles: array of strings or a space-separated string. Default "roles". */
  roles: string;
  /** Claim holding permissions: array of strings or a space-separated string. Default "permissions". */
  permissions: string;
  /** Claim holding the channel allowlist: array of channel names / patterns. Default "channels". */
  channels: string;
  /**
   * How the channel allowlist claim acts. "grant" (default): listed channels are allowed for every action
   * whatever the rules say; "restrict": a token that carries the claim may use only the listed channels
   * (and the rules still apply to them). Tokens without the claim are unaffected in both modes.
   */
  channelsMode: 'grant' | 'restrict';
  /** Claim holding free metadata (a JSON object) copied to Identity.metadata. Default "metadata". */
  metadata: string;
}

/** Where bearer tokens are looked for, in this order: header, subprotocol, query, then the cookie. */
export interface TokenSourcesConfig {
  /** `Authorization: Bearer <token>` header. Default true. */
  header: boolean;
  /** `Sec-WebSocket-Protocol: switchboard.v1, bearer.<token>` (browsers). Default true. */
  subprotocol: boolean;
  /** Query parameter name (`?token=`), or false to disable. Default "token". */
  query: string | false;
  /** Cookie name, or false to disable. Default "session_token". */
  cookie: string | false;
  /**
   * How a cookie value is checked: "hook" = the `validateSession` hook; "jwt" = verified as a JWT like a
   * bearer token; "auto" (default) = the hook when one is given, otherwise JWT when `jwt` is configured,
   * otherwise the cookie is ignored.
   */
  cookieVerify: 'auto' | 'hook' | 'jwt';
}

export interface Ed25519Config {
  /** Domain separation string at the head of every challenge. Must not contain "|" or a line break. */
  domain: string;
  /** Challenge lifetime (ms). Default 60000; `createAuth` caps it at `auth.handshakeTimeoutMs`. */
  challengeTtlMs: number;
  /** At most this many challenges are outstanding at once; more -> TOO_MANY_CONNECTIONS (4022). */
  maxPendingChallenges: number;
  /**
   * Registered public keys by collective id: raw 32-byte key in base64/base64url/hex, or a PEM SPKI key, or an
   * object adding roles/permissions/username for that collective.
   */
  keys: Record<string, string | Ed25519KeyEntry>;
  /** Path of a JSON file with the same shape as `keys`, read at start-up. */
  keysFile?: string | null;
}

export interface Ed25519KeyEntry {
  publicKey: string;
  username?: string;
  roles?: string[];
  permissions?: string[];
}

export interface OriginConfig {
  /**
   * Allowed origins, each exactly `scheme://host[:port]` (compared after URL normalisation: lower-case host,
   * default port dropped). "*" (default) allows every origin. The string "null" in the list allows the
   * opaque `Origin: null` (sandboxed iframes, file: pages) — otherwise it is refused.
   */
  allow: string[] | '*';
  /** Requests without an Origin header (non-browser clients). Default true. */
  allowMissing: boolean;
}

/** Channel actions that rules decide. Typing is checked as `publish`. */
export type ChannelAction = 'subscribe' | 'publish' | 'presence' | 'history';
export const CHANNEL_ACTIONS: readonly ChannelAction[] = ['subscribe', 'publish', 'presence', 'history'];

/**
 * A requirement: one term or an array of terms (any one suffices). Terms:
 *   "any" | "allow"      everyone, anonymous included
 *   "authenticated"      any non-anonymous identity
 *   "none" | "deny"      nobody (the server API can still publish)
 *   "owner"              the `{userId}` placeholder of the channel pattern equals identity.userId
 *   "role:<r>"           identity.roles contains r
 *   "permission:<p>"     identity.permissions contains p
 *   "claim:<c>"          with a `{c}` placeholder in the pattern: claim c equals (or, if an array, contains)
 *                        the captured value; without one: claim c is present and not false/null/""
 *   "hook"               the async `checkPermission` hook decides (denied when no hook is configured)
 */
export type Requirement = string | string[];

/** Per-action requirements of a channel pattern. Missing actions: `*`, then `subscribe`, then the default. */
export type ChannelRule = Partial<Record<ChannelAction | '*', Requirement>>;

export interface ChannelRulesConfig {
  /** Used when no pattern matches: "allow" (default), "deny", a requirement, or a rule per action. */
  default: Requirement | ChannelRule;
  /**
   * Pattern -> rule. Patterns: literal text, `*` (one or more characters of any kind) and `{name}`
   * (one or more characters other than ":" captured as `name`). The most specific matching pattern wins:
   * exact names first, then more literal characters, then config order.
   */
  rules: Record<string, ChannelRule>;
}

export interface AuthConfig {
  /** Every connection must authenticate (anonymous connections refused). Default false (demo use). */
  required: boolean;
  /**
   * Where credential failures are answered: "close" (default) = accept the upgrade, then close with
   * 4001/4002/4003 so browsers can read why; "handshake" = HTTP 401 before the upgrade (cheaper, but a
   * browser only sees a generic error). Origin refusals are always answered at the handshake (403).
   */
  rejectAt: 'close' | 'handshake';
  /** JWT verification; null disables bearer tokens. */
  jwt: JwtConfig | null;
  sources: TokenSourcesConfig;
  claims: ClaimsConfig;
  /** Longer bearer tokens are refused as INVALID_TOKEN without parsing. Default 8192. */
  maxTokenBytes: number;
  /** Hooks (session, permission, key lookup) that do not answer in time fail closed. Default 5000 ms. */
  hookTimeoutMs: number;
  /**
   * A handshake that runs after accept (the Ed25519 challenge-response) must end within this long (ms), or the
   * connection is closed with 4004. Caps `ed25519.challengeTtlMs`. Default 10000.
   */
  handshakeTimeoutMs: number;
  ed25519: Ed25519Config;
  origins: OriginConfig;
  channels: ChannelRulesConfig;
  /** Message type -> requirement, e.g. { "admin_broadcast": "permission:admin:broadcast" }. Unlisted: allowed. */
  messages: Record<string, Requirement>;
  /** Who may send private messages: a requirement (default "any"); "hook" asks checkPermission. */
  privateMessages: Requirement;
}

/** A deep-partial `auth` section as it appears in a config file. */
export interface AuthConfigInput {
  required?: boolean;
  rejectAt?: 'close' | 'handshake';
  jwt?: JwtConfig | null;
  sources?: Partial<TokenSourcesConfig>;
  claims?: Partial<ClaimsConfig>;
  maxTokenBytes?: number;
  hookTimeoutMs?: number;
  handshakeTimeoutMs?: number;
  ed25519?: Partial<Ed25519Config>;
  origins?: Partial<OriginConfig>;
  channels?: Partial<ChannelRulesConfig>;
  messages?: Record<string, Requirement>;
  privateMessages?: Requirement;
}

export const DEFAULT_ED25519_DOMAIN = 'switchboard-ed25519-auth-v1';

/** Defaults: anonymous allowed, no JWT, every origin, every channel allowed (demo use). */
export function defaultAuthConfig(): AuthConfig {
  return {
    required: false,
    rejectAt: 'close',
    jwt: null,
    sources: { header: true, subprotocol: true, query: 'token', cookie: 'session_token', cookieVerify: 'auto' },
    claims: {
      username: ['username', 'preferred_username', 'name'],
      roles: 'roles',
      permissions: 'permissions',
      channels: 'channels',
      channelsMode: 'grant',
      metadata: 'metadata',
    },
    maxTokenBytes: 8192,
    hookTimeoutMs: 5000,
    handshakeTimeoutMs: 10_000,
    ed25519: {
      domain: DEFAULT_ED25519_DOMAIN,
      challengeTtlMs: 60_000,
      maxPendingChallenges: 10_000,
      keys: {},
      keysFile: null,
    },
    origins: { allow: '*', allowMissing: true },
    channels: { default: 'allow', rules: {} },
    messages: {},
    privateMessages: 'any',
  };
}

/** Thrown by resolveAuthConfig and the module factories for an invalid configuration. */
export class AuthConfigError extends Error {
  readonly code = 'AUTH_CONFIG_INVALID';
  constructor(readonly path: string, message: string) {
    super(`auth config ${path}: ${message}`);
    this.name = 'AuthConfigError';
  }
}

/** One term of a requirement (see `Requirement`). */
export const REQUIREMENT_TERM = /^(any|allow|authenticated|none|deny|owner|hook|(role|permission|claim):[^\s]+)$/;

/** Throws AuthConfigError unless `req` is a valid requirement (see `Requirement`). */
export function validateRequirement(req: unknown, path: string): asserts req is Requirement {
  const terms = Array.isArray(req) ? req : [req];
  if (terms.length === 0) throw new AuthConfigError(path, 'empty requirement list');
  for (const t of terms) {
    if (typeof t !== 'string' || !REQUIREMENT_TERM.test(t)) {
      throw new AuthConfigError(path, `unknown requirement ${JSON.stringify(t)} (expected any, authenticated, none, owner, hook, role:<r>, permission:<p>, claim:<c>)`);
    }
  }
}

function positiveInt(v: unknown, path: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw new AuthConfigError(path, 'must be a positive number');
  return v;
}

/** Merges `input` over the defaults and validates the result. Never mutates `input`. */
export function resolveAuthConfig(input: AuthConfigInput = {}): AuthConfig {
  const d = defaultAuthConfig();
  const cfg: AuthConfig = {
    required: input.required ?? d.required,
    rejectAt: input.rejectAt ?? d.rejectAt,
    jwt: input.jwt ? { ...input.jwt } : null,
    sources: { ...d.sources, ...input.sources },
    claims: { ...d.claims, ...input.claims },
    maxTokenBytes: input.maxTokenBytes ?? d.maxTokenBytes,
    hookTimeoutMs: input.hookTimeoutMs ?? d.hookTimeoutMs,
    handshakeTimeoutMs: input.handshakeTimeoutMs ?? d.handshakeTimeoutMs,
    ed25519: { ...d.ed25519, ...input.ed25519 },
    origins: { ...d.origins, ...input.origins },
    channels: { ...d.channels, ...input.channels },
    messages: { ...input.messages },
    privateMessages: input.privateMessages ?? d.privateMessages,
  };
  if (cfg.rejectAt !== 'close' && cfg.rejectAt !== 'handshake') throw new AuthConfigError('rejectAt', 'must be "close" or "handshake"');
  positiveInt(cfg.maxTokenBytes, 'maxTokenBytes');
  positiveInt(cfg.hookTimeoutMs, 'hookTimeoutMs');
  positiveInt(cfg.handshakeTimeoutMs, 'handshakeTimeoutMs');
  positiveInt(cfg.ed25519.challengeTtlMs, 'ed25519.challengeTtlMs');
  positiveInt(cfg.ed25519.maxPendingChallenges, 'ed25519.maxPendingChallenges');
  if (typeof cfg.ed25519.domain !== 'string' || cfg.ed25519.domain.length === 0 || /[|\r\n]/.test(cfg.ed25519.domain)) {
    throw new AuthConfigError('ed25519.domain', 'must be a non-empty string without "|" or line breaks');
  }
  if (!['auto', 'hook', 'jwt'].includes(cfg.sources.cookieVerify)) throw new AuthConfigError('sources.cookieVerify', 'must be auto, hook or jwt');
  if (cfg.claims.channelsMode !== 'grant' && cfg.claims.channelsMode !== 'restrict') throw new AuthConfigError('claims.channelsMode', 'must be grant or restrict');
  if (cfg.jwt) validateJwtConfig(cfg.jwt);
  if (cfg.origins.allow !== '*' && !Array.isArray(cfg.origins.allow)) throw new AuthConfigError('origins.allow', 'must be "*" or an array of origins');
  validateRequirement(cfg.privateMessages, 'privateMessages');
  for (const [type, req] of Object.entries(cfg.messages)) validateRequirement(req, `messages.${type}`);
  // Channel rules are compiled (and validated) by channel-rules.ts; origins by origin.ts.
  return cfg;
}

function validateJwtConfig(j: JwtConfig): void {
  if (!Array.isArray(j.algorithms) || j.algorithms.length === 0) {
    throw new AuthConfigError('jwt.algorithms', 'pin at least one algorithm');
  }
  for (const a of j.algorithms) {
    if (!(JWT_ALGORITHMS as readonly string[]).includes(a)) {
      throw new AuthConfigError('jwt.algorithms', `unsupported algorithm ${JSON.stringify(a)} (allowed: ${JWT_ALGORITHMS.join(', ')})`);
    }
  }
  const hmac = j.algorithms.some(isHmacAlgorithm);
  const asym = j.algorithms.some((a) => !isHmacAlgorithm(a));
  if (hmac) {
    if (typeof j.secret !== 'string' || j.secret.length === 0) throw new AuthConfigError('jwt.secret', 'required for HS* algorithms');
    if (j.secret.includes('-----BEGIN')) {
      throw new AuthConfigError('jwt.secret', 'looks like a PEM key: an HMAC secret must not be a public key (algorithm confusion)');
    }
    if (Buffer.byteLength(j.secret, 'utf8') < 32) throw new AuthConfigError('jwt.secret', 'must be at least 32 bytes');
  }
  if (asym && !j.publicKey && !j.jwksFile && !j.jwksUrl) {
    throw new AuthConfigError('jwt', 'asymmetric algorithms need publicKey, jwksFile or jwksUrl');
  }
  if (j.jwksUrl) {
    let u: URL;
    try { u = new URL(j.jwksUrl); } catch { throw new AuthConfigError('jwt.jwksUrl', 'not a URL'); }
    if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new AuthConfigError('jwt.jwksUrl', 'must be http(s)');
  }
  for (const k of ['jwksCacheMaxAgeMs', 'jwksCooldownMs', 'jwksTimeoutMs'] as const) {
    if (j[k] !== undefined) positiveInt(j[k], `jwt.${k}`);
  }
  if (j.requireKid !== undefined && typeof j.requireKid !== 'boolean') throw new AuthConfigError('jwt.requireKid', 'must be true or false');
  if (j.clockToleranceSec !== undefined && (typeof j.clockToleranceSec !== 'number' || j.clockToleranceSec < 0)) {
    throw new AuthConfigError('jwt.clockToleranceSec', 'must be a number >= 0');
  }
}
