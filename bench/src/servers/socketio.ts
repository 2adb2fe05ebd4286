/**
 * Baseline: a Socket.IO server using rooms, as an application would write it:
 * `join` event -> socket.join(room) + ack; `pub` event -> io.to(data.channel).emit('msg', data).
 * Default options except serveClient: false (perMessageDeflate is off by default in engine.io 6).
 */
import { createServer } from 'node:http';
import { Server } from 'socket.io';
import { serverArgs } from './args.js';

const { port, host } = serverArgs(process.argv.slice(2));
const io = new Server({ serveClient: false });
io.on('connection', (socket) => {
  socket.on('join', (room: unknown, ack?: () => void) => {
    if (typeof room === 'string') void socket.join(room);
    if (typeof ack === 'function') ack();
  });
  socket.on('pub', (data: { channel?: unknown }) => {
    if (data && typeof data.channel === 'string') io.to(data.channel).emit('msg', data);
  });
});
const http = createServer();
io.attach(http);
http.listen(port, host, () => process.stderr.write(`socket.io baseline listening on ${host}:${port}\n`));
process.on('SIGTERM', () => process.exit(0));
