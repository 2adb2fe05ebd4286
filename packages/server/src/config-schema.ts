/**
 * The JSON Schema of the whole server configuration (docs/configuration.md, "Validation"). One schema checks a
 * config at start-up (`new Switchboard`, `Switchboard.create`, `switchboard serve` and `checkconfig`) and types
 * the values of `--set` and environment variables (config-validate.ts). Every section is closed: a key the
 * schema does not name is refused. Each object's properties are typed as exactly the keys of its TypeScript
 * type (config-types.ts, auth/config.ts, core/options.ts), so a key added to one and not the other does not
 * compile; a test also walks the schema and DEFAULT_CONFIG side by side.
 *
 * Checks that need more than one key or code (channel rule patterns, JWT key material, endpoint parameters,
 * the channel name RegExp) stay with the parts that own them: they run when the server is built.
 */
import { JWT_ALGORITHMS, REQUIREMENT_TERM, type ChannelRule, type ChannelRulesConfig, type ClaimsConfig, type Ed25519Config, type Ed25519KeyEntry, type JwtConfig, type OriginConfig, type TokenSourcesConfig } from './auth/config.js';
import type { AuthSection, EndpointConfig, SwitchboardConfig } from './config-types.js';
import type { HeartbeatOptions, LimitOptions, NamespaceOptions } from './core/options.js';
import type { DocumentOptions } from './core/document-options.js';
import { CREDENTIAL_SOURCES } from './transport/endpoints.js';

/** The subset of JSON Schema (draft 07, as Ajv reads it) this file uses. `title` names a type in error messages. */
export interface Schema {
  type?: string | string[];
  title?: string;
  properties?: Record<string, Schema>;
  required?: string[];
  additionalProperties?: boolean | Schema;
  items?: Schema;
  minItems?: number;
  enum?: readonly unknown[];
  const?: unknown;
  anyOf?: Schema[];
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  minLength?: number;
  pattern?: string;
}

const bool: Schema = { type: 'boolean' };
const str: Schema = { type: 'string' };
const nonEmpty: Schema = { type: 'string', minLength: 1 };
/** A whole number at least `min` (milliseconds, counts, bytes). */
const int = (min: number, max?: number): Schema => (max === undefined ? { type: 'integer', minimum: min } : { type: 'integer', minimum: min, maximum: max });
/** A duration in ms where 0 means "off" or "never". */
const ms0 = int(0);
/** A duration in ms that must be positive (a timer period or a timeout). */
const ms1 = int(1);
const oneOf = (...values: readonly unknown[]): Schema => ({ enum: values });
const arrayOf = (items: Schema, title?: string): Schema => ({ type: 'array', items, ...(title !== undefined ? { title } : {}) });
const nullable = (s: Schema): Schema => ({ ...s, type: [s.type as string, 'null'] });
const path: Schema = { type: 'string', pattern: '^/', title: 'URL path starting with "/"' };
/** A schema for each key of T, no other key (optional keys included: `Required`). */
type Keys<T> = { [K in keyof Required<T>]: Schema };

/** A section: every key present after the defaults are merged in, no other key. */
const section = <T>(properties: Keys<T>, title?: string): Schema => ({
  type: 'object',
  properties,
  required: Object.keys(properties),
  additionalProperties: false,
  ...(title !== undefined ? { title } : {}),
});
/** An object whose keys are all optional (overrides, entries). */
const partial = <T>(properties: Keys<T>, title: string, required: Array<keyof T & string> = []): Schema => ({
  type: 'object',
  properties,
  additionalProperties: false,
  title,
  ...(required.length > 0 ? { required } : {}),
});
/** A map of user-chosen names to entries. */
const mapOf = (entry: Schema, title: string): Schema => ({ type: 'object', additionalProperties: entry, title });

const requirementTerm: Schema = { type: 'string', pattern: REQUIREMENT_TERM.source, title: 'requirement (any, authenticated, none, owner, hook, role:<r>, permission:<p>, claim:<c>)' };
const requirement: Schema = {
  anyOf: [requirementTerm, { type: 'array', items: requirementTerm, minItems: 1, title: 'list of requirements' }],
};
const channelRule = partial<ChannelRule>(
  { '*': requirement, subscribe: requirement, publish: requirement, presence: requirement, history: requirement },
  'rule per action (*, subscribe, publish, presence, history)',
);
const stringOrList: Schema = { type: ['string', 'array'], items: str };

