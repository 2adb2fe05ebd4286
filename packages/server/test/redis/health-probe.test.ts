/**
 * `/health` probes the broker: a Redis that is stalled (SIGSTOP: every connection stays open, no `close`
 * event, but no command is answered) makes publishes fail with BROKER_UNAVAILABLE, and `/health` must say so
 * (`degraded`, 503) instead of `healthy`. Against our own redis-server (paused and resumed), not $REDIS_URL.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Switchboard } from '../../src/server.js';
import { getJson, pollUntil, postJson } from '../cluster/harness.js';
import { freePort, RedisProcess, requireRedisUrl } from './redis-process.js';

requireRedisUrl(); // provisioned (redis-server installed); this suite owns a second, pausable server

const COMMAND_TIMEOUT_MS = 400;

describe('/health with a stalled Redis', () => {
  let redis: RedisProcess;
  let sb: Switchboard;
  let http = '';

  before(async () => {
    redis = new RedisProcess(await freePort());
    await redis.start();
    sb = await Switchboard.create({
      host: '127.0.0.1',
      port: 0,
      log: { level: 'silent' },
      store: { driver: 'none' },
      http: { serveDemo: false },
      broker: { type: 'redis', redisUrl: redis.url, keyPrefix: `sbhealth-${process.pid}:`, commandTimeoutMs: COMMAND_TIMEOUT_MS },
    }, { defaultMetrics: false });
    http = `http://127.0.0.1:${await sb.listen()}`;
  });

  after(async () => {
    redis.signal('SIGCONT');
    await sb?.close();
    await redis.kill();
  });

  it('SIGSTOP: publishes fail and /health says degraded (503) within a probe; SIGCONT: healthy again', async () => {
    const ok = await getJson(`${http}/health`);
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.equal(ok.body.status, 'healthy');
    assert.equal(ok.body.broker_status, 'up');

    redis.signal('SIGSTOP');
    try {
      const t0 = Date.now();
      const pub = await postJson(`${http}/api/publish`, { channel: 'stalled', data: { n: 1 } });
      assert.equal(pub.status, 503, JSON.stringify(pub.body));
      assert.equal(pub.body.error.code, 'BROKER_UNAVAILABLE');
      assert.ok(Date.now() - t0 < COMMAND_TIMEOUT_MS + 1000, 'the publish failed fast');
      // Polled: the probe result is cached for a short interval (and the broker status is internal).
      const h = await pollUntil(() => getJson(`${http}/health`), (r) => r.status === 503, 5000, '/health degraded while Redis is stalled');
      assert.equal(h.body.status, 'degraded');
      assert.equal(h.body.broker_status, 'unresponsive');
      // /health itself stays cheap and bounded while Redis is stalled.
      const t1 = Date.now();
      assert.equal((await getJson(`${http}/health`)).status, 503);
      assert.ok(Date.now() - t1 < COMMAND_TIMEOUT_MS + 1000, `/health answered in ${Date.now() - t1} ms`);
    } finally {
      redis.signal('SIGCONT');
    }
    const back = await pollUntil(() => getJson(`${http}/health`), (r) => r.status === 200, 10_000, '/health healthy after SIGCONT');
    assert.equal(back.body.broker_status, 'up');
    assert.equal((await postJson(`${http}/api/publish`, { channel: 'stalled', data: { n: 2 } })).status, 200);
  });
});
