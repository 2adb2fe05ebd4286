import { Redis } from 'ioredis';

/** Options shared by every Redis engine component (broker, presence store, node registry). */
export interface RedisConnectionOptions {
  /** redis://[:password@]host:port[/db] or rediss://… */
  url: string;
  /** Prefix of every key and pub/sub channel name (default "sb:"). Must not contain `{` or `}`. */
  keyPrefix?: string;
  /** Every command rejects with BROKER_UNAVAILABLE after this long without an answer (default 1000 ms).
   * Commands issued while disconnected reject at once (no offline queue). Also the connect timeout. */
  commandTimeoutMs?: number;
  /** Redis Sentinel: sentinel addresses. When given, the primary named `sentinelName` is found through them
   * (and found again after a failover); `url` then only supplies username, password and db. */
  sentinels?: Array<{ host: string; port: number }>;
  /** Name of the primary the sentinels monitor (default "mymaster"). */
  sentinelName?: string;
}

export const DEFAULT_KEY_PREFIX = 'sb:';
export const DEFAULT_COMMAND_TIMEOUT_MS = 1000;

export function resolvePrefix(prefix: string | undefined): string {
  const p = prefix ?? DEFAULT_KEY_PREFIX;
  if (p.includes('{') || p.includes('}')) throw new TypeError('keyPrefix must not contain "{" or "}" (used for Redis Cluster hash tags)');
  return p;
}

/** Reconnect delay: min(50 ms * 2^n, 2 s) plus up to 20 % jitter; never gives up. */
export function retryDelay(attempt: number): number {
  const base = Math.min(50 * 2 ** Math.min(attempt, 16), 2000);
  return Math.round(base + Math.random() * base * 0.2);
}

/**
 * A fail-fast ioredis client: no offline queue, in-flight commands rejected when the socket closes (never
 * re-sent, so a publish is never applied twice), a per-command timeout, endless reconnects with backoff.
 * Created with lazyConnect: call `connect()`. An `error` listener is attached so a dead Redis never crashes
 * the process with an unhandled 'error' event.
 */
export function createFailFastClient(opts: RedisConnectionOptions, role: string, extra: { autoResubscribe?: boolean } = {}): Redis {
  const timeout = opts.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
  const options = {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    autoResubscribe: extra.autoResubscribe ?? false,
    commandTimeout: timeout,
    connectTimeout: Math.max(timeout, 200),
    enableReadyCheck: true,
    retryStrategy: retryDelay,
    connectionName: role.replace(/[^A-Za-z0-9_:.-]/g, '_'),
  };
  const client = opts.sentinels !== undefined && opts.sentinels.length > 0
    ? new Redis({ ...options, ...credentialsOf(opts.url), sentinels: opts.sentinels, name: opts.sentinelName ?? 'mymaster', sentinelRetryStrategy: retryDelay })
    : new Redis(opts.url, options);
  client.on('error', noop);
  return client;
}

function noop(): void {}

/** Connect a lazy client, rejecting (and stopping its reconnect loop) if it is not ready within `ms`. */
export async function connectWithin(client: Redis, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      client.connect(),
      new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`not connected within ${ms} ms`)), ms); }),
    ]);
  } catch (err) {
    client.disconnect();
    throw err;
  } finally {
    if (timer) clearTimeout(timer);
  }
}

/** QUIT when connected (bounded by the command timeout), otherwise just drop the socket and stop reconnecting. */
export async function quitOrDisconnect(client: Redis): Promise<void> {
  if (client.status === 'ready') {
    try {
      await client.quit();
      return;
    } catch {
      // fall through
    }
  }
  client.disconnect();
}

/** Username, password and db of a redis:// URL (for Sentinel, where the host comes from the sentinels). */
function credentialsOf(url: string): { username?: string; password?: string; db?: number } {
  const out: { username?: string; password?: string; db?: number } = {};
  try {
    const u = new URL(url);
    if (u.username) out.username = decodeURIComponent(u.username);
    if (u.password) out.password = decodeURIComponent(u.password);
    const db = Number(u.pathname.slice(1));
    if (Number.isInteger(db) && db > 0) out.db = db;
  } catch {
    /* no URL: no credentials */
  }
  return out;
}

/** Parse "host:port" sentinel addresses. Throws on a malformed entry. */
export function parseSentinels(list: readonly string[]): Array<{ host: string; port: number }> {
  return list.map((entry) => {
    const at = entry.lastIndexOf(':');
    const host = entry.slice(0, at);
    const port = Number(entry.slice(at + 1));
    if (at <= 0 || !Number.isInteger(port) || port <= 0 || port > 65535) throw new TypeError(`broker.sentinels: expected host:port, got "${entry}"`);
    return { host, port };
  });
}
