import * as Y from 'yjs';
import * as awarenessProtocol from 'y-protocols/awareness';
import type { CoreContext } from '../context.js';
import { documentOptions, type DocumentOptions } from '../document-options.js';
import { newId } from '../ids.js';
import type { DocumentStore } from '../ports/document-store.js';
import { DocState, DocumentSession, LEFT_ORIGIN, LOAD_ORIGIN, RemoteOrigin } from './documents-session.js';
import { DocumentFrame, awarenessBytesMessage, encodeBus, updateMessage, type BusKind } from './documents-wire.js';

export type DocumentsContext = Pick<CoreContext, 'broker' | 'namespaces' | 'hooks' | 'log' | 'metrics' | 'now' | 'options'>;

export interface AwarenessChanges {
  added: number[];
  updated: number[];
  removed: number[];
}

/**
 * The documents this node holds (base of Documents, see documents.ts for the whole picture): loading a
 * document from the store, the write path of local updates (stored, then relayed and published), awareness
 * fan-out, compaction. Subclasses add the cluster (documents-cluster.ts) and the peers (documents.ts).
 */
export abstract class DocumentHolder {
  readonly options: DocumentOptions;
  /** This process among the nodes (node id + a per-process instance, so a restarted node is a new origin). */
  readonly origin: string;
  protected readonly docs = new Map<string, DocState>();
  protected store: DocumentStore | null = null;
  protected readonly remoteOrigins = new Map<string, RemoteOrigin>();
  protected stopping = false;

  constructor(protected readonly ctx: DocumentsContext) {
    this.options = documentOptions(ctx.options.documents);
    this.origin = `${ctx.broker.nodeId}~${newId().slice(0, 8)}`;
  }

  /** Give the documents their store (before the first document is opened). Null: memory only. */
  useStore(store: DocumentStore | null): void {
    this.store = store;
  }

  /** Whether this node holds `channel` in memory (open, or idle and not yet dropped). */
  holds(channel: string): boolean {
    return this.docs.has(channel);
  }

  /** Documents held in memory (open or idle). */
  get size(): number {
    return this.docs.size;
  }

  /** Subscribe the node heartbeat channel and start the timer (documents-cluster.ts). */
  protected abstract joinNodes(): Promise<void>;

  /** The document, loaded (counted in `attaching` until the caller takes it over). */
  protected acquire(name: string): Promise<DocState> {
    let state = this.docs.get(name);
    if (state === undefined) {
      state = new DocState(name);
      this.docs.set(name, state);
      state.ready = this.load(state);
    }
    const s = state;
    s.attaching += 1;
    return s.ready.then(() => s, (err: unknown) => {
      s.attaching -= 1;
      throw err;
    });
  }

  protected async load(state: DocState): Promise<void> {
    state.updateListener = (update: Uint8Array, origin: unknown) => this.onUpdate(state, update, origin);
    state.ydoc.on('update', state.updateListener);
    state.awareness.on('update', (changes: AwarenessChanges, origin: unknown) => this.onAwareness(state, changes, origin));
    try {
      await this.joinNodes();
      // Subscribed before reading the store: an update stored after the read reaches us on the channel.
      await this.ctx.broker.subscribe(state.name);
      const store = this.store;
      if (store !== null) {
        const stored = await store.load(state.name);
        Y.transact(state.ydoc, () => {
          for (const u of [stored.snapshot, ...stored.updates]) {
            if (u === null) continue;
            try {
              Y.applyUpdate(state.ydoc, u, LOAD_ORIGIN);
            } catch (err) {
              this.ctx.log.error({ err, channel: state.name }, 'a stored document update could not be applied');
            }
          }
        }, LOAD_ORIGIN);
        state.uncompacted = stored.updates.length;
      }
      state.loaded = true;
      this.publish(state.name, 'q', Y.encodeStateVector(state.ydoc));
      this.maybeCompact(state);
    } catch (err) {
      if (this.docs.get(state.name) === state) this.docs.delete(state.name);
      state.destroy();
      this.ctx.broker.unsubscribe(state.name).catch(() => undefined);
      throw err;
    }
  }

