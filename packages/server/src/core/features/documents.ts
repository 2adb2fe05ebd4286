import * as Y from 'yjs';
import * as awarenessProtocol from 'y-protocols/awareness';
import { CloseCode, ErrorCode } from '@switchboard/protocol';
import type { CoreContext } from '../context.js';
import { documentOptions, type DocumentOptions } from '../document-options.js';
import { newId } from '../ids.js';
import type { DocumentHistoryPage, DocumentHistoryQuery, DocumentStore } from '../ports/document-store.js';
import type { ConnectionInfo, Decision } from '../ports/hooks.js';
import {
  DocState, DocumentSession, LEFT_ORIGIN, LOAD_ORIGIN, NODE_GONE_ORIGIN, RemoteOrigin, SERVER_ORIGIN,
  type DocumentPeer, type DocumentRouter,
} from './documents-session.js';
import {
  DOCUMENT_NODES_CHANNEL, DocumentFrame, awarenessBytesMessage, awarenessMessage, decodeBus, encodeBus, readAwarenessEntries,
  readClientMessage, syncStep1Message, syncStep2Message, updateMessage, writeAwarenessEntries, type BusKind, type ClientMessage,
} from './documents-wire.js';

/** Why a peer cannot open a document: an error code (Switchboard connections) and a close code (y-websocket). */
export interface DocumentRefusal {
  refused: true;
  code: string;
  closeCode: number;
  message: string;
}

const ALLOWED: Decision = { allowed: true };
/** An empty Yjs update (no structs, no deletions) is two zero bytes. */
const EMPTY_UPDATE_LENGTH = 2;

/**
 * Yjs documents (issue 13). A channel whose namespace says `documents: "yjs"` is a document: this node holds
 * its Y.Doc and awareness while it has peers (then keeps it idle, bounded, for a while), loads it from the
 * document store on first use, and keeps it in step with the other nodes through the broker.
 *
 * Write path of a local update: checked (size, decodes, fits the document) -> applied to the Y.Doc (Yjs
 * yields the effective update) -> appended to the store -> only then relayed to the local peers and published
 * to the other nodes. So no client anywhere sees an update that is not stored, and killing a node loses
 * nothing another client has seen. A state vector (sync step 1) is answered once every update applied before
 * it is stored. Without a store, updates are relayed at once.
 *
 * Awareness (cursors, selections, presence) is relayed at once, never stored; each local peer speaks for the
 * awareness clients it announced (at most `maxAwarenessClients`), whose entries are removed when it leaves. A
 * remote node's entries are removed when its heartbeats (on `$documents`) stop for `nodeTimeoutMs`.
 *
 * Between nodes (ephemeral events of the document's own channel, see documents-wire.ts): stored updates,
 * awareness updates, and a state vector query a node sends when it loads a document or after a broker outage,
 * which the other holders answer with what it lacks.
 */
export class Documents implements DocumentRouter {
  readonly options: DocumentOptions;
  /** This process among the nodes (node id + a per-process instance, so a restarted node is a new origin). */
  readonly origin: string;
  private readonly docs = new Map<string, DocState>();
  private store: DocumentStore | null = null;
  /** Remote origins -> when last heard from. */
  private readonly nodes = new Map<string, number>();
  private readonly remoteOrigins = new Map<string, RemoteOrigin>();
  private nodeChannel: Promise<void> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private lastBeat = 0;
  private readonly channelName: RegExp;
  private stopping = false;

  constructor(private readonly ctx: Pick<CoreContext, 'broker' | 'namespaces' | 'hooks' | 'log' | 'metrics' | 'now' | 'options'>) {
    this.options = documentOptions(ctx.options.documents);
    this.origin = `${ctx.broker.nodeId}~${newId().slice(0, 8)}`;
    this.channelName = new RegExp(`^(?:${ctx.options.limits.channelNamePattern})$`);
  }

  /** Give the documents their store (before the first document is opened). Null: memory only. */
  useStore(store: DocumentStore | null): void {
    this.store = store;
  }

  /** Whether `channel` is a document channel (its namespace says `documents: "yjs"`). */
  isDocument(channel: string): boolean {
    return this.ctx.namespaces.of(channel).documents === 'yjs';
  }

  /** Documents held in memory (open or idle). */
  get size(): number {
    return this.docs.size;
  }

  // ---------------------------------------------------------------- peers

