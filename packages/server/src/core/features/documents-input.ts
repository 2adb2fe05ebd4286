import * as Y from 'yjs';
import * as awarenessProtocol from 'y-protocols/awareness';
import { CloseCode, ErrorCode } from '@switchboard/protocol';
import type { DocumentOptions } from '../document-options.js';
import type { Logger } from '../ports/observability.js';
import type { DocState, DocumentSession } from './documents-session.js';
import { DocumentFrame, readAwarenessEntries, syncStep2Message, writeAwarenessEntries } from './documents-wire.js';

/** What the checks of peers' messages use of the document service. */
export interface DocumentInputPort {
  readonly options: DocumentOptions;
  readonly log: Logger;
  send(s: DocumentSession, frame: DocumentFrame): void;
  errorSent(code: string): void;
  /** Run `fn` once every local update applied so far is stored. */
  whenStored(state: DocState, fn: () => void): void;
  /**
   * Whether a checked client update may be relayed to the local peers before it is applied (true without a
   * store, where nothing has to be stored first).
   */
  relaysAhead(): boolean;
  /** Relay an update to the document's local peers except `from`, as received, written at once. */
  relay(state: DocState, update: Uint8Array, from: DocumentSession): void;
  /**
   * Apply an update that was relayed ahead: published to the other nodes as received, applied without the
   * Y.Doc's update event (nothing more to relay, and Yjs need not encode it again). May throw as applyUpdate.
   */
  applyRelayed(state: DocState, update: Uint8Array, from: DocumentSession): void;
}

/**
 * The checks of what a peer sends (documents.ts `receive` dispatches here): rate limits, read-only, sizes,
 * malformed or foreign updates, awareness entries the peer may speak for. A refused message leaves the
 * document unchanged and the peer is told (DocumentPeer.refused) or, for floods, closed with 4021.
 */
export class DocumentInput {
  constructor(private readonly port: DocumentInputPort) {}

  private get options(): DocumentOptions {
    return this.port.options;
  }

  /** A control message (state vector, awareness) within the peer's bucket; a flood closes it with 4021. */
  control(s: DocumentSession, now: number): boolean {
    if (s.takeControlToken(now)) return true;
    if (s.dropped >= this.options.awarenessRate.closeAfterDropped) s.peer.close(CloseCode.RATE_LIMITED, 'document message rate exceeded');
    return false;
  }

  invalid(s: DocumentSession, message: string): void {
    this.port.errorSent(ErrorCode.INVALID_UPDATE);
    s.peer.refused(s.channel, ErrorCode.INVALID_UPDATE, message);
  }

  clientUpdate(s: DocumentSession, update: Uint8Array, step2: boolean, now: number): void {
    if (update.length > this.options.maxUpdateBytes) {
      this.invalid(s, `update of ${update.length} bytes (at most ${this.options.maxUpdateBytes})`);
      return;
    }
    const state = s.state;
    let decoded: ReturnType<typeof Y.decodeUpdate>;
    try {
      decoded = Y.decodeUpdate(update);
    } catch {
      this.invalid(s, 'malformed or truncated Yjs update');
      return;
    }
    if (!s.writable) {
      // Dropped. Told so only when it would change the document (a sync step 2 with nothing new is no write).
      if (changes(state.ydoc, decoded) && s.noticeDue(now)) s.peer.refused(s.channel, ErrorCode.READ_ONLY, 'This document is read-only for you: your changes are not saved');
      return;
    }
    // An update continues each client's history where the document has it, and its items refer (origins,
    // parents, deletions) only to items the document or the update itself has. One that does not depends on
    // changes the document never saw: another document's update, or a client update that overtook the client's
    // sync step 2 (which then brings everything): dropped either way, the document unchanged.
    if (!fits(state.ydoc, decoded)) {
      if (s.caughtUp || step2) this.invalid(s, 'update does not fit this document (it depends on changes the document does not have)');
      return;
    }
    if (step2) s.caughtUp = true;
    // Without a store, an ordinary update that fits and brings something new is written to the other peers as
    // received, before the server's own Y.Doc integrates it: the relay does not wait for that work. (A sync
    // step 2, which may repeat much the document has, still goes the Yjs way: only what is new is relayed.)
    // Not while the document holds structs it could not integrate yet (from other nodes): this update might
    // complete them, and then Yjs would integrate more than the client sent. Otherwise what the client sent is
    // all that changes (or more, if it repeats known content): relaying it is relaying the change.
    const store = state.ydoc.store as unknown as { pendingStructs: unknown; pendingDs: unknown };
    const ahead = !step2 && this.port.relaysAhead() && store.pendingStructs === null && store.pendingDs === null && brings(state.ydoc, decoded);
    if (ahead) this.port.relay(state, update, s);
    try {
      if (ahead) this.port.applyRelayed(state, update, s);
      else Y.applyUpdate(state.ydoc, update, s);
    } catch (err) {
      this.port.log.warn({ err, channel: state.name, peer: s.peer.id }, 'document update could not be applied');
      this.invalid(s, 'update could not be applied');
    }
  }