  /** Every change of the Y.Doc, whatever made it (Yjs emits only effective changes). */
  protected onUpdate(state: DocState, update: Uint8Array, origin: unknown): void {
    if (origin === LOAD_ORIGIN) return;
    if (origin instanceof RemoteOrigin) {
      this.relay(state, update, null); // stored by the node that took it
      return;
    }
    const from = origin instanceof DocumentSession ? origin : null;
    if (this.store === null) {
      this.relay(state, update, from);
      this.publish(state.name, 'u', update);
      return;
    }
    state.applied += 1;
    state.pending.push({ update, from, senderId: from === null ? null : from.peer.actorId, createdAt: this.ctx.now() });
    if (!state.writing) void this.drain(state);
  }

  /** Store what is pending (a batch per round trip, in order), then relay and publish it. */
  protected async drain(state: DocState): Promise<void> {
    state.writing = true;
    while (state.pending.length > 0 && this.store !== null) {
      const batch = state.pending;
      state.pending = [];
      try {
        await this.store.append(state.name, batch.map((p) => ({ update: p.update, senderId: p.senderId, createdAt: p.createdAt })));
      } catch (err) {
        this.ctx.log.warn({ err, channel: state.name, updates: batch.length }, 'storing document updates failed; retrying (they are not relayed until stored)');
        state.pending = batch.concat(state.pending);
        await new Promise((r) => setTimeout(r, this.options.storeRetryMs).unref());
        if (this.stopping && state.closed) break;
        continue;
      }
      state.stored += batch.length;
      state.uncompacted += batch.length;
      for (const p of batch) this.relay(state, p.update, p.from);
      this.publish(state.name, 'u', batch.length === 1 ? batch[0]!.update : Y.mergeUpdates(batch.map((p) => p.update)));
      this.settleWaiting(state);
      this.maybeCompact(state);
    }
    state.writing = false;
    this.settleWaiting(state);
  }

  /** Run `fn` once every local update applied so far is stored (at once without a store or pending writes). */
  protected whenStored(state: DocState, fn: () => void): void {
    if (state.stored >= state.applied) fn();
    else state.waiting.push({ upTo: state.applied, run: fn });
  }

  protected settleWaiting(state: DocState): void {
    if (state.waiting.length === 0) return;
    const due = state.waiting.filter((w) => state.stored >= w.upTo);
    if (due.length === 0) return;
    state.waiting = state.waiting.filter((w) => state.stored < w.upTo);
    for (const w of due) w.run();
  }

  /**
   * Awareness changes are coalesced per document and event-loop turn: one awareness update with every client
   * that changed goes to each local peer (the sender included: y-websocket providers take their own echo as a
   * sign of life), and one with the clients of this node's peers to the other nodes.
   */
  protected onAwareness(state: DocState, changes: AwarenessChanges, origin: unknown): void {
    const changed = changes.added.concat(changes.updated, changes.removed);
    if (changed.length === 0 || state.closed) return;
    if (origin instanceof RemoteOrigin) {
      for (const id of changes.added) state.remote.set(id, origin.node);
      for (const id of changes.updated) state.remote.set(id, origin.node);
    }
    for (const id of changes.removed) state.remote.delete(id);
    const local = origin instanceof DocumentSession || origin === LEFT_ORIGIN;
    const scheduled = state.awarenessDirty.size > 0;
    for (const id of changed) {
      state.awarenessDirty.add(id);
      if (local) state.awarenessLocalDirty.add(id);
    }
    if (!scheduled) setImmediate(() => this.flushAwareness(state));
  }

  private flushAwareness(state: DocState): void {
    const all = [...state.awarenessDirty];
    const local = [...state.awarenessLocalDirty];
    state.awarenessDirty.clear();
    state.awarenessLocalDirty.clear();
    if (state.closed || all.length === 0) return;
    if (state.sessions.size > 0) {
      const frame = new DocumentFrame(state.name, awarenessBytesMessage(awarenessProtocol.encodeAwarenessUpdate(state.awareness, all)), 'doc_awareness');
      for (const s of state.sessions) this.send(s, frame);
    }
    if (local.length > 0) this.publish(state.name, 'a', awarenessProtocol.encodeAwarenessUpdate(state.awareness, local));
  }