  /**
   * Let a peer into a document: name and namespace, `subscribe` authorization (read), `publish` (write: a
   * denial makes the peer read-only), then the document (loaded on first use). The caller calls `start()` on
   * the session when the peer may receive the opening messages, and `detach()` when it is gone.
   */
  async attach(peer: DocumentPeer, channel: string): Promise<DocumentSession | DocumentRefusal> {
    if (this.stopping) return refusal(ErrorCode.DRAINING, CloseCode.GOING_AWAY, 'server shutting down');
    if (channel.length === 0 || channel.length > this.ctx.options.limits.maxChannelNameLength || !this.channelName.test(channel) || !this.isDocument(channel)) {
      return refusal(ErrorCode.NOT_A_DOCUMENT, CloseCode.NOT_A_DOCUMENT, `"${channel.slice(0, 200)}" is not a document channel`);
    }
    const read = this.decide(peer.info, 'subscribe', channel);
    const write = this.decide(peer.info, 'publish', channel);
    const r = read instanceof Promise ? await read : read;
    if (!r.allowed) return refusal(r.code, CloseCode.DOCUMENT_FORBIDDEN, r.message);
    const w = write instanceof Promise ? await write : write;
    let state: DocState;
    try {
      state = await this.acquire(channel);
    } catch (err) {
      this.ctx.log.warn({ err, channel }, 'document could not be loaded');
      return refusal(ErrorCode.INTERNAL, CloseCode.SERVER_ERROR, 'document unavailable, try again');
    }
    state.attaching -= 1;
    const s = new DocumentSession(this, state, peer, w.allowed, this.ctx.now(), this.options);
    state.sessions.add(s);
    state.idleSince = 0;
    return s;
  }

  /** The opening messages: our state vector (the peer answers with what we lack) and the awareness states. */
  start(s: DocumentSession): void {
    if (s.detached) return;
    const state = s.state;
    this.send(s, new DocumentFrame(state.name, syncStep1Message(state.ydoc), 'doc_sync'));
    const ids = [...state.awareness.getStates().keys()];
    if (ids.length > 0) this.send(s, new DocumentFrame(state.name, awarenessMessage(state.awareness, ids), 'doc_awareness'));
  }

  /** One y-websocket message from a peer. Never throws: bad input is refused, the document unchanged. */
  receive(s: DocumentSession, message: Uint8Array): void {
    if (s.detached) return;
    let m: ClientMessage;
    try {
      m = readClientMessage(message);
    } catch {
      this.invalid(s, 'malformed or truncated document message');
      return;
    }
    const now = this.ctx.now();
    switch (m.kind) {
      case 'update':
        this.ctx.metrics.messageIn('doc_update', message.length);
        if (!s.takeUpdateToken(now)) {
          s.peer.close(CloseCode.RATE_LIMITED, 'document update rate exceeded');
          return;
        }
        this.clientUpdate(s, m.update, m.step2, now);
        return;
      case 'step1':
        this.ctx.metrics.messageIn('doc_sync', message.length);
        if (this.control(s, now)) this.answerStateVector(s, m.stateVector);
        return;
      case 'awareness':
        this.ctx.metrics.messageIn('doc_awareness', message.length);
        if (this.control(s, now)) this.clientAwareness(s, m.update);
        return;
      case 'query_awareness': {
        if (!this.control(s, now)) return;
        const ids = [...s.state.awareness.getStates().keys()];
        this.send(s, new DocumentFrame(s.channel, awarenessMessage(s.state.awareness, ids), 'doc_awareness'));
        return;
      }
      case 'auth':
        return; // nothing a client says in it concerns the server
      case 'unknown':
        this.invalid(s, `unknown document message type ${m.type}`);
        return;
    }
  }

  /** The peer is gone: out of the document, its awareness entries removed for everyone. Idempotent. */
  detach(s: DocumentSession): void {
    if (s.detached) return;
    s.detached = true;
    const state = s.state;
    state.sessions.delete(s);
    const ids: number[] = [];
    for (const id of s.awarenessIds) {
      if (state.owners.get(id) !== s) continue;
      state.owners.delete(id);
      ids.push(id);
    }
    if (ids.length > 0 && !state.closed) awarenessProtocol.removeAwarenessStates(state.awareness, ids, LEFT_ORIGIN);
    if (state.sessions.size === 0) state.idleSince = this.ctx.now();
  }

  // ---------------------------------------------------------------- server API