const namespaceKeys: Keys<NamespaceOptions> = {
  historySize: int(0),
  historyTtlMs: ms1,
  snapshot: bool,
  persist: bool,
  presence: bool,
  joinLeave: bool,
  maxAnnouncedMembers: int(0),
  countIntervalMs: ms0,
  publishRequiresMembership: bool,
  documents: { enum: ['yjs', null], title: '"yjs" or null' },
  binary: bool,
};

const jwt: Schema = {
  ...partial<JwtConfig>(
    {
      algorithms: { type: 'array', items: oneOf(...JWT_ALGORITHMS), minItems: 1 },
      secret: nullable(str),
      publicKey: nullable(str),
      jwksFile: nullable(str),
      jwksUrl: nullable(str),
      jwksCacheMaxAgeMs: ms1,
      jwksCooldownMs: ms1,
      jwksTimeoutMs: ms1,
      issuer: { ...stringOrList, type: ['string', 'array', 'null'] },
      audience: { ...stringOrList, type: ['string', 'array', 'null'] },
      clockToleranceSec: { type: 'number', minimum: 0 },
      maxTokenAgeSec: { type: ['number', 'null'], exclusiveMinimum: 0 },
      requireKid: bool,
    },
    'JWT settings object',
  ),
  type: ['object', 'null'],
};

/** One entry of the `endpoints` table. */
export const ENDPOINT_ENTRY_SCHEMA = partial<EndpointConfig>(
  {
    auth: oneOf('optional', 'required', 'none', 'ed25519'),
    credentials: arrayOf(oneOf(...CREDENTIAL_SOURCES)),
    clientId: nullable(nonEmpty),
    userParam: nullable(nonEmpty),
    collectiveParam: nullable(nonEmpty),
    join: arrayOf(str),
    inbox: bool,
    protocol: nonEmpty,
  },
  'endpoint entry',
);

const auth = section<AuthSection>({
  required: bool,
  trustClientIds: bool,
  rejectAt: oneOf('close', 'handshake'),
  jwt,
  sources: section<TokenSourcesConfig>({
    header: bool,
    subprotocol: bool,
    query: { anyOf: [nonEmpty, { const: false }] },
    cookie: { anyOf: [nonEmpty, { const: false }] },
    cookieVerify: oneOf('auto', 'hook', 'jwt'),
  }),
  claims: section<ClaimsConfig>({
    username: { ...stringOrList, minItems: 1 },
    roles: nonEmpty,
    permissions: nonEmpty,
    channels: nonEmpty,
    channelsMode: oneOf('grant', 'restrict'),
    metadata: nonEmpty,
  }),
  maxTokenBytes: int(1),
  hookTimeoutMs: ms1,
  handshakeTimeoutMs: ms1,
  ed25519: section<Ed25519Config>({
    domain: { type: 'string', pattern: '^[^|\\r\\n]+$', title: 'non-empty string without "|" or line breaks' },
    challengeTtlMs: ms1,
    maxPendingChallenges: int(1),
    keys: mapOf(
      { anyOf: [nonEmpty, partial<Ed25519KeyEntry>({ publicKey: nonEmpty, username: str, roles: arrayOf(str), permissions: arrayOf(str) }, 'key entry {publicKey, username, roles, permissions}', ['publicKey'])] },
      'map of collective ids to public keys',
    ),
    keysFile: nullable(nonEmpty),
  }),
  origins: section<OriginConfig>({
    allow: { anyOf: [{ const: '*' }, arrayOf(nonEmpty, 'list of origins')] },
    allowMissing: bool,
  }),
  channels: section<ChannelRulesConfig>({
    default: { anyOf: [requirement, channelRule] },
    rules: mapOf(channelRule, 'map of channel patterns to rules'),
  }),
  messages: mapOf(requirement, 'map of message types to requirements'),
  privateMessages: requirement,
});

