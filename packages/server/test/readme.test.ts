/**
 * The README's commands and examples, run as written against real servers (issue 14: "every documentation claim
 * is true"). The commands are read from README.md itself, so a changed README is tested as changed; the only
 * substitution is the port (the documented 8080 and 9000 become free ports, since other servers may hold
 * them). What runs:
 * - `npm start -- --port 9000 --set ...` from the repository root: demo chat at /, raw test client at /test,
 *   /admin off (404 saying how to turn it on) without a token;
 * - the `npx switchboard` block: --version, genconfig, checkconfig, and `serve --admin-token` (the admin
 *   dashboard at /admin, its API behind the token); against that server the wscat frames (a WebSocket client
 *   sends them), the curl publish line (run by the shell), the SQLite file and the chat rooms' history across
 *   a restart; then `--set store.driver=none` (no SQLite file);
 * - the in-process quick start (the `ts` block, as an ES module), with a WebSocket client of user `alice`
 *   connected after `sb.listen()`: it receives the publication, the notification and `shutdown`.
 * `npm install` and `npm test` are not run here (this test runs inside the second). That the wscat message
 * shows up in the demo chat's lobby room is checked in Chromium by packages/client/test/e2e-chat.test.ts;
 * `sb.attach` and the Fastify plugin by embedding.test.ts.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import WebSocket from 'ws';
import { REPO_ROOT } from './redis/redis-process.js';

const run = promisify(execFile);
const README = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');

interface Block { lang: string; body: string }
/** The fenced code blocks of a markdown text, in order. */
function fencedBlocks(markdown: string): Block[] {
  return [...markdown.matchAll(/^```(\w*)\n([\s\S]*?)^```$/gm)].map((m) => ({ lang: m[1]!, body: m[2]! }));
}
/** The lines of a shell block: comments and blank lines dropped. */
function commands(body: string): string[] {
  return body
    .split('\n')
    .map((l) => l.replace(/\s+#\s.*$/, '').trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
}
/** The inline code spans of the README that start with `prefix`. */
function inline(prefix: string): string[] {
  return [...README.matchAll(/`([^`\n]+)`/g)].map((m) => m[1]!).filter((c) => c.startsWith(prefix));
}

async function freePort(): Promise<number> {
  const srv = createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const { port } = srv.address() as { port: number };
  srv.close();
  await once(srv, 'close');
  return port;
}

/** Replace the documented ports (8080, 9000) in a command or snippet by `port`. */
function withPort(text: string, port: number): string {
  return text.replace(/\b(8080|9000)\b/g, String(port));
}

/** A server started by a documented shell command, in its own process group (npm and npx spawn children). */
class ShellServer {
  output = '';
  private stopped = false;
  private readonly child: ChildProcess;
  private readonly ended: Promise<number | null>;

  constructor(cmd: string, cwd: string, env: NodeJS.ProcessEnv = {}) {
    this.child = spawn('bash', ['-c', cmd], { cwd, detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, npm_config_update_notifier: 'false', ...env } });
    this.child.stdout!.on('data', (d: Buffer) => (this.output += d.toString()));
    this.child.stderr!.on('data', (d: Buffer) => (this.output += d.toString()));
    // Done when the shell exited and every process holding its output (npm, node) is gone.
    this.ended = Promise.all([once(this.child, 'exit'), once(this.child.stdout!, 'close'), once(this.child.stderr!, 'close')]).then(() => this.child.exitCode);
    this.ended.catch(() => undefined);
  }

  /** Resolves once the CLI logged `switchboard listening on`; rejects if the command ends first. */
  listening(): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no "switchboard listening" in 90 s:\n${this.output}`)), 90_000);
      const check = () => {
        if (this.output.includes('switchboard listening on')) {
          clearTimeout(timer);
          this.child.stdout!.off('data', check);
          resolve();
        }
      };
      this.child.stdout!.on('data', check);
      check();
      void this.ended.then((code) => {
        clearTimeout(timer);
        reject(new Error(`exited with ${code} before listening:\n${this.output}`));
      });
    });
  }

  /**
   * SIGTERM to the whole group, as a process manager stops it. Resolves once every process of the group is
   * gone; the server must have shut down gracefully (npm itself dies of the signal, so its code says nothing).
   */
  async stop(): Promise<void> {
    if (this.stopped) return this.ended.then(() => undefined);
    this.stopped = true;
    if (this.child.exitCode === null && this.child.signalCode === null) {
      try {
        process.kill(-this.child.pid!, 'SIGTERM');
      } catch {
        // already gone
      }
    }
    await this.ended;
    assert.match(this.output, /"msg":"graceful shutdown"/, this.output);
    assert.doesNotMatch(this.output, /shutdown failed|"level":(50|60)/, this.output);
  }
}

