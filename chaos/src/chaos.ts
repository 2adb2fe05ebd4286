/**
 * `npm run chaos` — a bounded, self-stopping fault run against a real cluster: a redis-server and three
 * `switchboard serve --broker redis` processes (the compiled CLI) on free loopback ports. Publishers number
 * their publications; subscribers on every node bounce between nodes and recover with `since`; faults run one
 * after the other (kill -9 of a node and its restart, Redis restart, Redis pause, slow consumers, connection
 * churn, a bad-input flood) while a lighter bad-input flood runs alongside all of them.
 *
 * Per fault it reports: publications lost without warning, lost but flagged (`recovered: false`), duplicates,
 * out-of-order deliveries, publisher errors and stall time, presence convergence, reconnect-to-recovered latency
 * and server RSS; writes them as JSON to .artifacts/chaos/; exits 1 on any unflagged loss, duplicate or reorder
 * (or a node crash, or subscribers that never catch up), 2 on a harness error, 3 on the hard timeout.
 *
 *   npm run chaos                 # full run (~3 min)
 *   npm run chaos -- --short      # CI form (< 1 min)
 *   npm run chaos -- --aof        # Redis with appendonly (streams survive the Redis restart)
 *   npm run chaos -- --only kill9,redis-restart
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { BurstPublisher, churn, firehose, flood, PresenceProbe, PresenceWatcher, Publisher, SlowConsumers, Subscriber, type ChurnStats, type FloodStats, type World } from './actors.js';
import { analyze, ChannelTruth, emptyCounts, type LogEvent, type PhaseCounts } from './ledger.js';
import { ensureRedisServer, freePort, getText, installSignalHandlers, RedisServer, ROOT, rssOf, ServerProcess, sleep, usePidFile, within } from './procs.js';

// ---------------------------------------------------------------------------------------------------------------
// Options

const argv = process.argv.slice(2);
const flag = (name: string): boolean => argv.includes(`--${name}`);
const opt = (name: string): string | undefined => { const i = argv.indexOf(`--${name}`); return i >= 0 ? argv[i + 1] : undefined; };
if (flag('help')) {
  console.log('usage: npm run chaos -- [--short] [--aof] [--only phase1,phase2] [--out file.json]\nphases: baseline, kill9, redis-restart, redis-pause, slow-consumers, churn, flood, storm');
  process.exit(0);
}
const SHORT = flag('short');
const AOF = flag('aof');
const ONLY = opt('only')?.split(',');
const MODE = SHORT ? 'short' : 'full';

interface Plan {
  subscribers: number;
  channels: number;
  publishersPerChannel: number;
  perSecond: number;
  baselineMs: number;
  /** kill -9: how long at most to wait for the presence to converge, then before the restart, then settle. */
  killWaitMs: number;
  restartDelayMs: number;
  settleMs: number;
  redisDownMs: number;
  pauseMs: number;
  slowMs: number;
  slowConsumers: number;
  churnMs: number;
  churnLoops: number;
  floodMs: number;
  flooders: number;
  stormMs: number;
  hardLimitMs: number;
}

const PLAN: Plan = SHORT
  ? { subscribers: 6, channels: 2, publishersPerChannel: 1, perSecond: 8, baselineMs: 2000, killWaitMs: 6500, restartDelayMs: 300, settleMs: 2500,
      redisDownMs: 500, pauseMs: 2500, slowMs: 3500, slowConsumers: 3, churnMs: 3000, churnLoops: 6, floodMs: 2500, flooders: 4, stormMs: 0, hardLimitMs: 100_000 }
  : { subscribers: 12, channels: 3, publishersPerChannel: 3, perSecond: 6, baselineMs: 5000, killWaitMs: 8000, restartDelayMs: 2000, settleMs: 5000,
      redisDownMs: 1500, pauseMs: 4000, slowMs: 10_000, slowConsumers: 6, churnMs: 10_000, churnLoops: 12, floodMs: 10_000, flooders: 8, stormMs: 12_000, hardLimitMs: 420_000 };

