/**
 * The packages as a user gets them: `npm pack` of @switchboard/protocol, client and server (compiled output only:
 * no tests, sources or source maps; LICENSE; exports with types; engines; repository), installed from the
 * tarballs into an empty folder (third-party dependencies from the npm registry or cache), then used from there:
 * the `switchboard` command (--version, genconfig, checkconfig, serve: demo chat, SDK bundles, test page, admin
 * page, health, server API, WebSocket), the in-process API from a script, and the type declarations with tsc.
 * Needs `npm run build` first (it packs what dist/ holds) and npm with registry or cache access.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import WebSocket from 'ws';
import { REPO_ROOT } from './redis/redis-process.js';

const run = promisify(execFile);
const PACKAGES = ['protocol', 'client', 'server'] as const;
const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm';

interface PackResult { filename: string; files: Array<{ path: string }> }

async function sh(cmd: string, args: string[], cwd: string, timeout = 240_000): Promise<string> {
  try {
    const { stdout } = await run(cmd, args, { cwd, timeout, maxBuffer: 64 * 1024 * 1024, env: { ...process.env, npm_config_update_notifier: 'false', npm_config_fund: 'false', npm_config_audit: 'false' } });
    return stdout;
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')} failed: ${e.message}\n${e.stdout ?? ''}\n${e.stderr ?? ''}`);
  }
}

describe('the packages installed from their tarballs', () => {
  let work: string;
  let project: string;
  const packed = new Map<string, PackResult>();
  let server: ChildProcess | null = null;

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'sb-pack-'));
    project = join(work, 'app');
    for (const name of PACKAGES) {
      const out = await sh(NPM, ['pack', '--json', '--pack-destination', work], join(REPO_ROOT, 'packages', name));
      const [result] = JSON.parse(out) as PackResult[];
      packed.set(name, result!);
    }
    await sh('mkdir', ['-p', project], work);
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'sb-install-check', private: true, type: 'module' }, null, 2));
    await sh(NPM, ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error', ...PACKAGES.map((n) => join(work, packed.get(n)!.filename))], project, 480_000);
  });

  after(() => {
    server?.kill('SIGKILL');
    rmSync(work, { recursive: true, force: true });
  });

  it('each tarball holds the compiled package only: no tests, sources or maps; LICENSE; exports with types; engines; repository', () => {
    for (const name of PACKAGES) {
      const files = packed.get(name)!.files.map((f) => f.path);
      assert.ok(files.includes('LICENSE'), `${name}: LICENSE`);
      assert.ok(files.includes('package.json'));
      const offenders = files.filter((f) => /(^|\/)test\//.test(f) || (f.endsWith('.ts') && !f.endsWith('.d.ts')) || f.endsWith('.map') || f.endsWith('.tsbuildinfo'));
      assert.deepEqual(offenders, [], `${name}: tests, sources or maps in the tarball`);
      const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'packages', name, 'package.json'), 'utf8')) as Record<string, any>;
      assert.equal(pkg.license, 'MIT');
      assert.ok(pkg.repository?.url && pkg.repository.directory === `packages/${name}`, `${name}: repository`);
      assert.equal(pkg.engines?.node, '>=20', `${name}: engines`);
      assert.ok(pkg.exports['.'].types && files.includes(pkg.exports['.'].types.replace(/^\.\//, '')), `${name}: exports types in the tarball`);
      assert.ok(files.includes(pkg.exports['.'].default.replace(/^\.\//, '')), `${name}: exports default in the tarball`);
    }
    const server = packed.get('server')!.files.map((f) => f.path);
    for (const f of ['bin/switchboard.js', 'dist/src/cli.js', 'dist/apps/chat/index.html', 'dist/apps/admin/admin.js']) assert.ok(server.includes(f), `server: ${f}`);
    const client = packed.get('client')!.files.map((f) => f.path);
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

  it('switchboard --version, genconfig and checkconfig work from the installed package', async () => {
    const bin = join(project, 'node_modules', '.bin', 'switchboard');
    assert.equal((await sh(bin, ['--version'], project)).trim(), '0.1.0');
    await sh(bin, ['genconfig', 'switchboard.jsonc'], project);
    const text = readFileSync(join(project, 'switchboard.jsonc'), 'utf8');
    assert.match(text, /^\/\/ Switchboard configuration/);
    assert.match(text, /\/\/ listen port/);
    assert.match(await sh(bin, ['checkconfig', 'switchboard.jsonc'], project), /switchboard\.jsonc: OK/);
    writeFileSync(join(project, 'bad.json'), JSON.stringify({ auth: { privateMessages: 'nobody-knows' } }));
    await assert.rejects(sh(bin, ['checkconfig', 'bad.json'], project), /invalid configuration[\s\S]*privateMessages/);
  });

  it('switchboard serve from the install: demo chat, SDK bundles, test page, admin, health, server API, WebSocket', async () => {
    const bin = join(project, 'node_modules', '@switchboard', 'server', 'bin', 'switchboard.js');
    server = spawn(process.execPath, [bin, 'serve', '--port', '0', '--host', '127.0.0.1', '--log-level', 'warn', '--admin-token', 'tok', '--set', 'store.sqlitePath=data/test.db'], { cwd: project, stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
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
    ws.on('message', (d) => frames.push(JSON.parse(String(d))));
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    ws.send(JSON.stringify({ type: 'join_channel', data: { channel: 'chat:lobby' } }));
    const until = async (pred: () => boolean, what: string) => {
      for (let i = 0; i < 200 && !pred(); i++) await new Promise((r) => setTimeout(r, 25));
      assert.ok(pred(), `${what}: ${JSON.stringify(frames)}`);
    };
    await until(() => frames.some((f) => f.type === 'subscribed'), 'subscribed');
    const published = await fetch(`${base}/api/publish`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ channel: 'chat:lobby', data: { content: 'hi' } }) });
    assert.equal(published.status, 200);
    await until(() => frames.some((f) => f.type === 'message' && f.data.content === 'hi'), 'the publication over the WebSocket');
    ws.close();
    server.kill('SIGTERM');
    assert.equal(await new Promise((r) => server!.once('exit', r)), 0);
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
      join(project, 'types.ts'),
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
    await sh(process.execPath, [tsc, '--noEmit', '--strict', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022', '--skipLibCheck', '--types', 'node', '--typeRoots', join(REPO_ROOT, 'node_modules', '@types'), 'types.ts'], project);
  });
});
