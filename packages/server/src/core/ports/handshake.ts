import type { IncomingMessage } from 'node:http';
import type { SessionIdentity } from './session-port.js';

/**
 * Where a credential can come from (docs/security.md, "Token sources"): `Authorization: Bearer` header, the
 * `bearer.<token>` subprotocol, the token query parameter, the session cookie. An endpoint may accept only
 * some of them (config `endpoints`, `credentials`).
 */
export type CredentialSource = 'header' | 'subprotocol' | 'query' | 'cookie';

/** Which endpoint a connection came in on. */
export interface Endpoint {
  transport: 'ws' | 'sse';
  /** The request path: `/ws`, `/ws/authenticated`, `/ws/device-7`, `/ws/room/lobby`, `/events`, ... */
  path: string;
  /** The client id taken from the path (`/ws/{client_id}`, or the endpoint's `clientId` parameter), if any. */
  clientId: string | null;
  /** The endpoint requires authentication (`auth: "required"`, or auth.required with `auth: "optional"`). */
  requireAuth: boolean;
  /** Ed25519 challenge endpoint (`{ed25519Path}/{collective_id}`): the collective to authenticate. */
  collectiveId?: string;
  /** The endpoint table entry that matched (WebSocket), e.g. `/ws/room/{room_id}`. */
  pattern?: string;
  /** The named path parameters of `pattern`, percent-decoded (e.g. `{room_id: "lobby"}`). */
  params?: Readonly<Record<string, string>>;
  /**
   * The credential sources this endpoint accepts; others are not looked at (as if absent). Undefined: every
   * source enabled in auth.sources. Empty: none (`auth: "none"`, every connection is anonymous).
   */
  credentials?: readonly CredentialSource[];
}

export type AuthOutcome =
  | { ok: true; identity: SessionIdentity; subprotocol?: string }
  | {
      ok: false;
      /** Close code when rejected after accept (browsers can read it). */
      closeCode: number;
      /** HTTP status when rejected at the handshake. */
      httpStatus: number;
      /** Error code from the registry. */
      code: string;
      message: string;
    };

/**
 * Decides who a connecting client is. Must not throw (a throw is answered as 1011). The default
 * (`anonymousAuthenticator`) admits everybody as anonymous.
 */
export type HandshakeAuthenticator = (req: IncomingMessage, url: URL, endpoint: Endpoint) => Promise<AuthOutcome>;

/** Decides whether an Origin header value may connect (`undefined`: no Origin header). */
export type OriginCheck = (origin: string | undefined) => boolean;

/** How to close an accepted WebSocket: RFC 6455 close code and a reason (kept under 123 bytes by the sender). */
export interface HandshakeClose {
  closeCode: number;
  message: string;
}

/** The first step of a challenge handshake: the frame to send and how long to wait for the answer. */
export interface ChallengeStart<Handle> {
  ok: true;
  /** Sent as one text frame right after accept. */
  firstFrame: string;
  /** ms since epoch: no answer by then means `timeout`. */
  expiresAt: number;
  /** Close with this (after `cancel(handle)`) when `expiresAt` passes without an answer. */
  timeout: HandshakeClose;
  /** Opaque to the transport: handed back to `finish` or `cancel`. */
  handle: Handle;
}

/**
 * A handshake strategy that runs inside an accepted WebSocket before the session opens (the Ed25519
 * challenge-response of `{ed25519Path}/{collective_id}` is one): the server speaks first, the client
 * answers once. The transport owns the socket and the deadline; the strategy owns the frames and the
 * verdict. Per connection, the transport:
 *   0. holds a connection slot of the client address for the whole phase (SessionPort.reserveSlot; refused:
 *      closed with 4022 before `begin`);
 *   1. calls `begin(endpoint)`; a failure is closed at once with its code;
 *   2. sends `firstFrame` and waits for ONE message; the deadline is `expiresAt` or the transport's own
 *      handshake timeout (auth.handshakeTimeoutMs), whichever comes first, and it runs until the verdict;
 *   3. calls `finish(handle, text)` with that message (`null`: it was a binary frame), then opens the session
 *      with the identity or closes with `closeCode` (a rejected promise closes with 1011);
 *      or, when the deadline passes first, `cancel(handle)` and closes with `timeout` (a verdict that comes
 *      later is ignored);
 *   4. calls `cancel(handle)` whenever the socket closes (a no-op once finished).
 * Each handle belongs to the one connection it was begun on; `finish` must judge the answer against that
 * handle only (an answer naming another connection's challenge is refused), which binds a challenge to its
 * socket.
 */
export interface ChallengeHandshake<Handle = unknown> {
  begin(endpoint: Endpoint): ChallengeStart<Handle> | ({ ok: false } & HandshakeClose);
  /** Decides on the client's answer; consumes the challenge. Should not reject. */
  finish(handle: Handle, message: string | null): Promise<AuthOutcome>;
  /** Forgets a pending challenge (timed out, or the socket closed). Idempotent. */
  cancel(handle: Handle): void;
}

/** Wire-protocol handlers (other protocols on configured endpoints) are declared in wire-protocol.ts. */
export type { WsProtocolContext, WsProtocolHandler } from './wire-protocol.js';
