import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Redis } from 'ioredis';
import { Switchboard } from '../../src/server.js';
import { TestClient, waitFor } from '../helpers.js';
import { REPO_ROOT, RedisProcess, freePort } from './redis-process.js';

/** Spawn redis-server with args and wait for a line in its output. */
async function spawnRedis(args: string[], ready: string): Promise<ChildProcess> {
  const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const onData = (d: Buffer) => (out += d.toString());
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  await waitFor(() => out.includes(ready) || child.exitCode !== null, 10_000, `redis-server ${args.join(' ')} to say "${ready}"`);
  assert.equal(child.exitCode, null, out);
  return child;
}

describe('Redis Sentinel', () => {
  const children: ChildProcess[] = [];
  let primary: RedisProcess | null = null;
  after(async () => {
    for (const c of children) c.kill('SIGKILL');
    await primary?.kill();
  });

  it('finds the primary through Sentinel and keeps delivering after a failover', async () => {
    primary = new RedisProcess(await freePort());
    await primary.start();
    const replicaPort = await freePort();
    const dir = resolve(REPO_ROOT, '.tmp', `sentinel-${replicaPort}`);
    mkdirSync(dir, { recursive: true });
    children.push(await spawnRedis(['--port', String(replicaPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--replicaof', '127.0.0.1', String(primary.port)], 'MASTER <-> REPLICA sync: Finished'));
    const sentinelPort = await freePort();
    const conf = resolve(dir, 'sentinel.conf');
    writeFileSync(conf, [
      `port ${sentinelPort}`, 'bind 127.0.0.1', `dir ${dir}`,
      `sentinel monitor sbm 127.0.0.1 ${primary.port} 1`,
      'sentinel down-after-milliseconds sbm 500',
      'sentinel failover-timeout sbm 3000',
    ].join('\n') + '\n');
    children.push(await spawnRedis([conf, '--sentinel'], '+monitor master sbm'));
    // The sentinel must know the replica before the primary dies.
    const sentinel = new Redis({ port: sentinelPort, host: '127.0.0.1', lazyConnect: true });
    await sentinel.connect();
    await waitFor(async () => ((await sentinel.call('SENTINEL', 'REPLICAS', 'sbm')) as unknown[]).length > 0, 10_000, 'sentinel to discover the replica');

    const deadPort = await freePort(); // nothing listens here: every connection must go through Sentinel
    const sb = await Switchboard.create({
      host: '127.0.0.1', port: 0, log: { level: 'silent' }, store: { driver: 'none' },
      broker: { type: 'redis', redisUrl: `redis://127.0.0.1:${deadPort}`, sentinels: [`127.0.0.1:${sentinelPort}`], sentinelName: 'sbm', commandTimeoutMs: 500 },
    }, { defaultMetrics: false });
    const port = await sb.listen();
    try {
      const c = await TestClient.connect(`ws://127.0.0.1:${port}/ws`);
      await c.join('ha');
      await sb.node.publish('ha', { n: 1 });
      assert.equal((await c.next('message')).data.n, 1);

      await primary.kill();
      // Until Sentinel promotes the replica, publishes fail fast; then they succeed on the new primary.
      await waitFor(async () => {
        try {
          await sb.node.publish('ha', { n: 2 });
          return true;
        } catch (err) {
          assert.equal((err as { code?: string }).code, 'BROKER_UNAVAILABLE');
          return false;
        }
      }, 20_000, 'a publish to succeed after the failover');
      const master = (await sentinel.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', 'sbm')) as string[];
      assert.equal(Number(master[1]), replicaPort, 'Sentinel promoted the replica');
      const after2 = await c.next((f) => f.type === 'message' && f.data.n === 2, 10_000);
      assert.equal(after2.data.n, 2, 'the subscriber still receives through the new primary');
      sentinel.disconnect();
      c.close();
    } finally {
      await sb.close();
    }
  });
});
