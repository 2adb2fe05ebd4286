/**
 * @switchboard/client/yjs: Yjs documents over the Switchboard connection (docs/client.md, "Documents").
 *
 *   import * as Y from 'yjs';
 *   import { Awareness } from 'y-protocols/awareness';
 *   import { openDocument } from '@switchboard/client/yjs';
 *   const doc = new Y.Doc();
 *   const handle = openDocument(client, 'doc:readme', doc, { awareness: new Awareness(doc) });
 *   await handle.whenSynced();
 *
 * A separate entry point so that apps without documents (and the prebuilt `/sdk/switchboard.js` bundle) do
 * not load Yjs. `yjs` and `y-protocols` are peer dependencies: the app creates the Y.Doc and the Awareness,
 * and Yjs must be loaded once per app (two copies break its type checks), so the SDK uses the app's copy.
 */
import * as decoding from 'lib0/decoding';
import * as encoding from 'lib0/encoding';
import * as awarenessProtocol from 'y-protocols/awareness';
import * as syncProtocol from 'y-protocols/sync';
import type * as Y from 'yjs';
import { ErrorCode, type DocOpenedFrameData } from '@switchboard/protocol';
import type { SwitchboardClient } from './client.js';
import type { DocumentChannel } from './document-channel.js';
import { Emitter } from './emitter.js';
import { SwitchboardError } from './errors.js';

/** y-websocket message types. */
const MESSAGE_SYNC = 0;
const MESSAGE_AWARENESS = 1;
const MESSAGE_AUTH = 2;
const MESSAGE_QUERY_AWARENESS = 3;

export interface DocumentHandleOptions {
  /**
   * Awareness of `doc` (cursors, selections, user name and colour: whatever the app sets with
   * `setLocalState` / `setLocalStateField`). Its local state is sent on every open and on each change; the
   * other clients' states arrive in it. Without it, no awareness is sent or received.
   */
  awareness?: awarenessProtocol.Awareness;
}

/** `DocumentHandle.state`. */
export type DocumentState = 'opening' | 'syncing' | 'synced' | 'ended' | 'destroyed';

export interface DocumentHandleEvents {
  /** The state changed (`opening` while disconnected or being opened). */
  state: { state: DocumentState; previous: DocumentState };
  /** The document is open on the current connection; `writable` false: the server drops this client's changes. */
  opened: { writable: boolean; maxMessageBytes: number };
  /** Local and server copies are in step (after each (re)open: the server answered our state vector). */
  synced: { synced: true };
  /**
   * The server refused something and the document stays open: READ_ONLY (this client's changes were dropped:
   * they stay local and are not saved), INVALID_UPDATE (a message was dropped), or a temporary `doc_open`
   * refusal (retried with backoff).
   */
  error: SwitchboardError;
  /** The server refused the document for good (FORBIDDEN, NOT_A_DOCUMENT, TOO_MANY_CHANNELS...). */
  ended: SwitchboardError;
}

/**
 * A Y.Doc bound to a document channel of a SwitchboardClient (`openDocument`). Contract:
 *
 * - On every connection the document is opened (`doc_open`) and synced both ways (y-websocket sync steps 1
 *   and 2): changes made while offline are sent then, the server's changes arrive, and `synced` is emitted.
 * - Afterwards each local change of the doc (any transaction not applied by this handle) is sent as it
 *   happens; remote changes are applied with this handle as the transaction origin.
 * - Awareness (optional): the local state is sent on open and on each change (including y-protocols'
 *   periodic renewal); remote states are applied; when the connection drops, remote states are removed (the
 *   server removes this client's entries for everyone else when its connection or the document closes).
 * - The server decides rights: `writable` (from `doc_opened`) false means the server drops this client's
 *   changes and says so with an `error` event READ_ONLY (at most every few seconds). The handle still sends
 *   them (rights may change on a later connection); the app should make its editor read-only.
 * - `destroy()` closes the document on the server and detaches from the doc and awareness; it destroys
 *   neither (they are the app's).
 */
export class DocumentHandle extends Emitter<DocumentHandleEvents> {
  readonly channel: string;
  readonly doc: Y.Doc;
  readonly awareness: awarenessProtocol.Awareness | null;
  private readonly link: DocumentChannel;
  private _state: DocumentState = 'opening';
  private _writable: boolean | null = null;
  private maxMessageBytes = Infinity;
  /** Bytes a binary frame adds to a message: the channel name as a varstring (at most 5 length bytes). */
  private readonly frameOverhead: number;
  private syncWaiters: Array<{ resolve: () => void; reject: (e: SwitchboardError) => void }> = [];

