/**
 * Child-process plumbing for the orchestrator: servers under test (spawned with the stats probe
 * preloaded and an IPC channel), load processes (forked), free ports, readiness polling.
 * Every child is registered and killed on orchestrator exit, so nothing outlives a run.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import type { FromLoad, ToLoad } from './ipc.js';

const children = new Set<ChildProcess>();
process.on('exit', () => { for (const c of children) if (c.exitCode === null) c.kill('SIGKILL'); });
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => process.exit(130));

export const distDir = fileURLToPath(new URL('.', import.meta.url));

/** Whether `taskset` (util-linux) is available to pin processes to CPUs. */
export const canPin = spawnSync('taskset', ['-c', '0', 'true']).status === 0;

/** Spawns `node <args>` with an IPC channel, pinned to `cpus` (e.g. "0") through taskset when given. */
function spawnNode(args: string[], cpus: string | null, opts: { cwd?: string; stdio: Array<'ignore' | 'inherit' | 'pipe' | 'ipc'>; env?: NodeJS.ProcessEnv }): ChildProcess {
  if (cpus !== null) return spawn('taskset', ['-c', cpus, process.execPath, ...args], opts);
  return spawn(process.execPath, args, opts);
}

/** A free TCP port on 127.0.0.1 (bound then released). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** Resolves once host:port accepts TCP connections; rejects at the deadline or if `alive()` turns false. */
export async function waitForPort(host: string, port: number, timeoutMs: number, alive: () => boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host, port });
      s.once('connect', () => { s.destroy(); resolve(true); });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (!alive()) throw new Error('server exited before listening');
    if (Date.now() > deadline) throw new Error(`server not listening on ${host}:${port} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Extra node flags for every server under test, from $BENCH_SERVER_NODE_ARGS (space separated), e.g.
 * `BENCH_SERVER_NODE_ARGS="--cpu-prof --cpu-prof-dir=.artifacts/prof"` to profile the servers (node refuses
 * --cpu-prof in NODE_OPTIONS). A profile is written when the server exits normally (SIGTERM at the end of a run).
 */
const SERVER_NODE_ARGS = (process.env.BENCH_SERVER_NODE_ARGS ?? '').split(/\s+/).filter(Boolean);
/** The same for the load processes, from $BENCH_LOAD_NODE_ARGS (e.g. `--trace-gc` to see the clients' pauses). */
const LOAD_NODE_ARGS = (process.env.BENCH_LOAD_NODE_ARGS ?? '').split(/\s+/).filter(Boolean);

export interface Stats { cpu: NodeJS.CpuUsage; mem: NodeJS.MemoryUsage }

/** A server under test, in its own process. */
export class ServerProc {
  readonly child: ChildProcess;
  private stderrTail = '';
  private nextId = 1;
  private waiting = new Map<number, (s: Stats) => void>();

  constructor(script: string, args: string[], cwd: string, cpus: string | null) {
    const probe = new URL('./probe.js', import.meta.url).href;
    this.child = spawnNode(['--expose-gc', ...SERVER_NODE_ARGS, '--import', probe, script, ...args], cpus, {
      cwd, stdio: ['ignore', 'ignore', 'pipe', 'ipc'], env: { ...process.env, NODE_ENV: 'production' },
    });
    children.add(this.child);
    this.child.stderr!.setEncoding('utf8');
    this.child.stderr!.on('data', (d: string) => { this.stderrTail = (this.stderrTail + d).slice(-2000); });
    this.child.on('message', (m: { reply: number; cpu: NodeJS.CpuUsage; mem: NodeJS.MemoryUsage }) => {
      this.waiting.get(m.reply)?.({ cpu: m.cpu, mem: m.mem });
      this.waiting.delete(m.reply);
    });
  }

  get alive(): boolean { return this.child.exitCode === null && this.child.signalCode === null; }
  get stderr(): string { return this.stderrTail; }

  /** CPU (µs) and memory of the server process; `gc` runs two full GCs first. */
  stats(gc: boolean): Promise<Stats> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => { this.waiting.delete(id); reject(new Error('server stats timeout')); }, 15_000);
      this.waiting.set(id, (s) => { clearTimeout(timer); resolve(s); });
      this.child.send({ cmd: 'stats', id, gc });
    });
  }

  /** SIGTERM, then SIGKILL after 3 s. */
  async stop(): Promise<void> {
    if (!this.alive) return;
    const exited = new Promise<void>((r) => this.child.once('exit', () => r()));
    this.child.kill('SIGTERM');
    const t = setTimeout(() => this.child.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(t);
    children.delete(this.child);
  }
}

/**
 * A server under test on a free port: `node <script> ...args(port)` in `cwd`, pinned to `cpus`; resolves once
 * it accepts TCP connections (stopped again, with its stderr in the error, if it does not within 15 s).
 */
export async function launchServer(script: string, args: (port: number) => string[], cwd: string, cpus: string | null): Promise<{ server: ServerProc; port: number }> {
  if (!existsSync(script)) throw new Error(`${script} not found (not built yet?)`);
  const port = await freePort();
  const server = new ServerProc(script, args(port), cwd, cpus);
  try {
    await waitForPort('127.0.0.1', port, 15_000, () => server.alive);
  } catch (e) {
    await server.stop();
    throw new Error(`${(e as Error).message}; stderr: ${server.stderr.trim().slice(-500)}`);
  }
  return { server, port };
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
/** A command for a load process, without its id. */
export type LoadRequest = DistributiveOmit<ToLoad, 'id'>;

/** A load process (load.js) driven by request/reply over IPC. */
export class LoadProc {
  readonly child: ChildProcess;
  private nextId = 1;
  private waiting = new Map<number, (m: FromLoad) => void>();

  constructor(cpus: string | null) {
    this.child = spawnNode([...LOAD_NODE_ARGS, fileURLToPath(new URL('./load.js', import.meta.url))], cpus, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    children.add(this.child);
    this.child.on('message', (m: FromLoad) => { this.waiting.get(m.reply)?.(m); this.waiting.delete(m.reply); });
    this.child.on('exit', (code) => {
      for (const w of this.waiting.values()) w({ reply: 0, ok: false, error: `load process exited (${code})` });
      this.waiting.clear();
    });
  }

  request<T>(msg: LoadRequest, timeoutMs = 300_000): Promise<T> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => { this.waiting.delete(id); reject(new Error(`load ${msg.cmd} timed out`)); }, timeoutMs);
      this.waiting.set(id, (m) => {
        clearTimeout(timer);
        if (m.ok) resolve(m.result as T);
        else reject(new Error(m.error));
      });
      this.child.send({ ...msg, id });
    });
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise<void>((r) => this.child.once('exit', () => r()));
    await this.request({ cmd: 'close' }, 5000).catch(() => undefined);
    const t = setTimeout(() => this.child.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(t);
    children.delete(this.child);
  }
}

