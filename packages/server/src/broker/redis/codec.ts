import type { ControlEnvelope, ControlMessage, Publication } from '../../core/ports/broker.js';

/**
 * Bus encoding: one line of JSON header, "\n", then the frame text untouched (it is already JSON, so the
 * receiving node never parses or re-serializes it). Headers:
 *   ["p", offset, epoch, time, exclude|null]   publication (built inside the publish Lua script)
 *   ["e", exclude|null]                        ephemeral channel event
 *   ["u", origin, userId]  ["c", origin, connectionId]  ["a", origin]          control with frame
 *   ["d", origin, connectionId, code, reason]  ["D", origin, userId, code, reason]
 *   ["s", origin, clientId, keep, generation?]                                   control without frame (no "\n")
 */
export type Decoded =
  | { t: 'p'; pub: Publication }
  | { t: 'e'; frame: string; exclude: string | undefined }
  | { t: 'c'; msg: ControlEnvelope };

export function encodeEphemeral(frame: string, exclude: string | undefined): string {
  return `["e",${exclude === undefined ? 'null' : JSON.stringify(exclude)}]\n${frame}`;
}

export function encodeControl(msg: ControlMessage, origin: string): string {
  switch (msg.kind) {
    case 'user': return `${JSON.stringify(['u', origin, msg.userId])}\n${msg.frame}`;
    case 'connection': return `${JSON.stringify(['c', origin, msg.connectionId])}\n${msg.frame}`;
    case 'all': return `${JSON.stringify(['a', origin])}\n${msg.frame}`;
    case 'disconnect_connection': return JSON.stringify(['d', origin, msg.connectionId, msg.code, msg.reason]);
    case 'disconnect_user': return JSON.stringify(['D', origin, msg.userId, msg.code, msg.reason]);
    case 'supersede': return JSON.stringify(msg.generation === undefined
      ? ['s', origin, msg.clientId, msg.keepConnectionId]
      : ['s', origin, msg.clientId, msg.keepConnectionId, msg.generation]);
  }
}

/** Decode a publication header+frame for `channel` (also used for stored idempotency results). */
export function decodePublication(channel: string, raw: string): Publication {
  const nl = raw.indexOf('\n');
  const h = JSON.parse(raw.slice(0, nl)) as [string, number, string, number, string | null];
  const pub: Publication = { channel, offset: h[1], epoch: h[2], frame: raw.slice(nl + 1), time: h[3] };
  if (h[4] !== null) pub.excludeConnectionId = h[4];
  return pub;
}

/** Decode a message from a channel's pub/sub channel. Throws on malformed input (caller drops it). */
export function decodeChannelMessage(channel: string, raw: string): Decoded {
  if (raw.startsWith('["p"')) return { t: 'p', pub: decodePublication(channel, raw) };
  const nl = raw.indexOf('\n');
  const h = JSON.parse(raw.slice(0, nl)) as [string, string | null];
  if (h[0] !== 'e') throw new Error(`unknown channel message type ${String(h[0])}`);
  return { t: 'e', frame: raw.slice(nl + 1), exclude: h[1] ?? undefined };
}

/** Decode a message from the control channel. Throws on malformed input (caller drops it). */
export function decodeControl(raw: string): ControlEnvelope {
  const nl = raw.indexOf('\n');
  const h = JSON.parse(nl < 0 ? raw : raw.slice(0, nl)) as unknown[];
  const frame = nl < 0 ? '' : raw.slice(nl + 1);
  const origin = String(h[1]);
  switch (h[0]) {
    case 'u': return { kind: 'user', userId: String(h[2]), frame, originNode: origin };
    case 'c': return { kind: 'connection', connectionId: String(h[2]), frame, originNode: origin };
    case 'a': return { kind: 'all', frame, originNode: origin };
    case 'd': return { kind: 'disconnect_connection', connectionId: String(h[2]), code: Number(h[3]), reason: String(h[4]), originNode: origin };
    case 'D': return { kind: 'disconnect_user', userId: String(h[2]), code: Number(h[3]), reason: String(h[4]), originNode: origin };
    case 's': {
      const msg: ControlEnvelope = { kind: 'supersede', clientId: String(h[2]), keepConnectionId: String(h[3]), originNode: origin };
      if (typeof h[4] === 'number' && Number.isFinite(h[4])) msg.generation = h[4];
      return msg;
    }
    default: throw new Error(`unknown control message type ${String(h[0])}`);
  }
}
