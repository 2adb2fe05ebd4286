/**
 * Connection status of a SwitchboardClient.
 * - `disconnected`: not connected and not trying (initial state, or after a terminal close code).
 * - `connecting`: first connection attempt after `connect()`.
 * - `connected`: the server's `connect` frame arrived; requests flow.
 * - `reconnecting`: the connection dropped (or an attempt failed); waiting for / making the next attempt.
 * - `closed`: `close()` was called; nothing happens until `connect()` is called again.
 */
export type ClientStatus = 'connecting' | 'connected' | 'reconnecting' | 'disconnected' | 'closed';

export const INITIAL_STATUS: ClientStatus = 'disconnected';

const TRANSITIONS: Readonly<Record<ClientStatus, readonly ClientStatus[]>> = {
  disconnected: ['connecting', 'closed'],
  connecting: ['connected', 'reconnecting', 'disconnected', 'closed'],
  connected: ['reconnecting', 'disconnected', 'closed'],
  reconnecting: ['connected', 'disconnected', 'closed'],
  closed: ['connecting'],
};

/** True if the status machine allows `from -> to` (staying in the same status is not a transition). */
export function canTransition(from: ClientStatus, to: ClientStatus): boolean {
  return TRANSITIONS[from].includes(to);
}

/** True for statuses in which the client will (re)connect by itself and queues publishes. */
export function isPending(status: ClientStatus): boolean {
  return status === 'connecting' || status === 'reconnecting';
}
