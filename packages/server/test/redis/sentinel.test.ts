import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Redis } from 'ioredis';
import { Switchboard } from '../../src/server.js';
import { pollUntil, TestClient, untilNotified } from '../helpers.js';
import { REPO_ROOT, RedisProcess, freePort } from './redis-process.js';

/** A redis-server child whose output can be awaited. */
interface RedisChild {
  child: ChildProcess;
  /** Resolves once the output contains `text` (checked on each chunk: an event, not a timer). */
  said(text: string, timeoutMs?: number): Promise<void>;
}

/** Spawn redis-server with args and wait for a line in its output. */
async function spawnRedis(args: string[], ready: string): Promise<RedisChild> {
  const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const listeners = new Set<() => void>();
  const onData = (d: Buffer) => {
    out += d.toString();
    for (const l of [...listeners]) l();
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  child.on('exit', () => {
    for (const l of [...listeners]) l();
  });
  const said = (text: string, timeoutMs = 10_000): Promise<void> =>
    untilNotified(() => {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`redis-server ${args.join(' ')} exited:\n${out}`);
      return out.includes(text);
    }, `redis-server ${args.join(' ')} to say "${text}"; said:\n${out}`, timeoutMs, (l) => {
      listeners.add(l);
      return () => listeners.delete(l);
    });
  await said(ready);
  return { child, said };
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
    children.push((await spawnRedis(['--port', String(replicaPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--replicaof', '127.0.0.1', String(primary.port)], 'MASTER <-> REPLICA sync: Finished')).child);
    const sentinelPort = await freePort();
    const conf = resolve(dir, 'sentinel.conf');
    writeFileSync(conf, [
      `port ${sentinelPort}`, 'bind 127.0.0.1', `dir ${dir}`,
      `sentinel monitor sbm 127.0.0.1 ${primary.port} 1`,
      'sentinel down-after-milliseconds sbm 500',
      'sentinel failover-timeout sbm 3000',
    ].join('\n') + '\n');
    const sentinelProc = await spawnRedis([conf, '--sentinel'], '+monitor master sbm');
    children.push(sentinelProc.child);
    // The sentinel must know the replica before the primary dies: it logs `+slave` when it discovers it.
    await sentinelProc.said(`+slave slave 127.0.0.1:${replicaPort}`);
    const sentinel = new Redis({ port: sentinelPort, host: '127.0.0.1', lazyConnect: true });
    await sentinel.connect();
    assert.ok(((await sentinel.call('SENTINEL', 'REPLICAS', 'sbm')) as unknown[]).length > 0, 'sentinel knows the replica');

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
      // Sentinel logs `+switch-master` once it promoted the replica.
      await sentinelProc.said('+switch-master sbm', 20_000);
      // Until the server's Redis client has moved to the new primary, publishes fail fast; then they succeed.
      // Polled: that reconnection happens inside ioredis and announces itself to nobody outside the server.
      await pollUntil(async () => {
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
