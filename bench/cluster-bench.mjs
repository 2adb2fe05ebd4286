// Cross-node fan-out benchmark: real `switchboard serve` processes, N WebSocket subscribers split across them,
// one publisher on the first node. Compares one process alone (memory engine, and Redis engine) with two
// processes on one Redis (one per core). Reports delivered msgs/s and end-to-end latency p50/p99.
//   npx tsc -b packages/server && node bench/cluster-bench.mjs
// Redis: $REDIS_URL if set (a unique key prefix is used), else a throwaway redis-server on a free port.
// Options (env): BENCH_SUBS (subscribers, default 500), BENCH_MSGS (burst publications, default 2000),
// BENCH_WINDOW (unacknowledged publishes in flight, default 64), BENCH_RATE (paced phase msgs/s, default 200),
// BENCH_PACED (paced publications, default 400), BENCH_SCENARIOS (comma list: memory-1,redis-1,redis-2).
// Self-contained: needs only the compiled server and the `ws` package.
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WebSocket } from 'ws';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const CLI = resolve(ROOT, 'packages/server/dist/src/cli.js');
const SUBS = Number(process.env.BENCH_SUBS ?? 500);
const MSGS = Number(process.env.BENCH_MSGS ?? 2000);
const WINDOW = Number(process.env.BENCH_WINDOW ?? 64);
const RATE = Number(process.env.BENCH_RATE ?? 200);
const PACED = Number(process.env.BENCH_PACED ?? 400);
const SCENARIOS = (process.env.BENCH_SCENARIOS ?? 'memory-1,redis-1,redis-2').split(',');
const PAYLOAD = 'x'.repeat(100);

const children = new Set();
process.on('exit', () => { for (const c of children) c.kill('SIGKILL'); });

function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.on('error', rej);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => res(port)); });
  });
}

async function startRedis() {
  if (process.env.REDIS_URL) return { url: process.env.REDIS_URL, stop: async () => {} };
  const port = await freePort();
  const dir = resolve(ROOT, '.tmp', `redis-bench-${port}`);
  mkdirSync(dir, { recursive: true });
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.add(child);
  await new Promise((res, rej) => {
    let out = '';
    child.on('error', (e) => rej(new Error(`redis-server: ${e.message} (run scripts/provision/redis.sh)`)));
    child.stdout.on('data', (d) => { out += d; if (out.includes('Ready to accept connections')) res(); });
  });
  return {
    url: `redis://127.0.0.1:${port}`,
    stop: async () => { const exited = new Promise((r) => child.once('exit', r)); child.kill('SIGKILL'); await exited; children.delete(child); },
  };
}

async function startNode(id, broker, redisUrl, prefix) {
  const args = [CLI, 'serve', '--broker', broker, '--node-id', id, '--port', '0', '--host', '127.0.0.1', '--log-level', 'warn',
    '--set', 'store.driver=none', '--set', 'http.serveDemo=false', '--set', 'heartbeat.pingIntervalMs=0',
    '--set', 'limits.rateLimit.perSecond=1000000', '--set', 'limits.rateLimit.burst=1000000',
    '--set', `limits.maxQueuedBytes=${64 * 1024 * 1024}`, '--set', 'channels.defaults.presence=false'];
  if (broker === 'redis') args.push('--redis-url', redisUrl, '--set', `broker.keyPrefix=${prefix}`);
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], cwd: ROOT });
  children.add(child);
  const port = await new Promise((res, rej) => {
    child.on('message', (m) => { if (m?.type === 'listening') res(m.port); });
    child.once('exit', (code) => rej(new Error(`node ${id} exited with ${code}`)));
  });
  return {
    port,
    stop: async () => { const exited = new Promise((r) => child.once('exit', r)); child.kill('SIGTERM'); await exited; children.delete(child); },
  };
}

