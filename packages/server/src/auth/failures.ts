/**
 * Authentication failures. Every failure carries both answers a transport may need:
 * `httpStatus` when it refuses at the HTTP handshake (or answers an SSE request), and `closeCode` when it
 * has already accepted the WebSocket and closes it. `rejectAt` says which one the configuration asks for.
 */
import { CloseCode, ErrorCode } from '@switchboard/protocol';

export type AuthFailureCode =
  | typeof ErrorCode.UNAUTHORIZED
  | typeof ErrorCode.INVALID_TOKEN
  | typeof ErrorCode.TOKEN_EXPIRED
  | typeof ErrorCode.TIMEOUT
  | typeof ErrorCode.ORIGIN_NOT_ALLOWED
  | typeof ErrorCode.AUTH_UNAVAILABLE
  | typeof ErrorCode.TOO_MANY_CONNECTIONS;

export interface AuthFailure {
  /** Stable machine code from the protocol error registry. */
  readonly code: AuthFailureCode;
  /** Close code to use after the WebSocket was accepted. */
  readonly closeCode: number;
  /** HTTP status to use when refusing the upgrade (or an SSE request). */
  readonly httpStatus: number;
  /** Human-readable reason; safe to send to the client (no token contents, no stack). Max 120 chars. */
  readonly message: string;
  /** Where the transport should answer: at the HTTP handshake, or by accepting and closing. */
  readonly rejectAt: 'handshake' | 'close';
}

function make(code: AuthFailureCode, closeCode: number, httpStatus: number, message: string, rejectAt: 'handshake' | 'close'): AuthFailure {
  // Close reasons are limited to 123 bytes by RFC 6455; keep messages short and ASCII.
  return Object.freeze({ code, closeCode, httpStatus, message: message.slice(0, 120), rejectAt });
}

/** Credentials missing, or rejected without being a token problem (bad session, bad signature, replay). 401 / 4001. */
export function unauthorized(message: string, rejectAt: 'handshake' | 'close' = 'close'): AuthFailure {
  return make(ErrorCode.UNAUTHORIZED, CloseCode.UNAUTHORIZED, 401, message, rejectAt);
}

/** Token malformed, bad signature, wrong alg/iss/aud, unknown kid, not yet valid. 401 / 4002. */
export function invalidToken(message: string, rejectAt: 'handshake' | 'close' = 'close'): AuthFailure {
  return make(ErrorCode.INVALID_TOKEN, CloseCode.INVALID_TOKEN, 401, message, rejectAt);
}

/** Token expired. 401 / 4003. */
export function tokenExpired(message = 'token expired', rejectAt: 'handshake' | 'close' = 'close'): AuthFailure {
  return make(ErrorCode.TOKEN_EXPIRED, CloseCode.TOKEN_EXPIRED, 401, message, rejectAt);
}

/** The client did not finish authentication in time (challenge unanswered). Only after accept: 4004. */
export function authTimeout(message = 'authentication timed out'): AuthFailure {
  return make(ErrorCode.TIMEOUT, CloseCode.AUTH_TIMEOUT, 401, message, 'close');
}

/** Origin not in the allowlist. Always refused at the handshake: 403 (1008 if a transport closes instead). */
export function originNotAllowed(message = 'origin not allowed'): AuthFailure {
  return make(ErrorCode.ORIGIN_NOT_ALLOWED, CloseCode.POLICY_VIOLATION, 403, message, 'handshake');
}

/** A key source or hook failed or timed out: credentials could not be checked. 503 / 4092 (retry with backoff). */
export function authUnavailable(message: string, rejectAt: 'handshake' | 'close' = 'close'): AuthFailure {
  return make(ErrorCode.AUTH_UNAVAILABLE, CloseCode.SERVER_ERROR, 503, message, rejectAt);
}

/** Too many pending authentications (challenge table full). 503 / 4022. */
export function tooManyPending(message = 'too many pending authentications'): AuthFailure {
  return make(ErrorCode.TOO_MANY_CONNECTIONS, CloseCode.TOO_MANY_CONNECTIONS, 503, message, 'close');
}

/** Same failure, answered where `rejectAt` says (origin failures stay at the handshake). */
export function withRejectAt(f: AuthFailure, rejectAt: 'handshake' | 'close'): AuthFailure {
  if (f.rejectAt === rejectAt || f.code === ErrorCode.ORIGIN_NOT_ALLOWED || f.code === ErrorCode.TIMEOUT) return f;
  return make(f.code, f.closeCode, f.httpStatus, f.message, rejectAt);
}
