import { CloseCode } from '@switchboard/protocol';
import type { SessionRejection, SlotReservation } from '../ports/session-port.js';
import type { LimitOptions } from '../options.js';

/** What the registry needs of a connection. */
interface Registered {
  readonly id: string;
  readonly clientId: string | null;
  readonly userId: string | null;
  readonly remoteAddress: string;
}

/**
 * The node's live sessions, indexed by connection id, client id and user id, with per-address counts
 * for connection limits (sessions plus the slots held by handshakes in progress). Pure bookkeeping: no I/O,
 * no frames.
 */
export class SessionRegistry<Session extends Registered> {
  private readonly byId = new Map<string, Session>();
  private readonly byClientId = new Map<string, Session>();
  private readonly byUserId = new Map<string, Set<Session>>();
  private readonly perAddress = new Map<string, number>();

  /** Why one more session for this user/address would break a limit, or null if it may open. */
  refusal(userId: string | null, remoteAddress: string, limits: LimitOptions): string | null {
    if (limits.maxConnections > 0 && this.byId.size >= limits.maxConnections) return 'too many connections';
    if (userId !== null && limits.maxConnectionsPerUser > 0 && (this.byUserId.get(userId)?.size ?? 0) >= limits.maxConnectionsPerUser) {
      return 'too many connections for this user';
    }
    if (limits.maxConnectionsPerIp > 0 && (this.perAddress.get(remoteAddress) ?? 0) >= limits.maxConnectionsPerIp) {
      return 'too many connections from this address';
    }
    return null;
  }

  /** Register a session; returns the session it displaces under the same client id, if any. */
  add(s: Session): Session | undefined {
    this.byId.set(s.id, s);
    this.hold(s.remoteAddress);
    if (s.userId !== null) {
      let set = this.byUserId.get(s.userId);
      if (set === undefined) this.byUserId.set(s.userId, (set = new Set()));
      set.add(s);
    }
    if (s.clientId === null) return undefined;
    const previous = this.byClientId.get(s.clientId);
    this.byClientId.set(s.clientId, s);
    return previous;
  }

  /** Forget a session (idempotent). */
  remove(s: Session): void {
    if (this.byId.get(s.id) !== s) return;
    this.byId.delete(s.id);
    this.unhold(s.remoteAddress);
    if (s.clientId !== null && this.byClientId.get(s.clientId) === s) this.byClientId.delete(s.clientId);
    if (s.userId !== null) {
      const set = this.byUserId.get(s.userId);
      set?.delete(s);
      if (set !== undefined && set.size === 0) this.byUserId.delete(s.userId);
    }
  }

  /**
   * Count one connection of `remoteAddress` that is not a session (yet): a handshake in progress holds a slot
   * of its address like an open session does (SessionPort.reserveSlot). Sessions are counted by `add`.
   */
  hold(remoteAddress: string): void {
    this.perAddress.set(remoteAddress, (this.perAddress.get(remoteAddress) ?? 0) + 1);
  }

  /**
   * A connection slot of `remoteAddress` for a connection that is not a session (SessionPort.reserveSlot), or
   * the refusal (4022) when the address (or the node) is at its limit. `release()` gives it back, once.
   */
  reserve(remoteAddress: string, limits: LimitOptions): SlotReservation | SessionRejection {
    const refusal = this.refusal(null, remoteAddress, limits);
    if (refusal !== null) return { rejected: true, closeCode: CloseCode.TOO_MANY_CONNECTIONS, reason: refusal };
    this.hold(remoteAddress);
    let held = true;
    return {
      release: () => {
        if (!held) return;
        held = false;
        this.unhold(remoteAddress);
      },
    };
  }

  /** Give back one slot counted by `hold` (or by `add`, through `remove`). */
  unhold(remoteAddress: string): void {
    const n = (this.perAddress.get(remoteAddress) ?? 1) - 1;
    if (n <= 0) this.perAddress.delete(remoteAddress);
    else this.perAddress.set(remoteAddress, n);
  }

  get(connectionId: string): Session | undefined {
    return this.byId.get(connectionId);
  }

  /** The current holder of a client id. */
  byClient(clientId: string): Session | undefined {
    return this.byClientId.get(clientId);
  }

  /** Every local session of a user (undefined when none). */
  ofUser(userId: string): ReadonlySet<Session> | undefined {
    return this.byUserId.get(userId);
  }

  hasUser(userId: string): boolean {
    return this.byUserId.has(userId);
  }

  values(): IterableIterator<Session> {
    return this.byId.values();
  }

  get size(): number {
    return this.byId.size;
  }

  get userCount(): number {
    return this.byUserId.size;
  }
}
