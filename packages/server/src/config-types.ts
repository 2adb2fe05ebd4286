/**
 * The types of the server configuration (docs/configuration.md). The schema (config-schema.ts) is typed
 * against them, so a key added here and not there, or there and not here, does not compile.
 */
import type { AuthConfig } from './auth/config.js';
import type { HeartbeatOptions, LimitOptions, NamespaceOptions } from './core/options.js';
import type { CredentialSource } from './core/ports/handshake.js';
import type { DocumentOptions } from './core/document-options.js';
import type { EndpointAuth } from './transport/endpoints.js';

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
    /** Bearer token of the admin dashboard `/admin` and its API `/admin/api/*` (empty: the dashboard is off). */
    adminToken: string;
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
