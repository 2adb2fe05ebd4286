// End to end in real Chromium: the demo editor (apps/editor, CodeMirror 6 + y-codemirror.next over the SDK's
// document handle) served by a real Switchboard at /editor. Two pages type at the same time, converge to
// identical text and show each other's cursor and presence; screenshots go to .artifacts/editor/.
// Needs CHROMIUM_PATH: eval "$(bash scripts/provision/chromium.sh)"
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as Y from 'yjs';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { startServer } from './helpers.js';

const REPO_ROOT = fileURLToPath(new URL('../../../../', import.meta.url)); // packages/client/dist/test -> repo
const ARTIFACTS = join(REPO_ROOT, '.artifacts', 'editor');
const TIMEOUT = 10_000;
const DOC = 'doc:e2e-editor';

interface EditorWindow {
  editorDemo: { text(): string; view: { state: { doc: { toString(): string } } } };
}

async function openEditor(page: Page, base: string, username: string): Promise<void> {
  await page.goto(`${base}/editor?username=${encodeURIComponent(username)}&doc=${encodeURIComponent(DOC)}`);
  await page.locator('#open').click();
  await page.locator('#status[data-status="connected"]').waitFor({ timeout: TIMEOUT });
  await page.locator('#doc-state[data-state="synced"]').waitFor({ timeout: TIMEOUT });
}

/** The Yjs text and what CodeMirror shows, in the page. */
const texts = (page: Page) =>
  page.evaluate(() => {
    const d = (window as unknown as EditorWindow).editorDemo;
    return { y: d.text(), view: d.view.state.doc.toString() };
  });