  /** @internal use `openDocument`. */
  constructor(client: SwitchboardClient, channel: string, doc: Y.Doc, options: DocumentHandleOptions = {}) {
    super();
    this.channel = channel;
    this.doc = doc;
    this.awareness = options.awareness ?? null;
    this.frameOverhead = new TextEncoder().encode(channel).length + 5;
    if (this.awareness !== null && this.awareness.doc !== doc) throw new TypeError('openDocument: `awareness` belongs to another Y.Doc');
    doc.on('update', this.onDocUpdate);
    this.awareness?.on('update', this.onAwarenessUpdate);
    try {
      this.link = client.openDocumentChannel(channel, {
        opened: (info) => this.onOpened(info),
        message: (m) => this.onMessage(m),
        error: (e) => this.emit('error', e),
        ended: (e) => this.onEnded(e),
        lost: () => this.onLost(),
      });
    } catch (err) {
      doc.off('update', this.onDocUpdate);
      this.awareness?.off('update', this.onAwarenessUpdate);
      throw err;
    }
  }

  get state(): DocumentState {
    return this._state;
  }

  /** True once synced on the current connection (false while offline or re-syncing). */
  get synced(): boolean {
    return this._state === 'synced';
  }

  /** Whether the server accepts this client's changes (null until the first `doc_opened`). */
  get writable(): boolean | null {
    return this._writable;
  }

  /**
   * Resolves when the handle is synced (at once if it is). Rejects if the document ends (a final refusal:
   * the SwitchboardError) or the handle is destroyed first. No timeout of its own: it waits for the
   * connection as long as the client reconnects.
   */
  whenSynced(): Promise<void> {
    if (this._state === 'synced') return Promise.resolve();
    if (this._state === 'ended' || this._state === 'destroyed') return Promise.reject(new SwitchboardError(ErrorCode.NOT_SUBSCRIBED, `document "${this.channel}" is ${this._state}`));
    return new Promise((resolve, reject) => this.syncWaiters.push({ resolve, reject }));
  }

  /** Close the document on the server and stop syncing; the doc and awareness are left to the app. Idempotent. */
  destroy(): void {
    if (this._state === 'destroyed') return;
    this.detach();
    this.setState('destroyed');
    this.settleWaiters(new SwitchboardError(ErrorCode.NOT_SUBSCRIBED, `document "${this.channel}" was destroyed`));
  }

  // ---------------------------------------------------------------- channel events

  private onOpened(info: DocOpenedFrameData): void {
    this._writable = info.writable !== false;
    this.maxMessageBytes = typeof info.max_message_bytes === 'number' && info.max_message_bytes > 0 ? info.max_message_bytes : Infinity;
    this.setState('syncing');
    this.emit('opened', { writable: this._writable, maxMessageBytes: this.maxMessageBytes });
    // Our state vector: the server answers with what we lack (sync step 2), then we are synced. The server's
    // own step 1 follows its doc_opened; our answer to it carries the changes made while offline.
    const e = encoding.createEncoder();
    encoding.writeVarUint(e, MESSAGE_SYNC);
    syncProtocol.writeSyncStep1(e, this.doc);
    this.send(encoding.toUint8Array(e));
    // Our awareness state with a new clock (sent by onAwarenessUpdate): the server and the peers removed our
    // entry at its last clock when the previous connection ended, and ignore a state at that same clock.
    const aw = this.awareness;
    if (aw !== null && aw.getLocalState() !== null) aw.setLocalState(aw.getLocalState());
  }

  private onMessage(message: Uint8Array): void {
    let d: decoding.Decoder;
    let type: number;
    try {
      d = decoding.createDecoder(message);
      type = decoding.readVarUint(d);
    } catch {
      return;
    }
    try {
      switch (type) {
        case MESSAGE_SYNC: {
          const e = encoding.createEncoder();
          encoding.writeVarUint(e, MESSAGE_SYNC);
          const kind = syncProtocol.readSyncMessage(d, e, this.doc, this);
          if (encoding.length(e) > 1) this.send(encoding.toUint8Array(e)); // our step 2 for the server's step 1
          if (kind === syncProtocol.messageYjsSyncStep2 && this._state === 'syncing') {
            this.setState('synced');
            this.emit('synced', { synced: true });
            this.settleWaiters(null);
          }
          return;
        }
        case MESSAGE_AWARENESS:
          if (this.awareness !== null) awarenessProtocol.applyAwarenessUpdate(this.awareness, decoding.readVarUint8Array(d), this);
          return;
        case MESSAGE_QUERY_AWARENESS: {
          const aw = this.awareness;
          if (aw !== null && aw.getLocalState() !== null) this.send(awarenessMessage(aw, [aw.clientID]));
          return;
        }
        case MESSAGE_AUTH:
          // y-protocols auth: "permission denied" (the native form says so with error frames instead).
          if (decoding.readVarUint(d) === 0) this.emit('error', new SwitchboardError(ErrorCode.FORBIDDEN, decoding.readVarString(d), undefined, false));
          return;
        default:
          return;
      }
    } catch (err) {
      this.emit('error', new SwitchboardError(ErrorCode.INVALID_MESSAGE, `malformed document message from the server: ${String((err as Error)?.message ?? err)}`, undefined, false));
    }
  }