const NODE_SETTINGS: Record<string, string> = {
  'store.driver': 'none',
  'http.serveDemo': 'false',
  'http.apiKey': 'chaos-api-key',
  'shutdown.deadlineMs': '1000',
  // Everything else (presence ttl 30 s, node timeout 3 s, command timeout 2 s, rate limits, queues) is the default.
};
const PRESENCE_BOUND_MS = 5000;

// ---------------------------------------------------------------------------------------------------------------
// Run state

const ART = resolve(ROOT, '.artifacts/chaos');
const LOGS = resolve(ART, 'logs');
mkdirSync(LOGS, { recursive: true });
usePidFile(resolve(ART, `pids-${MODE}.json`));

interface PhaseRec { name: string; start: number; end: number; details: Record<string, unknown> }
const phases: PhaseRec[] = [];
const crashes: Array<{ node: string; t: number; code: number | null; signal: string | null }> = [];
const rssSamples: Array<{ t: number; who: string; rss: number }> = [];
const startedAt = Date.now();
let report: Record<string, unknown> = { mode: MODE, startedAt: new Date(startedAt).toISOString(), verdict: 'running' };

function writeReport(): string {
  const file = opt('out') ?? resolve(ART, `chaos-${MODE}-${new Date(startedAt).toISOString().replace(/[:.]/g, '-')}.json`);
  const text = JSON.stringify(report, null, 2);
  writeFileSync(file, text);
  writeFileSync(resolve(ART, `latest-${MODE}.json`), text);
  return file;
}

const watchdog = setTimeout(() => {
  console.error(`chaos: hard timeout after ${PLAN.hardLimitMs} ms: stopping`);
  report.verdict = 'timeout';
  report.phases = phases;
  try { writeReport(); } catch { /* best effort */ }
  process.exit(3);
}, PLAN.hardLimitMs);
installSignalHandlers((sig) => { report.verdict = `interrupted (${sig})`; try { writeReport(); } catch { /* best effort */ } });

const log = (msg: string): void => { console.log(`[chaos +${((Date.now() - startedAt) / 1000).toFixed(1)}s] ${msg}`); };

// ---------------------------------------------------------------------------------------------------------------

