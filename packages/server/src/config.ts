import { readFileSync } from 'node:fs';
import { defaultAuthConfig, type AuthConfig } from './auth/config.js';
import { DEFAULT_NODE_OPTIONS, type HeartbeatOptions, type NodeOptions, type LimitOptions, type NamespaceOptions } from './core/options.js';

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
  auth: { ...defaultAuthConfig(), messages: { broadcast: 'permission:admin:broadcast' }, trustClientIds: true },
  limits: structuredClone(DEFAULT_NODE_OPTIONS.limits),
  heartbeat: { ...DEFAULT_NODE_OPTIONS.heartbeat },
  typing: { timeoutMs: DEFAULT_NODE_OPTIONS.typingTimeoutMs },
  channels: {
    defaults: { ...DEFAULT_NODE_OPTIONS.channelDefaults },
    namespaces: {},
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
  };
}
