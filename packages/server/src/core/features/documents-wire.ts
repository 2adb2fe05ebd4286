/**
 * The y-websocket message set (the framing `y-websocket` clients and servers agree on: a varuint message type,
 * then the body) built with y-protocols' own encoders, plus the node-to-node bus encoding of documents.
 * Nothing here is a CRDT or a sync algorithm: yjs and y-protocols do that; this file only frames their bytes.
 */
import * as encoding from 'lib0/encoding';
import * as decoding from 'lib0/decoding';
import * as awarenessProtocol from 'y-protocols/awareness';
import * as authProtocol from 'y-protocols/auth';
import * as syncProtocol from 'y-protocols/sync';
import type * as Y from 'yjs';
import type { Outbound } from '../outbound.js';

/** y-websocket message types (y-websocket's `messageSync`, `messageAwareness`, `messageAuth`, `messageQueryAwareness`). */
export const MESSAGE_SYNC = 0;
export const MESSAGE_AWARENESS = 1;
export const MESSAGE_AUTH = 2;
export const MESSAGE_QUERY_AWARENESS = 3;

/**
 * One y-websocket message for the peers of a document, encoded once however many peers get it. Each kind of
 * peer caches its own framing on it (like Outbound): the y-websocket endpoint its WebSocket frame, Switchboard
 * connections their channel-prefixed binary Outbound.
 */
export class DocumentFrame {
  /** WebSocket frame bytes for y-websocket peers (set by that endpoint on first use). */
  wire: Buffer | undefined = undefined;
  /** Binary Outbound for Switchboard connections (set on first use). */
  native: Outbound | undefined = undefined;
  constructor(
    readonly channel: string,
    /** The y-websocket message: varuint type, then the body. */
    readonly message: Uint8Array,
    /** For metrics: 'doc_update', 'doc_sync', 'doc_awareness', 'doc_auth'. */
    readonly kind: string,
  ) {}
}

export function syncStep1Message(doc: Y.Doc): Uint8Array {
  const e = encoding.createEncoder();
  encoding.writeVarUint(e, MESSAGE_SYNC);
  syncProtocol.writeSyncStep1(e, doc);
  return encoding.toUint8Array(e);
}

/** Sync step 2 answering a client's state vector (throws if the state vector is malformed). */
export function syncStep2Message(doc: Y.Doc, stateVector: Uint8Array): Uint8Array {
  const e = encoding.createEncoder();
  encoding.writeVarUint(e, MESSAGE_SYNC);
  syncProtocol.writeSyncStep2(e, doc, stateVector);
  return encoding.toUint8Array(e);
}

export function updateMessage(update: Uint8Array): Uint8Array {
  const e = encoding.createEncoder();
  encoding.writeVarUint(e, MESSAGE_SYNC);
  syncProtocol.writeUpdate(e, update);
  return encoding.toUint8Array(e);
}

export function awarenessMessage(awareness: awarenessProtocol.Awareness, clients: number[]): Uint8Array {
  return awarenessBytesMessage(awarenessProtocol.encodeAwarenessUpdate(awareness, clients));
}

export function awarenessBytesMessage(update: Uint8Array): Uint8Array {
  const e = encoding.createEncoder();
  encoding.writeVarUint(e, MESSAGE_AWARENESS);
  encoding.writeVarUint8Array(e, update);
  return encoding.toUint8Array(e);
}

/** y-protocols' "permission denied" auth message: a y-websocket provider logs the reason. */
export function permissionDeniedMessage(reason: string): Uint8Array {
  const e = encoding.createEncoder();
  encoding.writeVarUint(e, MESSAGE_AUTH);
  authProtocol.writePermissionDenied(e, reason);
  return encoding.toUint8Array(e);
}

/** A client message, split into its parts. Throws on truncated input. */
export type ClientMessage =
  | { kind: 'step1'; stateVector: Uint8Array }
  | { kind: 'update'; update: Uint8Array; step2: boolean }
  | { kind: 'awareness'; update: Uint8Array }
  | { kind: 'query_awareness' }
  | { kind: 'auth' }
  | { kind: 'unknown'; type: number };

export function readClientMessage(message: Uint8Array): ClientMessage {
  const d = decoding.createDecoder(message);
  const type = decoding.readVarUint(d);
  switch (type) {
    case MESSAGE_SYNC: {
      const sub = decoding.readVarUint(d);
      if (sub === syncProtocol.messageYjsSyncStep1) return { kind: 'step1', stateVector: decoding.readVarUint8Array(d) };
      if (sub === syncProtocol.messageYjsSyncStep2 || sub === syncProtocol.messageYjsUpdate) {
        return { kind: 'update', update: decoding.readVarUint8Array(d), step2: sub === syncProtocol.messageYjsSyncStep2 };
      }
      return { kind: 'unknown', type: sub };
    }
    case MESSAGE_AWARENESS:
      return { kind: 'awareness', update: decoding.readVarUint8Array(d) };
    case MESSAGE_QUERY_AWARENESS:
      return { kind: 'query_awareness' };
    case MESSAGE_AUTH:
      return { kind: 'auth' };
    default:
      return { kind: 'unknown', type };
  }
}

