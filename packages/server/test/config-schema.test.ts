/**
 * The configuration schema (issue 14): unknown keys, wrong types and out-of-range values refused at start-up
 * with the path, the expected type and the value — through the real CLI (`switchboard serve`, `checkconfig`) and
 * in-process (`new Switchboard`, `Switchboard.create`, `loadConfig`); `--set` and environment variables typed by
 * the schema at any depth; the schema, DEFAULT_CONFIG, genconfig and config-docs.ts in step.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { DEFAULT_CONFIG, configFromEnv, loadConfig, resolveConfig } from '../src/config.js';
import { CONFIG_SCHEMA, schemaAt, type Schema } from '../src/config-schema.js';
import { ConfigError, configProblems, coerceAt } from '../src/config-validate.js';
import { CONFIG_DESCRIPTIONS } from '../src/config-docs.js';
import { commentedConfig, validateConfig } from '../src/config-file.js';
import { parseJsonc } from '../src/jsonc.js';
import { Switchboard } from '../src/server.js';
import { CLI } from './cluster/harness.js';
import { REPO_ROOT } from './redis/redis-process.js';

interface Run { code: number | null; stdout: string; stderr: string }

/** Run the real CLI to its exit. */
function cli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: REPO_ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('error', reject);
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

const SERVE = ['serve', '--port', '0', '--host', '127.0.0.1', '--log-level', 'warn', '--set', 'store.driver=none'];

/** `serve` must refuse: exit 1 before listening, stderr naming the path, the expected type and the value. */
async function refused(args: string[], ...expected: RegExp[]): Promise<string> {
  const r = await cli(args);
  assert.equal(r.code, 1, `exit code of switchboard ${args.join(' ')}\n${r.stdout}${r.stderr}`);
  assert.match(r.stderr, /switchboard: invalid configuration/);
  for (const re of expected) assert.match(r.stderr, re);
  assert.doesNotMatch(r.stdout, /listening/);
  return r.stderr;
}

function problemsOf(fn: () => unknown): ConfigError['problems'] {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ConfigError, `a ConfigError, got ${String(err)}`);
    assert.equal(err.code, 'CONFIG_INVALID');
    return err.problems;
  }
  assert.fail('no ConfigError thrown');
}

