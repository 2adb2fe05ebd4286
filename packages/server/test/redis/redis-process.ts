/** Test helper: a redis-server child process owned by the test (killable, restartable on the same port). */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Repository root, from packages/server/dist/test/redis/<file>.js */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../../../..');

export function requireRedisUrl(): string {
  const url = process.env.REDIS_URL;
  if (!url) {
    throw new Error('REDIS_URL is not set: run `eval "$(bash scripts/provision/redis.sh)"` first (the Redis tests never skip).');
  }
  return url;
}

export async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.on('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => res(port));
    });
  });
}

export class RedisProcess {
  private child: ChildProcess | undefined;
  constructor(readonly port: number) {}
  get url(): string { return `redis://127.0.0.1:${this.port}`; }
  get pid(): number | undefined { return this.child?.pid; }

  /** Start redis-server (no persistence) and wait until it accepts connections. */
  async start(): Promise<void> {
    const dir = resolve(REPO_ROOT, '.tmp', `redis-test-${this.port}`);
    mkdirSync(dir, { recursive: true });
    const child = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    let out = '';
    // Ready when its log says so: checked on each chunk of output (an event), not on a timer.
    await new Promise<void>((res, rej) => {
      const timer = setTimeout(() => rej(new Error(`redis-server did not start on ${this.port}: ${out}`)), 5000);
      const onData = (d: Buffer): void => {
        out += d.toString();
        if (out.includes('Ready to accept connections')) { clearTimeout(timer); res(); }
      };
      child.stdout!.on('data', onData);
      child.stderr!.on('data', onData);
      child.on('error', (err) => { clearTimeout(timer); rej(new Error(`cannot run redis-server (run scripts/provision/redis.sh to install it): ${err.message}`)); });
      child.on('exit', (code) => { clearTimeout(timer); rej(new Error(`redis-server exited with ${code}: ${out}`)); });
    });
    child.removeAllListeners('exit');
  }

  signal(sig: NodeJS.Signals): void { this.child?.kill(sig); }

  /** SIGKILL and wait for the exit. */
  async kill(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGCONT');
    child.kill('SIGKILL');
    await exited;
  }
}
