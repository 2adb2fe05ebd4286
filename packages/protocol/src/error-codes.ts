/**
 * Every error code a Switchboard server can put in an `error` frame (`data.code`) or an HTTP error body.
 * One registry: docs/protocol.md lists each code, and a test fails if one is missing there.
 */
export const ErrorCode = {
  INVALID_JSON: 'INVALID_JSON',
  INVALID_MESSAGE: 'INVALID_MESSAGE',
  UNKNOWN_TYPE: 'UNKNOWN_TYPE',
  BINARY_NOT_SUPPORTED: 'BINARY_NOT_SUPPORTED',
  PAYLOAD_TOO_DEEP: 'PAYLOAD_TOO_DEEP',
  FORBIDDEN_KEY: 'FORBIDDEN_KEY',
  MESSAGE_TOO_LARGE: 'MESSAGE_TOO_LARGE',
  RATE_LIMITED: 'RATE_LIMITED',
  INVALID_CHANNEL: 'INVALID_CHANNEL',
  TOO_MANY_CHANNELS: 'TOO_MANY_CHANNELS',
  NOT_SUBSCRIBED: 'NOT_SUBSCRIBED',
  ALREADY_SUBSCRIBED: 'ALREADY_SUBSCRIBED',
  UNAUTHORIZED: 'UNAUTHORIZED',
  FORBIDDEN: 'FORBIDDEN',
  TOKEN_EXPIRED: 'TOKEN_EXPIRED',
  INVALID_TOKEN: 'INVALID_TOKEN',
  AUTH_UNAVAILABLE: 'AUTH_UNAVAILABLE',
  USER_OFFLINE: 'USER_OFFLINE',
  NOT_FOUND: 'NOT_FOUND',
  TIMEOUT: 'TIMEOUT',
  UNAVAILABLE: 'UNAVAILABLE',
  BROKER_UNAVAILABLE: 'BROKER_UNAVAILABLE',
  TOO_MANY_CONNECTIONS: 'TOO_MANY_CONNECTIONS',
  ORIGIN_NOT_ALLOWED: 'ORIGIN_NOT_ALLOWED',
  DRAINING: 'DRAINING',
  INTERNAL: 'INTERNAL',
  NOT_A_DOCUMENT: 'NOT_A_DOCUMENT',
  READ_ONLY: 'READ_ONLY',
  INVALID_UPDATE: 'INVALID_UPDATE',
} as const;

export type ErrorCodeName = keyof typeof ErrorCode;

