/**
 * /metrics: Prometheus naming conventions (switchboard_ prefix, `_total` only on counters), the seed's names kept
 * as aliases with the same values, broker status and publish-to-delivery latency; docs/operations.md lists every
 * family, and the Grafana dashboard in docs/grafana/ uses only metrics the server exports.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { MemoryBroker } from '../src/broker/memory/memory-broker.js';
import { LEGACY_METRIC_NAMES } from '../src/api/metrics.js';
import type { BrokerHandler } from '../src/core/ports/broker.js';
import { REPO_ROOT } from './redis/redis-process.js';
import { TestClient, startServer } from './helpers.js';

/** `# TYPE` of every family in a Prometheus text exposition, and its samples (name{labels} -> value). */
function parse(text: string): { types: Map<string, string>; samples: Map<string, number> } {
  const types = new Map<string, string>();
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    const t = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (t !== null) types.set(t[1]!, t[2]!);
    else if (line !== '' && !line.startsWith('#')) {
      const i = line.lastIndexOf(' ');
      samples.set(line.slice(0, i), Number(line.slice(i + 1)));
    }
  }
  return { types, samples };
}

/** Sum of the samples of one metric name (every label set). */
function total(samples: Map<string, number>, name: string): number {
  let sum = 0;
  for (const [k, v] of samples) if (k === name || k.startsWith(`${name}{`)) sum += v;
  return sum;
}

class ObservedBroker extends MemoryBroker {
  observed: BrokerHandler | null = null;
  override async start(handler: BrokerHandler): Promise<void> {
    this.observed = handler;
    await super.start(handler);
  }
}

describe('/metrics', () => {
  it('follows the naming conventions, keeps the seed names as aliases, reports broker status and delivery latency', async () => {
    const broker = new ObservedBroker({ nodeId: 'metrics-node' });
    const srv = await startServer({}, { broker, defaultMetrics: true });
    try {
      const a = await TestClient.connect(`${srv.ws}/ws`);
      const b = await TestClient.connect(`${srv.ws}/ws`);
      await a.join('room');
      await b.join('room');
      assert.equal((await b.request('message', { channel: 'room', content: 'hi' })).type, 'ok');
      await a.next('message');
      await b.request('no_such_type');
      const { types, samples } = parse(await (await fetch(`${srv.http}/metrics`)).text());

      for (const [name, type] of types) {
        if (name.startsWith('process_') || name.startsWith('nodejs_')) continue; // prom-client's default metrics
        if (LEGACY_METRIC_NAMES[name] !== undefined) continue;
        assert.match(name, /^switchboard_/, `${name} has the switchboard_ prefix`);
        if (type === 'counter') assert.match(name, /_total$/, `counter ${name} ends in _total`);
        else assert.doesNotMatch(name, /_total$/, `${type} ${name} does not end in _total`);
      }
      for (const [legacy, current] of Object.entries(LEGACY_METRIC_NAMES)) {
        assert.ok(types.has(legacy), `alias ${legacy} exported`);
        assert.equal(types.get(legacy), types.get(current), `${legacy} has the type of ${current}`);
        const suffix = types.get(current) === 'histogram' ? '_count' : '';
        assert.equal(total(samples, legacy + suffix), total(samples, current + suffix), `${legacy} = ${current}`);
      }
      assert.equal(samples.get('switchboard_connections'), 2);
      assert.ok(total(samples, 'switchboard_messages_total') >= 4);
      assert.equal(samples.get('switchboard_errors_total{code="UNKNOWN_TYPE"}'), 1);
      assert.equal(samples.get('switchboard_broker_up'), 1);
      assert.equal(samples.get('switchboard_broker_status{status="up"}'), 1);
      assert.equal(samples.get('switchboard_broker_status{status="down"}'), 0);
      assert.equal(samples.get('switchboard_publication_delivery_seconds_count'), 1, 'one live publication delivered on this node');
      assert.ok(samples.get('switchboard_publication_delivery_seconds_sum')! < 1);
      assert.equal(samples.get('switchboard_info{node_id="metrics-node",broker="memory",version="0.1.0"}'), 1);

      // The engine reports its connection lost: the gauges follow (as /health does).
      broker.observed!.onStatus?.('down');
      const down = parse(await (await fetch(`${srv.http}/metrics`)).text()).samples;
      // Frames are tallied on the hot path and copied into the counters per scrape: a second scrape reports
      // the same totals (not added twice), and the next frame adds exactly one.
      assert.equal(samples.get('switchboard_messages_total{type="message",direction="inbound"}'), 1);
      for (const [k, v] of samples) if (k.startsWith('switchboard_messages_total{')) assert.equal(down.get(k), v, `${k} unchanged by a second scrape`);
      assert.equal((await a.request('message', { channel: 'room', content: 'again' })).type, 'ok');
      await b.next('message');
      const after = parse(await (await fetch(`${srv.http}/metrics`)).text()).samples;
      assert.equal(after.get('switchboard_messages_total{type="message",direction="inbound"}'), 2);
      assert.equal(after.get('websocket_messages_total{type="message",direction="inbound"}'), 2);
      assert.equal(down.get('switchboard_broker_up'), 0);
      assert.equal(down.get('switchboard_broker_status{status="down"}'), 1);
      assert.equal((await fetch(`${srv.http}/health`)).status, 503);
      broker.observed!.onStatus?.('up');

      // docs/operations.md names every family and alias.
      const ops = readFileSync(join(REPO_ROOT, 'docs', 'operations.md'), 'utf8');
      for (const name of types.keys()) {
        if (name.startsWith('process_') || name.startsWith('nodejs_')) continue;
        assert.ok(ops.includes(`\`${name}\``) || ops.includes(`\`${name}{`), `docs/operations.md mentions ${name}`);
      }
      assert.match(ops, /grafana\/switchboard-dashboard\.json/);

      // The Grafana dashboard queries only metrics this server exports.
      const dashboard = JSON.parse(readFileSync(join(REPO_ROOT, 'docs', 'grafana', 'switchboard-dashboard.json'), 'utf8')) as { panels: Array<{ title: string; targets: Array<{ expr: string }> }> };
      const exported = new Set<string>();
      for (const [name, type] of types) {
        exported.add(name);
        if (type === 'histogram') for (const s of ['_bucket', '_sum', '_count']) exported.add(name + s);
      }
      const used = new Set<string>();
      for (const p of dashboard.panels) {
        assert.ok(p.targets.length > 0, p.title);
        for (const t of p.targets) for (const m of t.expr.matchAll(/\b((?:switchboard|process|nodejs)_[a-z0-9_]+)/g)) used.add(m[1]!);
      }
      for (const name of used) assert.ok(exported.has(name), `dashboard metric ${name} is exported`);
      for (const needed of ['switchboard_connections', 'switchboard_messages_total', 'switchboard_publication_delivery_seconds_bucket', 'switchboard_broker_up', 'switchboard_broker_status']) {
        assert.ok(used.has(needed), `the dashboard uses ${needed}`);
      }
      for (const legacy of Object.keys(LEGACY_METRIC_NAMES)) assert.ok(!used.has(legacy), `the dashboard uses ${LEGACY_METRIC_NAMES[legacy]}, not ${legacy}`);
      a.close();
      b.close();
    } finally {
      await srv.close();
    }
  });
});