describe('configuration schema: the issue\'s examples through switchboard serve', () => {
  it('--set limits.nope=1: unknown key, with the keys there are', async () => {
    await refused([...SERVE, '--set', 'limits.nope=1'], /limits\.nope: unknown key \(limits has: maxConnections, /, /got 1 \(from --set or a flag\)/);
  });

  it('a file key maxConnectoins: unknown key, the key meant, the file named (serve and checkconfig)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sb-schema-'));
    try {
      const file = join(dir, 'typo.jsonc');
      writeFileSync(file, '// typo\n{ "limits": { "maxConnectoins": 100, }, }\n');
      await refused([...SERVE, '--config', file], /limits\.maxConnectoins: unknown key \(did you mean limits\.maxConnections\?\), got 100 \(in .*typo\.jsonc\)/);
      const check = await cli(['checkconfig', file]);
      assert.equal(check.code, 1);
      assert.match(check.stderr, /limits\.maxConnectoins: unknown key \(did you mean limits\.maxConnections\?\), got 100/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('maxConnections=abc, pingIntervalMs=-5, rateLimit.perSecond=ten: path, expected type, value — all at once', async () => {
    const stderr = await refused(
      [...SERVE, '--set', 'limits.maxConnections=abc', '--set', 'heartbeat.pingIntervalMs=-5', '--set', 'limits.rateLimit.perSecond=ten'],
      /limits\.maxConnections: expected integer >= 0, got "abc"/,
      /heartbeat\.pingIntervalMs: expected integer >= 0, got -5/,
      /limits\.rateLimit\.perSecond: expected number >= 0, got "ten"/,
    );
    assert.equal(stderr.split('\n').filter((l) => l.startsWith('  - ')).length, 3, stderr);
  });

  it('environment variables are checked the same way and named as the source', async () => {
    const r = await cli(SERVE, { SWITCHBOARD__limits__rateLimit__perSecond: 'ten', SWITCHBOARD__channels__namespaces__room__nope: 'true' });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /limits\.rateLimit\.perSecond: expected number >= 0, got "ten" \(from the environment\)/);
    assert.match(r.stderr, /channels\.namespaces\.room\.nope: unknown key \(channels\.namespaces\.room has: historySize, /);
  });

  it('a named flag is typed like --set: --port abc is refused', async () => {
    await refused(['serve', '--port', 'abc', '--host', '127.0.0.1'], /port: expected integer from 0 to 65535, got "abc"/);
  });

  it('--set auth.origins.allow=[...] starts, and the listed origin is the only one admitted', async () => {
    const child = spawn(process.execPath, [CLI, ...SERVE, '--set', 'auth.origins.allow=["https://app.example"]'], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
    let output = '';
    child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      const port = await new Promise<number>((resolve, reject) => {
        child.on('message', (m: { type?: string; port?: number }) => {
          if (m.type === 'listening' && typeof m.port === 'number') resolve(m.port);
        });
        void exited.then((code) => reject(new Error(`serve exited ${code}:\n${output}`)));
      });
      const open = (origin: string) =>
        new Promise<string>((resolve) => {
          const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`, { origin });
          ws.once('message', (data) => {
            resolve(`frame ${JSON.parse(data.toString()).type as string}`);
            ws.close();
          });
          ws.once('unexpected-response', (_req, res) => {
            resolve(`http ${res.statusCode}`);
            ws.terminate();
          });
          ws.once('error', () => undefined);
        });
      assert.equal(await open('https://app.example'), 'frame connect');
      assert.equal(await open('https://evil.example'), 'http 403');
    } finally {
      child.kill('SIGTERM');
      await exited;
    }
  });
});

describe('configuration schema: in-process', () => {
  it('new Switchboard and Switchboard.create throw ConfigError with every problem (path, expected, value)', async () => {
    const bad = { limits: { nope: 1, maxConnections: 'abc' }, heartbeat: { pingIntervalMs: -5 } } as never;
    const problems = problemsOf(() => new Switchboard(bad));
    assert.deepEqual(
      problems.map((p) => [p.path, p.expected, p.value]),
      [
        ['limits.nope', 'limits has: maxConnections, maxConnectionsPerUser, maxConnectionsPerIp, maxMessageBytes, maxJsonDepth, maxChannelsPerConnection, maxPatternsPerConnection, maxChannelNameLength, channelNamePattern, maxQueuedBytes, rateLimit, subscribeRateLimit, maxPendingCommands', 1],
        ['limits.maxConnections', 'integer >= 0', 'abc'],
        ['heartbeat.pingIntervalMs', 'integer >= 0', -5],
      ],
    );
    await assert.rejects(Switchboard.create({ limits: { rateLimit: { perSecond: 'ten' } } } as never), (err: unknown) => err instanceof ConfigError && /limits\.rateLimit\.perSecond: expected number >= 0, got "ten"/.test(err.message));
    assert.throws(() => new Switchboard(5 as never), /\(the configuration\): expected configuration object, got 5/);
  });

  it('unknown keys at depth: map entries, endpoint entries, channel rules, the JWT section', () => {
    const problems = problemsOf(() =>
      resolveConfig({
        channels: { namespaces: { room: { persit: true } } },
        endpoints: { '/ws/room/{room_id}': { joins: ['room:{room_id}'] } },
        auth: { channels: { rules: { 'admin:*': { '*': 'role:admin', write: 'any' } } }, jwt: { secret: 'x'.repeat(40), clockTolerance: 5 } },
        http: { port: 80 },
      } as never),
    );
    const messages = problems.map((p) => p.message);
    assert.ok(messages.includes('channels.namespaces.room.persit: unknown key (did you mean channels.namespaces.room.persist?), got true'), messages.join('\n'));
    assert.ok(messages.includes('endpoints["/ws/room/{room_id}"].joins: unknown key (did you mean endpoints["/ws/room/{room_id}"].join?), got ["room:{room_id}"]'), messages.join('\n'));
    assert.ok(messages.some((m) => m.startsWith('auth.channels.rules["admin:*"].write: unknown key (auth.channels.rules["admin:*"] has: *, subscribe, publish, presence, history)')), messages.join('\n'));
    assert.ok(messages.includes('auth.jwt.clockTolerance: unknown key (did you mean auth.jwt.clockToleranceSec?), got 5'), messages.join('\n'));
    assert.ok(messages.some((m) => m.startsWith('http.port: unknown key (http has: wsPath, ')), messages.join('\n'));
    assert.equal(problems.length, 5);
  });

  it('wrong types and ranges at depth, unions reported as one expectation', () => {
    const problems = problemsOf(() =>
      resolveConfig({
        channels: { namespaces: { room: { historySize: -1, snapshot: 'yes' } } },
        endpoints: { '/ws/x': { auth: 'sometimes', credentials: ['header', 'carrier-pigeon'] }, '/ws/y': true },
        auth: { origins: { allow: 'https://a.example' }, channels: { default: 'whoever' }, sources: { query: true }, ed25519: { keys: { c1: { roles: ['x'] } } } },
        broker: { type: 'kafka', sentinels: ['no-port'] },
        port: 70000,
        log: { level: 'loud' },
      } as never),
    );
    const byPath = new Map(problems.map((p) => [p.path, p]));
    const expect = (path: string, expected: string, value: unknown) => {
      const p = byPath.get(path);
      assert.ok(p, `a problem at ${path}: ${problems.map((x) => x.message).join('\n')}`);
      assert.equal(p.expected, expected, path);
      assert.deepEqual(p.value, value, path);
    };
    expect('channels.namespaces.room.historySize', 'integer >= 0', -1);
    expect('channels.namespaces.room.snapshot', 'boolean', 'yes');
    expect('endpoints["/ws/x"].auth', 'one of "optional", "required", "none", "ed25519"', 'sometimes');
    expect('endpoints["/ws/x"].credentials[1]', 'one of "header", "subprotocol", "query", "cookie"', 'carrier-pigeon');
    expect('endpoints["/ws/y"]', 'endpoint entry or false or null', true);
    expect('auth.origins.allow', '"*" or list of origins', 'https://a.example');
    expect('auth.channels.default', 'requirement (any, authenticated, none, owner, hook, role:<r>, permission:<p>, claim:<c>) or list of requirements or rule per action (*, subscribe, publish, presence, history)', 'whoever');
    expect('auth.sources.query', 'non-empty string or false', true);
    expect('auth.ed25519.keys.c1.publicKey', 'non-empty string', undefined);
    expect('broker.type', 'one of "memory", "redis"', 'kafka');
    expect('broker.sentinels[0]', '"host:port"', 'no-port');
    expect('port', 'integer from 0 to 65535', 70000);
    expect('log.level', 'one of "fatal", "error", "warn", "info", "debug", "trace", "silent"', 'loud');
    assert.equal(problems.length, 13, problems.map((p) => p.message).join('\n'));
  });

  it('secret values are not echoed, also under a misspelt key', () => {
    const problems = problemsOf(() => resolveConfig({ http: { adminToken: 42 }, auth: { jwt: { secret: 'x'.repeat(40), secert: 'hunter2hunter2hunter2' } } } as never));
    const text = problems.map((p) => p.message).join('\n');
    assert.match(text, /http\.adminToken: expected string, got 42/);
    assert.match(text, /auth\.jwt\.secert: unknown key \(did you mean auth\.jwt\.secret\?\), got a string of 21 characters \(not shown\)/);
    assert.doesNotMatch(text, /hunter2/);
  });

  it('what the schema passes still meets the cross-key checks of the parts (validateConfig)', () => {
    const r = validateConfig({ auth: { jwt: { algorithms: ['HS256'], secret: 'short' } } });
    assert.equal(r.ok, false);
    assert.match(r.ok ? '' : r.errors.join('\n'), /jwt\.secret: must be at least 32 bytes/);
    const s = validateConfig({ limits: { maxConnectoins: 1 } });
    assert.deepEqual(s.ok ? [] : s.errors, ['limits.maxConnectoins: unknown key (did you mean limits.maxConnections?), got 1']);
  });
});

describe('configuration schema: --set and environment variables typed by the schema', () => {
  it('scalars: numbers, booleans, null; strings stay strings', () => {
    assert.equal(coerceAt(['port'], '8081'), 8081);
    assert.equal(coerceAt(['limits', 'rateLimit', 'perSecond'], '0.5'), 0.5);
    assert.equal(coerceAt(['auth', 'required'], 'true'), true);
    assert.equal(coerceAt(['nodeId'], '123'), '123', 'a string key keeps digits as text');
    assert.equal(coerceAt(['nodeId'], 'null'), null);
    assert.equal(coerceAt(['http', 'apiKey'], 'true'), 'true');
    assert.equal(coerceAt(['auth', 'sources', 'query'], 'false'), false);
    assert.equal(coerceAt(['auth', 'sources', 'query'], 'access_token'), 'access_token');
    assert.equal(coerceAt(['limits', 'maxConnections'], 'abc'), 'abc', 'kept for the validation to refuse');
  });

  it('arrays and objects as JSON at any depth; comma lists for array keys', () => {
    assert.deepEqual(coerceAt(['auth', 'origins', 'allow'], '["https://a.example","https://b.example"]'), ['https://a.example', 'https://b.example']);
    assert.deepEqual(coerceAt(['auth', 'origins', 'allow'], 'https://a.example, https://b.example'), ['https://a.example', 'https://b.example']);
    assert.equal(coerceAt(['auth', 'origins', 'allow'], '*'), '*');
    assert.deepEqual(coerceAt(['auth', 'claims', 'username'], '["nick","name"]'), ['nick', 'name']);
    assert.equal(coerceAt(['auth', 'claims', 'username'], 'nick'), 'nick');
    assert.deepEqual(coerceAt(['endpoints', '/ws/x', 'credentials'], 'query,cookie'), ['query', 'cookie']);
    assert.deepEqual(coerceAt(['channels', 'namespaces'], '{"room":{"persist":true}}'), { room: { persist: true } });
    assert.deepEqual(coerceAt(['auth', 'ed25519', 'keys', 'c1'], '{"publicKey":"k","roles":["a"]}'), { publicKey: 'k', roles: ['a'] });
    assert.equal(coerceAt(['endpoints', '/ws/old'], 'false'), false);

    const config = loadConfig({
      set: [
        'auth.origins.allow=["https://app.example"]',
        'endpoints./ws/room/{room_id}.join=["room:{room_id}"]',
        'endpoints./ws/{client_id}=false',
        'channels.namespaces.room.countIntervalMs=250',
        'auth.channels.rules={"admin:*":{"*":"role:admin"}}',
        'auth.messages.typing=authenticated',
        'broker.sentinels=h1:26379,h2:26379',
      ],
    });
    assert.deepEqual(config.auth.origins.allow, ['https://app.example']);
    assert.deepEqual(config.endpoints, { '/ws/room/{room_id}': { join: ['room:{room_id}'] }, '/ws/{client_id}': false });
    assert.deepEqual(config.channels.namespaces, { chat: { persist: true }, doc: { documents: 'yjs' }, room: { countIntervalMs: 250 } });
    assert.deepEqual(config.auth.channels.rules, { 'admin:*': { '*': 'role:admin' } });
    assert.deepEqual(config.auth.messages, { broadcast: 'permission:admin:broadcast', typing: 'authenticated' });
    assert.deepEqual(config.broker.sentinels, ['h1:26379', 'h2:26379']);
    const sb = new Switchboard({ ...config, log: { level: 'silent' } }, { defaultMetrics: false });
    assert.deepEqual(sb.config.auth.origins.allow, ['https://app.example']);
  });

  it('environment variables: shorthands and SWITCHBOARD__a__b at any depth', () => {
    const env = configFromEnv({
      SWITCHBOARD_PORT: '9000',
      SWITCHBOARD_ALLOWED_ORIGINS: 'https://a.example,https://b.example',
      SWITCHBOARD__auth__required: 'true',
      SWITCHBOARD__limits__rateLimit__perSecond: '100',
      SWITCHBOARD__channels__namespaces__ticker__snapshot: 'true',
      SWITCHBOARD__broker__sentinels: '["h1:26379"]',
      SWITCHBOARD_NODE_ID: '7',
      UNRELATED: 'x',
    });
    assert.deepEqual(env, {
      port: 9000,
      auth: { origins: { allow: ['https://a.example', 'https://b.example'] }, required: true },
      limits: { rateLimit: { perSecond: 100 } },
      channels: { namespaces: { ticker: { snapshot: true } } },
      broker: { sentinels: ['h1:26379'] },
      nodeId: '7',
    });
    assert.throws(() => loadConfig({ env: { SWITCHBOARD__heartbeat__pingIntervalMs: '-5' } }), /heartbeat\.pingIntervalMs: expected integer >= 0, got -5 \(from the environment\)/);
  });
});

describe('configuration schema: in step with the defaults, genconfig and the descriptions', () => {
  /** Walk the schema's sections along DEFAULT_CONFIG: the same keys on both sides. */
  function compare(schema: Schema, value: unknown, path: string): void {
    const isSection = schema.properties !== undefined && schema.required !== undefined && schema.additionalProperties === false;
    if (!isSection) return;
    assert.ok(value !== null && typeof value === 'object' && !Array.isArray(value), `${path || 'the config'} is a section in the defaults`);
    assert.deepEqual(Object.keys(value).sort(), Object.keys(schema.properties!).sort(), `keys of ${path || 'the config'}: DEFAULT_CONFIG vs CONFIG_SCHEMA`);
    for (const [key, sub] of Object.entries(schema.properties!)) compare(sub, (value as Record<string, unknown>)[key], path === '' ? key : `${path}.${key}`);
  }

  it('every section of the schema has exactly the keys of DEFAULT_CONFIG, and the defaults pass', () => {
    compare(CONFIG_SCHEMA, DEFAULT_CONFIG, '');
    assert.deepEqual(configProblems(DEFAULT_CONFIG), []);
    assert.deepEqual(resolveConfig({}), DEFAULT_CONFIG);
  });

  it('the genconfig file states each key\'s type and passes the schema and validateConfig', () => {
    const text = commentedConfig();
    assert.match(text, /\/\/ listen port \(`0`: any free port\)\n\s*\/\/ type: integer from 0 to 65535\n\s*"port": 8080,/, 'each key says its type');
    assert.match(text, /\/\/ type: JWT settings object or null\n\s*"jwt": null,/);
    const generated = parseJsonc(text);
    assert.deepEqual(configProblems(generated), []);
    assert.equal(validateConfig(generated).ok, true);
  });

  it('docs/configuration.md lists exactly the keys the schema wants at least 1', () => {
    const atLeastOne: string[] = [];
    const walk = (schema: Schema, path: string): void => {
      if (schema.minimum === 1) atLeastOne.push(path);
      for (const [key, sub] of Object.entries(schema.properties ?? {})) walk(sub, path === '' ? key : `${path}.${key}`);
    };
    walk(CONFIG_SCHEMA, '');
    const docs = readFileSync(join(REPO_ROOT, 'docs', 'configuration.md'), 'utf8');
    const paragraph = /\*\*At least 1:\*\*([\s\S]*?)\n\n/.exec(docs)?.[1] ?? '';
    const listed = [...paragraph.matchAll(/`([^`]+)`/g)].map((m) => m[1]!);
    assert.deepEqual(listed.sort(), atLeastOne.sort());
  });

  it('every description of config-docs.ts is of a key the schema has', () => {
    for (const path of Object.keys(CONFIG_DESCRIPTIONS)) assert.ok(schemaAt(path.split('.')) !== undefined, `${path}: described but not in the schema`);
  });
});