async function main(): Promise<number> {
  ensureRedisServer();
  const redis = new RedisServer(await freePort(), resolve(ROOT, '.tmp', `chaos-redis-${process.pid}`), AOF);
  await redis.start();
  const keyPrefix = `chaos-${Date.now().toString(36)}:`;
  const specs = ['node-a', 'node-b', 'node-c'].map((id) => ({ id, redisUrl: redis.url, keyPrefix, settings: NODE_SETTINGS, logDir: LOGS }));
  const nodes = await Promise.all(specs.map((s) => ServerProcess.spawn(s)));
  const watchExit = (n: ServerProcess): void => {
    void n.exit.then(() => {
      if (!n.expectedExit) {
        crashes.push({ node: n.id, t: Date.now(), code: n.exitInfo?.code ?? null, signal: n.exitInfo?.signal ?? null });
        log(`NODE CRASHED: ${n.id} (${n.exitInfo?.code ?? n.exitInfo?.signal}) — see ${LOGS}/${n.id}.log`);
      }
    });
  };
  nodes.forEach(watchExit);
  log(`redis ${redis.url}${AOF ? ' (appendonly)' : ' (no persistence)'}, nodes ${nodes.map((n) => `${n.id}:${n.port}`).join(' ')}, prefix ${keyPrefix}`);

  // chaos-burst: published only during the flood, past the rate limit (RATE_LIMITED, 4021 closes).
  const channels = [...Array.from({ length: PLAN.channels }, (_, i) => `chaos-${i}`), 'chaos-burst'];
  const w: World = { nodes, truth: new Map(channels.map((c) => [c, new ChannelTruth(c)])), publishing: true, bouncing: true, stopped: false, apiKey: NODE_SETTINGS['http.apiKey']! };

  // RSS monitor: every node and Redis, every second (from /proc: works while a node is busy or Redis paused).
  const monitor = setInterval(() => {
    const t = Date.now();
    w.nodes.forEach((n) => { const r = rssOf(n.alive ? n.pid : undefined); if (r !== null) rssSamples.push({ t, who: n.id, rss: r }); });
    const r = rssOf(redis.pid);
    if (r !== null) rssSamples.push({ t, who: 'redis', rss: r });
  }, 1000);

  // Load.
  const publishers: Publisher[] = [];
  channels.slice(0, PLAN.channels).forEach((c, ci) => { for (let k = 0; k < PLAN.publishersPerChannel; k++) publishers.push(new Publisher(`p${ci}.${k}`, c, (ci + k) % 3, PLAN.perSecond)); });
  const pubRuns = publishers.map((p) => p.run(w));
  let bursting = true; // a few bursts first, so the channel exists before the subscribers join
  const burster = new BurstPublisher('burst', 'chaos-burst', 80);
  const burstRun = burster.run(w, () => bursting && w.publishing);
  setTimeout(() => { if (!ONLY || !ONLY.includes('flood')) bursting = false; }, 700);
  await sleep(1000); // the channels exist (have streams) before the subscribers join
  const subscribers = Array.from({ length: PLAN.subscribers }, (_, i) => new Subscriber(`s${i}`, channels, i % 3, i % 4 === 3));
  const subRuns = subscribers.map((s) => s.run(w));
  const probes = [0, 1, 2].map((slot) => new PresenceProbe(slot, 'chaos-presence'));
  const probeRuns = probes.map((p) => p.run(w));
  const watcher = new PresenceWatcher('chaos-presence', 200);
  const watcherRun = watcher.run(w);
  let backgroundFloodOn = true;
  const backgroundFlood = flood(w, 2, 20, () => !backgroundFloodOn);

  const phase = async (name: string, body: (d: Record<string, unknown>) => Promise<void>): Promise<void> => {
    if (ONLY && name !== 'baseline' && !ONLY.includes(name)) return;
    const rec: PhaseRec = { name, start: Date.now(), end: 0, details: {} };
    phases.push(rec);
    log(`phase ${name}`);
    await body(rec.details);
    rec.end = Date.now();
  };

  const restart = async (slot: number): Promise<void> => {
    const old = w.nodes[slot]!;
    const n = await ServerProcess.spawn({ ...old.spec, port: old.port });
    watchExit(n);
    w.nodes[slot] = n;
  };

  const kill9 = async (slot: number, d: Record<string, unknown>, settleMs: number): Promise<void> => {
    const victim = w.nodes[slot]!;
    const probeLife = probes[slot]!.lives.at(-1);
    d.node = victim.id;
    d.killedAt = Date.now();
    await victim.kill9();
    // Wait for the presence to converge (the watcher's samples), at most killWaitMs.
    const deadline = Date.now() + PLAN.killWaitMs;
    while (Date.now() < deadline) {
      const s = watcher.samples.at(-1);
      if (probeLife && s && s.t > (d.killedAt as number) && !s.members.has(probeLife.connectionId) && !s.users.has(probeLife.userId)) break;
      await sleep(100);
    }
    await sleep(PLAN.restartDelayMs);
    d.restartedAt = Date.now();
    await restart(slot);
    await sleep(settleMs);
  };

  await phase('baseline', async () => { await sleep(PLAN.baselineMs); });

  await phase('kill9', async (d) => kill9(1, d, PLAN.settleMs));

  await phase('redis-restart', async (d) => {
    d.killedAt = Date.now();
    await redis.kill();
    await sleep(PLAN.redisDownMs);
    await redis.start();
    d.restartedAt = Date.now();
    d.persistence = AOF ? 'appendonly everysec' : 'none';
    await sleep(PLAN.settleMs + 1500);
  });

  await phase('redis-pause', async (d) => {
    d.pausedAt = Date.now();
    redis.pause();
    await sleep(PLAN.pauseMs);
    redis.resume();
    d.resumedAt = Date.now();
    await sleep(PLAN.settleMs + 1000);
  });

  const closesByCode = async (): Promise<Record<string, number>> => {
    const out: Record<string, number> = {};
    await Promise.all(w.nodes.filter((n) => n.alive).map(async (n) => {
      try {
        const { text } = await getText(`${n.http}/metrics`);
        for (const m of text.matchAll(/^websocket_connection_duration_seconds_count\{code="(\d+)"\} (\d+)/gm)) out[m[1]!] = (out[m[1]!] ?? 0) + Number(m[2]);
      } catch { /* node busy: counted as missing */ }
    }));
    return out;
  };

  await phase('slow-consumers', async (d) => {
    const before = await closesByCode();
    const slow = new SlowConsumers('chaos-firehose');
    await slow.start(w, PLAN.slowConsumers);
    let done = false;
    const hose = firehose(w, 'chaos-firehose', 32 * 1024, 40, () => done);
    await sleep(PLAN.slowMs);
    done = true;
    d.firehose = await hose;
    d.slowConsumers = slow.opened;
    d.clientSawCloses = await slow.finish();
    const after = await closesByCode();
    d.serverCloses4023 = (after['4023'] ?? 0) - (before['4023'] ?? 0);
    await sleep(PLAN.settleMs / 2);
  });

  // The server API (/api/*) needs the key.
  const getWithKey = async (url: string): Promise<{ status: number; body: any }> => {
    const res = await fetch(url, { headers: { authorization: `Bearer ${w.apiKey}` }, signal: AbortSignal.timeout(2000) });
    return { status: res.status, body: await res.json() };
  };

  await phase('churn', async (d) => {
    let done = false;
    const t = setTimeout(() => { done = true; }, PLAN.churnMs);
    const stats: ChurnStats = await churn(w, 'chaos-churn', PLAN.churnLoops, () => done);
    clearTimeout(t);
    d.churn = { ...stats, perSecond: Math.round(stats.opened / (PLAN.churnMs / 1000)) };
    await churnSettleWithKey(d, 'chaos-churn');
    await sleep(PLAN.settleMs / 2);
  });

  /** How long the churned connections stay listed after the last one left (they must all go). */
  async function churnSettleWithKey(d: Record<string, unknown>, channel: string): Promise<void> {
    const t0 = Date.now();
    for (;;) {
      const node = w.nodes.find((n) => n.alive);
      try {
        const r = node ? await getWithKey(`${node.http}/api/channels/${channel}/presence?limit=1000`) : null;
        if (r && r.status === 200 && (r.body.members as unknown[]).length === 0) { d.presenceEmptyAfterMs = Date.now() - t0; return; }
      } catch { /* retry */ }
      if (Date.now() - t0 > 10_000) { d.presenceEmptyAfterMs = null; d.presenceLeft = 'members still listed after 10 s'; return; }
      await sleep(100);
    }
  }

  await phase('flood', async (d) => {
    let done = false;
    const t = setTimeout(() => { done = true; }, PLAN.floodMs);
    bursting = true;
    const closesBefore = { ...burster.closes };
    const unansweredBefore = burster.unanswered;
    const stats: FloodStats = await flood(w, PLAN.flooders, 100, () => done);
    bursting = false;
    clearTimeout(t);
    d.flood = stats;
    d.burstPublisher = {
      closes: Object.fromEntries(Object.entries(burster.closes).map(([k, v]) => [k, v - (closesBefore[k] ?? 0)])),
      unansweredAtClose: burster.unanswered - unansweredBefore,
    };
    await sleep(PLAN.settleMs / 2);
  });

  if (PLAN.stormMs > 0) {
    await phase('storm', async (d) => {
      // Everything at once: churn and flood while a node is killed and restarted.
      let done = false;
      const t = setTimeout(() => { done = true; }, PLAN.stormMs);
      const c = churn(w, 'chaos-churn', PLAN.churnLoops / 2, () => done);
      const f = flood(w, PLAN.flooders / 2, 100, () => done);
      await sleep(1500);
      await kill9(2, d, 0);
      const [cs, fs] = await Promise.all([c, f]);
      clearTimeout(t);
      d.churn = cs;
      d.flood = fs;
      await churnSettleWithKey(d, 'chaos-churn');
      await sleep(PLAN.settleMs);
    });
  }

  // Drain: publishers stop, subscribers stop bouncing and must catch up with everything published.
  const drain: PhaseRec = { name: 'drain', start: Date.now(), end: 0, details: {} };
  phases.push(drain);
  log('drain: publishers stop, subscribers catch up');
  w.publishing = false;
  bursting = false;
  await within(Promise.all(pubRuns), 15_000, 'publishers to stop');
  // The burst publisher finishes its retries (everything it sent is acknowledged) before the drain check.
  const burstDeadline = Date.now() + 10_000;
  while (burster.records.length < burster.n && Date.now() < burstDeadline) await sleep(100);
  w.bouncing = false;
  backgroundFloodOn = false;
  const caughtUp = (): boolean => subscribers.every((s) => s.caughtUp && channels.every((c) => {
    const last = w.truth.get(c)!.last();
    const p = s.pos.get(c);
    return last === undefined || (p !== undefined && p.epoch === last.epoch && p.offset >= last.offset);
  }));
  const drainDeadline = Date.now() + 20_000;
  while (!caughtUp() && Date.now() < drainDeadline) await sleep(100);
  drain.details.caughtUp = caughtUp();
  drain.details.notCaughtUp = subscribers.filter((s) => !caughtUp() && !(s.caughtUp && channels.every((c) => {
    const last = w.truth.get(c)!.last();
    const p = s.pos.get(c);
    return last === undefined || (p !== undefined && p.epoch === last.epoch && p.offset >= last.offset);
  }))).map((s) => ({ id: s.id, pos: Object.fromEntries(s.pos), last: Object.fromEntries(channels.map((c) => [c, w.truth.get(c)!.last()])) }));
  drain.end = Date.now();

  // Stop everything.
  w.stopped = true;
  for (const s of subscribers) s.close();
  for (const p of probes) p.close();
  clearInterval(monitor);
  await within(Promise.allSettled([...subRuns, ...probeRuns, watcherRun, backgroundFlood, burstRun]), 10_000, 'actors to stop').catch((e: Error) => log(e.message));
  const finalRss = Object.fromEntries(w.nodes.map((n) => [n.id, rssOf(n.pid)]));
  await Promise.all(w.nodes.map((n) => n.stop(3000)));
  const gracefulExits = Object.fromEntries(w.nodes.map((n) => [n.id, n.exitInfo?.code ?? n.exitInfo?.signal ?? null]));
  await redis.dispose();

  // ------------------------------------------------------------------------------------------------------------
  // Analysis

  const phaseOf = (t: number): string => {
    for (let i = phases.length - 1; i >= 0; i--) if (t >= phases[i]!.start) return phases[i]!.name;
    return 'setup';
  };
  // Every position any subscriber received is a publication too (its ack may have been lost).
  const logs = new Map<string, Map<string, LogEvent[]>>();
  for (const s of subscribers) {
    logs.set(s.id, s.logs);
    for (const [c, l] of s.logs) for (const ev of l) if (ev.kind === 'msg') w.truth.get(c)!.record(ev.epoch, ev.offset, ev.t, false);
  }
  const result = analyze({ truth: w.truth, logs, phaseOf, checkTail: true });

  const names = ['setup', ...phases.map((p) => p.name)];
  const pct = (xs: number[], p: number): number | null => { if (xs.length === 0) return null; const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(s.length * p))]!; };
  const perPhase = names.filter((n) => n === 'setup' ? false : true).map((name) => {
    const rec = phases.find((p) => p.name === name)!;
    const inPhase = (t: number): boolean => phaseOf(t) === name;
    const counts: PhaseCounts = result.byPhase.get(name) ?? emptyCounts();
    // Publishers
    const recs = publishers.flatMap((p) => p.records.filter((r) => inPhase(r.firstAttempt)));
    const evs = publishers.flatMap((p) => p.events.filter((e) => inPhase(e.t)));
    const burstErrors: Record<string, number> = {};
    for (const e of burster.events) if (inPhase(e.t)) { const k = e.kind === 'error' ? e.code! : e.kind; burstErrors[k] = (burstErrors[k] ?? 0) + 1; }
    const burstAcked = burster.records.filter((r) => inPhase(r.firstAttempt)).length;
    const errors: Record<string, number> = {};
    for (const e of evs) { const k = e.kind === 'error' ? e.code! : e.kind; errors[k] = (errors[k] ?? 0) + 1; }
    let maxGap = 0;
    for (const p of publishers) {
      for (let i = 1; i < p.records.length; i++) {
        const r = p.records[i]!;
        if (inPhase(r.ackedAt)) maxGap = Math.max(maxGap, r.ackedAt - p.records[i - 1]!.ackedAt);
      }
    }
    const stallMs = recs.reduce((a, r) => a + Math.max(0, r.ackedAt - r.firstAttempt - 1000), 0);
    // Reconnects
    const rc = subscribers.flatMap((s) => s.reconnects.filter((r) => inPhase(r.t0)));
    const lat = rc.map((r) => r.t1 - r.t0);
    const failover = rc.filter((r) => r.cause !== 'bounce').map((r) => r.t1 - r.t0);
    const closes: Record<string, number> = {};
    for (const s of subscribers) for (const c of s.closeCodes) if (inPhase(c.t)) closes[c.code] = (closes[c.code] ?? 0) + 1;
    // Presence
    const presence = presenceFigures(rec, probes, watcher);
    // RSS
    const rss: Record<string, number> = {};
    for (const s of rssSamples) if (inPhase(s.t)) rss[s.who] = Math.max(rss[s.who] ?? 0, Math.round(s.rss / 1048576));
    return {
      phase: name,
      durationMs: (rec.end || Date.now()) - rec.start,
      lostUnflagged: counts.unflaggedLost,
      lostFlagged: counts.flaggedLost,
      lostFlaggedInNewEpoch: counts.flaggedLostNewEpoch,
      recoveredFalseFlags: counts.flags,
      duplicates: counts.duplicates,
      outOfOrder: counts.outOfOrder,
      publisher: { acked: recs.length, errors, maxAckGapMs: maxGap, stallMs },
      ...(burstAcked > 0 || Object.keys(burstErrors).length > 0 ? { burstPublisher: { acked: burstAcked, errors: burstErrors } } : {}),
      reconnect: { count: lat.length, p50Ms: pct(lat, 0.5), p99Ms: pct(lat, 0.99), maxMs: pct(lat, 1), failoverCount: failover.length, failoverMaxMs: pct(failover, 1), subscriberCloses: closes },
      presence,
      rssMaxMB: rss,
      details: rec.details,
    };
  });

  const totals = { lostUnflagged: 0, lostFlagged: 0, duplicates: 0, outOfOrder: 0 };
  for (const p of perPhase) { totals.lostUnflagged += p.lostUnflagged; totals.lostFlagged += p.lostFlagged; totals.duplicates += p.duplicates; totals.outOfOrder += p.outOfOrder; }
  const setupCounts = result.byPhase.get('setup');
  if (setupCounts) { totals.lostUnflagged += setupCounts.unflaggedLost; totals.duplicates += setupCounts.duplicates; totals.outOfOrder += setupCounts.outOfOrder; }
  const failures: string[] = [];
  if (totals.lostUnflagged > 0) failures.push(`${totals.lostUnflagged} publications lost without warning`);
  if (totals.duplicates > 0) failures.push(`${totals.duplicates} duplicate deliveries`);
  if (totals.outOfOrder > 0) failures.push(`${totals.outOfOrder} out-of-order deliveries`);
  if (crashes.length > 0) failures.push(`${crashes.length} node crash(es)`);
  if (drain.details.caughtUp !== true) failures.push('subscribers did not catch up within 20 s after the publishers stopped');
  const warnings: string[] = [];
  for (const p of perPhase) {
    const g = p.presence.deadGoneMs;
    if (typeof g === 'number' && g > PRESENCE_BOUND_MS) warnings.push(`${p.phase}: a killed node's presence took ${g} ms to go (bound ${PRESENCE_BOUND_MS} ms)`);
    if (p.presence.deadGoneMs === 'never') warnings.push(`${p.phase}: a killed node's presence was still listed when its node came back`);
  }

  report = {
    mode: MODE,
    startedAt: new Date(startedAt).toISOString(),
    durationMs: Date.now() - startedAt,
    verdict: failures.length === 0 ? 'pass' : 'fail',
    failures,
    warnings,
    setup: {
      nodes: 3, redis: AOF ? 'appendonly everysec' : 'no persistence', channels: PLAN.channels, publishers: publishers.length, publishRatePerPublisher: PLAN.perSecond,
      subscribers: PLAN.subscribers, slowSubscribers: subscribers.filter((s) => s.slow).length, nodeSettings: NODE_SETTINGS, presenceBoundMs: PRESENCE_BOUND_MS,
    },
    totals: { ...totals, publicationsAcked: publishers.reduce((a, p) => a + p.records.length, 0), deliveriesChecked: result.checked, truthPositions: [...w.truth.values()].reduce((a, t) => a + t.size, 0) },
    phases: perPhase,
    crashes,
    finalRssMB: Object.fromEntries(Object.entries(finalRss).map(([k, v]) => [k, v === null ? null : Math.round(v / 1048576)])),
    gracefulExits,
    presenceWatcherFailures: watcher.failures,
    issues: result.issues.slice(0, 50),
  };
  if (flag('dump') || result.issues.length > 0) {
    // The subscribers' logs around each issue (what was received, flagged, and on which connection), to debug it.
    const around = result.issues.slice(0, 20).map((i) => {
      const l = logs.get(i.subscriber)?.get(i.channel) ?? [];
      const k = l.findIndex((e) => e.kind === 'msg' && e.epoch === i.epoch && e.offset === i.offset);
      const at = k >= 0 ? k : l.findIndex((e) => e.kind !== 'conn' && e.kind !== 'start' && e.epoch === i.epoch && e.offset > i.offset);
      return { issue: i, log: l.slice(Math.max(0, (at >= 0 ? at : l.length) - 12), (at >= 0 ? at : l.length) + 8) };
    });
    report.issueContext = around;
  }
  const file = writeReport();
  printTable(perPhase);
  for (const wmsg of warnings) console.log(`warning: ${wmsg}`);
  if (result.issues.length > 0) {
    console.log('first issues:');
    for (const i of result.issues.slice(0, 10)) console.log(`  ${i.kind} ${i.channel} ${i.epoch}:${i.offset} (${i.subscriber}, ${i.phase}${i.detail ? `, ${i.detail}` : ''})`);
  }
  console.log(`report: ${file}`);
  console.log(failures.length === 0 ? 'chaos: PASS' : `chaos: FAIL — ${failures.join('; ')}`);
  // The plain closing line test tooling reads: one check per fault phase (clean when nothing went wrong in it).
  const bad = perPhase.filter((p) => p.lostUnflagged + p.duplicates + p.outOfOrder > 0).length + (crashes.length > 0 || drain.details.caughtUp !== true ? 1 : 0);
  console.log(`chaos: ${perPhase.length + 1 - bad} passed, ${bad} failed`);
  return failures.length === 0 ? 0 : 1;
}

