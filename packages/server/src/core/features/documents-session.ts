import * as Y from 'yjs';
import { Awareness } from 'y-protocols/awareness';
import type { ConnectionInfo } from '../ports/hooks.js';
import type { DocumentFrame } from './documents-wire.js';
import type { DocumentOptions } from '../document-options.js';

/**
 * A client of a document, whatever its wire: a y-websocket socket (protocols/y-websocket) or one document of a
 * Switchboard connection (documents-native.ts). The document service talks to it through this only.
 */
export interface DocumentPeer {
  /** Unique among the node's peers (the connection id). */
  readonly id: string;
  /** For authorization hooks (channel rules) and logs. */
  readonly info: ConnectionInfo;
  /** Sender id of its updates in the operation log: the user id, or the connection id when anonymous. */
  readonly actorId: string;
  /**
   * True when the peer is a connection of its own (a y-websocket socket): shutdown closes it. False for a
   * document of a Switchboard connection, which the node closes itself (after its shutdown notice).
   */
  readonly standalone: boolean;
  /** Queue a y-websocket message of the document. Never throws, never blocks. */
  send(frame: DocumentFrame): void;
  /**
   * Queue a message and write it, with anything queued before it, now rather than at the end of the task or
   * turn (a relay that should not wait for the work that follows it). Optional: peers without it get `send`.
   * Never throws, never blocks.
   */
  sendNow?(frame: DocumentFrame): void;
  /**
   * A message of this peer was refused: `READ_ONLY` (its updates are dropped) or `INVALID_UPDATE` (malformed,
   * truncated, oversized, or not fitting the document). The peer says so in its protocol's way.
   */
  refused(channel: string, code: string, message: string): void;
  /** End the peer's connection (the y-websocket socket; the whole Switchboard connection). */
  close(code: number, reason: string): void;
}

/** What a session calls back into (the document service). */
export interface DocumentRouter {
  receive(s: DocumentSession, message: Uint8Array): void;
  start(s: DocumentSession): void;
  detach(s: DocumentSession): void;
}

/** Transaction origins other than a session: the store (load), a remote node, the server API. */
export const LOAD_ORIGIN = Symbol('document-load');
export const SERVER_ORIGIN = Symbol('document-server');
/** Awareness removals: a local session left; a remote node stopped beating. */
export const LEFT_ORIGIN = Symbol('document-left');
export const NODE_GONE_ORIGIN = Symbol('document-node-gone');

/** Updates and awareness that came from another node (through the broker) or the store after an outage. */
export class RemoteOrigin {
  constructor(readonly node: string) {}
}

/** A local update applied to the document and not stored yet. */
export interface PendingWrite {
  update: Uint8Array;
  from: DocumentSession | null;
  senderId: string | null;
  createdAt: number;
}

/**
 * One document held in memory by this node: the Y.Doc, its awareness, the local sessions, who speaks for which
 * awareness client, and the write queue (local updates are relayed only once stored).
 */
export class DocState {
  readonly ydoc = new Y.Doc();
  readonly awareness: Awareness;
  readonly sessions = new Set<DocumentSession>();
  /** Awareness client id -> the local session speaking for it. */
  readonly owners = new Map<number, DocumentSession>();
  /** Awareness clients changed this event-loop turn (all; those of local peers), sent once per turn. */
  readonly awarenessDirty = new Set<number>();
  readonly awarenessLocalDirty = new Set<number>();
  /** Awareness client id -> the node (origin) it came from. */
  readonly remote = new Map<number, string>();
  ready: Promise<void> = Promise.resolve();
  loaded = false;
  /** Attaches waiting for the load (the document is not idle while > 0). */
  attaching = 0;
  pending: PendingWrite[] = [];
  writing = false;
  /** The holder's listener of the Y.Doc's `update` event (taken off while a relayed-ahead update is applied). */
  updateListener: ((update: Uint8Array, origin: unknown) => void) | null = null;
  /** Local updates applied / stored (counters): a state vector is answered once everything applied is stored. */
  applied = 0;
  stored = 0;
  waiting: Array<{ upTo: number; run: () => void }> = [];
  /** Updates appended (or loaded) since the last compaction. */
  uncompacted = 0;
  compacting = false;
  idleSince = 0;
  closed = false;

  constructor(readonly name: string) {
    this.awareness = new Awareness(this.ydoc);
    this.awareness.setLocalState(null); // the server has no cursor
    (this.awareness as unknown as { _checkInterval?: { unref?: () => void } })._checkInterval?.unref?.();
  }

  destroy(): void {
    this.closed = true;
    this.awareness.destroy();
    this.ydoc.destroy();
  }
}

/**
 * One peer in one document: its rights (read-only or not), the awareness clients it speaks for, and its two
 * token buckets (updates; awareness and control messages).
 */
export class DocumentSession {
  detached = false;
  readonly awarenessIds = new Set<number>();
  /** Got the peer's sync step 2 (its offline changes): updates that do not fit before it are expected. */
  caughtUp = false;
  private updateTokens: number;
  private updateAt: number;
  private controlTokens: number;
  private controlAt: number;
  /** Control messages dropped in a row. */
  dropped = 0;
  private lastNotice = -Infinity;

  constructor(
    private readonly router: DocumentRouter,
    readonly state: DocState,
    readonly peer: DocumentPeer,
    readonly writable: boolean,
    now: number,
    private readonly options: DocumentOptions,
  ) {
    this.updateTokens = options.updateRate.burst;
    this.updateAt = now;
    this.controlTokens = options.awarenessRate.burst;
    this.controlAt = now;
  }

  get channel(): string {
    return this.state.name;
  }

  /** Send the opening messages (our sync step 1, the current awareness states). */
  start(): void {
    this.router.start(this);
  }

  /** One y-websocket message from the peer. */
  receive(message: Uint8Array): void {
    this.router.receive(this, message);
  }

  /** The peer is gone (idempotent): its awareness entries are removed for everyone. */
  detach(): void {
    this.router.detach(this);
  }

  takeUpdateToken(now: number): boolean {
    const r = this.options.updateRate;
    if (r.perSecond <= 0) return true;
    this.updateTokens = Math.min(r.burst, this.updateTokens + ((now - this.updateAt) * r.perSecond) / 1000);
    this.updateAt = now;
    if (this.updateTokens < 1) return false;
    this.updateTokens -= 1;
    return true;
  }

  takeControlToken(now: number): boolean {
    const r = this.options.awarenessRate;
    if (r.perSecond <= 0) return true;
    this.controlTokens = Math.min(r.burst, this.controlTokens + ((now - this.controlAt) * r.perSecond) / 1000);
    this.controlAt = now;
    if (this.controlTokens < 1) {
      this.dropped += 1;
      return false;
    }
    this.controlTokens -= 1;
    this.dropped = 0;
    return true;
  }

  /** Whether a read-only notice is due (at most once per readOnlyNoticeMs). */
  noticeDue(now: number): boolean {
    if (now - this.lastNotice < this.options.readOnlyNoticeMs) return false;
    this.lastNotice = now;
    return true;
  }
}
