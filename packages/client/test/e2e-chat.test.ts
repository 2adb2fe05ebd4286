// End to end in real Chromium: the demo chat (apps/chat) served by a real Switchboard at `/`, using the
// browser SDK from /sdk/switchboard.js. Two pages chat; one loses its connection (TCP proxy cut) and shows
// the messages it missed once it is back. Needs CHROMIUM_PATH: eval "$(bash scripts/provision/chromium.sh)"
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Fastify from 'fastify';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { Switchboard } from '@switchboard/server';
import { TcpProxy } from './helpers.js';

type StaticAssets = typeof import('../../server/src/api/static-assets.js');

const REPO_ROOT = fileURLToPath(new URL('../../../../', import.meta.url)); // packages/client/dist/test -> repo
const ARTIFACTS = join(REPO_ROOT, '.artifacts');
const TIMEOUT = 10_000;

async function connectAs(page: Page, base: string, username: string): Promise<void> {
  await page.goto(`${base}/?username=${encodeURIComponent(username)}`);
  await page.locator('#connect').click();
  await page.locator('#status[data-status="connected"]').waitFor({ timeout: TIMEOUT });
}

async function say(page: Page, text: string): Promise<void> {
  await page.locator('#message').fill(text);
  await page.locator('#send').click();
}

const message = (page: Page, text: string) => page.locator('#messages .msg', { hasText: text });

/** Inbound frames of `type` the server received (websocket_messages_total{direction="inbound"}). */
async function received(sb: Switchboard, type: string): Promise<number> {
  const metric = await sb.metrics.registry.getSingleMetric('websocket_messages_total')!.get();
  return metric.values.find((v) => v.labels.type === type && v.labels.direction === 'inbound')?.value ?? 0;
}