/**
 * Presence figures of a phase from the probes' lifetimes and the watcher's samples:
 *  - deadGoneMs: for probes whose connection died abnormally in the phase (their node was killed), the time from
 *    the close until neither their connection nor their user was listed any more ('never' if still listed when
 *    a new probe of that node connected, null if none died);
 *  - liveMissingMs: the longest time a probe connected for more than a second was not listed (a live member
 *    hidden: after a Redis restart until the entries are rewritten, or a false death);
 *  - newListedMs: the longest time from a probe (re)connecting until it was listed.
 */
function presenceFigures(rec: PhaseRec, probes: PresenceProbe[], watcher: PresenceWatcher): Record<string, number | string | null> {
  const end = rec.end || Date.now();
  const samples = watcher.samples;
  let deadGone: number | string | null = null;
  let liveMissing = 0;
  let newListed = 0;
  for (const probe of probes) {
    probe.lives.forEach((life, i) => {
      const next = probe.lives[i + 1];
      if (life.closeAt !== null && life.closeAt >= rec.start && life.closeAt < end && life.closeCode === 1006) {
        const limit = next?.openAt ?? Infinity;
        const gone = samples.find((s) => s.t > life.closeAt! && s.t < limit && !s.members.has(life.connectionId) && !s.users.has(life.userId));
        const v = gone ? gone.t - life.closeAt : (next ? 'never' : null);
        if (typeof v === 'number') deadGone = typeof deadGone === 'number' ? Math.max(deadGone, v) : v;
        else if (v === 'never') deadGone = 'never';
      }
      if (life.openAt >= rec.start && life.openAt < end) {
        const listed = samples.find((s) => s.t >= life.openAt && s.members.has(life.connectionId));
        if (listed) newListed = Math.max(newListed, listed.t - life.openAt);
      }
      // Absence windows of a live probe inside the phase.
      const from = Math.max(rec.start, life.openAt + 1000);
      const to = Math.min(end, life.closeAt ?? Infinity);
      let missingSince: number | null = null;
      for (const s of samples) {
        if (s.t < from || s.t >= to) continue;
        if (!s.members.has(life.connectionId)) { missingSince ??= s.t; liveMissing = Math.max(liveMissing, s.t - missingSince); }
        else missingSince = null;
      }
    });
  }
  return { deadGoneMs: deadGone, liveMissingMs: liveMissing, newListedMs: newListed };
}

