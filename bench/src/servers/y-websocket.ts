/**
 * Baseline: @y/websocket-server as its own server.js runs it (documents in memory, no persistence): an HTTP
 * server whose upgrades go to `setupWSConnection`, the document named by the path.
 */
import http from 'node:http';
import { WebSocketServer } from 'ws';
import { setupWSConnection } from '@y/websocket-server/utils';
import { serverArgs } from './args.js';

const { port, host } = serverArgs(process.argv.slice(2));
const wss = new WebSocketServer({ noServer: true });
wss.on('connection', setupWSConnection);
const server = http.createServer((_req, res) => {
  res.writeHead(200, { 'Content-Type': 'text/plain' });
  res.end('okay');
});
server.on('upgrade', (req, socket, head) => {
  wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
});
server.listen(port, host, () => process.stderr.write(`y-websocket baseline listening on ${host}:${port}\n`));
process.on('SIGTERM', () => process.exit(0));
