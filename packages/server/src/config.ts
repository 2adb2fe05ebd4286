import { readFileSync } from 'node:fs';
import { defaultAuthConfig, type AuthConfig } from './auth/config.js';
import { DEFAULT_NODE_OPTIONS, type HeartbeatOptions, type NodeOptions, type LimitOptions, type NamespaceOptions } from './core/options.js';
import type { CredentialSource } from './core/ports/handshake.js';
import { DEFAULT_DOCUMENT_OPTIONS, type DocumentOptions } from './core/document-options.js';
import { CREDENTIAL_SOURCES, EndpointConfigError, SWITCHBOARD_PROTOCOL, type EndpointAuth, type EndpointSpec } from './transport/endpoints.js';

/**
 * One WebSocket endpoint of the `endpoints` table (docs/configuration.md, "Endpoints"). Every field is
 * optional; an entry `{}` is an endpoint with the defaults.
 */
export interface EndpointConfig {
  /** `optional` (default: anonymous allowed unless auth.required), `required`, `none` (no credential is read;
   * every connection is anonymous), `ed25519` (challenge-response after accept, seed 001). */
  auth?: EndpointAuth;
  /** Accepted credential sources (default: every source enabled in auth.sources): `header`, `subprotocol`,
   * `query`, `cookie`. A credential in another source is ignored. */
  credentials?: CredentialSource[];
  /** The parameter that is the connection's client id (`"client_id"` for `/ws/{client_id}`). */
  clientId?: string | null;
  /** The parameter the authenticated user id must equal; another user is refused with 4031 (HTTP 403). */
  userParam?: string | null;
  /** `auth: "ed25519"`: the parameter holding the collective id (default `collective_id`). */
  collectiveParam?: string | null;
  /** Channels joined on connect, from templates over the parameters (`"room:{room_id}"`). */
  join?: string[];
  /** Declares that the endpoint delivers the user's offline inbox on connect (every identified connection of a
   * server with a store does); checked at start-up: needs authentication and a store. Only `true`. */
  inbox?: boolean;
  /** `switchboard` (default) or the name of a wire-protocol handler in SwitchboardOptions.protocols. */
  protocol?: string;
}

/** The `endpoints` section: patterns to entries, overlaid on the defaults; `false` (or null) removes one. */
export type EndpointsSection = Record<string, EndpointConfig | false | null>;

/** The `auth` config section: the auth layer's schema (docs/security.md) plus the development switch. */
export type AuthSection = AuthConfig & {
  /** Anonymous connections may name their own `?user_id=` (forced off once a credential method exists). */
  trustClientIds: boolean;
};

