/**
 * Cluster test harness: real `switchboard serve --broker redis` child processes (the compiled CLI) on one
 * Redis, each on a free loopback port, plus small HTTP helpers. Each node reports `{type:'listening', port}`
 * over IPC once it accepts connections.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import { REPO_ROOT } from '../redis/redis-process.js';

export const CLI = resolve(REPO_ROOT, 'packages/server/dist/src/cli.js');

/** Short timings so node failure, presence expiry and typing auto-stop are observable in a test. */
export const FAST_SETTINGS: Record<string, string> = {
  'broker.presenceTtlMs': '1500',
  'broker.commandTimeoutMs': '500',
  'broker.nodeReportIntervalMs': '200',
  'heartbeat.pingIntervalMs': '1000',
  'heartbeat.pongTimeoutMs': '2000',
  'typing.timeoutMs': '2000',
  'limits.rateLimit.perSecond': '2000',
  'limits.rateLimit.burst': '2000',
  'shutdown.deadlineMs': '1000',
  'http.serveDemo': 'false',
  // Archive and inbox are not under test here (a cluster shares PostgreSQL; SQLite is one process per file).
  'store.driver': 'none',
};

export interface NodeSpec {
  id: string;
  redisUrl: string;
  keyPrefix: string;
  /** Extra `--set key=value` pairs (override FAST_SETTINGS). */
  settings?: Record<string, string>;
}

/** One server process. `exit` resolves when the process ends (for "no crash" assertions: check `exited`). */
export class ServerNode {
  port = 0;
  output = '';
  exitInfo: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  readonly exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  private constructor(readonly id: string, readonly child: ChildProcess) {
    child.stdout!.on('data', (d: Buffer) => { this.output += d.toString(); });
    child.stderr!.on('data', (d: Buffer) => { this.output += d.toString(); });
    this.exit = new Promise((res) => {
      child.once('exit', (code, signal) => {
        this.exitInfo = { code, signal };
        res(this.exitInfo);
      });
    });
  }

  /** Spawn `cli.js serve` and wait for its `listening` IPC message (rejects with its output if it exits). */
  static async spawn(spec: NodeSpec): Promise<ServerNode> {
    const settings = { ...FAST_SETTINGS, 'broker.keyPrefix': spec.keyPrefix, ...spec.settings };
    const args = [CLI, 'serve', '--broker', 'redis', '--redis-url', spec.redisUrl, '--node-id', spec.id,
      '--port', '0', '--host', '127.0.0.1', '--log-level', 'warn'];
    for (const [k, v] of Object.entries(settings)) args.push('--set', `${k}=${v}`);
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe', 'ipc'], cwd: REPO_ROOT });
    const node = new ServerNode(spec.id, child);
    node.port = await new Promise<number>((res, rej) => {
      const timer = setTimeout(() => rej(new Error(`node ${spec.id} did not start within 10 s:\n${node.output}`)), 10_000);
      child.on('message', (m: { type?: string; port?: number }) => {
        if (m.type === 'listening' && typeof m.port === 'number') { clearTimeout(timer); res(m.port); }
      });
      void node.exit.then((e) => { clearTimeout(timer); rej(new Error(`node ${spec.id} exited (${e.code ?? e.signal}):\n${node.output}`)); });
    });
    return node;
  }

  get ws(): string { return `ws://127.0.0.1:${this.port}`; }
  get http(): string { return `http://127.0.0.1:${this.port}`; }
  get alive(): boolean { return this.exitInfo === null; }

  /** kill -9, wait for the exit. */
  async kill9(): Promise<void> {
    if (!this.alive) return;
    this.child.kill('SIGKILL');
    await this.exit;
  }

  /** SIGTERM (graceful shutdown), SIGKILL after `ms`. */
  async stop(ms = 5000): Promise<void> {
    if (!this.alive) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), ms);
    await this.exit;
    clearTimeout(timer);
  }
}

/** Start `n` nodes (`<name>-a`, `-b`, `-c`, …) in parallel on one Redis and key prefix. */
export async function startNodes(n: number, redisUrl: string, keyPrefix: string, settings: Record<string, string> = {}): Promise<ServerNode[]> {
  const ids = Array.from({ length: n }, (_, i) => `node-${String.fromCharCode(97 + i)}`);
  const started = await Promise.allSettled(ids.map((id) => ServerNode.spawn({ id, redisUrl, keyPrefix, settings })));
  const nodes = started.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const failed = started.find((r) => r.status === 'rejected');
  if (failed !== undefined) {
    await Promise.all(nodes.map((x) => x.kill9()));
    throw (failed as PromiseRejectedResult).reason;
  }
  return nodes;
}

/** A key prefix unique to this test run (several suites share the provisioned Redis). */
export function uniquePrefix(name: string): string {
  return `sbc-${name}-${process.pid}-${Date.now().toString(36)}:`;
}

export interface JsonResponse { status: number; body: any }

export async function getJson(url: string): Promise<JsonResponse> {
  const res = await fetch(url);
  return { status: res.status, body: await res.json() };
}

export async function postJson(url: string, body: unknown): Promise<JsonResponse> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, body: text === '' ? null : JSON.parse(text) };
}

/**
 * Poll `fn` until `check(value)` holds; returns the value. Throws with the last value on timeout. Only for
 * state that no frame or process event announces (Redis expiry, a node's timers, its internal broker status):
 * each call site says which. Wait for frames with TestClient.next/until/barrier instead.
 */
export async function pollUntil<T>(fn: () => Promise<T>, check: (v: T) => boolean, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  let lastErr: unknown;
  for (;;) {
    try {
      last = await fn();
      if (check(last)) return last;
    } catch (err) {
      lastErr = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last value: ${JSON.stringify(last)}${lastErr ? `; last error: ${String(lastErr)}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
}
