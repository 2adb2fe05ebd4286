/**
 * Presence storms across a cluster: Switchboard server processes on one real Redis (broker + presence
 * store), the members split evenly over them (default 10,000 members on 2 processes: 5,000 connections
 * each), each process's members in their own load process. Same stages and measurements as the presence
 * section of `npm run bench` (presence.ts): connect, join storm (everyone joins ONE channel at once),
 * reconnect storm (everyone closes and comes back at once). Not part of `npm run bench`:
 *
 *   npm run build --silent && node bench/dist/presence-cluster.js            # 10,000 members, presence on and off
 *   node bench/dist/presence-cluster.js --members 2000 --modes on --timeout 60
 *
 * Redis: $REDIS_URL if set (a unique key prefix per run), else a throwaway `redis-server` on a free port
 * (install it with scripts/provision/redis.sh), as bench/cluster-bench.mjs does.
 * Writes .artifacts/presence-cluster-<date>.json. Every stage is bounded by --timeout; children are killed on exit.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { distDir, freePort, ServerProc, waitForPort } from './procs.js';
import { presenceNotes, presenceTable, runPresence, stormChecks, type PresenceColumn, type PresenceRatio, type PresenceResult } from './presence.js';

const repoRoot = path.resolve(distDir, '..', '..');
const MAX_CONNS_PER_LOAD = 15_000;
const SOURCES = 8;
const log = (s: string) => process.stderr.write(`[presence-cluster] ${s}\n`);

type Mode = 'on' | 'off';
const MODE_ARGS: Record<Mode, string[]> = {
  on: [],
  off: ['--set', 'channels.defaults.presence=false', '--set', 'channels.defaults.joinLeave=false'],
};

interface Options {
  members: number;
  processes: number;
  modes: Mode[];
  timeoutSec: number;
  quietMs: number;
  sbArgs: string[];
  baseline: string | null;
  out: string | null;
}

const HELP = `usage: node bench/dist/presence-cluster.js [options]
  --members N        identified members, split evenly over the server processes (default 10000)
  --processes N      Switchboard server processes on the same Redis (default 2)
  --modes LIST       comma list of on,off (default on,off): presence at its defaults, and with
                     --set channels.defaults.presence=false --set channels.defaults.joinLeave=false
  --timeout S        give up a stage (connect, join storm, reconnect storm) after S seconds (default 180)
  --quiet-ms MS      control traffic silent this long = a stage is over (default 500; not counted in its time)
  --sb-args "ARGS"   extra arguments for every 'switchboard serve' (space separated)
  --baseline DIR     also run the Switchboard built in checkout DIR (after this one, same flags)
  --out FILE         JSON output (default .artifacts/presence-cluster-<date>.json)
Redis: $REDIS_URL if set, else a throwaway redis-server on a free port.`;

function parseArgs(argv: string[]): Options {
  const o: Options = { members: 10_000, processes: 2, modes: ['on', 'off'], timeoutSec: 180, quietMs: 500, sbArgs: [], baseline: null, out: null };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    const num = (): number => {
      const n = Number(next());
      if (!Number.isFinite(n) || n < 1) throw new Error(`${a} needs a positive number`);
      return Math.floor(n);
    };
    switch (a) {
      case '--members': o.members = num(); break;
      case '--processes': o.processes = num(); break;
      case '--modes': {
        const modes = next().split(',').map((x) => x.trim()).filter(Boolean);
        for (const m of modes) if (m !== 'on' && m !== 'off') throw new Error('--modes: on,off');
        o.modes = modes as Mode[];
        break;
      }
      case '--timeout': o.timeoutSec = num(); break;
      case '--quiet-ms': o.quietMs = Math.max(50, num()); break;
      case '--sb-args': o.sbArgs = next().split(/\s+/).filter(Boolean); break;
      case '--baseline': o.baseline = path.resolve(next()); break;
      case '--out': o.out = next(); break;
      case '-h': case '--help': console.log(HELP); process.exit(0);
      // falls through (unreachable)
      default: throw new Error(`unknown option ${a}\n${HELP}`);
    }
  }
  return o;
}

const redisChildren = new Set<ChildProcess>();
process.on('exit', () => { for (const c of redisChildren) c.kill('SIGKILL'); });

/** $REDIS_URL, or a throwaway redis-server (no persistence) on a free port. */
async function startRedis(): Promise<{ url: string; stop: () => Promise<void> }> {
  if (process.env.REDIS_URL) return { url: process.env.REDIS_URL, stop: async () => {} };
  const port = await freePort();
  const dir = path.join(repoRoot, '.tmp', `redis-presence-${port}`);
  mkdirSync(dir, { recursive: true });
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: ['ignore', 'pipe', 'inherit'] });
  redisChildren.add(child);
  await new Promise<void>((resolve, reject) => {
    let out = '';
    child.on('error', (e) => reject(new Error(`redis-server: ${e.message} (run scripts/provision/redis.sh, or set REDIS_URL)`)));
    child.once('exit', (code) => reject(new Error(`redis-server exited (${code})`)));
    child.stdout!.on('data', (d: Buffer) => { out += d.toString(); if (out.includes('Ready to accept connections')) resolve(); });
  });
  child.stdout!.resume();
  return {
    url: `redis://127.0.0.1:${port}`,
    stop: async () => {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await exited;
      redisChildren.delete(child);
    },
  };
}