  /** See DocumentInputPort.applyRelayed: the update event is off while Yjs applies it (no second encoding). */
  protected applyRelayed(state: DocState, update: Uint8Array, from: DocumentSession): void {
    this.publish(state.name, 'u', update);
    const listener = state.updateListener;
    if (listener !== null) state.ydoc.off('update', listener);
    try {
      Y.applyUpdate(state.ydoc, update, from);
    } finally {
      if (listener !== null) state.ydoc.on('update', listener);
    }
  }

  /** Relay an update to the local peers (except its author); `now`: peers that can write it at once do (sendNow). */
  protected relay(state: DocState, update: Uint8Array, except: DocumentSession | null, now = false): void {
    if (state.sessions.size === 0 || (state.sessions.size === 1 && except !== null && state.sessions.has(except))) return;
    const frame = new DocumentFrame(state.name, updateMessage(update), 'doc_update');
    let n = 0;
    for (const s of state.sessions) {
      if (s === except) continue;
      if (now && s.peer.sendNow !== undefined) s.peer.sendNow(frame);
      else s.peer.send(frame);
      n++;
    }
    this.ctx.metrics.messagesOut('doc_update', n);
  }

  protected send(s: DocumentSession, frame: DocumentFrame): void {
    s.peer.send(frame);
    this.ctx.metrics.messagesOut(frame.kind, 1);
  }

  protected publishLocalAwareness(state: DocState): void {
    const ids = [...state.owners.keys()].filter((id) => state.awareness.getStates().has(id));
    if (ids.length > 0) this.publish(state.name, 'a', awarenessProtocol.encodeAwarenessUpdate(state.awareness, ids));
  }

  protected publish(channel: string, kind: BusKind, payload: Uint8Array | null): void {
    if (this.ctx.broker.singleNode === true) return; // no other node to tell (and the echo would be skipped)
    this.ctx.broker.publishEphemeral(channel, encodeBus(kind, this.origin, payload)).catch((err: unknown) => {
      this.ctx.log.warn({ err, channel, kind }, 'document message to the other nodes failed (resynced when the broker is back)');
    });
  }

  protected remoteOrigin(node: string): RemoteOrigin {
    let o = this.remoteOrigins.get(node);
    if (o === undefined) {
      if (this.remoteOrigins.size > 1000) this.remoteOrigins.clear();
      this.remoteOrigins.set(node, (o = new RemoteOrigin(node)));
    }
    return o;
  }

  protected maybeCompact(state: DocState): void {
    if (state.uncompacted >= this.options.compactAfterUpdates) void this.compact(state);
  }

  /** Fold the stored updates into a snapshot (in the store's transaction; see DocumentStore.compact). */
  protected async compact(state: DocState): Promise<void> {
    const store = this.store;
    if (store === null || state.compacting) return;
    state.compacting = true;
    const before = state.uncompacted;
    try {
      await store.compact(state.name, mergeUpdates);
      state.uncompacted = Math.max(0, state.uncompacted - before);
    } catch (err) {
      this.ctx.log.warn({ err, channel: state.name }, 'document compaction failed');
    } finally {
      state.compacting = false;
    }
  }
}

/** Snapshot + updates -> one update of the resulting document (deleted content garbage-collected). */
export function mergeUpdates(snapshot: Uint8Array | null, updates: Uint8Array[]): Uint8Array {
  const doc = new Y.Doc();
  Y.transact(doc, () => {
    for (const u of [snapshot, ...updates]) {
      if (u === null) continue;
      try {
        Y.applyUpdate(doc, u);
      } catch {
        /* a stored update that cannot be applied is left out of the snapshot (it never applied anywhere) */
      }
    }
  });
  const out = Y.encodeStateAsUpdate(doc);
  doc.destroy();
  return out;
}
