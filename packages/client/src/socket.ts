import { ClientErrorCode, SwitchboardError } from './errors.js';

/** The part of the WHATWG WebSocket API the client uses (browsers, Node >= 22, and the `ws` package). */
export interface WebSocketLike {
  readonly readyState: number;
  /** Text frames (JSON) and binary frames (documents: a Uint8Array). */
  send(data: string | Uint8Array): void;
  /** Set to 'arraybuffer' so binary frames arrive as ArrayBuffer (browsers, Node, `ws`). */
  binaryType?: string;
  close(code?: number, reason?: string): void;
  /** `ws` only: destroy the socket without a closing handshake. */
  terminate?: () => void;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
}

/** Any WebSocket constructor (global WebSocket, or `WebSocket` from the `ws` package). */
export type WebSocketConstructor = new (url: string) => object;

export const WS_OPEN = 1;

/** The constructor to use: the option, else the global one; throws NO_WEBSOCKET if there is none. */
export function resolveWebSocket(option: WebSocketConstructor | undefined): new (url: string) => WebSocketLike {
  const ctor = option ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  if (typeof ctor !== 'function') {
    throw new SwitchboardError(ClientErrorCode.NO_WEBSOCKET, 'no global WebSocket: pass the `WebSocket` option (e.g. `import { WebSocket } from "ws"`)');
  }
  return ctor as new (url: string) => WebSocketLike;
}

/**
 * Bytes of a binary message event (ArrayBuffer with binaryType 'arraybuffer'; a view from other
 * implementations), else null (a text frame).
 */
export function messageBytes(data: unknown): Uint8Array | null {
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data) && messageText(data) === null) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return null;
}

/** Text of a message event (`ws` may hand a Buffer for text frames in some configurations). */
export function messageText(data: unknown): string | null {
  if (typeof data === 'string') return data;
  if (data && typeof (data as { toString?: unknown }).toString === 'function' && !(data instanceof ArrayBuffer) && !(typeof Blob !== 'undefined' && data instanceof Blob)) {
    const s = String(data);
    return s.startsWith('{') ? s : null;
  }
  return null;
}

/** Builds the connection URL: the base URL plus token / username / extra query parameters. */
export function buildUrl(base: string, params: Record<string, string | undefined>): string {
  const hashless = base.split('#')[0] ?? base;
  const [path, query = ''] = hashless.split('?') as [string, string?];
  const search = new URLSearchParams(query);
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== '') search.set(k, v);
  }
  const qs = search.toString();
  return qs ? `${path}?${qs}` : path;
}
