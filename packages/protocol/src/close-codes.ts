/**
 * WebSocket close codes used by Switchboard.
 *
 * 1000-1011 are RFC 6455 codes; 4001-4099 follow the table of seed 001 ("WebSocket Server Patterns"),
 * grouped in ranges that tell a client what to do next:
 *   4001-4010 authentication  -> do not reconnect with the same credentials
 *   4011-4020 session         -> superseded / client id taken: do not reconnect; expired: reconnect
 *   4021-4030 limits          -> reconnect later, with backoff
 *   4031-4040 business logic  -> do not reconnect until the app changes something
 *   4400-4499 documents (y-websocket endpoint) -> do not reconnect (y-websocket providers stop for 44xx)
 *   4091-4099 server side     -> reconnect (immediately for a shutdown, another node will answer)
 */
export const CloseCode = {
  NORMAL: 1000,
  GOING_AWAY: 1001,
  POLICY_VIOLATION: 1008,
  MESSAGE_TOO_BIG: 1009,
  INTERNAL_ERROR: 1011,
  UNAUTHORIZED: 4001,
  INVALID_TOKEN: 4002,
  TOKEN_EXPIRED: 4003,
  AUTH_TIMEOUT: 4004,
  SESSION_SUPERSEDED: 4011,
  SESSION_EXPIRED: 4012,
  CLIENT_ID_TAKEN: 4013,
  RATE_LIMITED: 4021,
  TOO_MANY_CONNECTIONS: 4022,
  SLOW_CONSUMER: 4023,
  INVALID_SUBSCRIPTION: 4031,
  MARKET_CLOSED: 4032,
  SERVER_SHUTDOWN: 4091,
  SERVER_ERROR: 4092,
  INVALID_DOCUMENT_MESSAGE: 4400,
  DOCUMENT_FORBIDDEN: 4403,
  NOT_A_DOCUMENT: 4404,
} as const;

export type CloseCodeName = keyof typeof CloseCode;
export type CloseCodeValue = (typeof CloseCode)[CloseCodeName];

/** What a client should do after a close: never, with backoff, or at once (another node will take it). */
export type ReconnectAdvice = 'no' | 'backoff' | 'immediate';

export interface CloseCodeInfo {
  readonly name: CloseCodeName;
  readonly reconnect: ReconnectAdvice;
  /** When the server sends it. */
  readonly description: string;
}

/** Documentation and reconnect advice for every close code, keyed by the numeric code. */
export const CLOSE_CODES: Readonly<Record<CloseCodeValue, CloseCodeInfo>> = {
  1000: { name: 'NORMAL', reconnect: 'no', description: 'Clean close requested by the server API (disconnect) or the client.' },
  1001: { name: 'GOING_AWAY', reconnect: 'immediate', description: 'The server is shutting down or draining; another node (or the restarted one) will accept.' },
  1008: { name: 'POLICY_VIOLATION', reconnect: 'no', description: 'The client broke protocol policy (e.g. binary frame where only text is accepted).' },
  1009: { name: 'MESSAGE_TOO_BIG', reconnect: 'backoff', description: 'A frame exceeded limits.maxMessageBytes (a binary document frame: doc_opened.max_message_bytes).' },
  1011: { name: 'INTERNAL_ERROR', reconnect: 'backoff', description: 'Unexpected server failure on this connection.' },
  4001: { name: 'UNAUTHORIZED', reconnect: 'no', description: 'Credentials missing or rejected (bad signature, replayed challenge, unknown key).' },
  4002: { name: 'INVALID_TOKEN', reconnect: 'no', description: 'The token is malformed, has a wrong signature, algorithm, issuer or audience.' },
  4003: { name: 'TOKEN_EXPIRED', reconnect: 'backoff', description: 'The token expired (at connect, or while connected without a refresh); reconnect with a fresh token.' },
  4004: { name: 'AUTH_TIMEOUT', reconnect: 'backoff', description: 'The client did not finish authentication (challenge response) in time.' },
  4011: { name: 'SESSION_SUPERSEDED', reconnect: 'no', description: 'A newer connection with the same client_id replaced this one.' },
  4012: { name: 'SESSION_EXPIRED', reconnect: 'backoff', description: 'No pong within the heartbeat timeout, or idle longer than the idle timeout.' },
  4013: { name: 'CLIENT_ID_TAKEN', reconnect: 'no', description: "The client_id of /ws/{client_id} belongs to another owner (another user; anonymous and identified connections never take each other's ids); the holder keeps it. Pick another id, or connect as its owner." },
  4021: { name: 'RATE_LIMITED', reconnect: 'backoff', description: 'The client kept sending past its rate limit after RATE_LIMITED errors.' },
  4022: { name: 'TOO_MANY_CONNECTIONS', reconnect: 'backoff', description: 'A connection limit (total, per user, per IP) is reached.' },
  4023: { name: 'SLOW_CONSUMER', reconnect: 'backoff', description: 'The client did not read fast enough: its outgoing queue passed limits.maxQueuedBytes.' },
  4031: { name: 'INVALID_SUBSCRIPTION', reconnect: 'no', description: 'Closed by the application because a subscription cannot be served.' },
  4032: { name: 'MARKET_CLOSED', reconnect: 'backoff', description: 'Application-defined: the stream is closed for now (seed 001 trading arena).' },
  4091: { name: 'SERVER_SHUTDOWN', reconnect: 'immediate', description: 'Graceful shutdown: queued messages were delivered, then the socket closed.' },
  4092: { name: 'SERVER_ERROR', reconnect: 'backoff', description: 'A server-side failure (e.g. broker unavailable) ended the session.' },
  4400: { name: 'INVALID_DOCUMENT_MESSAGE', reconnect: 'no', description: 'y-websocket endpoint: a malformed, truncated or foreign document message (the document is unchanged).' },
  4403: { name: 'DOCUMENT_FORBIDDEN', reconnect: 'no', description: 'y-websocket endpoint: channel rules do not let this client read the document.' },
  4404: { name: 'NOT_A_DOCUMENT', reconnect: 'no', description: 'y-websocket endpoint: the name is not a valid channel of a document namespace.' },
};

/** True if a client should not reconnect automatically after this close code (unknown codes: reconnect). */
export function isTerminalCloseCode(code: number): boolean {
  return (CLOSE_CODES as Record<number, CloseCodeInfo | undefined>)[code]?.reconnect === 'no';
}
