/**
 * Child processes of a chaos or soak run: redis-server on a free loopback port and `switchboard serve` (the
 * compiled CLI). Every child is registered and killed (SIGKILL, after SIGCONT for a paused one) when the run
 * exits, whatever the reason; each pid is also written to a pid file so the next run can end leftovers of a
 * run that was itself killed (only pids whose command line still matches).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync, type WriteStream } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
export const CLI = resolve(ROOT, 'packages/server/dist/src/cli.js');

const children = new Set<ChildProcess>();
let pidFile: string | undefined;

function killAll(): void {
  for (const c of children) {
    if (c.exitCode === null && c.signalCode === null) {
      try { c.kill('SIGCONT'); c.kill('SIGKILL'); } catch { /* gone */ }
    }
  }
  children.clear();
}
process.on('exit', killAll);

function track(c: ChildProcess, marker: string): void {
  children.add(c);
  c.once('exit', () => { children.delete(c); });
  if (pidFile && c.pid !== undefined) {
    let list: Array<{ pid: number; marker: string }> = [];
    try { list = JSON.parse(readFileSync(pidFile, 'utf8')) as typeof list; } catch { /* first */ }
    list.push({ pid: c.pid, marker });
    writeFileSync(pidFile, JSON.stringify(list));
  }
}

/**
 * Remember children in `file`; first end the children a previous run left there (a run killed with SIGKILL
 * cannot clean up): only pids whose command line still contains the marker they were started with.
 */
export function usePidFile(file: string): void {
  mkdirSync(dirname(file), { recursive: true });
  if (existsSync(file)) {
    try {
      for (const { pid, marker } of JSON.parse(readFileSync(file, 'utf8')) as Array<{ pid: number; marker: string }>) {
        let cmd = '';
        try { cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' '); } catch { continue; }
        if (cmd.includes(marker)) { try { process.kill(pid, 'SIGCONT'); process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
      }
    } catch { /* unreadable: ignore */ }
  }
  writeFileSync(file, '[]');
  pidFile = file;
}

export function installSignalHandlers(onStop: (signal: string) => void): void {
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => { onStop(sig); killAll(); process.exit(130); });
  }
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

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** `promise`, or a rejection after `ms` saying what timed out. */
export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, rej) => { timer = setTimeout(() => rej(new Error(`${what}: no answer within ${ms} ms`)), ms); }),
  ]).finally(() => clearTimeout(timer));
}

/** Resident set size of a process in bytes (Linux /proc), or null if it is gone. */
export function rssOf(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

/**
 * Make sure `redis-server` is installed: the same provisioning the tests use (scripts/provision/redis.sh
 * install: apt-get when missing). Throws if it still is not there.
 */
export function ensureRedisServer(): void {
  const found = spawnSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' });
  if (found.status === 0) return;
  const r = spawnSync('bash', [resolve(ROOT, 'scripts/provision/redis.sh'), 'install'], { stdio: ['ignore', 'inherit', 'inherit'], timeout: 300_000 });
  if (r.status !== 0) throw new Error('redis-server is missing and scripts/provision/redis.sh install failed');
}

/** A redis-server child (no persistence unless `appendonly`), restartable on the same port. */
export class RedisServer {
  private child: ChildProcess | undefined;
  paused = false;
  constructor(readonly port: number, readonly dir: string, readonly appendonly = false) {}
  get url(): string { return `redis://127.0.0.1:${this.port}`; }
  get pid(): number | undefined { return this.child?.pid; }

  async start(): Promise<void> {
    mkdirSync(this.dir, { recursive: true });
    const args = ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', this.appendonly ? 'yes' : 'no',
      '--appendfsync', 'everysec', '--dir', this.dir, '--maxmemory-policy', 'noeviction'];
    const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    this.paused = false;
    track(child, `redis-server 127.0.0.1:${this.port}`);
    let out = '';
    await new Promise<void>((res, rej) => {
      const timer = setTimeout(() => rej(new Error(`redis-server did not start on ${this.port} within 10 s: ${out}`)), 10_000);
      const onData = (d: Buffer): void => {
        out += d.toString();
        if (out.includes('Ready to accept connections')) { clearTimeout(timer); res(); }
      };
      child.stdout!.on('data', onData);
      child.stderr!.on('data', onData);
      child.once('error', (err) => { clearTimeout(timer); rej(err); });
      child.once('exit', (code) => { clearTimeout(timer); rej(new Error(`redis-server exited with ${code}: ${out}`)); });
    });
    child.removeAllListeners('exit');
    child.stdout!.removeAllListeners('data').resume();
    child.stderr!.removeAllListeners('data').resume();
  }

  /** SIGKILL and wait for the exit (at most 5 s). */
  async kill(): Promise<void> {
    const c = this.child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise((r) => c.once('exit', r));
    c.kill('SIGCONT');
    c.kill('SIGKILL');
    await within(exited, 5000, 'redis-server exit');
    this.paused = false;
  }

  /** Kill it and remove its data directory (end of a run). */
  async dispose(): Promise<void> {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }

  pause(): void { this.child?.kill('SIGSTOP'); this.paused = true; }
  resume(): void { this.child?.kill('SIGCONT'); this.paused = false; }
}

