/**
 * Error codes raised by the client itself (never sent by a server). Errors that come from a server `error`
 * frame keep the server's code (see `ErrorCode` in @switchboard/protocol).
 */
export const ClientErrorCode = {
  /** A request got no reply within its timeout. */
  TIMEOUT: 'TIMEOUT',
  /** The client is `disconnected` or `closed` (or was never connected): nothing can be sent. */
  NOT_CONNECTED: 'NOT_CONNECTED',
  /** A publish was made while reconnecting and the bounded offline queue is full. */
  OFFLINE_QUEUE_FULL: 'OFFLINE_QUEUE_FULL',
  /** The connection dropped before the reply to a (non-publish) request arrived. */
  CONNECTION_LOST: 'CONNECTION_LOST',
  /** `close()` was called while the operation was pending. */
  CLIENT_CLOSED: 'CLIENT_CLOSED',
  /** The server closed with a terminal code (no reconnect): pending operations are rejected with this. */
  DISCONNECTED: 'DISCONNECTED',
  /** The server sent a frame that is not a JSON object. */
  BAD_FRAME: 'BAD_FRAME',
  /** `getToken()` threw or returned a non-string. */
  TOKEN_FETCH_FAILED: 'TOKEN_FETCH_FAILED',
  /** No WebSocket implementation: pass the `WebSocket` option (e.g. from the `ws` package) in Node < 22. */
  NO_WEBSOCKET: 'NO_WEBSOCKET',
} as const;

export type ClientErrorCodeName = keyof typeof ClientErrorCode;

/** Every error the SDK rejects with or emits. `code` is a stable string (client or server registry). */
export class SwitchboardError extends Error {
  override readonly name = 'SwitchboardError';
  constructor(
    readonly code: string,
    message: string,
    /** Server-provided details, the close code, or the underlying cause. */
    readonly details?: unknown,
  ) {
    super(message);
  }
}