/** The schema of a complete configuration (DEFAULT_CONFIG with the sources merged in). */
export const CONFIG_SCHEMA: Schema = section<SwitchboardConfig>(
  {
    host: nonEmpty,
    port: int(0, 65535),
    nodeId: nullable(nonEmpty),
    broker: section<SwitchboardConfig['broker']>({
      type: oneOf('memory', 'redis'),
      redisUrl: nonEmpty,
      keyPrefix: str,
      commandTimeoutMs: ms1,
      presenceTtlMs: ms1,
      nodeTimeoutMs: ms0,
      sharded: bool,
      sentinels: arrayOf({ type: 'string', pattern: '^.+:[0-9]+$', title: '"host:port"' }),
      sentinelName: nonEmpty,
      nodeReportIntervalMs: ms1,
    }),
    http: section<SwitchboardConfig['http']>({
      wsPath: path,
      trustProxy: bool,
      apiKey: str,
      adminToken: str,
      serveDemo: bool,
      publicUrl: str,
      ed25519Path: path,
    }),
    sse: section<SwitchboardConfig['sse']>({ enabled: bool, path, retryMs: ms0, maxEventIdBytes: int(1) }),
    endpoints: mapOf({ anyOf: [ENDPOINT_ENTRY_SCHEMA, { const: false }, { type: 'null' }] }, 'map of URL patterns to endpoint entries'),
    auth,
    limits: section<LimitOptions>({
      maxConnections: int(0),
      maxConnectionsPerUser: int(0),
      maxConnectionsPerIp: int(0),
      maxMessageBytes: int(1),
      maxJsonDepth: int(1),
      maxChannelsPerConnection: int(1),
      maxPatternsPerConnection: int(0),
      maxChannelNameLength: int(1),
      channelNamePattern: nonEmpty,
      maxQueuedBytes: int(1),
      rateLimit: section<LimitOptions['rateLimit']>({ perSecond: { type: 'number', minimum: 0 }, burst: int(1), closeAfterDropped: int(1) }),
      subscribeRateLimit: section<LimitOptions['subscribeRateLimit']>({ perSecond: { type: 'number', minimum: 0 }, burst: int(1) }),
      maxPendingCommands: int(1),
    }),
    heartbeat: section<HeartbeatOptions>({ pingIntervalMs: ms0, pongTimeoutMs: ms1, idleTimeoutMs: ms0 }),
    typing: section<SwitchboardConfig['typing']>({ timeoutMs: ms1 }),
    channels: section<SwitchboardConfig['channels']>({
      defaults: section<NamespaceOptions>(namespaceKeys),
      namespaces: mapOf(partial<NamespaceOptions>(namespaceKeys, 'namespace overrides (keys of channels.defaults)'), 'map of namespace names to overrides'),
      idempotencyWindowMs: ms0,
      maxRecoveryPublications: int(0),
      presenceBatchMs: ms0,
      globalPattern: bool,
    }),
    store: section<SwitchboardConfig['store']>({
      driver: oneOf('sqlite', 'postgres', 'none'),
      sqlitePath: nonEmpty,
      postgresUrl: str,
      postgresPoolSize: int(1),
      postgresConnectTimeoutMs: ms1,
      postgresQueryTimeoutMs: ms1,
      inboxMaxPerUser: int(1),
      inboxTtlMs: ms0,
      inboxDeliverLimit: int(1),
      retentionIntervalMs: ms1,
      retentionMaxAgeMs: ms0,
      retentionKeepPerChannel: int(0),
    }),
    documents: section<DocumentOptions>({
      maxUpdateBytes: int(1),
      maxAwarenessBytes: int(1),
      maxAwarenessClients: int(1),
      updateRate: section<DocumentOptions['updateRate']>({ perSecond: { type: 'number', minimum: 0 }, burst: int(1) }),
      awarenessRate: section<DocumentOptions['awarenessRate']>({ perSecond: { type: 'number', minimum: 0 }, burst: int(1), closeAfterDropped: int(1) }),
      maxPerConnection: int(1),
      idleDocuments: int(0),
      idleTtlMs: ms0,
      compactAfterUpdates: int(1),
      historyKeep: int(0),
      nodeTimeoutMs: ms1,
      readOnlyNoticeMs: ms0,
      storeRetryMs: ms1,
    }),
    shutdown: section<SwitchboardConfig['shutdown']>({ deadlineMs: ms0 }),
    log: section<SwitchboardConfig['log']>({ level: oneOf('fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent') }),
  },
  'configuration object',
);

/**
 * The schema of the value at `path` (config keys; map entries by name), or undefined for a key the schema does
 * not have. Unions are searched for the branch that has the key.
 */
export function schemaAt(path: readonly string[], schema: Schema = CONFIG_SCHEMA): Schema | undefined {
  let node: Schema | undefined = schema;
  for (const key of path) {
    if (node === undefined) return undefined;
    node = childSchema(node, key);
  }
  return node;
}

function childSchema(s: Schema, key: string): Schema | undefined {
  if (s.properties !== undefined && Object.hasOwn(s.properties, key)) return s.properties[key];
  if (typeof s.additionalProperties === 'object') return s.additionalProperties;
  if (s.anyOf !== undefined) {
    for (const branch of s.anyOf) {
      const child = childSchema(branch, key);
      if (child !== undefined) return child;
    }
  }
  return undefined;
}
