/**
 * @switchboard/client: the Switchboard SDK for browsers and Node (ESM).
 * Browsers load the bundle from the server at `SDK_PATHS.esm` (`/sdk/switchboard.js`) or the IIFE build
 * (global `Switchboard`) at `SDK_PATHS.iife`.
 */
export { SwitchboardClient, DEFAULT_SUBSCRIBE_RETRY, USER_EVENTS_CHANNEL } from './client.js';
export type { SwitchboardClientOptions, SubscribeRetryOptions, PublishOptions, RequestOptions, HistoryOptions, HistoryResult } from './client.js';
export { Subscription } from './subscription.js';
export type { SubscriptionState } from './subscription.js';
export { SwitchboardError, SubscriptionError, ClientErrorCode, CLIENT_TEMPORARY_ERRORS } from './errors.js';
export type { ClientErrorCodeName, SubscriptionRetryInfo } from './errors.js';
export type { ClientStatus } from './status.js';
export { canTransition } from './status.js';
export { backoffDelay, backoffCap, DEFAULT_BACKOFF } from './backoff.js';
export type { BackoffOptions } from './backoff.js';
export { StreamTracker } from './stream-tracker.js';
export { OfflineQueue } from './offline-queue.js';
export { Emitter } from './emitter.js';
export type { WebSocketConstructor, WebSocketLike } from './socket.js';
export type * from './types.js';
export { CloseCode, CLOSE_CODES, isTerminalCloseCode, ErrorCode, TEMPORARY_ERRORS, isTemporaryError } from '@switchboard/protocol';
export type {
  ConnectFrameData,
  OnlineUser,
  PresenceMember,
  PresenceFrameData,
  PresenceDiffFrameData,
  PresenceCountFrameData,
  ServerFrame,
  StreamPosition,
  TypingFrameData,
  UserEventData,
  UsersDiffFrameData,
} from '@switchboard/protocol';

/** Stable HTTP paths at which a Switchboard server serves the browser bundles. */
export const SDK_PATHS = { esm: '/sdk/switchboard.js', iife: '/sdk/switchboard.iife.js' } as const;
