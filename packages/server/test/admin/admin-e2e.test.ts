/**
 * The admin dashboard across a two-node cluster (real `switchboard serve --broker redis` processes): the admin
 * API behind its token, every node's figures reaching the node that serves the dashboard, channels, presence,
 * search, disconnect and publish through the API, then the page itself in Chromium (sign in, nodes, uPlot plots,
 * channel presence, search + disconnect, publish console, recent errors) with screenshots in .artifacts/.
 * Needs REDIS_URL and CHROMIUM_PATH (scripts/test.sh provisions both).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';
import { TestClient } from '../helpers.js';
import { REPO_ROOT, requireRedisUrl } from '../redis/redis-process.js';
import { pollUntil, startNodes, uniquePrefix, type ServerNode } from '../cluster/harness.js';

const REDIS_URL = requireRedisUrl();
const TOKEN = 'admin-t0ken-for-tests';
const ARTIFACTS = join(REPO_ROOT, '.artifacts', 'admin');
const TIMEOUT = 10_000;

interface Overview {
  node_id: string;
  nodes: Array<{ nodeId: string; connections: number; details?: { version: string; channels: number; users: number; messagesIn: number; series: number[][]; brokerUp: boolean } }>;
  errors: Array<{ node: string; kind: string; code?: string; message: string }>;
}

async function admin(base: string, path: string, init: { method?: string; body?: unknown; token?: string | null } = {}): Promise<{ status: number; body: any }> {
  const headers: Record<string, string> = {};
  if (init.token !== null) headers.authorization = `Bearer ${init.token ?? TOKEN}`;
  if (init.body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${base}/admin/api/${path}`, { method: init.method ?? 'GET', headers, body: init.body === undefined ? undefined : JSON.stringify(init.body) });
  const text = await res.text();
  return { status: res.status, body: text === '' ? null : JSON.parse(text) };
}

describe('admin dashboard on a two-node cluster', () => {
  let nodes: ServerNode[] = [];
  let A: ServerNode;
  let B: ServerNode;
  const clients: TestClient[] = [];
  let alice: TestClient, bob: TestClient, carol: TestClient, dave: TestClient;

  before(async () => {
    nodes = await startNodes(2, REDIS_URL, uniquePrefix('admin'), { 'http.adminToken': TOKEN, 'broker.nodeReportIntervalMs': '300' });
    [A, B] = nodes as [ServerNode, ServerNode];
    const connect = async (node: ServerNode, user: string) => {
      const c = await TestClient.connect(`${node.ws}/ws?user_id=${user}&username=${user[0]!.toUpperCase()}${user.slice(1)}`);
      clients.push(c);
      return c;
    };
    alice = await connect(A, 'alice');
    bob = await connect(A, 'bob');
    carol = await connect(B, 'carol');
    dave = await connect(B, 'dave');
    for (const c of [alice, bob, carol, dave]) await c.join('chat:lobby');
    await carol.join('ops');
    for (let i = 0; i < 5; i++) assert.equal((await alice.request('message', { channel: 'chat:lobby', content: `hello ${i}` })).type, 'ok');
    // An error frame on node B (unknown message type): it must show in A's "recent errors".
    assert.equal((await dave.request('no_such_type', {})).type, 'error');
  });

  after(async () => {
    for (const c of clients) c.close();
    await Promise.all(nodes.map((n) => n.stop()));
  });

  it('the API needs the admin token; the page itself is public (it asks for the token)', async () => {
    assert.equal((await admin(A.http, 'overview', { token: null })).status, 401);
    assert.equal((await admin(A.http, 'overview', { token: 'wrong' })).status, 401);
    assert.equal((await admin(A.http, 'overview')).status, 200);
    const page = await fetch(`${A.http}/admin`);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /Switchboard admin/);
    assert.equal((await fetch(`${A.http}/admin/vendor/uPlot.iife.min.js`)).status, 200);
    // The server API key does not open the admin API, nor the admin token the server API's key check.
    assert.equal((await admin(A.http, 'search?q=x', { token: 'k' })).status, 401);
  });

  it("every node's figures reach the node serving the dashboard", async () => {
    const o = await pollUntil(
      async () => (await admin(A.http, 'overview')).body as Overview,
      (o) => o.nodes.length === 2 && o.nodes.find((n) => n.nodeId === 'node-b')?.details?.messagesIn !== undefined && o.nodes.find((n) => n.nodeId === 'node-b')!.connections === 2 && (o.nodes.find((n) => n.nodeId === 'node-b')?.details?.series.length ?? 0) > 0 && o.errors.some((e) => e.node === 'node-b' && e.code === 'UNKNOWN_TYPE'),
      TIMEOUT,
      "node-b's report with 2 connections, samples and its error",
    );
    assert.equal(o.node_id, 'node-a');
    const a = o.nodes.find((n) => n.nodeId === 'node-a')!;
    const b = o.nodes.find((n) => n.nodeId === 'node-b')!;
    assert.equal(a.connections, 2);
    assert.ok(a.details!.messagesIn >= 7, JSON.stringify(a.details));
    assert.match(b.details!.version, /^\d+\.\d+\.\d+/);
    assert.equal(b.details!.users, 2);
    assert.equal(b.details!.brokerUp, true);
    assert.ok(b.details!.series.length > 0 && b.details!.series.every((s) => s.length === 4));
    // /api/nodes carries the figures too (without the samples), from any node.
    const listed = (await (await fetch(`${B.http}/api/nodes`)).json()) as { nodes: Array<{ nodeId: string; details?: Record<string, unknown> }> };
    const viaB = listed.nodes.find((n) => n.nodeId === 'node-a')!;
    assert.equal(typeof viaB.details?.messagesIn, 'number');
    assert.equal(viaB.details?.series, undefined);
  });

  it('channels with member counts summed over the nodes, and cluster-wide presence', async () => {
    const { body } = await pollUntil(
      () => admin(A.http, 'channels'),
      (r) => r.body.channels.find((c: { channel: string }) => c.channel === 'chat:lobby')?.members === 4,
      TIMEOUT,
      'chat:lobby with 4 members',
    );
    const lobby = body.channels.find((c: { channel: string }) => c.channel === 'chat:lobby');
    assert.deepEqual(lobby.nodes, { 'node-a': 2, 'node-b': 2 });
    assert.deepEqual((await admin(A.http, 'channels?q=ops')).body.channels.map((c: { channel: string }) => c.channel), ['ops']);
    const presence = (await admin(A.http, `channels/${encodeURIComponent('chat:lobby')}/presence`)).body;
    assert.deepEqual(presence.members.map((m: { user_id: string }) => m.user_id).sort(), ['alice', 'bob', 'carol', 'dave']);
  });

  it('search: connections of this node, online users of the whole cluster; disconnect and publish go cluster-wide', async () => {
    const found = (await admin(A.http, 'search?q=carol')).body;
    assert.deepEqual(found.connections, [], 'carol is connected to node-b');
    assert.deepEqual(found.users.map((u: { user_id: string }) => u.user_id), ['carol']);
    const bobs = (await admin(A.http, 'search?q=bob')).body;
    assert.equal(bobs.connections.length, 1);
    assert.deepEqual(bobs.connections[0].channels, ['chat:lobby']);

    const published = await admin(A.http, 'publish', { method: 'POST', body: { channel: 'ops', data: { content: 'from the admin' } } });
    assert.equal(published.status, 200);
    const got = await carol.next((f) => f.type === 'message' && f.data.content === 'from the admin');
    assert.equal(got.channel ?? got.data.channel, 'ops');
    assert.equal((await admin(A.http, 'publish', { method: 'POST', body: { channel: 'ops', data: 'nope' } })).status, 400);

    assert.equal((await admin(A.http, 'users/dave/disconnect', { method: 'POST', body: {} })).status, 200);
    assert.equal((await dave.closed).code, 1000);
  });

  it('the page in Chromium: sign in, nodes, plots, channels, presence, search + disconnect, publish, recent errors', async () => {
    const executablePath = process.env.CHROMIUM_PATH;
    assert.ok(executablePath, 'CHROMIUM_PATH is not set: run eval "$(bash scripts/provision/chromium.sh)" first');
    mkdirSync(ARTIFACTS, { recursive: true });
    const userDataDir = mkdtempSync(join(tmpdir(), 'sb-admin-chromium-'));
    let context: BrowserContext | null = null;
    try {
      context = await chromium.launchPersistentContext(userDataDir, {
        executablePath,
        headless: true,
        args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
        viewport: { width: 1280, height: 1000 },
      });
      const page = await context.newPage();
      const pageErrors: string[] = [];
      page.on('pageerror', (e) => pageErrors.push(e.message));
      page.on('dialog', (d) => void d.accept());

      await page.goto(`${A.http}/admin`);
      await page.locator('#login').waitFor({ timeout: TIMEOUT });
      await page.locator('#token').fill('not the token');
      await page.locator('#login-form button').click();
      await page.locator('#login-error', { hasText: 'refused' }).waitFor({ timeout: TIMEOUT });
      await page.locator('#token').fill(TOKEN);
      await page.locator('#login-form button').click();

      // Nodes, both with their figures; summary totals.
      await page.locator('#nodes tbody tr[data-node="node-a"]').waitFor({ timeout: TIMEOUT });
      await page.locator('#nodes tbody tr[data-node="node-b"]').waitFor({ timeout: TIMEOUT });
      await page.locator('#total-connections', { hasText: '3' }).waitFor({ timeout: TIMEOUT }); // dave was disconnected
      // uPlot draws both plots, one series per node (legend entries).
      await page.locator('#plot-connections canvas').waitFor({ timeout: TIMEOUT });
      await page.locator('#plot-messages canvas').waitFor({ timeout: TIMEOUT });
      assert.equal(await page.locator('#plot-connections .u-legend .u-series').count(), 3, 'time + one series per node');

      // Channels and presence.
      await page.locator('#channels tr[data-channel="chat:lobby"]').click();
      await page.locator('#presence-table tr', { hasText: 'alice' }).waitFor({ timeout: TIMEOUT });
      await page.locator('#presence-table tr', { hasText: 'carol' }).waitFor({ timeout: TIMEOUT });

      // Recent errors include node-b's error frame.
      await page.locator('#errors tr', { hasText: 'UNKNOWN_TYPE' }).filter({ hasText: 'node-b' }).first().waitFor({ timeout: TIMEOUT });

      // Publish console.
      await page.locator('#publish-channel').fill('chat:lobby');
      await page.locator('#publish-data').fill('{"content": "published from the dashboard"}');
      await page.locator('#publish-form button').click();
      await page.locator('#publish-result', { hasText: 'offset' }).waitFor({ timeout: TIMEOUT });
      await alice.next((f) => f.type === 'message' && f.data.content === 'published from the dashboard');
      // Three seconds plotted (the page marks the count on the plot), so the plots show lines; then the screenshot.
      await page.waitForFunction("Number(document.getElementById('plot-connections').dataset.points) >= 3", undefined, { timeout: TIMEOUT });
      await page.screenshot({ path: join(ARTIFACTS, 'admin-desktop.png'), fullPage: true });

      // Search and disconnect bob (this node's connection).
      await page.locator('#search-q').fill('bob');
      await page.locator('#search-form button').click();
      const bobRow = page.locator('#search-connections tbody tr', { hasText: 'bob' });
      await bobRow.waitFor({ timeout: TIMEOUT });
      await bobRow.locator('button').click();
      assert.equal((await bob.closed).code, 1000);
      await page.locator('#search-connections tbody td.empty').waitFor({ timeout: TIMEOUT });

      // Phone width: one column, nothing wider than the screen.
      await page.setViewportSize({ width: 390, height: 844 });
      // The plots follow the resize event; wait for the page to fit (or report by how much it does not).
      const fits = await page.waitForFunction('window.innerWidth === 390 && document.documentElement.scrollWidth - window.innerWidth <= 1', undefined, { timeout: 5000 }).then(() => true, () => false);
      const overflow = (await page.evaluate('document.documentElement.scrollWidth - window.innerWidth')) as number;
      assert.ok(fits, `page wider than the phone screen by ${overflow}px`);
      await page.screenshot({ path: join(ARTIFACTS, 'admin-phone.png'), fullPage: true });
      assert.deepEqual(pageErrors, []);
    } finally {
      await context?.close();
      rmSync(userDataDir, { recursive: true, force: true });
    }
  });
});
