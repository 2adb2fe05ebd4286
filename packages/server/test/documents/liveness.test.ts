/**
 * Liveness on the y-websocket endpoint (`/yjs/{doc}`, docs/documents.md): a client that stops reading is closed
 * as a slow consumer (4023) once more than `max(limits.maxQueuedBytes, 4 × documents.maxUpdateBytes)` bytes
 * are queued for it, and the ping sweep drops a socket that did not answer the previous ping. In both cases
 * an unmodified WebsocketProvider on the same document keeps getting every update and stays connected.
 */
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { describe, it } from 'node:test';
import * as Y from 'yjs';
import { WebSocket } from 'ws';
import { CloseCode } from '@switchboard/protocol';
import { startServer, untilNotified, within } from '../helpers.js';
import { RawYSocket, editor, synced, untilDoc, untilText } from './helpers.js';

/** The client side's TCP socket of a `ws` client (ws keeps it private). */
const tcpOf = (ws: WebSocket): Socket => (ws as unknown as { _socket: Socket })._socket;

/** Resolves once `ws` has received `n` pings (counted from when `counter` started). */
function untilPings(ws: WebSocket, counter: { pings: number }, n: number, what: string, timeoutMs = 5000): Promise<void> {
  return untilNotified(() => counter.pings >= n, what, timeoutMs, (l) => {
    ws.on('ping', l);
    return () => ws.off('ping', l);
  });
}

function countPings(ws: WebSocket): { pings: number } {
  const counter = { pings: 0 };
  ws.on('ping', () => counter.pings++);
  return counter;
}

describe('y-websocket endpoint: slow consumer', () => {
  // One update (32 KiB) is more than limits.maxQueuedBytes: the y-websocket bound must be 4 × maxUpdateBytes,
  // or every reader of a document with large updates would be "slow".
  const QUEUED = 16 * 1024;
  const MAX_UPDATE = 64 * 1024;
  const BOUND = Math.max(QUEUED, 4 * MAX_UPDATE);
  const CHUNK = 32 * 1024;

  it('a client that stops reading is closed with 4023; a reading provider of the same document gets every update and stays', async () => {
    const server = await startServer({ limits: { maxQueuedBytes: QUEUED }, documents: { maxUpdateBytes: MAX_UPDATE }, store: { driver: 'none' } });
    // The server's side of each TCP connection, by the client's port: its writableLength is what Node holds
    // once the kernel buffers are full (the point from which a non-reading client really backs up).
    const serverSockets = new Map<number, Socket>();
    server.sb.fastify!.server.on('connection', (s: Socket) => serverSockets.set(s.remotePort!, s));
    const DOC = 'doc:slow';
    const reader = editor(`${server.ws}/yjs`, DOC);
    const slow = await RawYSocket.open(`${server.ws}/yjs/${DOC}`);
    try {
      await synced(reader);
      await slow.until(() => slow.messages.length > 0, 'the opening sync step 1 at the slow client');
      const serverSide = serverSockets.get(tcpOf(slow.ws).localPort!);
      assert.ok(serverSide, 'the server side of the slow client\'s connection');
      slow.ws.pause(); // stops reading its socket: the kernel buffers fill, then the server's queue

      // The server writes (server API: no writing socket to back up), one update at a time, paced by the
      // reading provider: it has each update before the next is written. Each update is one map entry of
      // CHUNK bytes (independent items: applying one costs the same however large the document is).
      const source = new Y.Doc();
      let update: Uint8Array | null = null;
      source.on('update', (u: Uint8Array) => (update = u));
      const entries = reader.doc.getMap<string>('m');
      let written = 0;
      let backedUp = 0;
      for (let i = 0; backedUp < 2 * BOUND; i++) {
        assert.ok(written < 64 * 1024 * 1024, 'the connection of the non-reading client never backed up');
        source.getMap('m').set(String(i), 'x'.repeat(CHUNK));
        await server.sb.node.documents.write(DOC, update!);
        written += update!.length;
        await untilDoc(reader.doc, () => entries.size === i + 1, `the reader to have update ${i}`);
        if (backedUp > 0 || serverSide.writableLength > 0) backedUp += update!.length;
      }
      const count = entries.size;
      assert.equal(reader.closes.length, 0, `the reader was not closed: ${JSON.stringify(reader.closes)}`);

      // Reading again, the slow client gets what was sent before the close, then 4023.
      slow.ws.resume();
      const closed = await slow.closeCode();
      assert.equal(closed.code, CloseCode.SLOW_CONSUMER, JSON.stringify(closed));
      const received = slow.messages.reduce((n, m) => n + m.length, 0);
      assert.ok(received < written, `the slow client got ${received} of ${written} bytes`);

      // The reader is still connected on its first socket and still gets updates.
      assert.equal(reader.provider.wsconnected, true);
      assert.equal(reader.closes.length, 0);
      source.getMap('m').set('after', 'the slow client was closed');
      await server.sb.node.documents.write(DOC, update!);
      await untilDoc(reader.doc, () => entries.has('after'), 'the update after the slow client was closed');
      assert.equal(entries.size, count + 1);
      assert.equal(reader.closes.length, 0);
    } finally {
      reader.destroy();
      slow.ws.terminate();
      await server.close();
    }
  });
});

