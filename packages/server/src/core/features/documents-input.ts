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
    if (!s.writable) {
      if (s.noticeDue(now)) s.peer.refused(s.channel, ErrorCode.READ_ONLY, 'This document is read-only for you: your changes are not saved');
      return;
    }
    if (update.length > this.options.maxUpdateBytes) {
      this.invalid(s, `update of ${update.length} bytes (at most ${this.options.maxUpdateBytes})`);
      return;
    }
    const state = s.state;
    let structs: Array<{ id: { client: number; clock: number } }>;
    try {
      structs = Y.decodeUpdate(update).structs;
    } catch {
      this.invalid(s, 'malformed or truncated Yjs update');
      return;
    }
    // An update continues each client's history where the document has it. One that starts past that depends
    // on changes the document never saw: another document's update, or a client update that overtook the
    // client's sync step 2 (which then brings everything): dropped either way, the document unchanged.
    const first = new Map<number, number>();
    for (const st of structs) if (!first.has(st.id.client)) first.set(st.id.client, st.id.clock);
    for (const [client, clock] of first) {
      if (clock > Y.getState(state.ydoc.store, client)) {
        if (s.caughtUp || step2) this.invalid(s, 'update does not fit this document (it depends on changes the document does not have)');
        return;
      }
    }
    if (step2) s.caughtUp = true;
    try {
      Y.applyUpdate(state.ydoc, update, s);
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
    const accepted = entries.filter((e) => {
      if (s.awarenessIds.has(e.clientID)) return true;
      const owner = state.owners.get(e.clientID);
      // A client id another live peer speaks for: only the same user may take it over (a reconnect whose old
      // socket is not closed yet); anyone else's entry for it is dropped.
      if (e.clientID === state.ydoc.clientID || (owner !== undefined && owner.peer.actorId !== s.peer.actorId)) return false;
      return s.awarenessIds.size < this.options.maxAwarenessClients;
    });
    if (accepted.length < entries.length) this.invalid(s, 'awareness entries for clients this connection does not speak for were dropped');
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
