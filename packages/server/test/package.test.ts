/**
 * The packages as a user gets them, installed by the commands of docs/operations.md, "Installation", run as
 * written (temporary folders instead of /tmp/sb and /tmp/sb-app): `npm pack` of @switchboard/protocol, client
 * and server (compiled output only: no tests, sources or source maps; LICENSE; exports with types; engines;
 * repository), installed from the tarballs into an empty project (third-party dependencies from the npm
 * registry or cache), then `npx switchboard` --version, genconfig, checkconfig from there. Then used from
 * there: `switchboard serve --config` (demo chat, SDK bundles, test page, admin page, health, server API,
 * WebSocket), the in-process API from a script, and the type declarations with tsc.
 * Needs `npm run build` first (it packs what dist/ holds) and npm with registry or cache access.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import WebSocket from 'ws';
import { REPO_ROOT } from './redis/redis-process.js';

const run = promisify(execFile);
const PACKAGES = ['protocol', 'client', 'server'] as const;


/** The shell block of docs/operations.md, "Installation", as command lines (comments dropped). */
function installationCommands(): string[] {
  const ops = readFileSync(join(REPO_ROOT, 'docs', 'operations.md'), 'utf8');
  const start = ops.indexOf('\n## Installation\n');
  const section = ops.slice(start, ops.indexOf('\n## ', start + 1));
  const block = /```sh\n([\s\S]*?)```/.exec(section);
  assert.ok(block, 'docs/operations.md has an Installation section with a shell block');
  return block[1]!.split('\n').map((l) => l.replace(/\s+#\s.*$/, '').trim()).filter((l) => l !== '');
}

async function sh(cmd: string, args: string[], cwd: string, timeout = 240_000): Promise<string> {
  try {
    const { stdout } = await run(cmd, args, { cwd, timeout, maxBuffer: 64 * 1024 * 1024, env: { ...process.env, npm_config_update_notifier: 'false', npm_config_fund: 'false', npm_config_audit: 'false' } });
    return stdout;
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')} failed: ${e.message}\n${e.stdout ?? ''}\n${e.stderr ?? ''}`);
  }
}

describe('the packages installed from their tarballs, as docs/operations.md says', () => {
  let work: string;
  let project: string;
  let installOutput: string;
  const files = new Map<string, string[]>();
  let server: ChildProcess | null = null;

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'sb-pack-'));
    project = join(work, 'app');
    const lines = installationCommands();
    assert.equal(lines[0], 'npm install && npm run build', 'the first documented step: build in the repository (done before the tests)');
    assert.match(lines.at(-1)!, /^npx switchboard serve --config switchboard\.jsonc$/, 'the last documented step: serve (run below with a free port)');
    // The documented steps in between, in one shell (the `cd` carries over), from the repository.
    const documented = ['set -e', ...lines.slice(1, -1)].join('\n');
    assert.ok(documented.includes('/tmp/sb-app') && documented.includes('/tmp/sb/'), documented);
    const script = documented.replaceAll('/tmp/sb-app', '@APP@').replaceAll('/tmp/sb', '@WORK@').replaceAll('@APP@', project).replaceAll('@WORK@', work);
    installOutput = await sh('bash', ['-c', script], REPO_ROOT, 480_000);
    for (const name of PACKAGES) {
      const { version } = JSON.parse(readFileSync(join(REPO_ROOT, 'packages', name, 'package.json'), 'utf8')) as { version: string };
      const listing = await sh('tar', ['-tzf', join(work, `switchboard-${name}-${version}.tgz`)], work);
      files.set(name, listing.split('\n').filter((l) => l !== '').map((l) => l.replace(/^package\//, '')));
    }
  });

  after(() => {
    server?.kill('SIGKILL');
    rmSync(work, { recursive: true, force: true });
  });

  it('each tarball holds the compiled package only: no tests, sources or maps; LICENSE; exports with types; engines; repository', () => {
    for (const name of PACKAGES) {
      const list = files.get(name)!;
      assert.ok(list.includes('LICENSE'), `${name}: LICENSE`);
      assert.ok(list.includes('package.json'));
      const offenders = list.filter((f) => /(^|\/)test\//.test(f) || (f.endsWith('.ts') && !f.endsWith('.d.ts')) || f.endsWith('.map') || f.endsWith('.tsbuildinfo'));
      assert.deepEqual(offenders, [], `${name}: tests, sources or maps in the tarball`);
      const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'packages', name, 'package.json'), 'utf8')) as Record<string, any>;
      assert.equal(pkg.license, 'MIT');
      assert.ok(pkg.repository?.url && pkg.repository.directory === `packages/${name}`, `${name}: repository`);
      assert.equal(pkg.engines?.node, '>=20', `${name}: engines`);
      assert.equal(pkg.publishConfig?.access, 'public', `${name}: a scoped package published public`);
      assert.ok(pkg.exports['.'].types && list.includes(pkg.exports['.'].types.replace(/^\.\//, '')), `${name}: exports types in the tarball`);
      assert.ok(list.includes(pkg.exports['.'].default.replace(/^\.\//, '')), `${name}: exports default in the tarball`);
    }
    const server = files.get('server')!;
    for (const f of ['bin/switchboard.js', 'dist/src/cli.js', 'dist/apps/chat/index.html', 'dist/apps/admin/admin.js', 'dist/apps/shared/dom.js', 'dist/apps/shared/base.css']) assert.ok(server.includes(f), `server: ${f}`);
    const client = files.get('client')!;
    assert.ok(client.includes('dist/switchboard.browser.js') && client.includes('dist/switchboard.browser.iife.js'));
    // The server's dependencies include the client (whose bundles it serves); every engines range is met by ours.
    const serverPkg = JSON.parse(readFileSync(join(REPO_ROOT, 'packages', 'server', 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    assert.ok(serverPkg.dependencies['@switchboard/client']);
    for (const dep of Object.keys(serverPkg.dependencies)) {
      const installed = JSON.parse(readFileSync(join(project, 'node_modules', dep, 'package.json'), 'utf8')) as { engines?: { node?: string } };
      const min = /(\d+)(?:\.\d+)*/.exec(installed.engines?.node?.split('||').map((r) => r.trim()).at(-1) ?? '0')?.[1];
      assert.ok(Number(min ?? 0) <= 20, `${dep} needs node ${installed.engines?.node}, more than our engines (>=20)`);
    }
  });

  it('the documented npx switchboard --version, genconfig and checkconfig worked in the new project; a bad file is refused', async () => {
    const out = installOutput.split('\n').map((l) => l.trim());
    assert.ok(out.includes('0.1.0'), `--version printed the version:\n${installOutput}`);
    assert.ok(out.includes('switchboard.jsonc: OK'), `checkconfig accepted the generated file:\n${installOutput}`);
    const text = readFileSync(join(project, 'switchboard.jsonc'), 'utf8');
    assert.match(text, /^\/\/ Switchboard configuration/);
    assert.match(text, /\/\/ listen port/);
    const bin = join(project, 'node_modules', '.bin', 'switchboard');
    writeFileSync(join(project, 'bad.json'), JSON.stringify({ auth: { privateMessages: 'nobody-knows' } }));
    await assert.rejects(sh(bin, ['checkconfig', 'bad.json'], project), /invalid configuration[\s\S]*privateMessages/);
  });

  it('switchboard serve --config from the install: demo chat, SDK bundles, test page, admin, health, server API, WebSocket', async () => {
    const bin = join(project, 'node_modules', '@switchboard', 'server', 'bin', 'switchboard.js');
    // The documented `serve --config switchboard.jsonc` (the generated file), on a free loopback port.
    server = spawn(process.execPath, [bin, 'serve', '--config', 'switchboard.jsonc', '--port', '0', '--host', '127.0.0.1', '--log-level', 'warn', '--admin-token', 'tok'], { cwd: project, stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
    let output = '';
    server.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    server.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    const port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no listening message: ${output}`)), 30_000);
      server!.on('message', (m: { type?: string; port?: number }) => {
        if (m.type === 'listening') {
          clearTimeout(timer);
          resolve(m.port!);
        }
      });
      server!.once('exit', (code) => reject(new Error(`exited ${code}: ${output}`)));
    });
    const base = `http://127.0.0.1:${port}`;
    const get = async (path: string) => {
      const res = await fetch(base + path);
      return { status: res.status, type: res.headers.get('content-type') ?? '', text: await res.text() };
    };
    const home = await get('/');
    assert.equal(home.status, 200);
    assert.match(home.text, /<title>Switchboard chat<\/title>/, 'the demo chat at / (not the raw test page)');
    assert.equal((await get('/chat/app.js')).status, 200);
    // The files the pages share (apps/shared) ship in the package and are served next to each page's own.
    for (const [path, type] of [['/chat/dom.js', /javascript/], ['/admin/dom.js', /javascript/], ['/chat/base.css', /css/], ['/editor/base.css', /css/]] as const) {
      const r = await get(path);
      assert.equal(r.status, 200, path);
      assert.match(r.type, type, path);
    }
    assert.match((await get('/chat/dom.js')).text, /export const el/);
    const sdk = await get('/sdk/switchboard.js');
    assert.equal(sdk.status, 200, sdk.text);
    assert.match(sdk.type, /javascript/);
    assert.equal(sdk.text, readFileSync(join(project, 'node_modules', '@switchboard', 'client', 'dist', 'switchboard.browser.js'), 'utf8'), 'served from the installed client package');
    assert.equal((await get('/sdk/switchboard.iife.js')).status, 200);
    assert.match((await get('/test')).text, /Switchboard test client/);
    assert.match((await get('/admin')).text, /Switchboard admin/);
    assert.equal((await get('/admin/vendor/uPlot.iife.min.js')).status, 200);
    assert.equal((await get('/health')).status, 200);

    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`);
    const frames: Array<{ type: string; data: Record<string, unknown> }> = [];
    const waiters: Array<() => void> = [];
    ws.on('message', (d) => {
      frames.push(JSON.parse(String(d)));
      for (const w of waiters.splice(0)) w();
    });
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    /** Resolves when a frame `pred` accepts has arrived (checked on every frame, no polling). */
    const until = (pred: () => boolean, what: string) =>
      new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${what}: ${JSON.stringify(frames)}`)), 10_000);
        const check = () => {
          if (pred()) {
            clearTimeout(timer);
            resolve();
          } else waiters.push(check);
        };
        check();
      });
    ws.send(JSON.stringify({ type: 'join_channel', data: { channel: 'chat:lobby' } }));
    await until(() => frames.some((f) => f.type === 'subscribed'), 'subscribed');
    const published = await fetch(`${base}/api/publish`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ channel: 'chat:lobby', data: { content: 'hi' } }) });
    assert.equal(published.status, 200);
    await until(() => frames.some((f) => f.type === 'message' && f.data.content === 'hi'), 'the publication over the WebSocket');
    ws.close();
    server.kill('SIGTERM');
    assert.deepEqual(await once(server, 'exit'), [0, null]);
    server = null;
  });

  it('the in-process API and the type declarations work from the installed packages', async () => {
    writeFileSync(
      join(project, 'embed.mjs'),
      `import { Switchboard } from '@switchboard/server';
const sb = await Switchboard.create({ host: '127.0.0.1', port: 0, log: { level: 'silent' }, store: { driver: 'none' } });
const port = await sb.listen();
const pub = await sb.node.publish('chat:lobby', { content: 'from the backend' });
console.log(JSON.stringify({ port, offset: pub.offset }));
await sb.close();
`,
    );
    const out = JSON.parse(await sh(process.execPath, ['embed.mjs'], project)) as { port: number; offset: number };
    assert.ok(out.port > 0 && out.offset === 1, JSON.stringify(out));

    writeFileSync(
      join(project, 'types.mts'),
      `import { Switchboard, CloseCode, type SwitchboardConfig } from '@switchboard/server';
import { SwitchboardClient } from '@switchboard/client';
import { ErrorCode } from '@switchboard/protocol';
const config: Partial<SwitchboardConfig> = { port: 8080 };
export async function main(): Promise<void> {
  const sb = await Switchboard.create(config);
  const port: number = await sb.listen();
  const client = new SwitchboardClient({ url: 'ws://localhost:' + port + '/ws' });
  const code: number = CloseCode.NORMAL;
  const err: string = ErrorCode.RATE_LIMITED;
  client.close(code, err);
  await sb.close();
}
`,
    );
    const tsc = join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
    await sh(process.execPath, [tsc, '--noEmit', '--strict', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022', '--skipLibCheck', '--types', 'node', '--typeRoots', join(REPO_ROOT, 'node_modules', '@types'), 'types.mts'], project);
  });
});