/** One entry of an awareness update (y-protocols' encoding: client id, clock, state JSON). */
export interface AwarenessEntry {
  clientID: number;
  clock: number;
  json: string;
}

/**
 * The entries of an awareness update, checked: at most `maxEntries`, each state valid JSON (an object or
 * null). Throws on truncated or malformed input. Used to check which clients a peer speaks for before
 * `applyAwarenessUpdate` takes it, and to filter bus updates.
 */
export function readAwarenessEntries(update: Uint8Array, maxEntries: number): AwarenessEntry[] {
  const d = decoding.createDecoder(update);
  const n = decoding.readVarUint(d);
  if (n > maxEntries) throw new Error(`awareness update for ${n} clients (at most ${maxEntries})`);
  const out: AwarenessEntry[] = [];
  for (let i = 0; i < n; i++) {
    const clientID = decoding.readVarUint(d);
    const clock = decoding.readVarUint(d);
    const json = decoding.readVarString(d);
    const state: unknown = JSON.parse(json);
    if (state !== null && (typeof state !== 'object' || Array.isArray(state))) throw new Error('awareness state must be an object or null');
    out.push({ clientID, clock, json });
  }
  return out;
}

/** Re-encode entries as an awareness update (for a filtered bus update). */
export function writeAwarenessEntries(entries: readonly AwarenessEntry[]): Uint8Array {
  const e = encoding.createEncoder();
  encoding.writeVarUint(e, entries.length);
  for (const x of entries) {
    encoding.writeVarUint(e, x.clientID);
    encoding.writeVarUint(e, x.clock);
    encoding.writeVarString(e, x.json);
  }
  return encoding.toUint8Array(e);
}

// ------------------------------------------------------------------------------------------ native framing

/** A Switchboard binary frame for a document: varstring channel, then the y-websocket message. */
export function nativeFrame(channel: string, message: Uint8Array): Uint8Array {
  const e = encoding.createEncoder();
  encoding.writeVarString(e, channel);
  encoding.writeUint8Array(e, message);
  return encoding.toUint8Array(e);
}

/** Split a Switchboard binary frame into channel and message. Throws on malformed input. */
export function readNativeFrame(data: Uint8Array): { channel: string; message: Uint8Array } {
  const d = decoding.createDecoder(data);
  const channel = decoding.readVarString(d);
  return { channel, message: data.subarray(d.pos) };
}

// ------------------------------------------------------------------------------------------ node bus

/**
 * Node-to-node document traffic on the broker (ephemeral events of the document's channel; heartbeats on
 * `DOCUMENT_NODES_CHANNEL`): `~y<kind> <origin> <base64 payload>`. The `~y` prefix tells BrokerEvents it is
 * not a client frame. Kinds: `u` update (already stored), `a` awareness update, `q` state vector query
 * (holders answer with `u` and their local `a`), `r` re-sync query after a broker outage (answered as `q`, and
 * each holder sends its own `q` back), `h` heartbeat.
 */
export type BusKind = 'u' | 'a' | 'q' | 'r' | 'h';

export interface BusMessage {
  kind: BusKind;
  origin: string;
  payload: Uint8Array;
}

/** Reserved broker channel of document node heartbeats. Clients cannot join or publish in it. */
export const DOCUMENT_NODES_CHANNEL = '$documents';

export function isBusFrame(frame: string): boolean {
  return frame.charCodeAt(0) === 126 /* ~ */ && frame.charCodeAt(1) === 121 /* y */;
}

export function encodeBus(kind: BusKind, origin: string, payload: Uint8Array | null): string {
  const body = payload === null ? '' : Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString('base64');
  return `~y${kind} ${encodeURIComponent(origin)} ${body}`;
}

/** Decode a bus frame; null when malformed. */
export function decodeBus(frame: string): BusMessage | null {
  const a = frame.indexOf(' ');
  const b = a < 0 ? -1 : frame.indexOf(' ', a + 1);
  if (a !== 3 || b < 0) return null;
  const kind = frame[2] as BusKind;
  if (kind !== 'u' && kind !== 'a' && kind !== 'q' && kind !== 'r' && kind !== 'h') return null;
  try {
    const origin = decodeURIComponent(frame.slice(a + 1, b));
    return { kind, origin, payload: new Uint8Array(Buffer.from(frame.slice(b + 1), 'base64')) };
  } catch {
    return null;
  }
}
