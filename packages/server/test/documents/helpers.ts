/**
 * Document test helpers: the UNMODIFIED y-websocket WebsocketProvider in Node (WebSocket from `ws`), waits on
 * Yjs and provider events (never sleeps), and a raw y-websocket socket for bad input.
 */
import * as Y from 'yjs';
import * as encoding from 'lib0/encoding';
import { WebsocketProvider } from 'y-websocket';
import { WebSocket } from 'ws';
import { untilNotified } from '../helpers.js';

export interface Editor {
  doc: Y.Doc;
  text: Y.Text;
  provider: WebsocketProvider;
  /** Close events the provider saw (code, reason), in order. */
  closes: Array<{ code: number; reason: string }>;
  destroy(): void;
}

/** `new WebsocketProvider(serverUrl, room, doc)` exactly as an application would, with `ws` as WebSocket. */
export function editor(serverUrl: string, room: string, opts: { params?: Record<string, string>; connect?: boolean } = {}): Editor {
  const doc = new Y.Doc();
  const provider = new WebsocketProvider(serverUrl, room, doc, {
    WebSocketPolyfill: WebSocket as unknown as typeof globalThis.WebSocket,
    params: opts.params ?? {},
    connect: opts.connect ?? true,
    disableBc: true,
    maxBackoffTime: 200,
  });
  const closes: Array<{ code: number; reason: string }> = [];
  provider.on('connection-close', (event) => {
    if (event !== null) closes.push({ code: event.code, reason: event.reason });
  });
  return {
    doc,
    text: doc.getText('t'),
    provider,
    closes,
    destroy: () => {
      provider.destroy();
      doc.destroy();
    },
  };
}

/** Resolves once the provider is synced (its sync step 1 answered). */
export function synced(e: Editor, timeoutMs = 5000): Promise<void> {
  return untilNotified(() => e.provider.synced, 'provider synced', timeoutMs, (l) => {
    e.provider.on('sync', l);
    return () => e.provider.off('sync', l);
  });
}

/** Resolves once `check()` holds, re-checked after every update of `doc`. */
export function untilDoc(doc: Y.Doc, check: () => boolean, what: string | (() => string), timeoutMs = 5000): Promise<void> {
  return untilNotified(check, what, timeoutMs, (l) => {
    doc.on('update', l);
    return () => doc.off('update', l);
  });
}

/** Resolves once both editors have the same text and `check(text)` holds. */
export function untilSame(a: Editor, b: Editor, check: (text: string) => boolean, timeoutMs = 5000): Promise<void> {
  const ok = (): boolean => a.text.toString() === b.text.toString() && check(a.text.toString());
  return untilNotified(ok, () => `convergence (${JSON.stringify(a.text.toString())} vs ${JSON.stringify(b.text.toString())})`, timeoutMs, (l) => {
    a.doc.on('update', l);
    b.doc.on('update', l);
    return () => {
      a.doc.off('update', l);
      b.doc.off('update', l);
    };
  });
}

/** Resolves once the text of `e` is `expected`. */
export function untilText(e: Editor, expected: string, timeoutMs = 5000): Promise<void> {
  return untilDoc(e.doc, () => e.text.toString() === expected, () => `text ${JSON.stringify(expected)} (has ${JSON.stringify(e.text.toString())})`, timeoutMs);
}

/** Resolves once the provider's awareness satisfies `check`. */
export function untilAwareness(e: Editor, check: (states: Map<number, Record<string, unknown>>) => boolean, what: string, timeoutMs = 5000): Promise<void> {
  return untilNotified(() => check(e.provider.awareness.getStates() as Map<number, Record<string, unknown>>), what, timeoutMs, (l) => {
    e.provider.awareness.on('change', l);
    return () => e.provider.awareness.off('change', l);
  });
}

/** Resolves with the next close event the provider sees. */
export function nextClose(e: Editor, timeoutMs = 5000): Promise<{ code: number; reason: string }> {
  const seen = e.closes.length;
  return untilNotified(() => e.closes.length > seen, 'a close of the provider', timeoutMs, (l) => {
    e.provider.on('connection-close', l);
    return () => e.provider.off('connection-close', l);
  }).then(() => e.closes[seen]!);
}

/** A y-websocket sync message carrying `payload`: sync type 0 (step 1), 1 (step 2) or 2 (update). */
export function syncMessage(payload: Uint8Array, syncType = 2): Uint8Array {
  const e = encoding.createEncoder();
  encoding.writeVarUint(e, 0);
  encoding.writeVarUint(e, syncType);
  encoding.writeVarUint8Array(e, payload);
  return encoding.toUint8Array(e);
}

/** A raw y-websocket socket: binary messages in, close code out. */
export class RawYSocket {
  readonly messages: Uint8Array[] = [];
  closed: { code: number; reason: string } | null = null;
  private readonly listeners = new Set<() => void>();

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data: Buffer) => {
      this.messages.push(new Uint8Array(data));
      this.notify();
    });
    ws.on('close', (code, reason) => {
      this.closed = { code, reason: reason.toString() };
      this.notify();
    });
    ws.on('error', () => undefined);
  }

  static open(url: string): Promise<RawYSocket> {
    const ws = new WebSocket(url);
    const s = new RawYSocket(ws);
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(s));
      ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
      ws.once('error', reject);
    });
  }

  send(bytes: Uint8Array): void {
    this.ws.send(bytes, { binary: true });
  }

  /** Resolves with the close code the server sent. */
  async closeCode(timeoutMs = 5000): Promise<{ code: number; reason: string }> {
    await this.until(() => this.closed !== null, 'the socket to close', timeoutMs);
    return this.closed!;
  }

  until(check: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
    return untilNotified(check, what, timeoutMs, (l) => {
      this.listeners.add(l);
      return () => this.listeners.delete(l);
    });
  }

  private notify(): void {
    for (const l of [...this.listeners]) l();
  }
}