type Frame = { type: string; channel?: string | null; data: Record<string, any> };

/** A WebSocket client that records frames and waits for the one a predicate accepts. */
class Recorder {
  readonly frames: Frame[] = [];
  private waiters: Array<{ pred: (f: Frame) => boolean; resolve: (f: Frame) => void }> = [];
  readonly closed: Promise<number>;

  constructor(readonly ws: WebSocket) {
    ws.on('message', (d) => {
      const f = JSON.parse(String(d)) as Frame;
      this.frames.push(f);
      this.waiters = this.waiters.filter((w) => (w.pred(f) ? (w.resolve(f), false) : true));
    });
    this.closed = new Promise((resolve) => ws.once('close', (code) => resolve(code)));
  }

  static async open(url: string): Promise<Recorder> {
    const ws = new WebSocket(url);
    const r = new Recorder(ws);
    await once(ws, 'open');
    return r;
  }

  next(pred: (f: Frame) => boolean, what: string, ms = 10_000): Promise<Frame> {
    const seen = this.frames.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${what}: not received; got ${JSON.stringify(this.frames)}`)), ms);
      this.waiters.push({ pred, resolve: (f) => (clearTimeout(timer), resolve(f)) });
    });
  }
}

describe('README commands and examples', () => {
  const blocks = fencedBlocks(README);
  const sh = blocks.filter((b) => b.lang === 'sh');
  const work = join(REPO_ROOT, '.tmp', `readme-test-${process.pid}`);
  const servers: ShellServer[] = [];

  before(() => mkdirSync(work, { recursive: true }));
  after(async () => {
    await Promise.all(servers.map((s) => s.stop().catch(() => undefined)));
    rmSync(work, { recursive: true, force: true });
  });

  it('the README holds the commands and examples this test runs', () => {
    assert.deepEqual(commands(sh[0]!.body), ['npm install && npm start']);
    assert.ok(sh.some((b) => commands(b.body).every((c) => c.startsWith('npx switchboard '))), 'the npx switchboard block');
    assert.ok(sh.some((b) => b.body.startsWith('wscat ')), 'the wscat block');
    assert.equal(blocks.filter((b) => b.lang === 'ts').length, 1, 'one in-process example');
    assert.equal(inline('curl ').length, 1, 'one curl line');
    assert.equal(inline('npm start -- ').length, 1, 'one npm start line with options');
    assert.match(README, /\[admin dashboard\]\(docs\/operations\.md#admin-dashboard\)/, 'the README links the admin dashboard');
    assert.match(readFileSync(join(REPO_ROOT, 'docs', 'operations.md'), 'utf8'), /^## Admin dashboard$/m, 'the anchor exists');
    for (const [, link] of README.matchAll(/\]\(((?:docs|apps|packages)\/[^)#]+)/g)) assert.ok(existsSync(join(REPO_ROOT, link!)), `README links ${link}, which exists`);
  });

  it('`npm start -- --port 9000 --set ...` builds and serves the demo chat at / and the test client at /test', async () => {
    const [cmd] = inline('npm start -- ');
    const port = await freePort();
    // The store goes to the test's folder, not the repository's data/ (another server may use that one).
    const server = new ShellServer(withPort(cmd!, port), REPO_ROOT, { SWITCHBOARD__store__sqlitePath: join(work, 'npm-start.db') });
    servers.push(server);
    await server.listening();
    const home = await fetch(`http://localhost:${port}/`);
    assert.equal(home.status, 200);
    assert.match(await home.text(), /<title>Switchboard chat<\/title>/);
    assert.match(await (await fetch(`http://localhost:${port}/test`)).text(), /Switchboard test client/);
    // No admin token: /admin is off and says how to turn it on (docs/operations.md, "Admin dashboard").
    const off = await fetch(`http://localhost:${port}/admin`);
    assert.equal(off.status, 404);
    assert.match(await off.text(), /--admin-token/);
    await server.stop();
  });

  it('the `npx switchboard` block; against its server the wscat frames, the curl line, the admin dashboard and history across a restart', async () => {
    const block = sh.find((b) => commands(b.body).every((c) => c.startsWith('npx switchboard ')))!;
    const lines = commands(block.body);
    const cwd = join(work, 'npx');
    mkdirSync(cwd, { recursive: true });
    const port = await freePort();
    const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'packages', 'server', 'package.json'), 'utf8')) as { version: string };
    let serveLine = '';
    for (const line of lines) {
      const args = line.split(/\s+/).slice(2);
      if (args[0] === 'serve') {
        serveLine = withPort(line, port);
        continue;
      }
      const { stdout, stderr } = await run('bash', ['-c', line], { cwd, timeout: 60_000 });
      if (args[0] === '--version') assert.equal(stdout.trim(), pkg.version);
      else if (args[0] === 'genconfig') {
        const text = readFileSync(join(cwd, args[1]!), 'utf8');
        assert.match(text, /^\/\/ Switchboard configuration/);
        assert.match(stderr, /wrote/);
      } else if (args[0] === 'checkconfig') assert.match(stdout, new RegExp(`${args[1]!.replace('.', '\\.')}: OK`));
      else assert.fail(`unexpected command in the README: ${line}`);
    }
    assert.match(serveLine, /--admin-token (\S+)/);
    const token = /--admin-token (\S+)/.exec(serveLine)![1]!;

    let server = new ShellServer(serveLine, cwd);
    servers.push(server);
    await server.listening();

    // The admin dashboard the README links: the page, and its API behind the token.
    assert.match(await (await fetch(`http://localhost:${port}/admin`)).text(), /Switchboard admin/);
    assert.equal((await fetch(`http://localhost:${port}/admin/api/overview`)).status, 401);
    const overview = await fetch(`http://localhost:${port}/admin/api/overview`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(overview.status, 200);

    // wscat: connect to the documented URL, send the documented frames.
    const wscat = sh.find((b) => b.body.startsWith('wscat '))!.body.split('\n');
    const url = withPort(/^wscat -c (\S+)$/.exec(wscat[0]!)![1]!, port);
    const sent = wscat.filter((l) => l.startsWith('> ')).map((l) => JSON.parse(l.slice(2)) as Frame);
    assert.deepEqual(sent.map((f) => f.type), ['join_channel', 'message']);
    const client = await Recorder.open(url);
    client.ws.send(JSON.stringify(sent[0]));
    await client.next((f) => f.type === 'subscribed' && f.data.channel === 'chat:lobby', 'subscribed to chat:lobby');
    client.ws.send(JSON.stringify(sent[1]));
    await client.next((f) => f.type === 'message' && f.channel === 'chat:lobby' && f.data.content === 'hello', 'the wscat message, delivered to the channel');

    // The curl line, run by the shell as written.
    const curl = await run('bash', ['-c', withPort(inline('curl ')[0]!, port)], { cwd, timeout: 30_000 });
    assert.equal(JSON.parse(curl.stdout).offset, 2, curl.stdout);
    await client.next((f) => f.type === 'message' && f.data.content === 'hi', 'the curl publication');
    client.ws.close();

    // "Stored history ... live in data/switchboard.db": the chat rooms keep their history across a restart.
    assert.ok(existsSync(join(cwd, 'data', 'switchboard.db')), 'data/switchboard.db in the working directory');
    await server.stop();
    server = new ShellServer(serveLine, cwd);
    servers.push(server);
    await server.listening();
    const again = await Recorder.open(url);
    again.ws.send(JSON.stringify({ type: 'history', data: { channel: 'chat:lobby', limit: 10 } }));
    const history = await again.next((f) => f.type === 'history', 'history of chat:lobby');
    const contents = (history.data.publications as Frame[]).map((p) => p.data.content);
    assert.deepEqual(contents, ['hi', 'hello'], JSON.stringify(history));
    again.ws.close();
    await server.stop();

    // `--set store.driver=none` for a purely in-memory server: no data/ folder, even after a publication.
    const [memory] = inline('--set store.driver=none');
    assert.ok(memory);
    const memoryCwd = join(work, 'memory');
    mkdirSync(memoryCwd, { recursive: true });
    server = new ShellServer(`npx switchboard serve --port ${port} ${memory}`, memoryCwd);
    servers.push(server);
    await server.listening();
    const inMemory = await run('bash', ['-c', withPort(inline('curl ')[0]!, port)], { cwd, timeout: 30_000 });
    assert.equal(JSON.parse(inMemory.stdout).offset, 1, inMemory.stdout);
    await server.stop();
    assert.ok(!existsSync(join(memoryCwd, 'data')), 'no SQLite file with store.driver=none');
  });

  it('the in-process example: publish, sendToUser and a graceful close reach a connected client', async () => {
    const [example] = blocks.filter((b) => b.lang === 'ts');
    const port = await freePort();
    const lines = withPort(example!.body, port).split('\n');
    const at = lines.findIndex((l) => l.startsWith('await sb.listen();'));
    assert.ok(at > 0, 'the example listens');
    // After listen(), before the example goes on: user alice connects and joins chat:lobby.
    lines.splice(
      at + 1,
      0,
      `const { default: WebSocket } = await import('ws');
const __frames = [];
const __ws = new WebSocket('ws://127.0.0.1:${port}/ws?user_id=alice');
const __closed = new Promise((resolve) => __ws.once('close', (code) => resolve(code)));
const __subscribed = new Promise((resolve) => __ws.on('message', (d) => { const f = JSON.parse(String(d)); __frames.push(f); if (f.type === 'subscribed') resolve(); }));
await new Promise((resolve) => __ws.once('open', resolve));
__ws.send(JSON.stringify({ type: 'join_channel', data: { channel: 'chat:lobby' } }));
await __subscribed;`,
    );
    lines.push(`console.log(JSON.stringify({ code: await __closed, frames: __frames }));`);
    const dir = join(work, 'embedded');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'example.mjs'), lines.join('\n'));
    const { stdout } = await run(process.execPath, ['example.mjs'], { cwd: dir, timeout: 60_000, maxBuffer: 16 * 1024 * 1024 });
    const result = stdout.split('\n').find((l) => l.startsWith('{"code":'));
    assert.ok(result, stdout);
    const { code, frames } = JSON.parse(result) as { code: number; frames: Frame[] };
    assert.ok(frames.some((f) => f.type === 'message' && f.channel === 'chat:lobby' && f.data.content === 'from the backend'), JSON.stringify(frames));
    assert.ok(frames.some((f) => f.type === 'notification' && f.data.title === 'hi'), JSON.stringify(frames));
    assert.ok(frames.some((f) => f.type === 'shutdown' && f.data.reconnect === true), JSON.stringify(frames));
    assert.equal(code, 4091, 'closed with SERVER_SHUTDOWN after `shutdown`');
  });
});
