import type { StreamPosition } from '@switchboard/protocol';
import type { ConnectionSink } from './sink.js';

/** Who a connection belongs to, as established by authentication (or anonymous). */
export interface SessionIdentity {
  userId: string | null;
  username: string | null;
  anonymous: boolean;
  /** Roles, permissions and claims for authorization hooks; free-form. */
  claims?: Record<string, unknown>;
  /** Epoch ms at which the credentials expire (token exp), if any. */
  expiresAt?: number;
  /** The authentication layer's full identity (roles, permissions, allowlist); opaque to the core. */
  auth?: object;
}

/** Everything a transport supplies to open a session. */
export interface SessionInit {
  sink: ConnectionSink;
  identity: SessionIdentity;
  /** Client-chosen id (`/ws/{client_id}`): a newer session of the same owner with the same id supersedes this
   * one (see ClientIdRegistry). Only through `openClientSession`. */
  clientId?: string | null;
  remoteAddress: string;
  metadata?: Record<string, unknown>;
}

/**
 * One connection as its transport holds it: an opaque handle the transport passes back to the SessionPort.
 * `closed` turns true once the core forgot the connection (closeSession, or a close the core started).
 */
export interface SessionHandle {
  readonly id: string;
  readonly closed: boolean;
}

/** Why `openSession` refused a connection: the transport closes with this code after accepting. */
export interface SessionRejection {
  rejected: true;
  closeCode: number;
  reason: string;
}

/** A connection slot of an address, held by a connection that has no session yet (`reserveSlot`). */
export interface SlotReservation {
  /** Give the slot back. Idempotent. Call it right before `openSession` (the session takes the slot over) or when the connection ends. */
  release(): void;
}

/**
 * The epoch of a position a transport could not read: an SSE `Last-Event-ID` that is not a position vector
 * (garbage, another format version) or that lacks the channel. No stream ever has it, so a join with this
 * `since` is answered `recovered: false` and replays nothing (the client's position is unknown, so nothing
 * can be proven missed or seen). Not to be confused with the EMPTY epoch, the seed 001 form
 * (`?last_sequence=N` without `epoch`), which stands for the stream's current epoch.
 */
export const UNKNOWN_EPOCH = '?';

/**
 * What a transport needs from the core: the only core entry point transports depend on (the Node implements
 * it). Every method returns at once and never throws; failures become `error` frames or closes on the sink.
 */
export interface SessionPort {
  /** Register a connection; on success its `connect` frame is already queued on the sink. Without a client id
   * only: one with `clientId` set is refused (1011), open it with `openClientSession`. */
  openSession(init: SessionInit): SessionHandle | SessionRejection;
  /**
   * Hold one of `remoteAddress`'s connection slots (limits.maxConnectionsPerIp) for a connection that is
   * accepted but is no session yet: a challenge handshake in progress counts like an open session, so one
   * address cannot fill the pending table and lock others out. Refused (4022) when the address has no slot
   * left or the node is at limits.maxConnections (which a reservation checks but does not hold). The holder
   * calls `release()` right before `openSession` (which then counts the session instead), or when it gives up.
   */
  reserveSlot(remoteAddress: string): SlotReservation | SessionRejection;
  /**
   * Register a connection that asks for a client-chosen id (`/ws/{client_id}`). The node first claims the id
   * cluster-wide for the identity's owner (ClientIdRegistry.claimClientId) and registers the session only once
   * it holds the claim; a previous holder of the same owner is then closed with 4011. Resolves to the handle
   * (its `connect` frame queued) or a rejection: 4013 CLIENT_ID_TAKEN when the id belongs to another owner (the
   * holder is not touched), 4092 when the claim cannot be decided (engine unreachable: fail closed), or the
   * refusals of `openSession`. Never rejects. A transport must not hand the session frames before it resolves,
   * and calls `closeSession` on the handle if its connection ended meanwhile (that releases the claim).
   */
  openClientSession(init: SessionInit): Promise<SessionHandle | SessionRejection>;
  /**
   * One text frame from the client. Commands take effect in the order received: a command that waits
   * (authorization hook, broker, store) holds the ones behind it; ping/pong/heartbeat/response pass.
   */
  handleText(session: SessionHandle, text: string): void;
  /** One binary frame from the client (document frames, docs/documents.md; without `data`: refused). */
  handleBinary(session: SessionHandle, data?: Uint8Array): void;
  /** Transport-level sign of life (a WebSocket pong). */
  markAlive(session: SessionHandle): void;
  /** The transport saw the connection end, for any reason. Idempotent. */
  closeSession(session: SessionHandle, code: number): void;
  /**
   * Join a channel on the server's initiative (`?channels=` on connect, SSE): queued behind the connection's
   * pending commands and handled exactly like a client `join_channel`; failures arrive as `error` frames.
   */
  subscribe(session: SessionHandle, channel: string, since?: StreamPosition): void;
  /** Serialize a server frame in the protocol envelope (for frames a transport writes itself). */
  frame(type: string, data: Record<string, unknown>): string;
  /** True while the node refuses new connections (drain or shutdown). */
  readonly draining: boolean;
  /** limits.maxChannelsPerConnection, for transports that take channel lists from a URL. */
  readonly maxChannelsPerConnection: number;
  /**
   * The largest WebSocket frame to accept (default: the transport's maxMessageBytes). It exceeds
   * limits.maxMessageBytes only while document namespaces exist, for binary document frames: the transport
   * still closes text frames over limits.maxMessageBytes with 1009, and the node does the same for other
   * binary frames.
   */
  readonly maxFrameBytes?: number;
}