/** Complete server configuration. Every field is documented in docs/configuration.md with its default. */
export interface SwitchboardConfig {
  host: string;
  port: number;
  /** Unique node id (default: random per process). */
  nodeId: string | null;
  broker: {
    type: 'memory' | 'redis';
    redisUrl: string;
    keyPrefix: string;
    /** Operations fail with BROKER_UNAVAILABLE after this long when Redis is unreachable. */
    commandTimeoutMs: number;
    /** Presence entries of a dead node expire after this long. */
    presenceTtlMs: number;
    /** A node whose heartbeat (every nodeTimeoutMs / 3) is older than this is taken for dead: its presence is
     * hidden from every reader and it leaves /api/nodes (bound ≈ nodeTimeoutMs × 4/3). 0: presenceTtlMs only. */
    nodeTimeoutMs: number;
    /** Use sharded pub/sub (SPUBLISH/SSUBSCRIBE, Redis 7+) for channel publications. */
    sharded: boolean;
    /** Redis Sentinel addresses ("host:port"); when set, the primary is found through them. */
    sentinels: string[];
    /** Name of the primary the sentinels monitor. */
    sentinelName: string;
    /** How often this node reports its load to the node registry. */
    nodeReportIntervalMs: number;
  };
  http: {
    /** Path prefix of the WebSocket endpoints. */
    wsPath: string;
    /** Take the client address from X-Forwarded-For. */
    trustProxy: boolean;
    /** Bearer key required by the /api/* server API (empty: API open — bind to localhost or set it). */
    apiKey: string;
    /** Serve the test page and demo at `/`. */
    serveDemo: boolean;
    /** Address clients should use for this node (shown by /api/nodes and /api/best-node). */
    publicUrl: string;
    /** Ed25519 challenge endpoint prefix: `{ed25519Path}/{collective_id}` (seed 001). */
    ed25519Path: string;
  };
  sse: {
    /** Serve the Server-Sent Events endpoint. */
    enabled: boolean;
    /** Path of the SSE endpoint. */
    path: string;
    /** `retry:` hint: how long an EventSource waits before reconnecting. */
    retryMs: number;
    /** Largest SSE `id:` (the position vector of the stream's channels), in bytes. */
    maxEventIdBytes: number;
  };
  /**
   * WebSocket endpoints by URL pattern (docs/configuration.md, "Endpoints"), overlaid on the defaults
   * (`{http.wsPath}`, `{http.wsPath}/{client_id}`, `{http.wsPath}/authenticated`, `{http.ed25519Path}/{collective_id}`).
   */
  endpoints: EndpointsSection;
  /** Authentication and authorization (docs/security.md). */
  auth: AuthSection;
  limits: LimitOptions;
  heartbeat: HeartbeatOptions;
  typing: { timeoutMs: number };
  channels: {
    defaults: NamespaceOptions;
    namespaces: Record<string, Partial<NamespaceOptions>>;
    idempotencyWindowMs: number;
    maxRecoveryPublications: number;
    /** Presence announcements and user events: end of turn, then at most once per this many ms per channel. */
    presenceBatchMs: number;
    /** Allow the pattern subscription `*` (every channel). */
    globalPattern: boolean;
  };
  store: {
    /** `sqlite` (embedded default, a file), `postgres` (clusters), `none` (no archive, no offline inbox). */
    driver: 'sqlite' | 'postgres' | 'none';
    sqlitePath: string;
    /** PostgreSQL URL (default: $DATABASE_URL). */
    postgresUrl: string;
    postgresPoolSize: number;
    postgresConnectTimeoutMs: number;
    postgresQueryTimeoutMs: number;
    /** Offline inbox: items kept per user (oldest dropped beyond), lifetime, delivered per connect. */
    inboxMaxPerUser: number;
    inboxTtlMs: number;
    inboxDeliverLimit: number;
    /** Archive retention pass interval; age and per-channel bounds (0 = keep). */
    retentionIntervalMs: number;
    retentionMaxAgeMs: number;
    retentionKeepPerChannel: number;
  };
  /** Yjs document channels (namespaces with `documents: "yjs"`; docs/documents.md). */
  documents: DocumentOptions;
  shutdown: { deadlineMs: number };
  log: { level: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent' };
}

export type DeepPartial<T> = { [K in keyof T]?: T[K] extends Array<unknown> ? T[K] : T[K] extends object ? DeepPartial<T[K]> : T[K] };

export const DEFAULT_CONFIG: SwitchboardConfig = {
  host: '0.0.0.0',
  port: 8080,
  nodeId: null,
  broker: { type: 'memory', redisUrl: 'redis://127.0.0.1:6379', keyPrefix: 'sb:', commandTimeoutMs: 2000, presenceTtlMs: 30_000, nodeTimeoutMs: 3000, sharded: false, sentinels: [], sentinelName: 'mymaster', nodeReportIntervalMs: 10_000 },
  http: { wsPath: '/ws', trustProxy: false, apiKey: '', serveDemo: true, publicUrl: '', ed25519Path: '/ws/collective' },
  sse: { enabled: true, path: '/events', retryMs: 3000, maxEventIdBytes: 4096 },
  endpoints: {},
  auth: { ...defaultAuthConfig(), messages: { broadcast: 'permission:admin:broadcast' }, trustClientIds: true },
  limits: structuredClone(DEFAULT_NODE_OPTIONS.limits),
  heartbeat: { ...DEFAULT_NODE_OPTIONS.heartbeat },
  typing: { timeoutMs: DEFAULT_NODE_OPTIONS.typingTimeoutMs },
  channels: {
    defaults: { ...DEFAULT_NODE_OPTIONS.channelDefaults },
    // `doc:*` channels are Yjs documents (the demo editor at /editor uses them); configure others the same way.
    namespaces: { doc: { documents: 'yjs' } },
    idempotencyWindowMs: DEFAULT_NODE_OPTIONS.idempotencyWindowMs,
    maxRecoveryPublications: DEFAULT_NODE_OPTIONS.maxRecoveryPublications,
    presenceBatchMs: DEFAULT_NODE_OPTIONS.presenceBatchMs,
    globalPattern: DEFAULT_NODE_OPTIONS.globalPattern,
  },
  store: {
    driver: 'sqlite',
    sqlitePath: 'data/switchboard.db',
    postgresUrl: '',
    postgresPoolSize: 10,
    postgresConnectTimeoutMs: 5000,
    postgresQueryTimeoutMs: 10_000,
    inboxMaxPerUser: 100,
    inboxTtlMs: 7 * 24 * 3600 * 1000,
    inboxDeliverLimit: 100,
    retentionIntervalMs: 60_000,
    retentionMaxAgeMs: 0,
    retentionKeepPerChannel: 0,
  },
  documents: structuredClone(DEFAULT_DOCUMENT_OPTIONS),
  shutdown: { deadlineMs: 10_000 },
  log: { level: 'info' },
};

/** Deep-merge plain objects (arrays and scalars replace). Returns a new object. */
export function mergeConfig<T>(base: T, ...overrides: Array<DeepPartial<T> | undefined>): T {
  let out: unknown = structuredClone(base);
  for (const o of overrides) if (o !== undefined) out = mergeValue(out, o);
  return out as T;
}

function mergeValue(base: unknown, over: unknown): unknown {
  if (!isPlainObject(base) || !isPlainObject(over)) return over === undefined ? base : structuredClone(over);
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    if (k === '__proto__' || k === 'constructor' || k === 'prototype') continue;
    out[k] = mergeValue(base[k], v);
  }
  return out;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Read a JSON config file. Throws with the path in the message on a missing file or bad JSON. */
export function readConfigFile(path: string): DeepPartial<SwitchboardConfig> {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as DeepPartial<SwitchboardConfig>;
  } catch (err) {
    throw new Error(`cannot read config file ${path}: ${(err as Error).message}`);
  }
}

