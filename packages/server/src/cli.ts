#!/usr/bin/env node
import { existsSync, writeFileSync } from 'node:fs';
import { Command, Option } from 'commander';
import { loadConfig, readConfigFile, DEFAULT_CONFIG, type SwitchboardConfig } from './config.js';
import { ConfigError } from './config-validate.js';
import { commentedConfig, validateConfig } from './config-file.js';
import { Switchboard } from './server.js';
import { VERSION } from './version.js';

/** Collect repeated `--set key=value` options. */
function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** Print the problems of a configuration and exit 1. */
function refuse(source: string, errors: string[]): never {
  console.error(`switchboard: invalid configuration (${source}):`);
  for (const e of errors) console.error(`  - ${e}`);
  process.exit(1);
}

const program = new Command();
program.name('switchboard').description('Switchboard real-time server').version(VERSION, '-v, --version', 'print the version');

program
  .command('serve')
  .description('Start a server (embedded default: in-memory engine, no Redis or database needed)')
  .option('-c, --config <file>', 'JSON config file, comments allowed (also SWITCHBOARD_CONFIG)')
  .option('-p, --port <port>', 'listen port (also SWITCHBOARD_PORT, PORT)')
  .option('-H, --host <host>', 'listen address (also SWITCHBOARD_HOST)')
  .addOption(new Option('--broker <type>', 'engine (also SWITCHBOARD_BROKER)').choices(['memory', 'redis']))
  .option('--redis-url <url>', 'Redis URL for --broker redis (also SWITCHBOARD_REDIS_URL)')
  .option('--node-id <id>', 'node id (default random)')
  .option('--log-level <level>', 'fatal|error|warn|info|debug|trace|silent')
  .option('--api-key <key>', 'bearer key for the /api/* server API (also SWITCHBOARD_API_KEY)')
  .option('--admin-token <token>', 'bearer token of the admin dashboard at /admin (also SWITCHBOARD_ADMIN_TOKEN; empty: off)')
  .option('--set <key=value>', 'any config key by path, typed by the schema (arrays and objects as JSON), e.g. --set limits.rateLimit.perSecond=100 (repeatable)', collect, [])
  .action(async (opts: Record<string, unknown>) => {
    // Named flags are shorthands for --set (typed by the schema the same way); --set comes after them and wins.
    const set: string[] = [];
    const flag = (name: string, path: string) => {
      if (typeof opts[name] === 'string') set.push(`${path}=${opts[name] as string}`);
    };
    flag('port', 'port');
    flag('host', 'host');
    flag('broker', 'broker.type');
    flag('redisUrl', 'broker.redisUrl');
    flag('nodeId', 'nodeId');
    flag('logLevel', 'log.level');
    flag('apiKey', 'http.apiKey');
    flag('adminToken', 'http.adminToken');
    set.push(...(opts.set as string[]));
    const file = (opts.config as string | undefined) ?? process.env.SWITCHBOARD_CONFIG;
    const source = file !== undefined ? `${file}, environment and flags` : 'environment and flags';
    let loaded: SwitchboardConfig;
    try {
      loaded = loadConfig({ file, env: process.env, set });
    } catch (err) {
      if (err instanceof ConfigError) refuse(source, err.problems.map((p) => p.message));
      throw err;
    }
    const check = validateConfig(loaded);
    if (!check.ok) refuse(source, check.errors);
    const config = check.config;
    const sb = await Switchboard.create(config);
    const port = await sb.listen();
    sb.logger.info({ port, host: config.host, broker: config.broker.type, version: VERSION }, `switchboard listening on http://${config.host === '0.0.0.0' ? 'localhost' : config.host}:${port}`);
    if (process.send !== undefined) process.send({ type: 'listening', port });
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      sb.logger.info({ signal }, 'graceful shutdown');
      const hard = setTimeout(() => process.exit(1), config.shutdown.deadlineMs + 5000);
      hard.unref();
      sb.close().then(
        () => process.exit(0),
        (err: unknown) => {
          sb.logger.error({ err }, 'shutdown failed');
          process.exit(1);
        },
      );
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
  });

program
  .command('genconfig')
  .description('Write a complete configuration file (every setting with its default and a comment) to FILE or stdout')
  .argument('[file]', 'where to write it (default: stdout)')
  .option('-f, --force', 'overwrite FILE if it exists')
  .action((file: string | undefined, opts: { force?: boolean }) => {
    const text = commentedConfig(DEFAULT_CONFIG, VERSION);
    if (file === undefined || file === '-') {
      process.stdout.write(text);
      return;
    }
    if (existsSync(file) && opts.force !== true) throw new Error(`${file} exists (use --force to overwrite it)`);
    writeFileSync(file, text);
    console.error(`switchboard: wrote ${file}; check it with \`switchboard checkconfig ${file}\`, use it with \`switchboard serve --config ${file}\``);
  });

program
  .command('checkconfig')
  .description('Check a configuration file the way `serve` would at start-up; exits 1 with the problems found')
  .argument('<file>', 'JSON config file (comments allowed)')
  .action((file: string) => {
    const check = validateConfig(readConfigFile(file));
    if (!check.ok) refuse(file, check.errors);
    console.log(`${file}: OK`);
  });

program.parseAsync(process.argv).catch((err: unknown) => {
  console.error(`switchboard: ${(err as Error).message}`);
  process.exit(1);
});
