/**
 * `npm run soak` — mixed load and churn against real `switchboard serve` processes for a fixed time, sampling
 * each node's heap and RSS (its /metrics process metrics) to show memory stays flat.
 *
 *   npm run soak                              # 10 minutes, 2 nodes on Redis, a sample every 10 s
 *   npm run soak -- --minutes 3 --nodes 1 --sample-seconds 5
 *
 * Load, all at once for the whole run: publishers (numbered publications, acknowledged), subscribers on every
 * node that move to another node every 5–15 s and recover with `since`, presence probes and presence/online
 * reads, connection churn (join, sometimes publish, leave or drop), and a light bad-input flood. Deliveries are
 * checked like in the chaos run (lost / duplicate / out of order).
 *
 * Summary per node: heap used and RSS at start and end, min and max, and the slope (MB per minute, least
 * squares) of the lower envelope — the minimum of each minute, which takes garbage collection's sawtooth out —
 * over the run after its first minute (warm-up). "flat" when every node's heap slope is under 1 MB/min and its
 * RSS slope under 2 MB/min (a 10-minute run's per-minute minimums wander by a few MB either way). JSON in .artifacts/soak/. Exit 1 if memory grows or a delivery went wrong, 3 on the
 * hard timeout (run time + 3 minutes).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { churn, flood, PresenceProbe, PresenceWatcher, Publisher, Subscriber, type World } from './actors.js';
import { analyze, ChannelTruth, type LogEvent } from './ledger.js';
import { ensureRedisServer, freePort, getText, installSignalHandlers, RedisServer, ROOT, rssOf, ServerProcess, sleep, usePidFile, within } from './procs.js';

const argv = process.argv.slice(2);
const opt = (name: string, def: string): string => { const i = argv.indexOf(`--${name}`); return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1]! : def; };
if (argv.includes('--help')) {
  console.log('usage: npm run soak -- [--minutes N (10)] [--nodes N (2)] [--sample-seconds S (10)] [--out file.json]');
  process.exit(0);
}
const MINUTES = Number(opt('minutes', '10'));
const NODES = Math.max(1, Math.min(3, Number(opt('nodes', '2'))));
const SAMPLE_S = Math.max(1, Number(opt('sample-seconds', '10')));
const HEAP_FLAT_MB_MIN = 1;
const RSS_FLAT_MB_MIN = 2;

const ART = resolve(ROOT, '.artifacts/soak');
mkdirSync(resolve(ART, 'logs'), { recursive: true });
usePidFile(resolve(ART, 'pids.json'));
const startedAt = Date.now();
const stamp = new Date(startedAt).toISOString().replace(/[:.]/g, '-');
const outFile = opt('out', resolve(ART, `soak-${stamp}.json`));
let report: Record<string, unknown> = { startedAt: new Date(startedAt).toISOString(), minutes: MINUTES, nodes: NODES, verdict: 'running' };
const save = (): void => { const t = JSON.stringify(report, null, 2); writeFileSync(outFile, t); writeFileSync(resolve(ART, 'latest.json'), t); };
const watchdog = setTimeout(() => { report.verdict = 'timeout'; try { save(); } catch { /* best effort */ } process.exit(3); }, (MINUTES + 3) * 60_000);
installSignalHandlers((sig) => { report.verdict = `interrupted (${sig})`; try { save(); } catch { /* best effort */ } });
const log = (m: string): void => console.log(`[soak +${((Date.now() - startedAt) / 1000).toFixed(0)}s] ${m}`);

interface Sample { t: number; node: string; heapUsed: number | null; heapTotal: number | null; rss: number | null; external: number | null; connections: number | null }

