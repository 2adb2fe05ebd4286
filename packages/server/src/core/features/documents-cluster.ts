import * as Y from 'yjs';
import * as awarenessProtocol from 'y-protocols/awareness';
import { DocumentHolder } from './documents-holder.js';
import { NODE_GONE_ORIGIN, type DocState } from './documents-session.js';
import { DOCUMENT_NODES_CHANNEL, decodeBus, readAwarenessEntries, writeAwarenessEntries } from './documents-wire.js';

/** An empty Yjs update (no structs, no deletions) is two zero bytes. */
const EMPTY_UPDATE_LENGTH = 2;

/**
 * The documents among the nodes (base of Documents, see documents.ts): node-to-node traffic on the broker
 * (stored updates, awareness, state vector queries), node heartbeats on `$documents` and the removal of a
 * silent node's awareness entries, re-sync after a broker outage, and eviction of idle documents.
 */
export abstract class DocumentCluster extends DocumentHolder {
  private ownBusOrigin: string | undefined;
  /** Remote origins -> when last heard from. */
  private readonly nodes = new Map<string, number>();
  private nodeChannel: Promise<void> | null = null;
  protected timer: NodeJS.Timeout | null = null;
  private lastBeat = 0;

  // ---------------------------------------------------------------- cluster

  /** An ephemeral broker event that is document traffic (documents-wire.ts `isBusFrame`). */
  receiveBus(channel: string, frame: string): void {
    // This node's own message, echoed by the broker: skip it before decoding its payload (`xxk <origin> ...`).
    if (frame.startsWith(this.ownBusOrigin ??= `${encodeURIComponent(this.origin)} `, 4)) return;
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
      } else if ((m.kind === 'q' || m.kind === 'r') && state.loaded) {
        const diff = Y.encodeStateAsUpdate(state.ydoc, m.payload);
        if (diff.length > EMPTY_UPDATE_LENGTH) this.publish(channel, 'u', diff);
        this.publishLocalAwareness(state);
        // A re-sync query (brokerUp): ask back, since this node's own re-sync query may have gone out before
        // the other node had re-subscribed, or been answered while that node could not publish yet.
        if (m.kind === 'r') this.publish(channel, 'q', Y.encodeStateVector(state.ydoc));
      }
    } catch (err) {
      this.ctx.log.warn({ err, channel, origin: m.origin, kind: m.kind }, 'bad document message from another node dropped');
    }
  }

  /**
   * The broker is back after an outage: updates and awareness published meanwhile may be lost. Re-read each
   * document's store (what other nodes stored meanwhile), ask the other holders for what this node lacks, and
   * announce this node's awareness again.
   *
   * The nodes see the broker come back at different moments, and a node hears nothing before it has
   * re-subscribed: the query of the first node back is lost on the others. So the query is a re-sync query
   * (`r`), which each holder answers and follows with its own query (`q`): whichever node's query gets through,
   * both directions are exchanged. The answers carry the whole delete set (deletions made meanwhile change no
   * state vector).
   */
  brokerUp(): void {
    for (const state of this.docs.values()) {
      if (!state.loaded || state.closed) continue;
      this.publish(state.name, 'r', Y.encodeStateVector(state.ydoc));
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

  /** Subscribe the heartbeat channel and start the timer (once, with the first document). */
  protected joinNodes(): Promise<void> {
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
  protected tick(): void {
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

  protected evictIdle(now: number): void {
    const idle = [...this.docs.values()]
      .filter((d) => d.loaded && d.sessions.size === 0 && d.attaching === 0 && !d.writing && d.pending.length === 0)
      .sort((a, b) => a.idleSince - b.idleSince);
    let excess = idle.length - this.options.idleDocuments;
    for (const d of idle) {
      if (excess-- > 0 || now - d.idleSince >= this.options.idleTtlMs) this.evict(d);
    }
  }

  protected evict(state: DocState): void {
    this.docs.delete(state.name);
    this.ctx.broker.unsubscribe(state.name).catch((err: unknown) => this.ctx.log.warn({ err, channel: state.name }, 'document unsubscribe failed'));
    if (state.uncompacted > 0) void this.compact(state);
    state.destroy();
  }
}