  /** The document's state as one Yjs update (loaded if needed). */
  async read(channel: string): Promise<Uint8Array> {
    const state = await this.acquire(channel);
    state.attaching -= 1;
    if (state.sessions.size === 0) state.idleSince = this.ctx.now();
    return Y.encodeStateAsUpdate(state.ydoc);
  }

  /** Apply an update on the server's behalf: stored and relayed like a client's. Resolves once stored. */
  async write(channel: string, update: Uint8Array): Promise<void> {
    const state = await this.acquire(channel);
    state.attaching -= 1;
    if (state.sessions.size === 0) state.idleSince = this.ctx.now();
    Y.applyUpdate(state.ydoc, update, SERVER_ORIGIN);
    await new Promise<void>((resolve) => this.whenStored(state, resolve));
  }

  /** A page of a document's operation log (empty without a store). */
  history(channel: string, query: DocumentHistoryQuery): Promise<DocumentHistoryPage> {
    if (this.store === null) return Promise.resolve({ records: [], hasMore: false });
    return this.store.history(channel, query);
  }

  // ---------------------------------------------------------------- cluster

  /** An ephemeral broker event that is document traffic (documents-wire.ts `isBusFrame`). */
  receiveBus(channel: string, frame: string): void {
    const m = decodeBus(frame);
    if (m === null || m.origin === this.origin) return;
    const now = this.ctx.now();
    this.nodes.set(m.origin, now);
    if (channel === DOCUMENT_NODES_CHANNEL) return; // a heartbeat
    const state = this.docs.get(channel);
    if (state === undefined || state.closed) return;
    const origin = this.remoteOrigin(m.origin);
    try {
      if (m.kind === 'u') {
        Y.applyUpdate(state.ydoc, m.payload, origin);
      } else if (m.kind === 'a') {
        // Entries of clients a local peer speaks for are this node's to say (a client that moved here from
        // the other node must not lose its cursor to that node's late removal).
        const entries = readAwarenessEntries(m.payload, 100_000);
        const mine = entries.filter((e) => !state.owners.has(e.clientID));
        if (mine.length > 0) awarenessProtocol.applyAwarenessUpdate(state.awareness, mine.length === entries.length ? m.payload : writeAwarenessEntries(mine), origin);
      } else if (m.kind === 'q' && state.loaded) {
        const diff = Y.encodeStateAsUpdate(state.ydoc, m.payload);
        if (diff.length > EMPTY_UPDATE_LENGTH) this.publish(channel, 'u', diff);
        this.publishLocalAwareness(state);
      }
    } catch (err) {
      this.ctx.log.warn({ err, channel, origin: m.origin, kind: m.kind }, 'bad document message from another node dropped');
    }
  }

  /**
   * The broker is back after an outage: updates and awareness published meanwhile may be lost. Re-read each
   * document's store (what other nodes stored meanwhile), ask the other holders for what this node lacks, and
   * announce this node's awareness again.
   */
  brokerUp(): void {
    for (const state of this.docs.values()) {
      if (!state.loaded || state.closed) continue;
      this.publish(state.name, 'q', Y.encodeStateVector(state.ydoc));
      this.publishLocalAwareness(state);
      const store = this.store;
      if (store === null) continue;
      store.load(state.name).then((stored) => {
        if (state.closed) return;
        const origin = this.remoteOrigin('store');
        Y.transact(state.ydoc, () => {
          for (const u of [stored.snapshot, ...stored.updates]) if (u !== null) Y.applyUpdate(state.ydoc, u, origin);
        }, origin);
      }).catch((err: unknown) => this.ctx.log.warn({ err, channel: state.name }, 'document re-read after broker outage failed'));
    }
  }

  // ---------------------------------------------------------------- lifecycle

  /**
   * Shutdown: close every peer with `code` (their awareness entries are removed for the other nodes) and wait,
   * until the deadline, for updates still being stored.
   */
  async shutdown(code: number, deadlineMs: number): Promise<void> {
    this.stopping = true;
    for (const state of this.docs.values()) {
      for (const s of [...state.sessions]) {
        s.peer.close(code, 'server shutdown');
        this.detach(s);
      }
    }
    const deadline = this.ctx.now() + deadlineMs;
    while ([...this.docs.values()].some((d) => d.writing || d.pending.length > 0) && this.ctx.now() < deadline) {
      await new Promise((r) => setTimeout(r, 10));
    }
    await Promise.all([...this.docs.values()].filter((d) => d.uncompacted > 0).map((d) => this.compact(d)));
  }

