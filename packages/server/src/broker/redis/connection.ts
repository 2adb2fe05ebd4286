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
  const client = new Redis(opts.url, {
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
  });
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
