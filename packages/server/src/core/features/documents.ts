import * as Y from 'yjs';
import * as awarenessProtocol from 'y-protocols/awareness';
import { CloseCode, ErrorCode } from '@switchboard/protocol';
import type { DocumentHistoryPage, DocumentHistoryQuery } from '../ports/document-store.js';
import type { ConnectionInfo, Decision } from '../ports/hooks.js';
import { DocumentCluster } from './documents-cluster.js';
import { documentFrameBytes } from '../document-options.js';
import type { DocumentsContext } from './documents-holder.js';
import { DocumentInput } from './documents-input.js';
import { DocState, DocumentSession, LEFT_ORIGIN, SERVER_ORIGIN, type DocumentPeer, type DocumentRouter } from './documents-session.js';
import { DocumentFrame, awarenessMessage, readClientMessage, syncStep1Message, type ClientMessage } from './documents-wire.js';

/** Why a peer cannot open a document: an error code (Switchboard connections) and a close code (y-websocket). */
export interface DocumentRefusal {
  refused: true;
  code: string;
  closeCode: number;
  message: string;
}

const ALLOWED: Decision = { allowed: true };

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
 * which the other holders answer with what it lacks (after an outage they also query it back).
 */
export class Documents extends DocumentCluster implements DocumentRouter {
  private readonly channelName: RegExp;
  private readonly input: DocumentInput;

  constructor(ctx: DocumentsContext) {
    super(ctx);
    this.channelName = new RegExp(`^(?:${ctx.options.limits.channelNamePattern})$`);
    this.input = new DocumentInput({
      options: this.options,
      log: ctx.log,
      send: (s, frame) => this.send(s, frame),
      errorSent: (code) => ctx.metrics.errorSent(code),
      whenStored: (state, fn) => this.whenStored(state, fn),
      relaysAhead: () => this.store === null,
      relay: (state, update, from) => this.relay(state, update, from, true),
      applyRelayed: (state, update, from) => this.applyRelayed(state, update, from),
    });
  }

  /**
   * The largest binary frame a Switchboard connection may send for a document: room for an update of
   * `documents.maxUpdateBytes` plus the channel name and the message header, and never less than
   * `limits.maxMessageBytes`. Announced in `doc_opened.max_message_bytes`; the WebSocket transport takes
   * frames this large while a document namespace exists (Node.maxFrameBytes).
   */
  get maxFrameBytes(): number {
    const limits = this.ctx.options.limits;
    return Math.max(limits.maxMessageBytes, documentFrameBytes(this.options.maxUpdateBytes, limits.maxChannelNameLength));
  }

  /** The WebSocket frame limit of Switchboard connections: `maxFrameBytes` while a namespace is a document namespace, else `limits.maxMessageBytes`. */
  get transportFrameBytes(): number {
    const o = this.ctx.options;
    const any = o.channelDefaults.documents === 'yjs' || Object.values(o.namespaces).some((ns) => ns?.documents === 'yjs');
    return any ? this.maxFrameBytes : o.limits.maxMessageBytes;
  }

  /** Whether `channel` is a document channel (its namespace says `documents: "yjs"`). */
  isDocument(channel: string): boolean {
    return this.ctx.namespaces.of(channel).documents === 'yjs';
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
      this.input.invalid(s, 'malformed or truncated document message');
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
        this.input.clientUpdate(s, m.update, m.step2, now);
        return;
      case 'step1':
        this.ctx.metrics.messageIn('doc_sync', message.length);
        if (this.input.control(s, now)) this.input.answerStateVector(s, m.stateVector);
        return;
      case 'awareness':
        this.ctx.metrics.messageIn('doc_awareness', message.length);
        if (this.input.control(s, now)) this.input.clientAwareness(s, m.update);
        return;
      case 'query_awareness': {
        if (!this.input.control(s, now)) return;
        const ids = [...s.state.awareness.getStates().keys()];
        this.send(s, new DocumentFrame(s.channel, awarenessMessage(s.state.awareness, ids), 'doc_awareness'));
        return;
      }
      case 'auth':
        return; // nothing a client says in it concerns the server
      case 'unknown':
        this.input.invalid(s, `unknown document message type ${m.type}`);
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

  // ---------------------------------------------------------------- lifecycle

  /**
   * Shutdown: detach every peer, closing y-websocket sockets with `code` (Switchboard connections are the
   * node's to close; every peer's awareness entries are removed for the other nodes), and wait,
   * until the deadline, for updates still being stored.
   */
  async shutdown(code: number, deadlineMs: number): Promise<void> {
    this.stopping = true;
    for (const state of this.docs.values()) {
      for (const s of [...state.sessions]) {
        if (s.peer.standalone) s.peer.close(code, 'server shutdown');
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
}

function refusal(code: string, closeCode: number, message: string): DocumentRefusal {
  return { refused: true, code, closeCode, message };
}
