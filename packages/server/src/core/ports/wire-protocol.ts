import type { WebSocket } from 'ws';
import type { SessionIdentity } from './session-port.js';

/** What a wire-protocol handler learns about a connection it is handed (see WsProtocolHandler). */
export interface WsProtocolContext {
  /** Who connected, as the endpoint's authentication decided (anonymous for `auth: "none"`). */
  identity: SessionIdentity;
  /** The named path parameters of the endpoint's pattern, percent-decoded (`/ws/doc/{doc}` -> `{doc: "..."}`). */
  params: Record<string, string>;
  /** The request URL (path and query string; the host part is a placeholder). */
  url: URL;
  /** The client address (the first X-Forwarded-For hop with http.trustProxy). */
  remoteAddress: string;
  /** The request path. */
  path: string;
}

/**
 * A wire protocol other than Switchboard's JSON protocol, served on the endpoints whose `protocol` names it
 * (config `endpoints`; handlers are registered in `SwitchboardOptions.protocols` under that name).
 *
 * The WebSocket transport does everything up to the accept exactly as for a Switchboard endpoint: path match,
 * draining (503), origin (403), authentication with the endpoint's credential sources, the `userParam`
 * check, and a connection slot of the client address (limits.maxConnectionsPerIp, refused with 4022). Then it
 * calls `accept` once with the open socket and hands it over: the handler reads, writes and closes it. The
 * transport keeps only a listener for `error` (logged), releases the slot when the socket closes and, on
 * shutdown, closes sockets still open with 1001 GOING_AWAY. The socket is not a Switchboard session: no
 * `connect` frame, no channels, no heartbeat frames, not counted in the node's stats.
 *
 * `accept` must not throw (a throw is logged and the socket closed with 1011).
 */
export interface WsProtocolHandler {
  /**
   * Largest WebSocket message the protocol accepts, bytes: the frame limit of its endpoints (a larger message
   * closes the socket with 1009 before the handler sees it). Default: limits.maxMessageBytes.
   */
  readonly maxPayload?: number;
  accept(ws: WebSocket, ctx: WsProtocolContext): void;
}