  /** Sync step 1 from a peer: answer with what it lacks, once everything applied so far is stored. */
  answerStateVector(s: DocumentSession, stateVector: Uint8Array): void {
    try {
      Y.decodeStateVector(stateVector);
    } catch {
      this.invalid(s, 'malformed state vector');
      return;
    }
    const state = s.state;
    this.port.whenStored(state, () => {
      if (!s.detached && !state.closed) this.port.send(s, new DocumentFrame(state.name, syncStep2Message(state.ydoc, stateVector), 'doc_sync'));
    });
  }

  clientAwareness(s: DocumentSession, update: Uint8Array): void {
    if (update.length > this.options.maxAwarenessBytes) {
      this.invalid(s, `awareness update of ${update.length} bytes (at most ${this.options.maxAwarenessBytes})`);
      return;
    }
    const state = s.state;
    let entries;
    try {
      entries = readAwarenessEntries(update, this.options.maxAwarenessClients);
    } catch (err) {
      this.invalid(s, `malformed awareness update: ${(err as Error).message}`);
      return;
    }
    // y-websocket providers echo every awareness change they apply, other clients' included: entries for
    // clients this peer does not speak for are dropped silently. A peer speaks for a client id it announces
    // first (with a state, newer than any the document knows of it), up to maxAwarenessClients; the same user
    // may take over an id another of its sockets holds (a reconnect whose old socket is not closed yet).
    const accepted = entries.filter((e) => {
      if (s.awarenessIds.has(e.clientID)) return true;
      if (e.clientID === state.ydoc.clientID || state.remote.has(e.clientID)) return false;
      const meta = state.awareness.meta.get(e.clientID);
      if (meta !== undefined && e.clock <= meta.clock) return false;
      const owner = state.owners.get(e.clientID);
      if (owner !== undefined) return owner.peer.actorId === s.peer.actorId;
      return e.json !== 'null' && s.awarenessIds.size < this.options.maxAwarenessClients;
    });
    if (accepted.length === 0) return;
    for (const e of accepted) {
      const owner = state.owners.get(e.clientID);
      if (owner !== s) {
        owner?.awarenessIds.delete(e.clientID);
        s.awarenessIds.add(e.clientID);
        state.owners.set(e.clientID, s);
        state.remote.delete(e.clientID);
      }
    }
    awarenessProtocol.applyAwarenessUpdate(state.awareness, accepted.length === entries.length ? update : writeAwarenessEntries(accepted), s);
  }
}

/**
 * Whether every struct of a decoded update continues its client's history where the document has it (or
 * repeats known history), and every item it refers to (origin, right origin, parent item, deletions) is in
 * the document or in the update.
 */
export function fits(doc: Y.Doc, decoded: ReturnType<typeof Y.decodeUpdate>): boolean {
  const known = new Map<number, number>();
  const have = (client: number): number => {
    let k = known.get(client);
    if (k === undefined) known.set(client, (k = Y.getState(doc.store, client)));
    return k;
  };
  // Structs of one client come in clock order; each must start at or before what is known so far.
  for (const st of decoded.structs) {
    if (st instanceof Y.Skip) continue;
    const k = have(st.id.client);
    if (st.id.clock > k) return false;
    known.set(st.id.client, Math.max(k, st.id.clock + st.length));
  }
  const exists = (id: Y.ID | null): boolean => id === null || id.clock < have(id.client);
  for (const st of decoded.structs) {
    if (!(st instanceof Y.Item)) continue;
    if (!exists(st.origin) || !exists(st.rightOrigin)) return false;
    if (st.parent instanceof Y.ID && !exists(st.parent)) return false;
  }
  for (const [client, deletes] of decoded.ds.clients) {
    for (const d of deletes) if (d.clock + d.len > have(client)) return false;
  }
  return true;
}

/** Whether a decoded update has structs the document lacks, or deletions (cheap: no delete-set lookup). */
function brings(doc: Y.Doc, decoded: ReturnType<typeof Y.decodeUpdate>): boolean {
  if (decoded.ds.clients.size > 0) return true;
  for (const st of decoded.structs) {
    if (!(st instanceof Y.Skip) && st.id.clock + st.length > Y.getState(doc.store, st.id.client)) return true;
  }
  return false;
}

/** Whether a decoded update has content the document lacks, or deletes something it has not deleted. */
function changes(doc: Y.Doc, decoded: ReturnType<typeof Y.decodeUpdate>): boolean {
  for (const st of decoded.structs) {
    if (!(st instanceof Y.Skip) && st.id.clock + st.length > Y.getState(doc.store, st.id.client)) return true;
  }
  if (decoded.ds.clients.size === 0) return false;
  const deleted = Y.createDeleteSetFromStructStore(doc.store);
  let budget = 10_000; // clocks checked one by one; a longer deletion counts as a change
  for (const [client, deletes] of decoded.ds.clients) {
    for (const d of deletes) {
      if ((budget -= d.len) < 0) return true;
      for (let clock = d.clock; clock < d.clock + d.len; clock++) if (!Y.isDeleted(deleted, Y.createID(client, clock))) return true;
    }
  }
  return false;
}
