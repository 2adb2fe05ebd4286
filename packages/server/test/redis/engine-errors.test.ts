/**
 * Redis engine errors that no caller can receive are logged at warn (with their context) and counted in
 * `switchboard_broker_errors_total{context}` by the composition root (Switchboard.create), against a real Redis
 * ($REDIS_URL): a malformed pub/sub message, a failed resubscribe (ACL revoked channel access), a failed
 * presence refresh (a key of the wrong type).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { Switchboard } from '../../src/server.js';
import type { Logger } from '../../src/core/ports/observability.js';
import { TestClient } from '../helpers.js';
import { uid } from '../broker-contract.js';
import { requireRedisUrl } from './redis-process.js';

const REDIS_URL = requireRedisUrl();

interface Entry { level: string; fields: Record<string, unknown>; msg: string }

/** A pino-compatible logger that records every line and lets a test await one. */
class RecordingLogger implements Logger {
  readonly entries: Entry[] = [];
  private waiters: Array<{ match: (e: Entry) => boolean; resolve: (e: Entry) => void }> = [];
  debug(fields: object, msg: string): void { this.add('debug', fields, msg); }
  info(fields: object, msg: string): void { this.add('info', fields, msg); }
  warn(fields: object, msg: string): void { this.add('warn', fields, msg); }
  error(fields: object, msg: string): void { this.add('error', fields, msg); }
  private add(level: string, fields: object, msg: string): void {
    const e = { level, fields: fields as Record<string, unknown>, msg };
    this.entries.push(e);
    this.waiters = this.waiters.filter((w) => (w.match(e) ? (w.resolve(e), false) : true));
  }
  /** The first line (already logged or to come) that matches; fails after `ms`. */
  next(match: (e: Entry) => boolean, what: string, ms = 10_000, from = 0): Promise<Entry> {
    const seen = this.entries.slice(from).find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for log: ${what}`)), ms);
      this.waiters.push({ match, resolve: (e) => { clearTimeout(timer); resolve(e); } });
    });
  }
}

const engineError = (context: string) => (e: Entry) => e.level === 'warn' && e.fields.context === context;

async function brokerErrors(sb: Switchboard, context: string): Promise<number> {
  const metric = sb.metrics.registry.getSingleMetric('switchboard_broker_errors_total');
  assert.ok(metric, 'switchboard_broker_errors_total is registered');
  const { values } = await metric.get();
  return values.find((v) => v.labels.context === context)?.value ?? 0;
}

describe('Redis engine errors reach the log and switchboard_broker_errors_total', () => {
  const admin = new Redis(REDIS_URL);
  const user = `sbtest-${randomBytes(4).toString('hex')}`;
  const password = randomBytes(12).toString('hex');
  const keyPrefix = `sbtest-${uid('err')}:`;
  const logger = new RecordingLogger();
  let sb: Switchboard;
  let ws = '';

  before(async () => {
    // A user of its own, so the test can revoke its channel access without touching anything else.
    await admin.call('ACL', 'SETUSER', user, 'on', `>${password}`, '~*', '&*', '+@all');
    const url = new URL(REDIS_URL);
    url.username = user;
    url.password = password;
    sb = await Switchboard.create({
      host: '127.0.0.1',
      port: 0,
      store: { driver: 'none' },
      http: { serveDemo: false },
      broker: { type: 'redis', redisUrl: url.href, keyPrefix, presenceTtlMs: 600, commandTimeoutMs: 1000 },
    }, { logger, defaultMetrics: false });
    const port = await sb.listen();
    ws = `ws://127.0.0.1:${port}`;
  });

  after(async () => {
    await sb?.close();
    await admin.call('ACL', 'DELUSER', user);
    admin.disconnect();
  });

  it('a malformed message on the node\'s control channel', async () => {
    assert.equal(await brokerErrors(sb, 'broker_message'), 0);
    await admin.publish(`${keyPrefix}ctl`, 'this is not a bus message');
    const line = await logger.next(engineError('broker_message'), 'broker_message warning');
    assert.equal(line.fields.pubsub, `${keyPrefix}ctl`);
    assert.ok(line.fields.err instanceof Error);
    assert.match(line.msg, /broker_message/);
    assert.equal(await brokerErrors(sb, 'broker_message'), 1);
  });

  it('a failed presence refresh', async () => {
    const userId = uid('u');
    const client = await TestClient.connect(`${ws}/ws?user_id=${userId}`);
    try {
      // The user's node set becomes a string: the refresh's SADD fails with WRONGTYPE.
      await admin.multi().del(`${keyPrefix}{u:${userId}}:n`).set(`${keyPrefix}{u:${userId}}:n`, 'not a set').exec();
      const line = await logger.next(engineError('presence_refresh'), 'presence_refresh warning');
      assert.match(String((line.fields.err as Error).message), /WRONGTYPE/);
      assert.ok(await brokerErrors(sb, 'presence_refresh') >= 1);
    } finally {
      client.close();
      await client.closed;
    }
  });

  it('a failed resubscribe, retried until it succeeds', async () => {
    const from = logger.entries.length;
    // Revoking channel access makes Redis drop the subscriber connection; its resubscribe is refused (NOPERM).
    await admin.call('ACL', 'SETUSER', user, 'resetchannels');
    const line = await logger.next(engineError('broker_resubscribe'), 'broker_resubscribe warning', 10_000, from);
    assert.match(String((line.fields.err as Error).message), /NOPERM/);
    assert.ok(await brokerErrors(sb, 'broker_resubscribe') >= 1);
    await logger.next((e) => e.msg === 'broker status changed' && e.fields.status === 'down', 'broker down', 10_000, from);
    // Access back: the retry resubscribes and the broker is up again.
    const restored = logger.entries.length;
    await admin.call('ACL', 'SETUSER', user, 'allchannels');
    await logger.next((e) => e.msg === 'broker status changed' && e.fields.status === 'up', 'broker up after the retry', 15_000, restored);
    const text = await sb.metrics.registry.metrics();
    assert.match(text, /switchboard_broker_errors_total\{context="broker_resubscribe"\} [1-9]/);
    assert.match(text, /switchboard_broker_errors_total\{context="broker_message"\} 1/);
  });
});