test('demo editor in Chromium: two pages type at once, converge, and show each other\'s cursors and presence', async (t) => {
  const executablePath = process.env.CHROMIUM_PATH;
  assert.ok(executablePath, 'CHROMIUM_PATH is not set: run eval "$(bash scripts/provision/chromium.sh)" first');
  // Channel rules as a hook: carol may read documents, not write them (anonymous users are their username).
  const srv = await startServer({}, {
    hooks: {
      authorizeChannel: (info, action) =>
        action === 'publish' && info.userId === 'carol' ? { allowed: false, code: 'FORBIDDEN', message: 'carol only reads' } : { allowed: true },
    },
  });
  const userDataDir = mkdtempSync(join(tmpdir(), 'sb-chromium-editor-'));
  let context: BrowserContext | null = null;
  t.after(async () => {
    await context?.close();
    rmSync(userDataDir, { recursive: true, force: true });
    await srv.close();
  });

  const base = `http://127.0.0.1:${srv.port}`;
  const page = await fetch(`${base}/editor`);
  assert.equal(page.status, 200);
  assert.match(await page.text(), /<div id="editor">/);
  const bundle = await fetch(`${base}/editor/editor.js`);
  assert.equal(bundle.status, 200, 'editor bundle missing: run `npm run build`');
  assert.match(bundle.headers.get('content-type') ?? '', /javascript/);

  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    viewport: { width: 1000, height: 560 },
  });
  const alice = await context.newPage();
  const bob = await context.newPage();
  const pageErrors: string[] = [];
  const sockets = new Map<Page, string[]>([[alice, []], [bob, []]]);
  for (const p of [alice, bob]) {
    p.on('pageerror', (e) => pageErrors.push(e.message));
    p.on('websocket', (ws) => sockets.get(p)!.push(ws.url()));
  }

  await openEditor(alice, base, 'alice');
  await alice.locator('.cm-content').click();
  await alice.keyboard.type('Shared notes\n');
  await openEditor(bob, base, 'bob');
  await bob.locator('.cm-line', { hasText: 'Shared notes' }).waitFor({ timeout: TIMEOUT });

  // Both type at the same time, at different places.
  await bob.locator('.cm-content').click();
  await bob.keyboard.press('Control+End');
  await alice.keyboard.press('Control+Home');
  await Promise.all([
    alice.keyboard.type('alice typed this. ', { delay: 10 }),
    bob.keyboard.type('bob typed that!', { delay: 10 }),
  ]);

  // Converged: identical text in both pages (Yjs and CodeMirror), with both insertions whole.
  const both = (want: [string, string]): boolean => {
    const text = (window as unknown as EditorWindow).editorDemo.text();
    return text.includes(want[0]) && text.includes(want[1]);
  };
  const want: [string, string] = ['alice typed this. ', 'bob typed that!'];
  await alice.waitForFunction(both, want, { timeout: TIMEOUT });
  await bob.waitForFunction(both, want, { timeout: TIMEOUT });
  const a = await texts(alice);
  const b = await texts(bob);
  assert.equal(a.y, b.y, 'both pages hold the same text');
  assert.equal(a.view, a.y, 'alice\'s editor shows the document');
  assert.equal(b.view, b.y, 'bob\'s editor shows the document');
  assert.match(a.y, /^alice typed this\. Shared notes\n/);
  assert.match(a.y, /bob typed that!$/);

  // The server's copy is the same.
  const server = new Y.Doc();
  Y.applyUpdate(server, await srv.sb.node.documents.read(DOC));
  assert.equal(server.getText('codemirror').toString(), a.y);

  // Each page shows the other's cursor (y-codemirror.next caret with the name) and presence entry.
  await alice.locator('.cm-ySelectionInfo', { hasText: 'bob' }).waitFor({ state: 'attached', timeout: TIMEOUT });
  await bob.locator('.cm-ySelectionInfo', { hasText: 'alice' }).waitFor({ state: 'attached', timeout: TIMEOUT });
  await alice.locator('#presence li', { hasText: 'bob' }).waitFor({ timeout: TIMEOUT });
  await bob.locator('#presence li', { hasText: 'alice' }).waitFor({ timeout: TIMEOUT });
  assert.equal(await alice.locator('#presence li').count(), 2);
  assert.match((await alice.locator('#presence li', { hasText: '(you)' }).textContent()) ?? '', /alice/);

  mkdirSync(ARTIFACTS, { recursive: true });
  await alice.screenshot({ path: join(ARTIFACTS, 'alice.png') });
  await bob.screenshot({ path: join(ARTIFACTS, 'bob.png') });

  // Bob closes the document: his cursor and presence entry leave alice's page.
  await bob.locator('#close').click();
  await alice.locator('#presence li', { hasText: 'bob' }).waitFor({ state: 'detached', timeout: TIMEOUT });
  await alice.locator('.cm-ySelectionInfo', { hasText: 'bob' }).waitFor({ state: 'detached', timeout: TIMEOUT });
  await alice.screenshot({ path: join(ARTIFACTS, 'alice-after-bob-left.png') });

  // A read-only user: the page says so and the editor does not take input; alice's edits still reach her.
  const carol = await context.newPage();
  carol.on('pageerror', (e) => pageErrors.push(e.message));
  await openEditor(carol, base, 'carol');
  await carol.locator('#readonly').waitFor({ state: 'visible', timeout: TIMEOUT });
  await carol.locator('.cm-content[contenteditable="false"]').waitFor({ timeout: TIMEOUT });
  await carol.locator('.cm-content').click();
  await carol.keyboard.type('carol was here');
  await alice.keyboard.type(' +1');
  assert.match((await texts(alice)).y, / \+1/);
  await carol.waitForFunction((t) => (window as unknown as EditorWindow).editorDemo.text() === t, (await texts(alice)).y, { timeout: TIMEOUT });
  assert.ok(!(await texts(carol)).y.includes('carol was here'));
  assert.ok(!(await texts(alice)).y.includes('carol was here'));
  await alice.locator('#presence li', { hasText: 'carol' }).waitFor({ timeout: TIMEOUT });
  await carol.screenshot({ path: join(ARTIFACTS, 'carol-read-only.png') });

  // One WebSocket per page: the SDK connection, which carries the document.
  assert.deepEqual(sockets.get(alice)!.map((u) => new URL(u).pathname), ['/ws']);
  assert.deepEqual(sockets.get(bob)!.map((u) => new URL(u).pathname), ['/ws']);
  assert.deepEqual(pageErrors, []);
});
