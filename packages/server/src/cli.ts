#!/usr/bin/env node
import { Command, Option } from 'commander';
import { configFromEnv, mergeConfig, readConfigFile, setPath, DEFAULT_CONFIG, type DeepPartial, type SwitchboardConfig } from './config.js';
import { Switchboard } from './server.js';

/** Collect repeated `--set key=value` options. */
function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

const program = new Command();
program.name('switchboard').description('Switchboard real-time server');

program
  .command('serve')
  .description('Start a server (embedded default: in-memory engine, no Redis or database needed)')
  .option('-c, --config <file>', 'JSON config file (also SWITCHBOARD_CONFIG)')
  .option('-p, --port <port>', 'listen port (also SWITCHBOARD_PORT, PORT)')
  .option('-H, --host <host>', 'listen address (also SWITCHBOARD_HOST)')
  .addOption(new Option('--broker <type>', 'engine (also SWITCHBOARD_BROKER)').choices(['memory', 'redis']))
  .option('--redis-url <url>', 'Redis URL for --broker redis (also SWITCHBOARD_REDIS_URL)')
  .option('--node-id <id>', 'node id (default random)')
  .option('--log-level <level>', 'fatal|error|warn|info|debug|trace|silent')
  .option('--api-key <key>', 'bearer key for the /api/* server API')
  .option('--set <key=value>', 'any config field by path, e.g. --set limits.rateLimit.perSecond=100 (repeatable)', collect, [])
  .action(async (opts: Record<string, unknown>) => {
    const fromFlags: Record<string, unknown> = {};
    const flag = (name: string, path: string) => {
      if (typeof opts[name] === 'string') setPath(fromFlags, path, opts[name] as string);
    };
    flag('port', 'port');
    flag('host', 'host');
    flag('broker', 'broker.type');
    flag('redisUrl', 'broker.redisUrl');
    flag('nodeId', 'nodeId');
    flag('logLevel', 'log.level');
    flag('apiKey', 'http.apiKey');
    for (const kv of opts.set as string[]) {
      const eq = kv.indexOf('=');
      if (eq <= 0) throw new Error(`--set expects key=value, got "${kv}"`);
      setPath(fromFlags, kv.slice(0, eq), kv.slice(eq + 1));
    }
    const file = (opts.config as string | undefined) ?? process.env.SWITCHBOARD_CONFIG;
    const config: SwitchboardConfig = mergeConfig(
      DEFAULT_CONFIG,
      file !== undefined ? readConfigFile(file) : undefined,
      configFromEnv(process.env),
      fromFlags as DeepPartial<SwitchboardConfig>,
    );
    const sb = await Switchboard.create(config);
    const port = await sb.listen();
    sb.logger.info({ port, host: config.host, broker: config.broker.type }, `switchboard listening on http://${config.host === '0.0.0.0' ? 'localhost' : config.host}:${port}`);
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

program.parseAsync(process.argv).catch((err: unknown) => {
  console.error(`switchboard: ${(err as Error).message}`);
  process.exit(1);
});