test('demo chat in Chromium: two users, presence, typing, private message, reconnect with recovered messages', async (t) => {
  const executablePath = process.env.CHROMIUM_PATH;
  assert.ok(executablePath, 'CHROMIUM_PATH is not set: run eval "$(bash scripts/provision/chromium.sh)" first');

  const staticAssets = (await import(new URL('../../../server/dist/src/api/static-assets.js', import.meta.url).href)) as StaticAssets;
  const sb = await Switchboard.create({ host: '127.0.0.1', port: 0, log: { level: 'silent' }, shutdown: { deadlineMs: 2000 }, store: { sqlitePath: ':memory:' } }, { defaultMetrics: false });
  const app = Fastify({ logger: false, forceCloseConnections: true });
  await app.register(sb.fastifyPlugin, { demo: true });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const port = (app.server.address() as { port: number }).port;
  const proxy = new TcpProxy(port);
  await proxy.listen();
  const userDataDir = mkdtempSync(join(tmpdir(), 'sb-chromium-'));
  let context: BrowserContext | null = null;
  t.after(async () => {
    await context?.close();
    rmSync(userDataDir, { recursive: true, force: true });
    await proxy.close();
    await sb.close();
    await app.close();
  });

  const base = `http://127.0.0.1:${port}`;
  const sdk = await fetch(`${base}${staticAssets.SDK_ROUTE}`);
  assert.equal(sdk.status, 200, 'browser bundle missing: run `npm run build -w @switchboard/client`');
  assert.match(sdk.headers.get('content-type') ?? '', /javascript/);
  assert.match(await sdk.text(), /SwitchboardClient/);
  assert.equal((await fetch(`${base}${staticAssets.SDK_IIFE_ROUTE}`)).status, 200);

  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    viewport: { width: 1100, height: 640 },
  });
  const alice = await context.newPage();
  const bob = await context.newPage();
  const pageErrors: string[] = [];
  for (const p of [alice, bob]) p.on('pageerror', (e) => pageErrors.push(e.message));

  await connectAs(alice, base, 'alice');
  // Bob goes through the proxy so that his connection alone can be cut.
  await connectAs(bob, `http://127.0.0.1:${proxy.port}`, 'bob');

  // Rooms with member counts, presence list, online users.
  await alice.locator('#rooms li[data-room="general"] .member-count', { hasText: '2' }).waitFor({ timeout: TIMEOUT });
  await alice.locator('#members li[data-user="u-bob"]').waitFor({ timeout: TIMEOUT });
  await bob.locator('#members li[data-user="u-alice"]').waitFor({ timeout: TIMEOUT });
  await alice.locator('#online li[data-user="u-bob"]').waitFor({ timeout: TIMEOUT });

  // Typing indicator.
  await alice.locator('#message').pressSequentially('hel');
  await bob.locator('#typing', { hasText: 'alice is typing' }).waitFor({ timeout: TIMEOUT });

  // Messages both ways, with sender and time.
  await alice.locator('#message').fill('');
  await say(alice, 'hello from alice');
  await message(bob, 'hello from alice').waitFor({ timeout: TIMEOUT });
  assert.equal(await message(bob, 'hello from alice').locator('.sender').textContent(), 'alice');
  assert.match((await message(bob, 'hello from alice').locator('time').textContent()) ?? '', /\d{1,2}:\d{2}/);
  await bob.locator('#typing').filter({ hasText: /^$/ }).waitFor({ timeout: TIMEOUT });
  await say(bob, 'hi alice');
  await message(alice, 'hi alice').waitFor({ timeout: TIMEOUT });

  // Private message alice -> bob.
  await alice.locator('#online li[data-user="u-bob"]').click();
  await alice.locator('#conversation-title', { hasText: 'private' }).waitFor({ timeout: TIMEOUT });
  await say(alice, 'a secret for bob');
  await bob.locator('#dms li[data-dm="u-alice"] .unread', { hasText: '1' }).waitFor({ timeout: TIMEOUT });
  await bob.locator('#dms li[data-dm="u-alice"]').click();
  await message(bob, 'a secret for bob').waitFor({ timeout: TIMEOUT });
  await bob.locator('#rooms li[data-room="lobby"]').click();
  await alice.locator('#rooms li[data-room="lobby"]').click();

  // History on join: a third page joining later sees the earlier messages. Alice's online list follows
  // carol's user_online / user_offline events.
  const carol = await context.newPage();
  await connectAs(carol, base, 'carol');
  await message(carol, 'hello from alice').waitFor({ timeout: TIMEOUT });
  await message(carol, 'hi alice').waitFor({ timeout: TIMEOUT });
  await alice.locator('#online li[data-user="u-carol"]').waitFor({ timeout: TIMEOUT });
  await carol.close();
  await alice.locator('#online li[data-user="u-carol"]').waitFor({ state: 'detached', timeout: TIMEOUT });

  // Bob loses his connection; alice keeps chatting; bob comes back and shows what he missed.
  proxy.mode = 'refuse';
  proxy.cut();
  await bob.locator('#status[data-status="reconnecting"]').waitFor({ timeout: TIMEOUT });
  await say(alice, 'missed one');
  await say(alice, 'missed two');
  await message(alice, 'missed two').waitFor({ timeout: TIMEOUT });
  assert.equal(await message(bob, 'missed one').count(), 0);
  mkdirSync(ARTIFACTS, { recursive: true });
  await bob.screenshot({ path: join(ARTIFACTS, 'chat-e2e-bob-offline.png') });
  proxy.mode = 'forward';
  await bob.locator('#status[data-status="connected"]').waitFor({ timeout: TIMEOUT });
  await message(bob, 'missed one').waitFor({ timeout: TIMEOUT });
  await message(bob, 'missed two').waitFor({ timeout: TIMEOUT });
  assert.equal(await bob.locator('#messages .msg.replayed').count(), 2, 'the two missed messages are marked recovered');
  const order = await bob.locator('#messages .msg .text').allTextContents();
  assert.deepEqual(order, ['hello from alice', 'hi alice', 'missed one', 'missed two']);
  await bob.locator('#notice', { hasText: '2 missed messages recovered' }).waitFor({ timeout: TIMEOUT });

  // Live again after the recovery.
  await say(bob, 'back online');
  await message(alice, 'back online').waitFor({ timeout: TIMEOUT });
  await bob.locator('#online li[data-user="u-alice"]').waitFor({ timeout: TIMEOUT });
  // The online list is fetched once per connection (alice, bob twice, carol), not again on every user event.
  assert.ok((await received(sb, 'online_users')) <= 4, `online_users requests: ${await received(sb, 'online_users')}`);
  await bob.screenshot({ path: join(ARTIFACTS, 'chat-e2e-bob.png') });
  await alice.screenshot({ path: join(ARTIFACTS, 'chat-e2e-alice.png') });
  assert.deepEqual(pageErrors, []);
});