  /** Drop every document (after shutdown). */
  close(): void {
    this.stopping = true;
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    for (const state of this.docs.values()) state.destroy();
    this.docs.clear();
  }

  // ---------------------------------------------------------------- internals: peers' messages

  /** A control message (state vector, awareness) within the peer's bucket; a flood closes it with 4021. */
  private control(s: DocumentSession, now: number): boolean {
    if (s.takeControlToken(now)) return true;
    if (s.dropped >= this.options.awarenessRate.closeAfterDropped) s.peer.close(CloseCode.RATE_LIMITED, 'document message rate exceeded');
    return false;
  }

  private invalid(s: DocumentSession, message: string): void {
    this.ctx.metrics.errorSent(ErrorCode.INVALID_UPDATE);
    s.peer.refused(s.channel, ErrorCode.INVALID_UPDATE, message);
  }

  private clientUpdate(s: DocumentSession, update: Uint8Array, step2: boolean, now: number): void {
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
      this.ctx.log.warn({ err, channel: state.name, peer: s.peer.id }, 'document update could not be applied');
      this.invalid(s, 'update could not be applied');
    }
  }

  /** Sync step 1 from a peer: answer with what it lacks, once everything applied so far is stored. */
  private answerStateVector(s: DocumentSession, stateVector: Uint8Array): void {
    try {
      Y.decodeStateVector(stateVector);
    } catch {
      this.invalid(s, 'malformed state vector');
      return;
    }
    const state = s.state;
    this.whenStored(state, () => {
      if (!s.detached && !state.closed) this.send(s, new DocumentFrame(state.name, syncStep2Message(state.ydoc, stateVector), 'doc_sync'));
    });
  }

  private clientAwareness(s: DocumentSession, update: Uint8Array): void {
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

  // ---------------------------------------------------------------- internals: the document

  /** The document, loaded (counted in `attaching` until the caller takes it over). */
  private acquire(name: string): Promise<DocState> {
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

  private async load(state: DocState): Promise<void> {
    state.ydoc.on('update', (update: Uint8Array, origin: unknown) => this.onUpdate(state, update, origin));
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
  private onUpdate(state: DocState, update: Uint8Array, origin: unknown): void {
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
  private async drain(state: DocState): Promise<void> {
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
  private whenStored(state: DocState, fn: () => void): void {
    if (state.stored >= state.applied) fn();
    else state.waiting.push({ upTo: state.applied, run: fn });
  }

  private settleWaiting(state: DocState): void {
    if (state.waiting.length === 0) return;
    const due = state.waiting.filter((w) => state.stored >= w.upTo);
    if (due.length === 0) return;
    state.waiting = state.waiting.filter((w) => state.stored < w.upTo);
    for (const w of due) w.run();
  }

  private onAwareness(state: DocState, changes: AwarenessChanges, origin: unknown): void {
    const changed = changes.added.concat(changes.updated, changes.removed);
    if (changed.length === 0 || state.closed) return;
    if (origin instanceof RemoteOrigin) {
      for (const id of changes.added) state.remote.set(id, origin.node);
      for (const id of changes.updated) state.remote.set(id, origin.node);
    }
    for (const id of changes.removed) state.remote.delete(id);
    const update = awarenessProtocol.encodeAwarenessUpdate(state.awareness, changed);
    // To every local peer, the sender included: y-websocket providers take their own echo as a sign of life.
    const frame = new DocumentFrame(state.name, awarenessBytesMessage(update), 'doc_awareness');
    for (const s of state.sessions) this.send(s, frame);
    if (origin instanceof DocumentSession || origin === LEFT_ORIGIN) this.publish(state.name, 'a', update);
  }

  /** Relay an update to the local peers (except its author). */
  private relay(state: DocState, update: Uint8Array, except: DocumentSession | null): void {
    if (state.sessions.size === 0 || (state.sessions.size === 1 && except !== null && state.sessions.has(except))) return;
    const frame = new DocumentFrame(state.name, updateMessage(update), 'doc_update');
    let n = 0;
    for (const s of state.sessions) {
      if (s === except) continue;
      s.peer.send(frame);
      n++;
    }
    this.ctx.metrics.messagesOut('doc_update', n);
  }

  private send(s: DocumentSession, frame: DocumentFrame): void {
    s.peer.send(frame);
    this.ctx.metrics.messagesOut(frame.kind, 1);
  }

  private publishLocalAwareness(state: DocState): void {
    const ids = [...state.owners.keys()].filter((id) => state.awareness.getStates().has(id));
    if (ids.length > 0) this.publish(state.name, 'a', awarenessProtocol.encodeAwarenessUpdate(state.awareness, ids));
  }

  private publish(channel: string, kind: BusKind, payload: Uint8Array | null): void {
    this.ctx.broker.publishEphemeral(channel, encodeBus(kind, this.origin, payload)).catch((err: unknown) => {
      this.ctx.log.warn({ err, channel, kind }, 'document message to the other nodes failed (resynced when the broker is back)');
    });
  }

  private remoteOrigin(node: string): RemoteOrigin {
    let o = this.remoteOrigins.get(node);
    if (o === undefined) {
      if (this.remoteOrigins.size > 1000) this.remoteOrigins.clear();
      this.remoteOrigins.set(node, (o = new RemoteOrigin(node)));
    }
    return o;
  }

  private decide(info: ConnectionInfo, action: 'subscribe' | 'publish', channel: string): Decision | Promise<Decision> {
    const hook = this.ctx.hooks.authorizeChannel;
    if (hook === undefined) return ALLOWED;
    const failed = (err: unknown): Decision => {
      this.ctx.log.error({ err }, 'authorization hook failed');
      return { allowed: false, code: ErrorCode.INTERNAL, message: 'Authorization failed' };
    };
    try {
      const d = hook(info, action, channel);
      return d instanceof Promise ? d.catch(failed) : d;
    } catch (err) {
      return failed(err);
    }
  }

  // ---------------------------------------------------------------- internals: the nodes, the timer

  /** Subscribe the heartbeat channel and start the timer (once, with the first document). */
  private joinNodes(): Promise<void> {
    if (this.nodeChannel === null) {
      this.nodeChannel = this.ctx.broker.subscribe(DOCUMENT_NODES_CHANNEL);
      this.nodeChannel.catch(() => {
        this.nodeChannel = null;
      });
      const tick = Math.max(100, Math.floor(this.options.nodeTimeoutMs / 3));
      this.timer = setInterval(() => this.tick(), tick);
      this.timer.unref();
    }
    return this.nodeChannel;
  }

  /** Heartbeat, dead nodes' awareness, idle documents. */
  private tick(): void {
    const now = this.ctx.now();
    if (this.docs.size > 0 && now - this.lastBeat >= this.options.nodeTimeoutMs / 3 - 50) {
      this.lastBeat = now;
      this.publish(DOCUMENT_NODES_CHANNEL, 'h', null);
    }
    for (const [node, seen] of this.nodes) {
      if (now - seen <= this.options.nodeTimeoutMs) continue;
      this.nodes.delete(node);
      for (const state of this.docs.values()) {
        const gone = [...state.remote].filter(([, owner]) => owner === node).map(([id]) => id);
        if (gone.length > 0) awarenessProtocol.removeAwarenessStates(state.awareness, gone, NODE_GONE_ORIGIN);
      }
    }
    this.evictIdle(now);
  }

  private evictIdle(now: number): void {
    const idle = [...this.docs.values()]
      .filter((d) => d.loaded && d.sessions.size === 0 && d.attaching === 0 && !d.writing && d.pending.length === 0)
      .sort((a, b) => a.idleSince - b.idleSince);
    let excess = idle.length - this.options.idleDocuments;
    for (const d of idle) {
      if (excess-- > 0 || now - d.idleSince >= this.options.idleTtlMs) this.evict(d);
    }
  }

  private evict(state: DocState): void {
    this.docs.delete(state.name);
    this.ctx.broker.unsubscribe(state.name).catch((err: unknown) => this.ctx.log.warn({ err, channel: state.name }, 'document unsubscribe failed'));
    if (state.uncompacted > 0) void this.compact(state);
    state.destroy();
  }

  private maybeCompact(state: DocState): void {
    if (state.uncompacted >= this.options.compactAfterUpdates) void this.compact(state);
  }

  /** Fold the stored updates into a snapshot (in the store's transaction; see DocumentStore.compact). */
  private async compact(state: DocState): Promise<void> {
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

interface AwarenessChanges {
  added: number[];
  updated: number[];
  removed: number[];
}

function refusal(code: string, closeCode: number, message: string): DocumentRefusal {
  return { refused: true, code, closeCode, message };
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