/** Shorthand environment variables; everything else via SWITCHBOARD__section__key=value. */
const ENV_SHORTHANDS: Record<string, string> = {
  SWITCHBOARD_HOST: 'host',
  SWITCHBOARD_PORT: 'port',
  PORT: 'port',
  SWITCHBOARD_NODE_ID: 'nodeId',
  SWITCHBOARD_BROKER: 'broker.type',
  SWITCHBOARD_REDIS_URL: 'broker.redisUrl',
  SWITCHBOARD_LOG_LEVEL: 'log.level',
  SWITCHBOARD_API_KEY: 'http.apiKey',
  SWITCHBOARD_ALLOWED_ORIGINS: 'auth.origins.allow',
  SWITCHBOARD_JWT_SECRET: 'auth.jwt.secret',
  SWITCHBOARD_STORE: 'store.driver',
  DATABASE_URL: 'store.postgresUrl',
};

/**
 * Config from environment variables: the shorthands above, and `SWITCHBOARD__a__b=v` for `a.b`.
 * Values are parsed as JSON when they parse (numbers, booleans, arrays), else taken as strings;
 * comma-separated strings become arrays where the default is an array.
 */
export function configFromEnv(env: NodeJS.ProcessEnv): DeepPartial<SwitchboardConfig> {
  const out: Record<string, unknown> = {};
  for (const [name, raw] of Object.entries(env)) {
    if (raw === undefined) continue;
    let path: string | undefined = ENV_SHORTHANDS[name];
    if (path === undefined && name.startsWith('SWITCHBOARD__')) path = name.slice(13).split('__').join('.');
    if (path === undefined) continue;
    if (path === 'auth.origins.allow') {
      // "*" or a comma-separated list of exact origins
      setPathValue(out, path, raw.trim() === '*' ? '*' : raw.split(',').map((o) => o.trim()).filter((o) => o.length > 0));
      continue;
    }
    setPath(out, path, raw);
  }
  return out as DeepPartial<SwitchboardConfig>;
}

/** Set `a.b.c` in an object from a string value, typed by the default config's field. */
export function setPath(target: Record<string, unknown>, path: string, raw: string): void {
  let defaults: unknown = DEFAULT_CONFIG;
  for (const key of path.split('.')) defaults = isPlainObject(defaults) ? defaults[key] : undefined;
  setPathValue(target, path, coerce(raw, defaults));
}

