// Store micro-benchmark: appends/s and history latency for the SQLite and PostgreSQL stores.
//   npx tsc -b packages/server && eval "$(bash scripts/provision/postgres.sh)" && node bench/store-bench.mjs
// Options (env): BENCH_N (appends per phase, default 5000), BENCH_Q (history queries per form, default 300).
// PostgreSQL is skipped (with a note) when DATABASE_URL is unset. Uses a temp SQLite file and a temp PG schema.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { createStores } from '../packages/server/dist/src/store/factory.js';

const N = Number(process.env.BENCH_N ?? 5000);
const Q = Number(process.env.BENCH_Q ?? 300);
const FRAME = JSON.stringify({ type: 'message', data: { content: 'x'.repeat(80) }, timestamp: new Date().toISOString(), message_id: 'm', sender_id: 'u1', channel: 'room' });

const rec = (channel, offset) => ({ channel, offset, epoch: 'e1', messageId: `m${offset}`, senderId: 'u1', frame: FRAME, createdAt: Date.now() });

function pct(sorted, p) { return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]; }

async function bench(label, stores) {
  const m = stores.messages;
  const out = { driver: label };
  // 1. sequential: await each append (latency-bound).
  let t0 = performance.now();
  for (let i = 1; i <= N; i++) await m.append(rec('seq', i));
  out.appendSequentialPerSec = Math.round(N / ((performance.now() - t0) / 1000));
  // 2. concurrent: 64 appends in flight over 16 channels.
  const next = new Map();
  t0 = performance.now();
  let issued = 0;
  async function worker(w) {
    while (issued < N) {
      issued++;
      const ch = `conc-${w % 16}`;
      const off = (next.get(ch) ?? 0) + 1;
      next.set(ch, off);
      await m.append(rec(ch, off));
    }
  }
  await Promise.all(Array.from({ length: 64 }, (_, w) => worker(w)));
  out.appendConcurrent64PerSec = Math.round(N / ((performance.now() - t0) / 1000));
  // 3. appendMany batches of 100.
  t0 = performance.now();
  for (let b = 0; b < N / 100; b++) await m.appendMany(Array.from({ length: 100 }, (_, i) => rec('batch', b * 100 + i + 1)));
  out.appendMany100PerSec = Math.round(N / ((performance.now() - t0) / 1000));
  // 4. history latency on the `seq` channel (N records), limit 50.
  const forms = {
    newest: () => ({ limit: 50 }),
    before: () => ({ limit: 50, before: 1 + Math.floor(Math.random() * N) }),
    after: () => ({ limit: 50, after: Math.floor(Math.random() * N) }),
    skip: () => ({ limit: 50, skip: Math.floor(Math.random() * N) }),
  };
  for (const [name, q] of Object.entries(forms)) {
    const lat = [];
    for (let i = 0; i < Q; i++) {
      const s = performance.now();
      await m.history('seq', q());
      lat.push(performance.now() - s);
    }
    lat.sort((a, b) => a - b);
    out[`history_${name}_p50_ms`] = +pct(lat, 0.5).toFixed(3);
    out[`history_${name}_p99_ms`] = +pct(lat, 0.99).toFixed(3);
  }
  return out;
}

const results = [];
const dir = mkdtempSync(join(tmpdir(), 'sb-bench-'));
try {
  const s = await createStores({ driver: 'sqlite', sqlitePath: join(dir, 'bench.db') });
  results.push(await bench('sqlite', s));
  await s.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}

if (process.env.DATABASE_URL) {
  const schema = `sbbench_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 1 });
  await admin.query(`CREATE SCHEMA ${schema}`);
  try {
    const u = new URL(process.env.DATABASE_URL);
    u.searchParams.set('options', `-c search_path=${schema}`);
    const s = await createStores({ driver: 'postgres', postgresUrl: u.toString() });
    results.push(await bench('postgres', s));
    await s.close();
  } finally {
    await admin.query(`DROP SCHEMA ${schema} CASCADE`);
    await admin.end();
  }
} else {
  console.error('DATABASE_URL unset: PostgreSQL not measured');
}
console.log(JSON.stringify({ N, Q, frameBytes: FRAME.length, results }, null, 2));
