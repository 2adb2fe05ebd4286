import { readFileSync } from 'node:fs';
import { defaultAuthConfig } from './auth/config.js';
import { parseJsonc } from './jsonc.js';
import { coerceAt, configProblems, ConfigError } from './config-validate.js';
import { ENDPOINT_ENTRY_SCHEMA } from './config-schema.js';
import { DEFAULT_NODE_OPTIONS, type NodeOptions } from './core/options.js';
import type { CredentialSource } from './core/ports/handshake.js';
import { DEFAULT_DOCUMENT_OPTIONS } from './core/document-options.js';
import { CREDENTIAL_SOURCES, EndpointConfigError, SWITCHBOARD_PROTOCOL, type EndpointAuth, type EndpointSpec } from './transport/endpoints.js';
import type { DeepPartial, EndpointConfig, SwitchboardConfig } from './config-types.js';

export type { AuthSection, DeepPartial, EndpointConfig, EndpointsSection, SwitchboardConfig } from './config-types.js';

export const DEFAULT_CONFIG: SwitchboardConfig = {
  host: '0.0.0.0',
  port: 8080,
  nodeId: null,
  broker: { type: 'memory', redisUrl: 'redis://127.0.0.1:6379', keyPrefix: 'sb:', commandTimeoutMs: 2000, presenceTtlMs: 30_000, nodeTimeoutMs: 3000, sharded: false, sentinels: [], sentinelName: 'mymaster', nodeReportIntervalMs: 10_000 },
  http: { wsPath: '/ws', trustProxy: false, apiKey: '', adminToken: '', serveDemo: true, publicUrl: '', ed25519Path: '/ws/collective' },
  sse: { enabled: true, path: '/events', retryMs: 3000, maxEventIdBytes: 4096 },
  endpoints: {},
  auth: { ...defaultAuthConfig(), messages: { broadcast: 'permission:admin:broadcast' }, trustClientIds: true },
  limits: structuredClone(DEFAULT_NODE_OPTIONS.limits),
  heartbeat: { ...DEFAULT_NODE_OPTIONS.heartbeat },
  typing: { timeoutMs: DEFAULT_NODE_OPTIONS.typingTimeoutMs },
  channels: {
    defaults: { ...DEFAULT_NODE_OPTIONS.channelDefaults },
    // The demo chat's rooms (and the README's examples) keep their history across restarts in the store;
    // `doc:*` channels are Yjs documents (the demo editor at /editor uses them); configure others the same way.
    namespaces: { chat: { persist: true }, doc: { documents: 'yjs' } },
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

/**
 * Read a JSON config file (comments and trailing commas allowed, as `switchboard genconfig` writes them).
 * Throws with the path in the message on a missing file or bad JSON.
 */
export function readConfigFile(path: string): DeepPartial<SwitchboardConfig> {
  try {
    return parseJsonc(readFileSync(path, 'utf8')) as DeepPartial<SwitchboardConfig>;
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
  SWITCHBOARD_ADMIN_TOKEN: 'http.adminToken',
  SWITCHBOARD_ALLOWED_ORIGINS: 'auth.origins.allow',
  SWITCHBOARD_JWT_SECRET: 'auth.jwt.secret',
  SWITCHBOARD_STORE: 'store.driver',
  DATABASE_URL: 'store.postgresUrl',
};

/**
 * Config from environment variables: the shorthands above, and `SWITCHBOARD__a__b=v` for `a.b` (any depth,
 * map entries included: `SWITCHBOARD__channels__namespaces__room__persist=true`). Each value is typed by the
 * schema at its path (see setPath).
 */
export function configFromEnv(env: NodeJS.ProcessEnv): DeepPartial<SwitchboardConfig> {
  const out: Record<string, unknown> = {};
  for (const [name, raw] of Object.entries(env)) {
    if (raw === undefined) continue;
    let path: string | undefined = ENV_SHORTHANDS[name];
    if (path === undefined && name.startsWith('SWITCHBOARD__')) path = name.slice(13).split('__').join('.');
    if (path === undefined) continue;
    setPath(out, path, raw);
  }
  return out as DeepPartial<SwitchboardConfig>;
}

/**
 * Set `a.b.c` in an object from a string value (`--set a.b.c=raw`, an environment variable), typed by the
 * configuration schema at that path: numbers and booleans for such keys, JSON arrays and objects (or a
 * comma-separated list for an array key), the raw text for string keys. A value that fits nothing is kept as
 * given, for the validation to refuse with its path, expected type and value.
 */
export function setPath(target: Record<string, unknown>, path: string, raw: string): void {
  setPathValue(target, path, coerceAt(path.split('.'), raw));
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

/**
 * The defaults with `input` merged in, checked against the configuration schema (config-schema.ts). Throws a
 * ConfigError listing every problem (path, expected type, offending value). Used by `new Switchboard`.
 */
export function resolveConfig(input: unknown = {}): SwitchboardConfig {
  const merged: unknown = isPlainObject(input) ? mergeConfig(DEFAULT_CONFIG, input as DeepPartial<SwitchboardConfig>) : input;
  const problems = configProblems(merged);
  if (problems.length > 0) throw new ConfigError(problems);
  return merged as SwitchboardConfig;
}

/** Where `loadConfig` reads a configuration from; later sources win. */
export interface ConfigSources {
  /** A JSON config file (comments and trailing commas allowed). */
  file?: string;
  /** Environment variables (`process.env`): the shorthands and `SWITCHBOARD__a__b`. */
  env?: NodeJS.ProcessEnv;
  /** `path=value` settings, as `switchboard serve --set` takes them, applied in order. */
  set?: readonly string[];
}

/**
 * The configuration of `switchboard serve`: defaults < file < environment < `set`, typed and validated by the
 * schema. Throws ConfigError (each problem's message says which source set the value) or, for an unreadable
 * file or a `set` entry without `=`, an Error naming it.
 */
export function loadConfig(sources: ConfigSources): SwitchboardConfig {
  const fromFile = sources.file !== undefined ? readConfigFile(sources.file) : {};
  const fromEnv = sources.env !== undefined ? configFromEnv(sources.env) : {};
  const fromSet: Record<string, unknown> = {};
  for (const kv of sources.set ?? []) {
    const eq = kv.indexOf('=');
    if (eq <= 0) throw new Error(`--set expects key=value, got "${kv}"`);
    setPath(fromSet, kv.slice(0, eq), kv.slice(eq + 1));
  }
  if (!isPlainObject(fromFile)) {
    throw new ConfigError(configProblems(fromFile).map((p) => ({ ...p, message: `${p.message} (in ${sources.file})` })));
  }
  try {
    return resolveConfig(mergeConfig<Record<string, unknown>>(fromFile as Record<string, unknown>, fromEnv as Record<string, unknown>, fromSet));
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    const origin = (keys: string[]): string | undefined => {
      if (hasPath(fromSet, keys)) return 'from --set or a flag';
      if (hasPath(fromEnv, keys)) return 'from the environment';
      if (hasPath(fromFile, keys)) return `in ${sources.file}`;
      return undefined;
    };
    throw new ConfigError(err.problems.map((p) => {
      const o = origin(p.keys);
      return o === undefined ? p : { ...p, message: `${p.message} (${o})` };
    }));
  }
}

function hasPath(obj: unknown, keys: readonly string[]): boolean {
  let node = obj;
  for (const key of keys) {
    if (node === null || typeof node !== 'object' || !Object.hasOwn(node, key)) return false;
    node = (node as Record<string, unknown>)[key];
  }
  return true;
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

const ENDPOINT_KEYS = new Set(Object.keys(ENDPOINT_ENTRY_SCHEMA.properties ?? {}));
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
