/**
 * Wire adapters for the load generator: how a subscriber becomes ready/subscribed and how the
 * publisher's frame looks, per server protocol. Publications are recognised without parsing JSON:
 * every benchmark payload is `{"channel":..,"s":<seq>,"t":<ns>,"p":"<padding>"}`, and the `"s":`
 * key appears nowhere else in the frames the servers send.
 */
import type { RawWs } from './wsclient.js';

/** Connection states kept in RawWs.state. */
export const St = { Connecting: 0, Ready: 1, Joining: 2, Subscribed: 3, Failed: 4 } as const;

export interface Protocol {
  readonly name: string;
  /**
   * The frame's type, read from its bytes without parsing JSON (Switchboard: the envelope's `type`;
   * Socket.IO: the Engine.IO / Socket.IO packet kind). '' when it cannot be told that way.
   */
  frameType(buf: Buffer, start: number, end: number): string;
  /** WebSocket request path. */
  readonly path: string;
  /** Handles a non-publication frame: handshake steps, pings, acks. Returns an error text on refusal. */
  onControl(conn: RawWs, text: string): string | undefined;
  /** Asks to join `channel`; state moves to Joining, then Subscribed when acknowledged. */
  join(conn: RawWs, channel: string): void;
  /** Text frame a WebSocket publisher sends for one publication. */
  publishFrame(data: string): string;
}

const TYPE_KEY = Buffer.from('"type":"');

/**
 * The `type` of a Switchboard frame (seed 000 envelope: `{"type":"…",…}`), found in its first 64 bytes
 * without parsing the JSON; '' when it is not there (the caller may parse the frame instead).
 */
export function switchboardFrameType(buf: Buffer, start: number, end: number): string {
  const head = buf.subarray(start, Math.min(end, start + 64));
  const i = head.indexOf(TYPE_KEY);
  if (i < 0) return '';
  const from = i + TYPE_KEY.length;
  const q = head.indexOf(0x22, from);
  return q < 0 ? '' : head.toString('latin1', from, q);
}

/** Switchboard protocol (docs/protocol.md); the raw `ws` baseline speaks the same subset. */
export const switchboardProtocol: Protocol = {
  name: 'switchboard',
  path: '/ws',
  frameType: switchboardFrameType,
  onControl(conn, text) {
    let msg: { type?: string; data?: { code?: string; message?: string } };
    try { msg = JSON.parse(text); } catch { return undefined; }
    switch (msg.type) {
      case 'connect': if (conn.state === St.Connecting) conn.state = St.Ready; break;
      case 'subscribed': if (conn.state === St.Joining) conn.state = St.Subscribed; break;
      case 'ping': conn.sendText('{"type":"pong"}'); break;
      case 'error': return `${msg.data?.code ?? 'error'}: ${msg.data?.message ?? ''}`;
    }
    return undefined;
  },
  join(conn, channel) {
    conn.state = St.Joining;
    conn.sendText(JSON.stringify({ type: 'join_channel', data: { channel } }));
  },
  publishFrame(data) { return `{"type":"message","data":${data}}`; },
};

/** Socket.IO v4 / Engine.IO v4 over the websocket transport, namespace "/". */
export const socketioProtocol: Protocol = {
  name: 'socketio',
  path: '/socket.io/?EIO=4&transport=websocket',
  frameType(buf, start, end) {
    if (end - start === 1) return buf[start] === 0x32 ? 'ping' : buf[start] === 0x33 ? 'pong' : '';
    if (buf[start] === 0x30) return 'open';
    if (buf[start] === 0x34 && end - start >= 2) {
      const k = buf[start + 1];
      return k === 0x30 ? 'connect' : k === 0x33 ? 'ack' : k === 0x32 ? 'event' : k === 0x34 ? 'connect_error' : '';
    }
    return '';
  },
  onControl(conn, text) {
    if (text === '2') { conn.sendText('3'); return undefined; } // engine.io ping -> pong
    if (text.startsWith('0{')) { conn.sendText('40'); return undefined; } // engine open -> connect namespace
    if (text.startsWith('40')) { if (conn.state === St.Connecting) conn.state = St.Ready; return undefined; }
    if (text.startsWith('43')) { if (conn.state === St.Joining) conn.state = St.Subscribed; return undefined; }
    if (text.startsWith('44')) return `connect_error ${text.slice(2)}`;
    return undefined;
  },
  join(conn, channel) {
    conn.state = St.Joining;
    conn.sendText(`420${JSON.stringify(['join', channel])}`);
  },
  publishFrame(data) { return `42["pub",${data}]`; },
};

export function protocolFor(name: string): Protocol {
  if (name === 'socketio') return socketioProtocol;
  return switchboardProtocol;
}
