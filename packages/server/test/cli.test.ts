/**
 * The `switchboard` command in the repository (after `npm install`, as the README says: `npx switchboard`):
 * --version, genconfig (every key of DEFAULT_CONFIG, commented, read back as the defaults), checkconfig, and
 * serve refusing a configuration that validateConfig rejects. Also the JSON-with-comments reader.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { DEFAULT_CONFIG } from '../src/config.js';
import { CONFIG_DESCRIPTIONS } from '../src/config-docs.js';
import { commentedConfig, configLeafPaths, validateConfig } from '../src/config-file.js';
import { parseJsonc } from '../src/jsonc.js';
import { REPO_ROOT } from './redis/redis-process.js';

const run = promisify(execFile);

async function npx(args: string[], cwd = REPO_ROOT): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run('npx', ['--no-install', 'switchboard', ...args], { cwd, timeout: 60_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

describe('switchboard CLI', () => {
  it('npx switchboard --version in the repository', async () => {
    const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'packages', 'server', 'package.json'), 'utf8')) as { version: string };
    const r = await npx(['--version']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), pkg.version);
  });

  it('genconfig writes every setting with a comment; checkconfig accepts it; serve and checkconfig refuse a bad one', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sb-cli-'));
    try {
      const file = join(dir, 'switchboard.jsonc');
      assert.equal((await npx(['genconfig', file])).code, 0);
      const text = readFileSync(file, 'utf8');
      assert.deepEqual(parseJsonc(text), DEFAULT_CONFIG, 'the generated file holds exactly the defaults');
      for (const path of configLeafPaths()) {
        const key = path.split('.').at(-1)!;
        const line = text.split('\n').findIndex((l) => l.trimStart().startsWith(`"${key}":`));
        assert.ok(line > 0 && text.split('\n')[line - 1]!.trimStart().startsWith('//'), `${path} has a comment`);
      }
      assert.equal((await npx(['genconfig', file])).code, 1, 'does not overwrite without --force');
      assert.equal((await npx(['genconfig', file, '--force'])).code, 0);
      const ok = await npx(['checkconfig', file]);
      assert.equal(ok.code, 0, ok.stderr);
      assert.match(ok.stdout, /OK/);

      const bad = join(dir, 'bad.json');
      writeFileSync(bad, '// a comment\n{ "auth": { "channels": { "default": "whoever", }, }, }\n');
      const refused = await npx(['checkconfig', bad]);
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, /invalid configuration \(.*bad\.json\)[\s\S]*channels\.default/);
      const serve = await npx(['serve', '--config', bad, '--port', '0', '--host', '127.0.0.1']);
      assert.equal(serve.code, 1);
      assert.match(serve.stderr, /invalid configuration/);
      const broken = join(dir, 'broken.json');
      writeFileSync(broken, '{ "port": ');
      const unreadable = await npx(['checkconfig', broken]);
      assert.equal(unreadable.code, 1);
      assert.match(unreadable.stderr, /cannot read config file/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('every setting is described for genconfig and documented in docs/configuration.md', () => {
    const docs = readFileSync(join(REPO_ROOT, 'docs', 'configuration.md'), 'utf8');
    for (const path of configLeafPaths()) {
      assert.ok(CONFIG_DESCRIPTIONS[path], `${path}: no description in config-docs.ts`);
      assert.ok(docs.includes(`| \`${path}\` |`), `${path}: no row in docs/configuration.md`);
    }
    assert.equal(commentedConfig().split('\n').filter((l) => l.includes('//')).length >= configLeafPaths().length, true);
  });

  it('validateConfig: the defaults pass; what the server refuses at start-up is reported', () => {
    assert.equal(validateConfig({}).ok, true);
    assert.equal(validateConfig(DEFAULT_CONFIG).ok, true);
    const r = validateConfig({ limits: { channelNamePattern: '[unclosed' } });
    assert.equal(r.ok, false);
    assert.equal(validateConfig('not an object').ok, false);
  });

  it('parseJsonc: comments and trailing commas outside strings; strings untouched', () => {
    assert.deepEqual(parseJsonc('{"a": "// not a comment", /* c */ "b": [1, 2,], // end\n "c": "/* x */",}'), { a: '// not a comment', b: [1, 2], c: '/* x */' });
    assert.deepEqual(parseJsonc('{"q": "say \\"hi\\", // still text"}'), { q: 'say "hi", // still text' });
    assert.throws(() => parseJsonc('{"a": 1 /* unterminated'));
  });
});