/** One cluster (fresh servers, fresh key prefix) of the build in `root`, one presence mode: the three stages. */
async function runCluster(root: string, label: string, mode: Mode, o: Options, redisUrl: string): Promise<PresenceResult> {
  const script = path.join(root, 'packages/server/dist/src/cli.js');
  if (!existsSync(script)) throw new Error(`${script} not found (not built yet?)`);
  const prefix = `pbench-${Date.now().toString(36)}-${mode}:`;
  const nodes: Array<{ server: ServerProc; port: number }> = [];
  try {
    for (let i = 0; i < o.processes; i++) {
      const port = await freePort();
      const server = new ServerProc(script, [
        'serve', '--port', String(port), '--host', '127.0.0.1', '--log-level', 'warn',
        '--broker', 'redis', '--redis-url', redisUrl, '--node-id', `pbench-${i}`,
        '--set', `broker.keyPrefix=${prefix}`, '--set', 'limits.rateLimit.perSecond=0', '--set', 'store.driver=none',
        ...o.sbArgs, ...MODE_ARGS[mode],
      ], root, null);
      nodes.push({ server, port });
      try {
        await waitForPort('127.0.0.1', port, 15_000, () => server.alive);
      } catch (e) {
        throw new Error(`${(e as Error).message}; stderr: ${server.stderr.trim().slice(-500)}`);
      }
    }
    return await runPresence(nodes, {
      members: o.members, channel: 'presence', quietMs: o.quietMs, timeoutMs: o.timeoutSec * 1000,
      maxPerLoad: MAX_CONNS_PER_LOAD, sources: SOURCES, loadCpus: null, log,
    }, `${label} (presence ${mode}, ${o.processes} processes)`);
  } finally {
    await Promise.all(nodes.map((n) => n.server.stop()));
  }
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  const started = new Date();
  const t0 = performance.now();
  const builds: Array<{ key: string; label: string; root: string }> = [{ key: 'switchboard', label: 'Switchboard', root: repoRoot }];
  if (o.baseline !== null) builds.push({ key: 'baseline', label: 'SB baseline', root: o.baseline });
  const redis = await startRedis();
  const runs: Record<string, PresenceResult> = {};
  try {
    for (const b of builds) {
      for (const mode of o.modes) {
        log(`${b.label}, presence ${mode}: ${o.members} members on ${o.processes} processes, Redis ${redis.url}`);
        try {
          runs[`${b.key}:${mode}`] = await runCluster(b.root, b.label, mode, o, redis.url);
        } catch (e) {
          runs[`${b.key}:${mode}`] = { members: o.members, nodes: o.processes, error: (e as Error).message };
          log(`${b.label} presence ${mode} failed: ${(e as Error).message}`);
        }
      }
    }
  } finally {
    await redis.stop();
  }
  const cols: PresenceColumn[] = [];
  const ratios: PresenceRatio[] = [];
  for (const b of builds) {
    for (const m of o.modes) cols.push({ label: `${b.label} ${m}`, run: runs[`${b.key}:${m}`] });
    if (o.modes.length === 2) ratios.push({ label: `${b.key === 'switchboard' ? 'SB' : 'baseline'} on/off`, a: runs[`${b.key}:on`], b: runs[`${b.key}:off`] });
  }
  if (builds.length === 2) for (const m of o.modes) ratios.push({ label: `${m}: SB/baseline`, a: runs[`switchboard:${m}`], b: runs[`baseline:${m}`] });
  const checks = stormChecks(runs['switchboard:on'], runs['switchboard:off']);
  const cpus = os.cpus();
  const result = {
    date: started.toISOString(),
    durationSec: Math.round((performance.now() - t0) / 100) / 10,
    machine: { cpus: cpus.length, cpuModel: cpus[0]?.model ?? 'unknown', node: process.version, platform: `${os.platform()} ${os.release()}` },
    options: o,
    redis: process.env.REDIS_URL ? 'REDIS_URL' : 'throwaway redis-server',
    modeArgs: MODE_ARGS,
    runs,
    checks,
  };
  console.log(`\nPresence storms across a cluster — ${o.members} identified members on ${o.processes} Switchboard processes ` +
    `(one Redis), one channel; a stage ends when every connection is there and control traffic has been quiet for ${o.quietMs} ms ` +
    `(not in the time); stage timeout ${o.timeoutSec} s; ${cpus.length} CPUs, node ${process.version}\n`);
  console.log(presenceTable(cols, ratios, o.quietMs));
  const notes = presenceNotes(runs);
  if (notes.length > 0) console.log(`\n${notes.join('\n')}`);
  if (checks.length > 0) {
    console.log(o.members >= 10_000 ? '\nIssue targets (issue 10, presence, cluster):' : `\nIssue targets (issue 10, presence, cluster; ${o.members} members):`);
    for (const c of checks) console.log(`  ${c.pass ? 'PASS' : 'FAIL'}  ${c.check}: ${c.value}`);
  }
  const out = o.out ?? path.join(repoRoot, '.artifacts', `presence-cluster-${started.toISOString().replace(/[:.]/g, '-')}.json`);
  mkdirSync(path.dirname(out), { recursive: true });
  writeFileSync(out, JSON.stringify(result, null, 2) + '\n');
  console.log(`\nJSON: ${path.relative(process.cwd(), out)}  (${result.durationSec} s)`);
}

main().then(() => process.exit(0), (e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
