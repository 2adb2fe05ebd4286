import { isTemporaryError } from '@switchboard/protocol';

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

/**
 * Whether the same operation can succeed later without the app changing anything, per client code:
 * a timeout, a lost connection, a full offline queue or a failed `getToken()` can pass on a later try; being
 * closed, disconnected for good, a bad frame or a missing WebSocket cannot.
 */
export const CLIENT_TEMPORARY_ERRORS: Readonly<Record<ClientErrorCodeName, boolean>> = {
  TIMEOUT: true,
  NOT_CONNECTED: false,
  OFFLINE_QUEUE_FULL: true,
  CONNECTION_LOST: true,
  CLIENT_CLOSED: false,
  DISCONNECTED: false,
  BAD_FRAME: false,
  TOKEN_FETCH_FAILED: true,
  NO_WEBSOCKET: false,
};

/** Every error the SDK rejects with or emits. `code` is a stable string (client or server registry). */
export class SwitchboardError extends Error {
  override readonly name = 'SwitchboardError';
  /**
   * True if retrying the same operation later can succeed (back off and retry), false if it is refused as
   * such. For a server `error` frame: its `data.temporary` flag, or for servers that do not send it the
   * protocol registry (`isTemporaryError`, unknown codes are final). For client codes:
   * `CLIENT_TEMPORARY_ERRORS`.
   */
  readonly temporary: boolean;

  constructor(
    readonly code: string,
    message: string,
    /** Server-provided details, the close code, or the underlying cause. */
    readonly details?: unknown,
    /** Overrides the default classification (see `temporary`). */
    temporary?: boolean,
  ) {
    super(message);
    this.temporary = temporary ?? defaultTemporary(code);
  }
}

function defaultTemporary(code: string): boolean {
  if (Object.prototype.hasOwnProperty.call(CLIENT_TEMPORARY_ERRORS, code)) return CLIENT_TEMPORARY_ERRORS[code as ClientErrorCodeName];
  return isTemporaryError(code);
}

/** The server error carried by an `error` frame's data (`{code, message, details?, temporary?}`). */
export function serverError(data: { code?: unknown; message?: unknown; details?: unknown; temporary?: unknown }, fallbackMessage?: string): SwitchboardError {
  const code = String(data.code ?? 'INTERNAL');
  return new SwitchboardError(code, String(data.message ?? fallbackMessage ?? code), data.details, isTemporaryError(code, data.temporary));
}

/** What a subscription does after one of its errors. */
export interface SubscriptionRetryInfo {
  /** True if the join will be sent again: after `retryInMs`, or on the next connection when that is null. */
  willRetry: boolean;
  /** Delay before the join is sent again on this connection; null when it waits for the next connection or will not be retried. */
  retryInMs: number | null;
  /**
   * Failed joins in a row of this subscription that count for the backoff, this one included (reset by a
   * successful join; a lost connection does not count). 0 for an error that is not a join failure.
   */
  attempt: number;
}

/**
 * The `error` event of a Subscription (and what `ready()` rejects with when the join is refused for good):
 * the error (`code`, `message`, `details`, `temporary`, as the underlying SwitchboardError) plus the channel
 * and what happens next. `willRetry: true` means the subscription stays `subscribing` and will join again;
 * `willRetry: false` after a join failure means it is now `unsubscribed`.
 */
export class SubscriptionError extends SwitchboardError implements SubscriptionRetryInfo {
  readonly willRetry: boolean;
  readonly retryInMs: number | null;
  readonly attempt: number;

  constructor(
    readonly channel: string,
    /** The underlying error (server refusal, timeout, lost connection...). */
    readonly error: SwitchboardError,
    info: SubscriptionRetryInfo,
  ) {
    super(error.code, error.message, error.details, error.temporary);
    this.willRetry = info.willRetry;
    this.retryInMs = info.retryInMs;
    this.attempt = info.attempt;
  }
}
