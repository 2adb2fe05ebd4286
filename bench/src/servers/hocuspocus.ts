/**
 * Baseline: a Hocuspocus server (@hocuspocus/server) at its defaults, no extensions (documents in memory, no
 * persistence), as its README starts one: `new Server({ port, address, quiet: true }).listen()`.
 */
import { Server } from '@hocuspocus/server';
import { serverArgs } from './args.js';

const { port, host } = serverArgs(process.argv.slice(2));
const server = new Server({ port, address: host, quiet: true });
await server.listen();
process.stderr.write(`hocuspocus baseline listening on ${host}:${port}\n`);
process.on('SIGTERM', () => process.exit(0));