/** A headless Chromium with its own profile; closed (and the profile removed) by the test's teardown. */
async function launch(t: { after(fn: () => unknown): void }, viewport: { width: number; height: number }): Promise<BrowserContext> {
  const executablePath = process.env.CHROMIUM_PATH;
  assert.ok(executablePath, 'CHROMIUM_PATH is not set: run eval "$(bash scripts/provision/chromium.sh)" first');
  const userDataDir = mkdtempSync(join(tmpdir(), 'sb-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    viewport,
  });
  t.after(async () => {
    await context.close();
    rmSync(userDataDir, { recursive: true, force: true });
  });
  return context;
}

/** The standalone server as `npm start` runs it (demo served, SQLite store), on a free loopback port. */
async function standalone(sqlitePath: string): Promise<{ sb: Switchboard; base: string }> {
  const sb = await Switchboard.create({ host: '127.0.0.1', port: 0, log: { level: 'silent' }, shutdown: { deadlineMs: 1000 }, store: { sqlitePath } }, { defaultMetrics: false });
  const port = await sb.listen();
  return { sb, base: `http://127.0.0.1:${port}` };
}

test('demo chat: empty state, connection controls, messages from the README examples (content), desktop and phone', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sb-chat-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const { sb, base } = await standalone(join(dir, 'chat.db'));
  t.after(() => sb.close());
  const context = await launch(t, { width: 1100, height: 700 });
  const page = await context.newPage();
  const pageErrors: string[] = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  mkdirSync(ARTIFACTS, { recursive: true });

  // Before connecting: a welcome, Connect enabled, Disconnect and the composer disabled.
  await page.goto(`${base}/?username=dora`);
  await page.locator('#empty-state', { hasText: 'Welcome' }).waitFor({ timeout: TIMEOUT });
  assert.equal(await page.locator('#status').textContent(), 'offline');
  assert.equal(await page.locator('#connect').isEnabled(), true);
  assert.equal(await page.locator('#disconnect').isEnabled(), false);
  assert.equal(await page.locator('#message').isEnabled(), false);

  // Connected: the name is locked, Connect is off, Disconnect and the composer on; an empty room says so.
  await page.locator('#connect').click();
  await page.locator('#status[data-status="connected"]').waitFor({ timeout: TIMEOUT });
  assert.equal(await page.locator('#connect').isEnabled(), false);
  assert.equal(await page.locator('#username').getAttribute('readonly'), '');
  assert.equal(await page.locator('#disconnect').isEnabled(), true);
  assert.equal(await page.locator('#message').isEnabled(), true);
  await page.locator('#empty-state', { hasText: 'No messages in # lobby yet' }).waitFor({ timeout: TIMEOUT });
  await page.screenshot({ path: join(ARTIFACTS, 'chat-empty-desktop.png') });

  // The README's three ways of sending, all with `content`: the in-process API, the HTTP API, a raw frame.
  await sb.node.publish('chat:lobby', { content: 'from the backend' });
  const http = await fetch(`${base}/api/publish`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ channel: 'chat:lobby', data: { content: 'hi' } }) });
  assert.equal(http.status, 200);
  const { default: WebSocket } = await import('ws');
  const raw = new WebSocket(`${base.replace('http', 'ws')}/ws`);
  await new Promise((resolve, reject) => raw.once('open', resolve).once('error', reject));
  raw.send(JSON.stringify({ type: 'join_channel', data: { channel: 'chat:lobby' } }));
  raw.send(JSON.stringify({ type: 'message', data: { channel: 'chat:lobby', content: 'hello' } }));
  for (const text of ['from the backend', 'hi', 'hello']) await page.locator('#messages .msg .text', { hasText: new RegExp(`^${text}$`) }).waitFor({ timeout: TIMEOUT });
  raw.close();
  await say(page, 'typed in the page');
  await message(page, 'typed in the page').waitFor({ timeout: TIMEOUT });
  await page.screenshot({ path: join(ARTIFACTS, 'chat-desktop.png') });

  // Phone width (390 x 844): one column, nothing wider than the screen, the composer on screen and usable.
  await page.setViewportSize({ width: 390, height: 844 });
  await page.waitForFunction('window.innerWidth === 390', undefined, { timeout: TIMEOUT });
  const overflow = (await page.evaluate('document.documentElement.scrollWidth - window.innerWidth')) as number;
  assert.ok(overflow <= 1, `page wider than the phone by ${overflow}px`);
  assert.equal(await page.locator('aside').isVisible(), false, 'the member list is left out on phones');
  for (const sel of ['#rooms li[data-room="lobby"]', '#message', '#send', '#status', '#disconnect']) {
    const box = await page.locator(sel).boundingBox();
    assert.ok(box !== null && box.x >= 0 && box.x + box.width <= 391 && box.y + box.height <= 845, `${sel} on screen: ${JSON.stringify(box)}`);
  }
  await say(page, 'sent from a phone');
  await message(page, 'sent from a phone').waitFor({ timeout: TIMEOUT });
  await page.locator('#rooms li[data-room="random"]').click();
  await page.locator('#empty-state', { hasText: 'No messages in # random yet' }).waitFor({ timeout: TIMEOUT });
  await page.locator('#rooms li[data-room="lobby"]').click();
  await page.screenshot({ path: join(ARTIFACTS, 'chat-phone.png') });

  // Disconnect: offline, Connect offered again, composer off.
  await page.locator('#disconnect').click();
  await page.locator('#status[data-status="closed"]').waitFor({ timeout: TIMEOUT });
  assert.equal(await page.locator('#connect').isEnabled(), true);
  assert.equal(await page.locator('#message').isEnabled(), false);
  assert.equal(await page.locator('#disconnect').isEnabled(), false);
  await page.screenshot({ path: join(ARTIFACTS, 'chat-phone-offline.png') });
  assert.deepEqual(pageErrors, []);
});

test('demo chat: rooms keep their history across a server restart (embedded default: SQLite store, chat namespace persisted)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sb-chat-restart-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const db = join(dir, 'switchboard.db');
  const context = await launch(t, { width: 1000, height: 650 });

  const first = await standalone(db);
  const before = await context.newPage();
  await connectAs(before, first.base, 'erin');
  await say(before, 'said before the restart');
  await message(before, 'said before the restart').waitFor({ timeout: TIMEOUT });
  await before.close();
  await first.sb.close();

  const second = await standalone(db);
  t.after(() => second.sb.close());
  const after = await context.newPage();
  await connectAs(after, second.base, 'frank');
  await message(after, 'said before the restart').waitFor({ timeout: TIMEOUT });
  assert.equal(await message(after, 'said before the restart').locator('.sender').textContent(), 'erin');
  await say(after, 'said after the restart');
  await message(after, 'said after the restart').waitFor({ timeout: TIMEOUT });
  const texts = await after.locator('#messages .msg .text').allTextContents();
  assert.deepEqual(texts, ['said before the restart', 'said after the restart']);
});