function metric(text: string, name: string): number | null {
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+-]+)`, 'm').exec(text);
  return m ? Number(m[1]) : null;
}

/** Least-squares slope of (t ms, bytes) in MB per minute. */
function slopeMBperMin(points: Array<[number, number]>): number | null {
  if (points.length < 2) return null;
  const n = points.length;
  const mx = points.reduce((a, p) => a + p[0], 0) / n;
  const my = points.reduce((a, p) => a + p[1], 0) / n;
  let num = 0;
  let den = 0;
  for (const [x, y] of points) { num += (x - mx) * (y - my); den += (x - mx) ** 2; }
  return den === 0 ? null : (num / den) * 60_000 / 1048576;
}

/** Minimum of each minute (lower envelope), as (window middle, min). */
function envelope(points: Array<[number, number]>, from: number): Array<[number, number]> {
  const buckets = new Map<number, number>();
  for (const [t, v] of points) {
    if (t < from) continue;
    const k = Math.floor((t - from) / 60_000);
    buckets.set(k, Math.min(buckets.get(k) ?? Infinity, v));
  }
  return [...buckets.entries()].map(([k, v]) => [from + k * 60_000 + 30_000, v] as [number, number]);
}

async function main(): Promise<number> {
  ensureRedisServer();
  const redis = new RedisServer(await freePort(), resolve(ROOT, '.tmp', `soak-redis-${process.pid}`));
  await redis.start();
  const keyPrefix = `soak-${Date.now().toString(36)}:`;
  const settings = { 'store.driver': 'none', 'http.serveDemo': 'false', 'http.apiKey': 'soak-api-key', 'shutdown.deadlineMs': '1000' };
  const nodes = await Promise.all(['node-a', 'node-b', 'node-c'].slice(0, NODES).map((id) =>
    ServerProcess.spawn({ id, redisUrl: redis.url, keyPrefix, settings, logDir: resolve(ART, 'logs') })));
  const crashes: string[] = [];
  for (const n of nodes) void n.exit.then(() => { if (!n.expectedExit) { crashes.push(n.id); log(`NODE CRASHED: ${n.id}`); } });
  log(`${NODES} node(s) on ${redis.url}: ${nodes.map((n) => `${n.id}:${n.port}`).join(' ')}; ${MINUTES} min, a sample every ${SAMPLE_S} s`);

  const channels = ['soak-0', 'soak-1', 'soak-2'];
  const w: World = { nodes, truth: new Map(channels.map((c) => [c, new ChannelTruth(c)])), publishing: true, bouncing: true, stopped: false, apiKey: settings['http.apiKey'] };
  const publishers = channels.flatMap((c, ci) => [0, 1].map((k) => new Publisher(`p${ci}.${k}`, c, (ci + k) % NODES, 4)));
  const pubRuns = publishers.map((p) => p.run(w));
  await sleep(1000);
  const subscribers = Array.from({ length: 30 }, (_, i) => new Subscriber(`s${i}`, channels, i % NODES, i % 10 === 9, [5000, 15_000]));
  const subRuns = subscribers.map((s) => s.run(w));
  const probes = nodes.map((_, slot) => new PresenceProbe(slot, 'soak-presence'));
  const probeRuns = probes.map((p) => p.run(w));
  const watcher = new PresenceWatcher('soak-presence', 1000);
  const watcherRun = watcher.run(w);
  const endAt = startedAt + MINUTES * 60_000;
  const over = (): boolean => Date.now() >= endAt || w.stopped;
  const churnRun = churn(w, 'soak-churn', 4, over);
  const floodRun = flood(w, 1, 20, over);

  const samples: Sample[] = [];
  const sampleAll = async (): Promise<void> => {
    await Promise.all(w.nodes.map(async (n) => {
      const t = Date.now();
      try {
        const { text } = await getText(`${n.http}/metrics`, 5000);
        samples.push({ t, node: n.id, heapUsed: metric(text, 'nodejs_heap_size_used_bytes'), heapTotal: metric(text, 'nodejs_heap_size_total_bytes'),
          rss: metric(text, 'process_resident_memory_bytes') ?? rssOf(n.pid), external: metric(text, 'nodejs_external_memory_bytes'), connections: metric(text, 'websocket_connections_total') });
      } catch {
        samples.push({ t, node: n.id, heapUsed: null, heapTotal: null, rss: rssOf(n.pid), external: null, connections: null });
      }
    }));
    const last = w.nodes.map((n) => samples.filter((s) => s.node === n.id).at(-1)!);
    log(last.map((s) => `${s.node} heap ${s.heapUsed === null ? '?' : (s.heapUsed / 1048576).toFixed(1)} MB rss ${s.rss === null ? '?' : (s.rss / 1048576).toFixed(1)} MB conns ${s.connections ?? '?'}`).join(' | '));
  };
  while (!over()) {
    await sampleAll();
    report = { ...report, samples };
    save();
    await sleep(Math.min(SAMPLE_S * 1000, Math.max(0, endAt - Date.now())));
  }
  await sampleAll();

  // Stop the load, let the subscribers catch up, check deliveries.
  w.publishing = false;
  await within(Promise.all(pubRuns), 15_000, 'publishers to stop');
  w.bouncing = false;
  const caught = (): boolean => subscribers.every((s) => s.caughtUp && channels.every((c) => {
    const last = w.truth.get(c)!.last();
    const p = s.pos.get(c);
    return last === undefined || (p !== undefined && p.epoch === last.epoch && p.offset >= last.offset);
  }));
  const deadline = Date.now() + 20_000;
  while (!caught() && Date.now() < deadline) await sleep(100);
  const caughtUp = caught();
  w.stopped = true;
  for (const s of subscribers) s.close();
  for (const p of probes) p.close();
  const [churnStats, floodStats] = await within(Promise.all([churnRun, floodRun]), 15_000, 'churn and flood to stop');
  await within(Promise.allSettled([...subRuns, ...probeRuns, watcherRun]), 10_000, 'actors to stop').catch((e: Error) => log(e.message));
  await Promise.all(w.nodes.map((n) => n.stop(3000)));
  await redis.dispose();

  const logs = new Map<string, Map<string, LogEvent[]>>();
  for (const s of subscribers) {
    logs.set(s.id, s.logs);
    for (const [c, l] of s.logs) for (const ev of l) if (ev.kind === 'msg') w.truth.get(c)!.record(ev.epoch, ev.offset, ev.t, false);
  }
  const result = analyze({ truth: w.truth, logs, phaseOf: () => 'soak', checkTail: true });
  const counts = result.byPhase.get('soak') ?? { unflaggedLost: 0, flaggedLost: 0, flaggedLostNewEpoch: 0, flags: 0, duplicates: 0, outOfOrder: 0 };

  const warmEnd = startedAt + 60_000;
  const perNode = nodes.map((n) => {
    const mine = samples.filter((s) => s.node === n.id);
    const series = (k: 'heapUsed' | 'rss'): Array<[number, number]> => mine.filter((s) => s[k] !== null).map((s) => [s.t, s[k]!]);
    const mb = (v: number | null | undefined): number | null => (v === null || v === undefined ? null : Math.round((v / 1048576) * 10) / 10);
    const heap = series('heapUsed');
    const rss = series('rss');
    const from = MINUTES > 2 ? warmEnd : startedAt;
    const heapEnv = envelope(heap, from);
    const rssEnv = envelope(rss, from);
    const heapSlope = slopeMBperMin(heapEnv.length >= 2 ? heapEnv : heap.filter(([t]) => t >= from));
    const rssSlope = slopeMBperMin(rssEnv.length >= 2 ? rssEnv : rss.filter(([t]) => t >= from));
    return {
      node: n.id,
      heapUsedMB: { first: mb(heap[0]?.[1]), last: mb(heap.at(-1)?.[1]), min: mb(Math.min(...heap.map((p) => p[1]))), max: mb(Math.max(...heap.map((p) => p[1]))) },
      rssMB: { first: mb(rss[0]?.[1]), last: mb(rss.at(-1)?.[1]), min: mb(Math.min(...rss.map((p) => p[1]))), max: mb(Math.max(...rss.map((p) => p[1]))) },
      heapSlopeMBperMin: heapSlope === null ? null : Math.round(heapSlope * 1000) / 1000,
      rssSlopeMBperMin: rssSlope === null ? null : Math.round(rssSlope * 1000) / 1000,
      heapMinPerMinuteMB: heapEnv.map(([, v]) => mb(v)),
      rssMinPerMinuteMB: rssEnv.map(([, v]) => mb(v)),
    };
  });
  const flat = perNode.every((p) => (p.heapSlopeMBperMin ?? 0) < HEAP_FLAT_MB_MIN && (p.rssSlopeMBperMin ?? 0) < RSS_FLAT_MB_MIN);
  const deliveriesOk = counts.unflaggedLost === 0 && counts.duplicates === 0 && counts.outOfOrder === 0 && caughtUp;
  const traffic = {
    publicationsAcked: publishers.reduce((a, p) => a + p.records.length, 0),
    deliveriesChecked: result.checked,
    subscriberReconnects: subscribers.reduce((a, s) => a + s.reconnects.length, 0),
    churn: churnStats,
    flood: { connections: floodStats.connections, framesSent: floodStats.framesSent },
    presenceReads: watcher.samples.length,
  };
  report = {
    ...report,
    durationMs: Date.now() - startedAt,
    verdict: flat && deliveriesOk && crashes.length === 0 ? 'pass' : 'fail',
    memory: { flat, thresholds: { heapSlopeMBperMin: HEAP_FLAT_MB_MIN, rssSlopeMBperMin: RSS_FLAT_MB_MIN }, method: 'least-squares slope of per-minute minimums after the first minute', perNode },
    deliveries: { ...counts, caughtUp, issues: result.issues.slice(0, 20) },
    traffic,
    crashes,
    samples,
  };
  save();
  console.log('');
  console.log('| node | heap used MB first → last (min–max) | heap slope MB/min | RSS MB first → last (min–max) | RSS slope MB/min |');
  console.log('| --- | --- | --- | --- | --- |');
  for (const p of perNode) {
    console.log(`| ${p.node} | ${p.heapUsedMB.first} → ${p.heapUsedMB.last} (${p.heapUsedMB.min}–${p.heapUsedMB.max}) | ${p.heapSlopeMBperMin} | ${p.rssMB.first} → ${p.rssMB.last} (${p.rssMB.min}–${p.rssMB.max}) | ${p.rssSlopeMBperMin} |`);
  }
  console.log(`traffic: ${JSON.stringify(traffic)}`);
  console.log(`deliveries: lost ${counts.unflaggedLost}, flagged ${counts.flaggedLost}, duplicates ${counts.duplicates}, out of order ${counts.outOfOrder}, caught up ${caughtUp}`);
  console.log(`report: ${outFile}`);
  console.log(`soak: ${report.verdict === 'pass' ? 'PASS' : 'FAIL'} (memory ${flat ? 'flat' : 'GROWING'})`);
  return report.verdict === 'pass' ? 0 : 1;
}

main().then((code) => { clearTimeout(watchdog); process.exit(code); }, (err: unknown) => {
  clearTimeout(watchdog);
  console.error('soak: harness error:', err);
  report.verdict = 'error';
  report.error = String((err as Error)?.stack ?? err);
  try { save(); } catch { /* best effort */ }
  process.exit(2);
});