  private onLost(): void {
    if (this._state === 'destroyed' || this._state === 'ended') return;
    this.setState('opening');
    this.dropRemoteAwareness();
  }

  private onEnded(error: SwitchboardError): void {
    this.detach();
    this.setState('ended');
    this.emit('ended', error);
    this.settleWaiters(error);
  }

  // ---------------------------------------------------------------- doc and awareness events

  private readonly onDocUpdate = (update: Uint8Array, origin: unknown): void => {
    if (origin === this || !this.link?.isOpen) return; // offline changes go with the next sync step 2
    const e = encoding.createEncoder();
    encoding.writeVarUint(e, MESSAGE_SYNC);
    syncProtocol.writeUpdate(e, update);
    this.send(encoding.toUint8Array(e));
  };

  private readonly onAwarenessUpdate = (changes: { added: number[]; updated: number[]; removed: number[] }, origin: unknown): void => {
    const aw = this.awareness;
    if (aw === null || origin === this || !this.link?.isOpen) return;
    // Only this client's own entry: the server relays each client's entry for it (and refuses entries of
    // clients a connection does not speak for).
    const id = aw.clientID;
    if (changes.added.includes(id) || changes.updated.includes(id) || changes.removed.includes(id)) this.send(awarenessMessage(aw, [id]));
  };

  // ---------------------------------------------------------------- internals

  private send(message: Uint8Array): void {
    if (message.length + this.frameOverhead > this.maxMessageBytes) {
      // The server would close the connection for a frame over its limit (1009); refuse it here instead.
      this.emit('error', new SwitchboardError(ErrorCode.INVALID_UPDATE, `document message of ${message.length} bytes is over the server's frame limit of ${this.maxMessageBytes} bytes`, undefined, false));
      return;
    }
    this.link.send(message);
  }

  private detach(): void {
    this.doc.off('update', this.onDocUpdate);
    this.awareness?.off('update', this.onAwarenessUpdate);
    this.link.close();
    this.dropRemoteAwareness();
  }

  /**
   * Forget every awareness state but ours (stale once we no longer hear from the server), clocks included:
   * y-protocols' removeAwarenessStates would raise their clocks, and the states the server sends on the next
   * open (same clocks) would then be ignored until each client changes its state.
   */
  private dropRemoteAwareness(): void {
    const aw = this.awareness;
    if (aw === null) return;
    const removed = [...aw.getStates().keys()].filter((id) => id !== aw.clientID);
    for (const id of [...aw.meta.keys()]) if (id !== aw.clientID) aw.meta.delete(id);
    if (removed.length === 0) return;
    for (const id of removed) aw.states.delete(id);
    const changes = { added: [], updated: [], removed };
    aw.emit('change', [changes, this]);
    aw.emit('update', [changes, this]);
  }

  private setState(next: DocumentState): void {
    const previous = this._state;
    if (previous === next) return;
    this._state = next;
    this.emit('state', { state: next, previous });
  }

  private settleWaiters(error: SwitchboardError | null): void {
    const all = this.syncWaiters;
    this.syncWaiters = [];
    for (const w of all) {
      if (error === null) w.resolve();
      else w.reject(error);
    }
  }
}

function awarenessMessage(awareness: awarenessProtocol.Awareness, clients: number[]): Uint8Array {
  const e = encoding.createEncoder();
  encoding.writeVarUint(e, MESSAGE_AWARENESS);
  encoding.writeVarUint8Array(e, awarenessProtocol.encodeAwarenessUpdate(awareness, clients));
  return encoding.toUint8Array(e);
}

/**
 * Bind `doc` to the document channel `channel` (a channel of a namespace with `documents: "yjs"`) over
 * `client`'s connection: see DocumentHandle for the contract. One handle per channel and client (throws if
 * the channel is open on this client). The client need not be connected yet.
 */
export function openDocument(client: SwitchboardClient, channel: string, doc: Y.Doc, options: DocumentHandleOptions = {}): DocumentHandle {
  return new DocumentHandle(client, channel, doc, options);
}