describe('y-websocket endpoint: ping sweep', () => {
  it('a socket that keeps sending is alive without pings: it is neither pinged nor dropped, though it never answers one', async () => {
    const server = await startServer({ heartbeat: { pingIntervalMs: 100 }, store: { driver: 'none' } });
    const DOC = 'doc:chatty';
    const a = editor(`${server.ws}/yjs`, DOC);
    let chatty: WebSocket | null = null;
    let timer: NodeJS.Timeout | null = null;
    try {
      await synced(a);
      const providerWs = a.provider.ws as unknown as WebSocket;
      const providerPings = countPings(providerWs);
      chatty = new WebSocket(`${server.ws}/yjs/${DOC}`, { autoPong: false });
      const c = chatty;
      const chattyPings = countPings(c);
      const closes: number[] = [];
      c.on('close', (code) => closes.push(code));
      c.on('error', () => undefined);
      await within(new Promise((resolve) => c.once('open', resolve)), 5000, 'the chatty socket to open');
      // y-websocket's "query awareness" message (type 3), three times per ping interval.
      timer = setInterval(() => c.send(Uint8Array.of(3)), 30);
      // The silent provider is pinged by every sweep: four pings = at least three sweeps since the chatty one came.
      await untilPings(providerWs, providerPings, providerPings.pings + 4, 'four pings at the provider');
      assert.equal(chattyPings.pings, 0, 'a socket heard from since the last sweep is not pinged');
      assert.deepEqual(closes, []);
      assert.equal(c.readyState, WebSocket.OPEN);
      // Once it falls silent it is pinged, and (never answering) dropped like any other.
      clearInterval(timer);
      timer = null;
      const code = await within(new Promise<number>((resolve) => c.once('close', resolve)), 5000, 'the silent, mute socket to be dropped');
      assert.equal(code, 1006);
      assert.ok(chattyPings.pings >= 1, 'pinged once it fell silent');
    } finally {
      if (timer !== null) clearInterval(timer);
      a.destroy();
      chatty?.terminate();
      await server.close();
    }
  });

  it('a socket that does not answer pings is dropped; a provider on the same document stays connected across several intervals', async () => {
    const server = await startServer({ heartbeat: { pingIntervalMs: 100 }, store: { driver: 'none' } });
    const DOC = 'doc:pings';
    const a = editor(`${server.ws}/yjs`, DOC);
    let mute: WebSocket | null = null;
    try {
      await synced(a);
      const providerWs = a.provider.ws as unknown as WebSocket;
      const providerPings = countPings(providerWs);

      // A client that never answers a ping (ws answers them itself unless told not to).
      mute = new WebSocket(`${server.ws}/yjs/${DOC}`, { autoPong: false });
      const m = mute;
      const mutePings = countPings(m);
      const muteClosed = new Promise<{ code: number }>((resolve) => m.once('close', (code) => resolve({ code })));
      m.on('error', () => undefined);
      await within(new Promise((resolve) => m.once('open', resolve)), 5000, 'the mute socket to open');
      // Pinged once, no pong: the next sweep drops it (terminate: no close frame, 1006 at the client).
      const { code } = await within(muteClosed, 5000, 'the mute socket to be dropped');
      assert.equal(code, 1006);
      assert.ok(mutePings.pings >= 1, 'it was pinged before being dropped');

      // The provider answers every ping: three more sweeps and it is still on its first socket.
      const seen = providerPings.pings;
      await untilPings(providerWs, providerPings, seen + 3, 'three more pings at the provider');
      assert.equal(a.closes.length, 0, JSON.stringify(a.closes));
      assert.equal(a.provider.ws, providerWs as unknown);
      assert.equal(a.provider.wsconnected, true);
      // And its document still works.
      const b = editor(`${server.ws}/yjs`, DOC);
      try {
        await synced(b);
        a.text.insert(0, 'still here');
        await untilText(b, 'still here');
      } finally {
        b.destroy();
      }
    } finally {
      a.destroy();
      mute?.terminate();
      await server.close();
    }
  });
});