/** One line per code: when the server answers with it. Kept in step with docs/protocol.md by a test. */
export const ERROR_CODES: Readonly<Record<ErrorCodeName, string>> = {
  INVALID_JSON: 'The text frame is not valid JSON. The connection stays open.',
  INVALID_MESSAGE: 'The JSON does not match the schema of its type (missing field, wrong type, extra large string).',
  UNKNOWN_TYPE: 'The `type` field names no client message type.',
  BINARY_NOT_SUPPORTED: 'A binary frame arrived that is not a frame of a document channel; Switchboard speaks JSON text frames otherwise.',
  PAYLOAD_TOO_DEEP: 'The JSON nests deeper than limits.maxJsonDepth.',
  FORBIDDEN_KEY: 'The JSON contains a `__proto__`, `constructor` or `prototype` key.',
  MESSAGE_TOO_LARGE: 'A frame or request body exceeds limits.maxMessageBytes (WebSocket frames close with 1009 instead).',
  RATE_LIMITED: 'The connection exceeded its token bucket; the message was dropped. Sustained flooding closes with 4021.',
  INVALID_CHANNEL: 'The channel name is empty, too long, or has characters outside limits.channelNamePattern.',
  TOO_MANY_CHANNELS: 'The connection is already in limits.maxChannelsPerConnection channels.',
  NOT_SUBSCRIBED: 'Publishing or typing in a channel the connection has not joined (when publish requires membership).',
  ALREADY_SUBSCRIBED: 'Reserved: joining twice is answered with the current state, not this error.',
  UNAUTHORIZED: 'The operation needs an authenticated user.',
  FORBIDDEN: 'Channel or permission rules deny the operation.',
  TOKEN_EXPIRED: 'A refreshed token is already expired.',
  INVALID_TOKEN: 'A refreshed token is invalid or belongs to another user.',
  AUTH_UNAVAILABLE: 'Credentials could not be checked (JWKS fetch, session or permission hook failed or timed out); retry with backoff (HTTP 503, close 4092).',
  USER_OFFLINE: 'Reserved for request/response to a user with no live connection.',
  NOT_FOUND: 'The addressed resource (channel history, connection, request) does not exist.',
  TIMEOUT: 'A server-to-client request got no answer in time.',
  UNAVAILABLE: 'The feature is not enabled in this server configuration.',
  BROKER_UNAVAILABLE: 'The broker (Redis) is unreachable; the operation failed fast instead of hanging.',
  TOO_MANY_CONNECTIONS: 'HTTP form of close code 4022 (SSE and handshake rejections).',
  ORIGIN_NOT_ALLOWED: 'The Origin header is not in the allowlist (HTTP 403 at the handshake).',
  DRAINING: 'The node is draining or shutting down and accepts no new connections (HTTP 503).',
  INTERNAL: 'An unexpected server error while handling this message; the connection stays open.',
  NOT_A_DOCUMENT: 'A document operation (`doc_open`, a binary document frame) names a channel whose namespace is not a document namespace, or a channel operation (`join_channel`, `message`, `typing`) names a document channel.',
  READ_ONLY: 'The connection may read this document but not write it (channel rules: `subscribe` without `publish`): its updates were dropped.',
  INVALID_UPDATE: 'A document message was malformed, truncated, oversized, or does not fit the document (an update for another document); it was dropped and the document is unchanged.',
};

/**
 * Whether retrying the same request can succeed without the client changing anything (temporary: wait,
 * back off and retry) or not (final: the request itself is refused; surface it). Every error frame carries
 * the flag as `data.temporary`; HTTP error bodies carry it as `error.temporary`. Kept in step with
 * docs/protocol.md by a test.
 */
export const TEMPORARY_ERRORS: Readonly<Record<ErrorCodeName, boolean>> = {
  INVALID_JSON: false,
  INVALID_MESSAGE: false,
  UNKNOWN_TYPE: false,
  BINARY_NOT_SUPPORTED: false,
  PAYLOAD_TOO_DEEP: false,
  FORBIDDEN_KEY: false,
  MESSAGE_TOO_LARGE: false,
  RATE_LIMITED: true,
  INVALID_CHANNEL: false,
  TOO_MANY_CHANNELS: false,
  NOT_SUBSCRIBED: false,
  ALREADY_SUBSCRIBED: false,
  UNAUTHORIZED: false,
  FORBIDDEN: false,
  TOKEN_EXPIRED: false,
  INVALID_TOKEN: false,
  AUTH_UNAVAILABLE: true,
  USER_OFFLINE: true,
  NOT_FOUND: false,
  TIMEOUT: true,
  UNAVAILABLE: false,
  BROKER_UNAVAILABLE: true,
  TOO_MANY_CONNECTIONS: true,
  ORIGIN_NOT_ALLOWED: false,
  DRAINING: true,
  INTERNAL: true,
  NOT_A_DOCUMENT: false,
  READ_ONLY: false,
  INVALID_UPDATE: false,
};

/**
 * Is an error with this code worth retrying (with backoff)? Codes outside the registry (an application's
 * own, or a newer server's) count as final unless the frame says `temporary: true`.
 */
export function isTemporaryError(code: string, temporary?: unknown): boolean {
  if (typeof temporary === 'boolean') return temporary;
  return Object.prototype.hasOwnProperty.call(TEMPORARY_ERRORS, code) ? TEMPORARY_ERRORS[code as ErrorCodeName] : false;
}
