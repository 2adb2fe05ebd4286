/**
 * Baseline: a raw `ws` server with the naive fan-out loop (for each subscriber: ws.send(json)).
 * It speaks the subset of the Switchboard protocol the benchmark uses, so the load generator
 * drives it exactly like Switchboard: `connect` frame on accept, `join_channel` -> `subscribed`,
 * `message` -> publication to the channel in a seed-000-like envelope, serialized once per publish.
 */
import { WebSocketServer, type WebSocket } from 'ws';
import { serverArgs } from './args.js';

const { port, host } = serverArgs(process.argv.slice(2));
const channels = new Map<string, Set<WebSocket>>();
let nextId = 0;
let seq = 0;

const wss = new WebSocketServer({ host, port, path: '/ws', perMessageDeflate: false, maxPayload: 64 * 1024 });
wss.on('connection', (ws) => {
  const id = `c${++nextId}`;
  const joined: string[] = [];
  ws.send(JSON.stringify({ type: 'connect', data: { connection_id: id, status: 'connected' } }));
  ws.on('message', (raw) => {
    let msg: { type?: string; data?: { channel?: string } };
    try { msg = JSON.parse(raw.toString()); } catch { return; }
    const channel = msg.data?.channel;
    if (typeof channel !== 'string') return;
    if (msg.type === 'join_channel') {
      let set = channels.get(channel);
      if (!set) channels.set(channel, (set = new Set()));
      set.add(ws);
      joined.push(channel);
      ws.send(JSON.stringify({ type: 'subscribed', data: { channel } }));
    } else if (msg.type === 'message') {
      const set = channels.get(channel);
      if (!set) return;
      const json = JSON.stringify({
        type: 'message', data: msg.data, timestamp: new Date().toISOString(), sender_id: id, channel, seq: ++seq,
      });
      for (const client of set) client.send(json);
    }
  });
  ws.on('close', () => { for (const c of joined) channels.get(c)?.delete(ws); });
});
wss.on('listening', () => process.stderr.write(`ws baseline listening on ${host}:${port}\n`));
process.on('SIGTERM', () => process.exit(0));