function open(port) {
  return new Promise((res, rej) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`, { perMessageDeflate: false });
    ws.once('error', rej);
    ws.once('message', () => res(ws)); // connect frame
  });
}

function pct(sorted, p) { return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]; }

async function run(name, broker, processes, redisUrl) {
  const prefix = `bench-${Date.now().toString(36)}:`;
  const nodes = await Promise.all(Array.from({ length: processes }, (_, i) => startNode(`bench-${i}`, broker, redisUrl, prefix)));
  const channel = `bench-${name}`;
  let received = 0;
  let latencies = [];
  let lastAt = 0;
  let expected = 0;
  let onDone = null;
  const subs = [];
  for (let i = 0; i < SUBS; i++) {
    const ws = await open(nodes[i % processes].port);
    subs.push(ws);
  }
  await Promise.all(subs.map((ws) => new Promise((res) => {
    ws.on('message', function first(data) {
      const text = data.toString();
      if (text.startsWith('{"type":"subscribed"')) { ws.off('message', first); res(); }
    });
    ws.send(JSON.stringify({ type: 'join_channel', data: { channel } }));
  })));
  for (const ws of subs) {
    ws.on('message', (data) => {
      const text = data.toString();
      const i = text.indexOf('"t":');
      if (i < 0) return;
      const now = performance.now();
      latencies.push(now - Number(text.slice(i + 4, text.indexOf(',', i))));
      received++;
      lastAt = now;
      if (received === expected && onDone) onDone();
    });
  }
  const pub = await open(nodes[0].port);
  let acked = 0;
  let ackWaiter = null;
  pub.on('message', (data) => {
    if (data.toString().startsWith('{"type":"ok"')) { acked++; ackWaiter?.(); }
  });
  const send = (n) => pub.send(`{"type":"message","id":${n},"data":{"channel":"${channel}","t":${performance.now()},"p":"${PAYLOAD}"}}`);
  const phase = async (count, paceMs) => {
    received = 0; latencies = []; acked = 0;
    expected = count * SUBS;
    const done = new Promise((res) => { onDone = res; });
    const t0 = performance.now();
    for (let n = 0; n < count; n++) {
      if (paceMs > 0) {
        const due = t0 + n * paceMs;
        const wait = due - performance.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      } else {
        while (n - acked >= WINDOW) await new Promise((r) => { ackWaiter = r; });
      }
      send(n);
    }
    const timeout = new Promise((r) => setTimeout(r, 60_000));
    await Promise.race([done, timeout]);
    const secs = (lastAt - t0) / 1000;
    latencies.sort((a, b) => a - b);
    return {
      delivered: received, expected,
      msgsPerSec: Math.round(received / secs),
      pubPerSec: Math.round(count / secs),
      p50ms: Number(pct(latencies, 0.5).toFixed(2)),
      p99ms: Number(pct(latencies, 0.99).toFixed(2)),
    };
  };
  await phase(Math.min(200, MSGS), 0); // warm-up
  const burst = await phase(MSGS, 0);
  const paced = await phase(PACED, 1000 / RATE);
  for (const ws of [...subs, pub]) ws.terminate();
  await Promise.all(nodes.map((n) => n.stop()));
  return { scenario: name, processes, broker, subscribers: SUBS, burst, paced: { rate: RATE, ...paced } };
}

const redis = SCENARIOS.some((s) => s.startsWith('redis')) ? await startRedis() : null;
const results = [];
try {
  for (const s of SCENARIOS) {
    const [broker, n] = s.split('-');
    const r = await run(s, broker, Number(n), redis?.url);
    results.push(r);
    console.error(`${s}: ${JSON.stringify(r)}`);
  }
} finally {
  await redis?.stop();
}
console.log(`\nsubscribers ${SUBS}, burst ${MSGS} publications (window ${WINDOW}), paced ${PACED} at ${RATE}/s, payload ${PAYLOAD.length} B, ${(await import('node:os')).cpus().length} cores`);
console.log('| scenario | processes | burst delivered msgs/s | burst p50 / p99 ms | paced p50 / p99 ms | all delivered |');
console.log('| --- | --- | --- | --- | --- | --- |');
for (const r of results) {
  const ok = r.burst.delivered === r.burst.expected && r.paced.delivered === r.paced.expected;
  console.log(`| ${r.scenario} | ${r.processes} | ${r.burst.msgsPerSec} | ${r.burst.p50ms} / ${r.burst.p99ms} | ${r.paced.p50ms} / ${r.paced.p99ms} | ${ok ? 'yes' : `NO (${r.burst.delivered}/${r.burst.expected}, ${r.paced.delivered}/${r.paced.expected})`} |`);
}