export interface ServerSpec {
  id: string;
  redisUrl: string;
  keyPrefix: string;
  settings: Record<string, string>;
  logDir: string;
  /** Keep the port of a previous incarnation (restart under the same id and address). */
  port?: number;
}

/** One `switchboard serve --broker redis` child; stdout/stderr go to <logDir>/<id>.log. */
export class ServerProcess {
  port = 0;
  exitInfo: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  /** Set when the run killed it on purpose (an exit otherwise is a crash). */
  expectedExit = false;
  readonly exit: Promise<void>;
  private readonly log: WriteStream;

  private constructor(readonly spec: ServerSpec, readonly child: ChildProcess) {
    mkdirSync(spec.logDir, { recursive: true });
    this.log = createWriteStream(resolve(spec.logDir, `${spec.id}.log`), { flags: 'a' });
    child.stdout!.pipe(this.log, { end: false });
    child.stderr!.pipe(this.log, { end: false });
    this.exit = new Promise((res) => {
      child.once('exit', (code, signal) => { this.exitInfo = { code, signal }; res(); });
    });
  }

  static async spawn(spec: ServerSpec): Promise<ServerProcess> {
    const port = spec.port ?? await freePort();
    const args = [CLI, 'serve', '--broker', 'redis', '--redis-url', spec.redisUrl, '--node-id', spec.id, '--port', String(port),
      '--host', '127.0.0.1', '--log-level', 'warn', '--set', `broker.keyPrefix=${spec.keyPrefix}`];
    for (const [k, v] of Object.entries(spec.settings)) args.push('--set', `${k}=${v}`);
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe', 'ipc'], cwd: ROOT });
    track(child, `--node-id ${spec.id} --port ${port}`);
    const node = new ServerProcess(spec, child);
    node.port = await new Promise<number>((res, rej) => {
      const timer = setTimeout(() => rej(new Error(`node ${spec.id} did not start within 15 s (see ${spec.logDir}/${spec.id}.log)`)), 15_000);
      child.on('message', (m: { type?: string; port?: number }) => {
        if (m.type === 'listening' && typeof m.port === 'number') { clearTimeout(timer); res(m.port); }
      });
      void node.exit.then(() => { clearTimeout(timer); rej(new Error(`node ${spec.id} exited during start (${node.exitInfo?.code ?? node.exitInfo?.signal})`)); });
    });
    return node;
  }

  get id(): string { return this.spec.id; }
  get pid(): number | undefined { return this.child.pid; }
  get alive(): boolean { return this.exitInfo === null; }
  get ws(): string { return `ws://127.0.0.1:${this.port}/ws`; }
  get http(): string { return `http://127.0.0.1:${this.port}`; }

  async kill9(): Promise<void> {
    if (!this.alive) return;
    this.expectedExit = true;
    this.child.kill('SIGKILL');
    await within(this.exit, 5000, `${this.id} exit`);
  }

  async stop(ms = 5000): Promise<void> {
    if (!this.alive) return;
    this.expectedExit = true;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), ms);
    await this.exit;
    clearTimeout(timer);
  }
}

/** GET a JSON document with a timeout. */
export async function getJson(url: string, timeoutMs = 3000): Promise<{ status: number; body: any }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  const text = await res.text();
  return { status: res.status, body: text === '' ? null : JSON.parse(text) };
}

/** GET a text document with a timeout. */
export async function getText(url: string, timeoutMs = 3000): Promise<{ status: number; text: string }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  return { status: res.status, text: await res.text() };
}
