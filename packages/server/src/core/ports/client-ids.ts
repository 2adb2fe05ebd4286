/**
 * Who holds a client id (`/ws/{client_id}`), cluster-wide (issue 11). A client id belongs to its holder's
 * OWNER: a user id, or "anonymous" (`userId` null). A connection may take a client id when it is free or held
 * by the same owner — the same non-null user id, or an anonymous connection taking an anonymous holder's id
 * (seed 001's reconnect with a stable id) — and is refused otherwise (another user; an anonymous connection
 * against an identified holder; an identified connection against an anonymous holder). A taken-over holder of
 * the same owner is closed by the node with 4011 (the `supersede` control message); a refused newcomer gets
 * 4013 CLIENT_ID_TAKEN and the holder is not touched.
 *
 * Implemented by both engines' presence stores (PresenceStore extends this port): the memory engine for one
 * process, the Redis engine with one key per client id that the holder's node refreshes like its presence
 * entries, so a killed node's claims expire after the presence ttl.
 */

/** The verdict of `claimClientId`. */
export type ClientIdClaim =
  /** The connection holds the id now. `generation` orders the claims of one id: a later successful claim has
   * a larger one, on every node (the engine decides, atomically). */
  | { ok: true; generation: number }
  /** Refused: the id belongs to another owner. `holderUserId` is the holder's user id (null: anonymous), for
   * logs; never tell it to the refused client. */
  | { ok: false; holderUserId: string | null };

export interface ClientIdRegistry {
  /**
   * Claim `clientId` for `connectionId` of `userId` (null: anonymous) on this node, atomically: free or held by
   * the same owner -> the connection becomes the holder (`ok: true`, the previous holder loses the claim);
   * another owner -> `ok: false`, nothing changes. Rejects with code BROKER_UNAVAILABLE when the backend is
   * unreachable (the caller refuses the connection: fail closed).
   */
  claimClientId(clientId: string, userId: string | null, connectionId: string): Promise<ClientIdClaim>;
  /**
   * The connection ended: drop the claim if `connectionId` still holds `clientId` (a newer holder's claim is
   * left alone). Idempotent. The local bookkeeping (refresh) stops at once, before the returned promise.
   */
  releaseClientId(clientId: string, connectionId: string): Promise<void>;
  /**
   * Set the listener told when this node finds that a claim it holds for a live connection now names another
   * connection (Redis: the key expired or was lost while this node could not refresh it, and another
   * connection claimed the id meanwhile). The node closes that connection with 4011: the newer claim wins.
   * Engines that cannot lose claims never call it.
   */
  onClientIdLost?(listener: (clientId: string, connectionId: string) => void): void;
}