/** Set `a.b.c` in an object, creating intermediate objects; prototype keys are ignored. */
export function setPathValue(target: Record<string, unknown>, path: string, value: unknown): void {
  const keys = path.split('.');
  if (keys.some((k) => k === '__proto__' || k === 'constructor' || k === 'prototype')) return;
  let node = target;
  for (let i = 0; i < keys.length - 1; i++) {
    const key = keys[i]!;
    if (!isPlainObject(node[key])) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[keys[keys.length - 1]!] = value;
}

function coerce(raw: string, like: unknown): unknown {
  if (typeof like === 'string') return raw;
  try {
    const v: unknown = JSON.parse(raw);
    if (Array.isArray(like) && !Array.isArray(v)) return [v];
    return v;
  } catch {
    if (Array.isArray(like)) return raw.split(',').map((x) => x.trim()).filter((x) => x.length > 0);
    return raw;
  }
}

/** The default endpoint table in config form (today's endpoints), for the paths of `http`. */
export function defaultEndpointsConfig(http: Pick<SwitchboardConfig['http'], 'wsPath' | 'ed25519Path'>): Record<string, EndpointConfig> {
  return {
    [http.wsPath]: {},
    [`${http.wsPath}/{client_id}`]: { clientId: 'client_id' },
    [`${http.wsPath}/authenticated`]: { auth: 'required' },
    [`${http.ed25519Path}/{collective_id}`]: { auth: 'ed25519' },
  };
}

/** The protocol name of the y-websocket handler (protocols/y-websocket), registered by the Switchboard. */
export const Y_WEBSOCKET_PROTOCOL = 'y-websocket';

/**
 * The default y-websocket endpoint (docs/documents.md): `/yjs/{doc}`, present when a namespace of
 * `channels.namespaces` is a document namespace (`documents: "yjs"`). Remove it with
 * `"endpoints": {"/yjs/{doc}": false}`; add others with `"protocol": "y-websocket"` and a `{doc}` parameter.
 */
export function defaultDocumentEndpoints(config: Pick<SwitchboardConfig, 'channels'>): Record<string, EndpointConfig> {
  const documents = Object.values(config.channels.namespaces).some((ns) => ns?.documents === 'yjs');
  return documents ? { '/yjs/{doc}': { protocol: Y_WEBSOCKET_PROTOCOL } } : {};
}

/** What the rest of the server offers that endpoint entries may ask for (checked by resolveEndpoints). */
export interface EndpointCapabilities {
  /** Names of the registered wire-protocol handlers. */
  protocols: readonly string[];
  /** Bearer tokens can be verified (auth.jwt configured). */
  tokens: boolean;
  /** Session cookies can be verified (validateSession hook, or auth.jwt with cookieVerify jwt/auto). */
  cookies: boolean;
  /** An offline inbox store exists (store.driver other than none, or stores passed in with an inbox). */
  inbox: boolean;
  /** A custom authenticator replaces the auth layer: credential checks are its business. */
  customAuthenticator: boolean;
}

const ENDPOINT_KEYS = new Set(['auth', 'credentials', 'clientId', 'userParam', 'collectiveParam', 'join', 'inbox', 'protocol']);
const AUTH_VALUES: readonly EndpointAuth[] = ['required', 'optional', 'none', 'ed25519'];

/**
 * The endpoint table of a config: the defaults for `http.wsPath` / `http.ed25519Path`, overlaid with
 * `config.endpoints` (an entry replaces the default of the same pattern; `false` or null removes it), each
 * entry checked against the rest of the config. Throws EndpointConfigError naming the entry and the field;
 * pattern syntax, parameters, ambiguity and protocols are checked when the transport compiles the table.
 */
export function resolveEndpoints(config: SwitchboardConfig, caps: EndpointCapabilities): EndpointSpec[] {
  const entries: Record<string, EndpointConfig | false | null> = { ...defaultEndpointsConfig(config.http), ...defaultDocumentEndpoints(config) };
  if (!isPlainObject(config.endpoints)) throw new EndpointConfigError('', 'the endpoints section is an object of URL patterns to entries');
  for (const [pattern, entry] of Object.entries(config.endpoints)) entries[pattern] = entry;
  const specs: EndpointSpec[] = [];
  for (const [pattern, entry] of Object.entries(entries)) {
    if (entry === false || entry === null) continue;
    specs.push(resolveEndpoint(pattern, entry, config, caps));
  }
  return specs;
}

function resolveEndpoint(pattern: string, entry: unknown, config: SwitchboardConfig, caps: EndpointCapabilities): EndpointSpec {
  const fail = (message: string): never => {
    throw new EndpointConfigError(pattern, message);
  };
  if (!isPlainObject(entry)) return fail('an entry is an object (or false to remove a default endpoint)');
  for (const key of Object.keys(entry)) if (!ENDPOINT_KEYS.has(key)) fail(`unknown field ${JSON.stringify(key)} (fields: ${[...ENDPOINT_KEYS].join(', ')})`);
  const e = entry as EndpointConfig;
  const auth = e.auth ?? 'optional';
  if (!AUTH_VALUES.includes(auth)) fail(`auth ${JSON.stringify(auth)}: use ${AUTH_VALUES.map((a) => `"${a}"`).join(', ')}`);
  const optionalName = (field: keyof EndpointConfig): string | null => {
    const v = e[field];
    if (v === undefined || v === null) return null;
    if (typeof v !== 'string' || v.length === 0) return fail(`${field}: the name of a parameter of the pattern`);
    return v;
  };
  const protocol = e.protocol ?? SWITCHBOARD_PROTOCOL;
  if (typeof protocol !== 'string' || protocol.length === 0) fail('protocol: "switchboard" or the name of a registered handler');
  const join = e.join ?? [];
  if (!Array.isArray(join) || join.some((j) => typeof j !== 'string')) fail('join: a list of channel templates, e.g. ["room:{room_id}"]');

  let credentials: CredentialSource[] | null = null;
  if (e.credentials !== undefined) {
    if (!Array.isArray(e.credentials)) fail(`credentials: a list of ${CREDENTIAL_SOURCES.map((c) => `"${c}"`).join(', ')}`);
    credentials = [...new Set(e.credentials)];
    const sources = config.auth.sources;
    for (const c of credentials) {
      if (!CREDENTIAL_SOURCES.includes(c)) continue; // named by the transport's check
      const enabled = c === 'header' ? sources.header : c === 'subprotocol' ? sources.subprotocol : c === 'query' ? sources.query !== false : sources.cookie !== false;
      if (!enabled) fail(`credentials: "${c}" is disabled in auth.sources.${c}`);
      if (caps.customAuthenticator) continue;
      if (c === 'cookie' && !caps.cookies) fail('credentials: "cookie" needs a session check: the validateSession hook (SwitchboardOptions.authHooks) or auth.jwt');
      if (c !== 'cookie' && !caps.tokens) fail(`credentials: "${c}" carries a bearer token, which needs auth.jwt`);
    }
  }

  if (e.inbox !== undefined) {
    if (e.inbox !== true) fail('inbox: only true (every identified connection receives its offline inbox on connect when a store is configured; it cannot be turned off per endpoint)');
    if (protocol !== SWITCHBOARD_PROTOCOL) fail(`inbox: the offline inbox is a feature of the "${SWITCHBOARD_PROTOCOL}" protocol`);
    if (auth === 'none') fail('inbox: needs identified connections (auth "required", "optional" or "ed25519"), not auth "none"');
    if (!caps.inbox) fail('inbox: needs a store with an offline inbox (store.driver "sqlite" or "postgres")');
  }

  return {
    pattern,
    auth,
    credentials,
    clientId: optionalName('clientId'),
    userParam: optionalName('userParam'),
    collectiveParam: auth === 'ed25519' ? (optionalName('collectiveParam') ?? 'collective_id') : optionalName('collectiveParam'),
    join,
    protocol,
  };
}

/** Hub options derived from a server config. */
export function nodeOptionsFrom(config: SwitchboardConfig): NodeOptions {
  return {
    limits: config.limits,
    heartbeat: config.heartbeat,
    typingTimeoutMs: config.typing.timeoutMs,
    channelDefaults: config.channels.defaults,
    namespaces: config.channels.namespaces,
    idempotencyWindowMs: config.channels.idempotencyWindowMs,
    maxRecoveryPublications: config.channels.maxRecoveryPublications,
    presenceBatchMs: config.channels.presenceBatchMs,
    globalPattern: config.channels.globalPattern,
    documents: config.documents,
  };
}