function printTable(rows: Array<Record<string, any>>): void {
  console.log('');
  console.log('| fault | lost (no warning) | lost (flagged recovered:false) | duplicates | out of order | publisher errors | publisher max stall ms | presence: dead gone / live missing ms | reconnect→recovered p50 / max ms (failover max) | max RSS MB (a/b/c/redis) |');
  console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const r of rows) {
    const errs = Object.entries(r.publisher.errors as Record<string, number>).map(([k, v]) => `${k}×${v}`).join(' ') || '0';
    const rss = r.rssMaxMB as Record<string, number>;
    console.log(`| ${r.phase} | ${r.lostUnflagged} | ${r.lostFlagged} (${r.recoveredFalseFlags} flags${r.lostFlaggedInNewEpoch ? `, ${r.lostFlaggedInNewEpoch} of the new epoch` : ''}) | ${r.duplicates} | ${r.outOfOrder} | ${errs} | ${r.publisher.maxAckGapMs} | ${r.presence.deadGoneMs ?? '–'} / ${r.presence.liveMissingMs} | ${r.reconnect.p50Ms ?? '–'} / ${r.reconnect.maxMs ?? '–'} (${r.reconnect.failoverMaxMs ?? '–'}) | ${rss['node-a'] ?? '–'}/${rss['node-b'] ?? '–'}/${rss['node-c'] ?? '–'}/${rss.redis ?? '–'} |`);
  }
  console.log('');
}

main().then((code) => {
  clearTimeout(watchdog);
  process.exit(code);
}, (err: unknown) => {
  clearTimeout(watchdog);
  console.error('chaos: harness error:', err);
  report.verdict = 'error';
  report.error = String((err as Error)?.stack ?? err);
  report.phases = phases;
  try { writeReport(); } catch { /* best effort */ }
  process.exit(2);
});
