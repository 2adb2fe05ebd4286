import {
  CLOSE_CODES,
  CloseCode,
  isTerminalCloseCode,
  type ConnectFrameData,
  type DocOpenedFrameData,
  type HistoryData,
  type OnlineUser,
  type PresenceCountFrameData,
  type PresenceDiffFrameData,
  type PresenceFrameData,
  type PresenceMember,
  type RequestId,
  type ServerFrame,
  type StreamPosition,
  type SubscribedFrameData,
  type TypingFrameData,
  type UserEventData,
  type UsersDiffFrameData,
} from '@switchboard/protocol';
import { backoffDelay, DEFAULT_BACKOFF, type BackoffOptions } from './backoff.js';
import { encodeDocumentFrame } from './binary-frame.js';
import { DocumentChannels, type DocumentChannel, type DocumentChannelHandler } from './document-channel.js';
import { Emitter } from './emitter.js';
import { ClientErrorCode, serverError, SubscriptionError, SwitchboardError } from './errors.js';
import { jwtExpiry } from './jwt.js';
import { OfflineQueue } from './offline-queue.js';
import { PendingRequests } from './pending-requests.js';
import { buildUrl, messageBytes, messageText, resolveWebSocket, WS_OPEN, type WebSocketConstructor, type WebSocketLike } from './socket.js';
import { canTransition, INITIAL_STATUS, isPending, type ClientStatus } from './status.js';
import { Subscription, toPublication, type SubscriptionHost } from './subscription.js';
import type { ClientEvents, OnlineUsersPage, PresencePage, PrivateMessage, Publication, PublishResult } from './types.js';

/** Options of `new SwitchboardClient(...)`. Only `url` is required. */
export interface SwitchboardClientOptions {
  /** WebSocket endpoint, e.g. `wss://host/ws`, `ws://host/ws/my-client-id` or `.../ws/authenticated`. */
  url: string;
  /** Static token sent as the `token` query parameter. */
  token?: string;
  /**
   * Called before every connection attempt (so also after a 4003 TOKEN_EXPIRED close) and again
   * `tokenRefreshMarginMs` before the token's `exp`, when the fresh token is sent with `refresh`.
   */
  getToken?: () => Promise<string>;
  /** Display name for anonymous connections (`username` query parameter). */
  username?: string;
  /** Extra query parameters. */
  params?: Record<string, string>;
  /** WebSocket constructor; default: the global one (browsers, Node >= 22). In Node 20 pass `ws`'s. */
  WebSocket?: WebSocketConstructor;
  /** Reconnect policy: full-jitter exponential backoff; unlimited attempts by default. */
  reconnect?: Partial<BackoffOptions> & { enabled?: boolean; maxAttempts?: number };
  /**
   * Retry of subscription joins refused with a temporary error (RATE_LIMITED, BROKER_UNAVAILABLE,
   * AUTH_UNAVAILABLE, INTERNAL, TIMEOUT...): full-jitter exponential backoff per subscription. Defaults in
   * `DEFAULT_SUBSCRIBE_RETRY` (500 ms base, 30 s cap, unlimited retries).
   */
  subscribeRetry?: Partial<SubscribeRetryOptions>;
  /** Default timeout of requests (publish ack, history, presence...). Default 10 000 ms. */
  requestTimeoutMs?: number;
  /** Max publishes kept while reconnecting; beyond it `publish()` rejects OFFLINE_QUEUE_FULL. Default 100. */
  offlineQueueSize?: number;
  /** Refresh the token this long before it expires. Default 30 000 ms. */
  tokenRefreshMarginMs?: number;
  /** Max time from opening the socket to the server's `connect` frame. Default 10 000 ms. */
  connectTimeoutMs?: number;
  /** Random source in [0, 1) for the backoff jitter (tests). */
  random?: () => number;
  /**
   * Acknowledge frames delivered from the offline inbox (`inbox: true`) as they arrive, so the server
   * removes them. Default true; set false to call `ackInbox()` yourself once the app has stored them.
   */
  autoAckInbox?: boolean;
  /**
   * Receive `user_online` / `user_offline` events. The server sends them only to connections that joined the
   * reserved channel `$users`: with true the client keeps a subscription to it (joined on every connect,
   * retried like any subscription, never sent `since`), which is not listed in `subscriptions` (see
   * `userEventsSubscription`). Default false.
   */
  userEvents?: boolean;
  /**
   * Ask the server for seed-002 batch frames (`?batch=1`): the frames of one server flush arrive as one
   * `{"type":"batch","messages":[...]}` frame; the client unpacks them in order, so apps see the same events.
   * Fewer WebSocket frames to parse on busy connections. Default false.
   */
  batch?: boolean;
}

/** Reserved channel whose members receive user events (`user_online`, `user_offline`, `users_diff`). */
export const USER_EVENTS_CHANNEL = '$users';

/** Retry policy of subscription joins refused with a temporary error (option `subscribeRetry`). */
export interface SubscribeRetryOptions extends BackoffOptions {
  /**
   * Retries in a row of one subscription's join; when a temporary error happens once more the subscription
   * ends as for a final error. Infinity (default): retry until the join succeeds or the app unsubscribes.
   */
  maxAttempts: number;
}

/** Defaults of `subscribeRetry`: delay before retry n (from 0) is random in [0, min(30 000, 500 * 2^n)) ms. */
export const DEFAULT_SUBSCRIBE_RETRY: Readonly<SubscribeRetryOptions> = { baseDelayMs: 500, maxDelayMs: 30_000, maxAttempts: Infinity };

export interface PublishOptions {
  /** Do not echo the publication back to this connection. */
  excludeSelf?: boolean;
  /** Dedupe key (default: generated). A publish resent after a reconnect reuses it, so it is applied once. */
  idempotencyKey?: string;
  timeoutMs?: number;
}

export interface RequestOptions {
  /** Reply deadline, ms; includes the time spent waiting for a reconnect. Default `requestTimeoutMs`. */
  timeoutMs?: number;
}

export interface HistoryOptions extends Omit<HistoryData, 'channel'>, RequestOptions {}

/** Result of `history()`: publications sorted oldest first (by seq), the stream top and the raw reply. */
export interface HistoryResult {
  channel: string;
  publications: Publication[];
  /** Top of the stream, if the server reports it. */
  position?: StreamPosition;
  data: Record<string, unknown>;
}

interface QueuedPublish {
  data: Record<string, unknown>;
  timeoutMs: number;
  resolve: (r: PublishResult) => void;
  reject: (e: SwitchboardError) => void;
}

type PendingTag = { kind: 'publish'; item: QueuedPublish } | { kind: 'join'; sub: Subscription } | { kind: 'other' };

/** Join retry state of one subscription: failed joins in a row (backoff attempt) and the armed retry. */
interface JoinRetry {
  failures: number;
  timer: ReturnType<typeof setTimeout> | null;
}

interface Waiter {
  resolve: () => void;
  reject: (e: SwitchboardError) => void;
}

/** Client-side reason used when the client itself finds the connection dead (no ping). */
const CLIENT_HEARTBEAT_CLOSE = 4012;

/**
 * Switchboard client for browsers and Node.
 *
 * Lifecycle: `connect()` -> status `connecting` -> `connected` (server `connect` frame). When the socket
 * drops it goes `reconnecting` and retries with full-jitter exponential backoff (immediately after a
 * 1001/4091 shutdown), until connected again, `close()` (status `closed`) or a terminal close code
 * (status `disconnected`). Every status change goes through one `setStatus()` and emits `status`.
 */
export class SwitchboardClient extends Emitter<ClientEvents> implements SubscriptionHost {
  private readonly opts: Required<Pick<SwitchboardClientOptions, 'requestTimeoutMs' | 'tokenRefreshMarginMs' | 'connectTimeoutMs'>> &
    SwitchboardClientOptions;
  private readonly backoff: BackoffOptions;
  private readonly subscribeRetry: SubscribeRetryOptions;
  private readonly maxAttempts: number;
  private readonly reconnectEnabled: boolean;
  private _status: ClientStatus = INITIAL_STATUS;
  private socket: WebSocketLike | null = null;
  /** Incremented on every attempt and on close(): stale async work compares against it. */
  private generation = 0;
  /** Failed attempts since the last successful connect. */
  private attempt = 0;
  private nextRequestId = 1;
  /** Binary frames sent on the current socket: the server answers the n-th one's publish with id `bin-<n>`. */
  private binarySent = 0;
  private token: string | undefined;
  private info: ConnectFrameData | null = null;
  private lastFrameAt = 0;
  private shutdownHintMs: number | undefined;
  /** Every subscription by channel, the user-events one included: what is joined on each connect. */
  private readonly subs = new Map<string, Subscription>();
  /** The app's subscriptions (`subscriptions`): `subs` without `usersSub`. */
  private readonly appSubs = new Map<string, Subscription>();
  /** The `$users` subscription made for the `userEvents` option (null without it). */
  private usersSub: Subscription | null = null;
  /** Pattern subscriptions in `subs` (so publications skip the pattern scan when there are none). */
  private patternCount = 0;
  /** Subscriptions whose last join failed with a temporary error (until a join succeeds). */
  private readonly joinRetries = new Map<Subscription, JoinRetry>();
  private readonly pending = new PendingRequests<PendingTag>();
  private readonly queue: OfflineQueue<QueuedPublish>;
  private readonly waiters = new Set<Waiter>();
  private readonly autoAckInbox: boolean;
  private readonly requestHandlers = new Map<string, (params: Record<string, unknown>) => unknown>();
  private inboxAcks: string[] = [];
  private reconnectTimer: ReturnType<typeof setTimeout> | null = null;
  private connectTimer: ReturnType<typeof setTimeout> | null = null;
  private livenessTimer: ReturnType<typeof setTimeout> | null = null;
  private refreshTimer: ReturnType<typeof setTimeout> | null = null;
  /** Document channels (`openDocumentChannel`): opened on every connection, binary frames routed to them. */
  private readonly documents: DocumentChannels;
  /** True while onConnected opens the documents (before the status says `connected`). */
  private documentsOpening = false;

  constructor(options: SwitchboardClientOptions) {
    super();
    if (!options || typeof options.url !== 'string' || options.url === '') throw new TypeError('SwitchboardClient: `url` is required');
    this.opts = { requestTimeoutMs: 10_000, tokenRefreshMarginMs: 30_000, connectTimeoutMs: 10_000, ...options };
    this.backoff = {
      baseDelayMs: options.reconnect?.baseDelayMs ?? DEFAULT_BACKOFF.baseDelayMs,
      maxDelayMs: options.reconnect?.maxDelayMs ?? DEFAULT_BACKOFF.maxDelayMs,
    };
    this.maxAttempts = options.reconnect?.maxAttempts ?? Infinity;
    this.subscribeRetry = {
      baseDelayMs: options.subscribeRetry?.baseDelayMs ?? DEFAULT_SUBSCRIBE_RETRY.baseDelayMs,
      maxDelayMs: options.subscribeRetry?.maxDelayMs ?? DEFAULT_SUBSCRIBE_RETRY.maxDelayMs,
      maxAttempts: options.subscribeRetry?.maxAttempts ?? DEFAULT_SUBSCRIBE_RETRY.maxAttempts,
    };
    this.reconnectEnabled = options.reconnect?.enabled ?? true;
    this.queue = new OfflineQueue(options.offlineQueueSize ?? 100);
    this.autoAckInbox = options.autoAckInbox ?? true;
    this.token = options.token;
    if (options.userEvents) this.subscribeUserEvents();
    this.documents = new DocumentChannels({
      connectionReady: () => this.socket !== null && this.socket.readyState === WS_OPEN && this.info !== null && (this._status === 'connected' || this.documentsOpening),
      command: (type, data, onReply, onFail) => {
        const id = this.nextRequestId++;
        this.pending.add(id, this.opts.requestTimeoutMs, { onReply, onFail, tag: { kind: 'other' } });
        if (!this.sendFrame({ type, data, id })) this.pending.cancel(id, new SwitchboardError(ClientErrorCode.CONNECTION_LOST, 'the socket is not open'));
      },
      sendBinary: (frame) => this.sendBytes(frame),
      retryDelay: (attempt) => backoffDelay(attempt, this.subscribeRetry, this.opts.random),
      report: (err) => reportError(err),
    });
  }

  /**
   * Low-level: a document channel (a namespace with `documents: "yjs"`, docs/documents.md) on this client's
   * connection. `doc_open` is sent now if connected and on every (re)connect; the server's binary frames for
   * `channel` go to `handler.message`, and `send` sends y-websocket messages on the same WebSocket as
   * everything else. One handler per channel (throws if the channel has one). Most apps use the Yjs binding
   * instead: `openDocument(client, channel, ydoc, { awareness })` from `@switchboard/client/yjs`.
   */
  openDocumentChannel(channel: string, handler: DocumentChannelHandler): DocumentChannel {
    return this.documents.add(channel, handler);
  }

  /** Current connection status. */
  get status(): ClientStatus {
    return this._status;
  }

  /** Data of the server's last `connect` frame (connection id, user, ping interval), null before. */
  get connection(): ConnectFrameData | null {
    return this.info;
  }

  /** Publishes waiting in the offline queue. */
  get queuedPublishes(): number {
    return this.queue.size;
  }

  /** Current subscriptions by channel (without the `$users` subscription of the `userEvents` option). */
  get subscriptions(): ReadonlyMap<string, Subscription> {
    return this.appSubs;
  }

  /**
   * The `$users` subscription kept for the `userEvents` option (null without the option): its `state`,
   * `ready()` and `error` events say whether the server accepted it. A final refusal (e.g. FORBIDDEN) ends it
   * and is also emitted as a client `error`; `subscribe('$users')` then makes a new one. `unsubscribe()` on it
   * stops the user events.
   */
  get userEventsSubscription(): Subscription | null {
    return this.usersSub;
  }

  /**
   * Starts connecting (no-op if already connecting/connected). Resolves when connected; rejects if the client
   * ends up `disconnected` (terminal close code) or `closed` first. Reconnection continues in the background
   * after a failed first attempt, so the promise can resolve after several attempts.
   */
  connect(): Promise<void> {
    if (this._status === 'connected') return Promise.resolve();
    const done = this.waitConnected();
    if (this._status === 'disconnected' || this._status === 'closed') {
      this.attempt = 0;
      this.setStatus('connecting');
      void this.openSocket();
    }
    return done;
  }

  /**
   * Closes the connection for good (status `closed`). Pending requests and queued publishes reject with
   * CLIENT_CLOSED. Subscriptions are kept (state `subscribing`, join retries cancelled) and resubscribed if
   * `connect()` is called again.
   */
  close(code: number = CloseCode.NORMAL, reason = 'client closed'): void {
    if (this._status === 'closed') return;
    this.generation++;
    const socket = this.socket;
    this.teardownConnection();
    if (socket) safeClose(socket, code, reason);
    for (const sub of this.subs.values()) sub.markPending();
    this.setStatus('closed');
    this.failEverything(new SwitchboardError(ClientErrorCode.CLIENT_CLOSED, 'client closed'));
  }

  /**
   * Subscribes to a channel (idempotent per channel); the join is sent now or on the next connect. A join
   * refused with a temporary error is retried with backoff (`subscribeRetry`), a final refusal ends the
   * subscription (see Subscription `error` events). With the `userEvents` option, `subscribe('$users')`
   * returns `userEventsSubscription` (made again if it ended).
   */
  subscribe(channel: string): Subscription {
    if (channel === USER_EVENTS_CHANNEL && this.opts.userEvents) return this.subscribeUserEvents();
    const existing = this.subs.get(channel);
    if (existing && existing.state !== 'unsubscribed') return existing;
    const sub = new Subscription(channel, this);
    if (sub.pattern !== null && existing === undefined) this.patternCount++;
    this.subs.set(channel, sub);
    this.appSubs.set(channel, sub);
    if (this.isOpen()) this.sendJoin(sub);
    return sub;
  }

  /** The `userEvents` subscription to `$users` (made if there is none or it ended). */
  private subscribeUserEvents(): Subscription {
    const existing = this.usersSub;
    if (existing && existing.state !== 'unsubscribed' && this.subs.get(existing.channel) === existing) return existing;
    const sub = new Subscription(USER_EVENTS_CHANNEL, this, false);
    this.usersSub = sub;
    this.subs.set(USER_EVENTS_CHANNEL, sub);
    this.appSubs.delete(USER_EVENTS_CHANNEL);
    if (this.isOpen()) this.sendJoin(sub);
    return sub;
  }

  /** The live pattern subscriptions (few; a short scan per publication, only when there are any). */
  private *patternSubs(): Iterable<Subscription> {
    if (this.patternCount === 0) return;
    for (const s of this.subs.values()) if (s.pattern !== null) yield s;
  }

  /** Forgets a subscription that ended (left or refused for good). */
  private removeSub(sub: Subscription): void {
    if (this.subs.get(sub.channel) === sub) {
      this.subs.delete(sub.channel);
      if (sub.pattern !== null) this.patternCount--;
    }
    if (this.appSubs.get(sub.channel) === sub) this.appSubs.delete(sub.channel);
  }

  /**
   * Publishes `data` on `channel`; resolves with the publication's `{offset, epoch}` from the `ok` reply.
   * While reconnecting the publish waits in the bounded offline queue (rejects OFFLINE_QUEUE_FULL when
   * full). A publish in flight when the connection drops is resent after the reconnect with the same
   * idempotency key.
   */
  publish(channel: string, data: Record<string, unknown>, options: PublishOptions = {}): Promise<PublishResult> {
    return new Promise<PublishResult>((resolve, reject) => {
      const payload: Record<string, unknown> = { ...data, channel, idempotency_key: options.idempotencyKey ?? randomKey() };
      if (options.excludeSelf) payload.exclude_self = true;
      const item: QueuedPublish = { data: payload, timeoutMs: options.timeoutMs ?? this.opts.requestTimeoutMs, resolve, reject };
      if (this.isOpen()) this.sendPublish(item);
      else if (isPending(this._status)) {
        if (!this.queue.push(item)) {
          reject(new SwitchboardError(ClientErrorCode.OFFLINE_QUEUE_FULL, `offline queue is full (${this.queue.capacity} publishes)`));
        }
      } else reject(this.notConnectedError());
    });
  }

  /**
   * Publishes raw bytes on `channel` as one binary WebSocket frame (`varstring channel + bytes`,
   * docs/protocol.md "Binary frames"); the channel's namespace must allow it (`binary: true` on the server,
   * else BINARY_NOT_SUPPORTED). Subscribers get an ordinary publication whose `data` is
   * `{binary: "<base64>"}` and whose `binary` is the bytes. Resolves with `{offset, epoch}` from the server's
   * `ok`; rejects with its error (FORBIDDEN, NOT_SUBSCRIBED, RATE_LIMITED...), TIMEOUT, or CONNECTION_LOST.
   * While (re)connecting it waits for the connection within the timeout; unlike `publish` it is not resent
   * after a connection drops (there is no idempotency key in a binary frame). Frames larger than the server's
   * `limits.maxMessageBytes` make the server close the connection (1009).
   */
  publishBinary(channel: string, bytes: Uint8Array, options: RequestOptions = {}): Promise<PublishResult> {
    const timeoutMs = options.timeoutMs ?? this.opts.requestTimeoutMs;
    const started = Date.now();
    const frame = encodeDocumentFrame(channel, bytes);
    const send = (): Promise<PublishResult> =>
      new Promise<PublishResult>((resolve, reject) => {
        if (!this.sendBytes(frame)) {
          reject(new SwitchboardError(ClientErrorCode.CONNECTION_LOST, 'the socket is not open'));
          return;
        }
        const id = `bin-${this.binarySent}`;
        this.pending.add(id, Math.max(1, timeoutMs - (Date.now() - started)), {
          tag: { kind: 'other' },
          onReply: (reply) => {
            const d = reply.data as { offset?: unknown; epoch?: unknown };
            resolve({ offset: typeof d.offset === 'number' ? d.offset : 0, epoch: typeof d.epoch === 'string' ? d.epoch : '' });
          },
          onFail: reject,
        });
      });
    if (this.isOpen()) return send();
    if (!isPending(this._status)) return Promise.reject(this.notConnectedError());
    return this.waitConnected(timeoutMs).then(send);
  }

  /** Sends a private message to every connection of `userId`; resolves with the `ok` data. */
  async sendPrivate(userId: string, data: Record<string, unknown>, options: RequestOptions = {}): Promise<Record<string, unknown>> {
    const reply = await this.request('private_message', { ...data, recipient_id: userId }, options);
    return reply.data;
  }

  /** Tells the channel this user started/stopped typing. Fire-and-forget; dropped when not connected. */
  typing(channel: string, isTyping: boolean): boolean {
    return this.sendFrame({ type: 'typing', data: { channel, is_typing: isTyping } });
  }

  /**
   * Members (connections) currently in a channel: walks the server's pages (`presencePage`) to the end.
   * For large channels, page yourself instead.
   */
  async presence(channel: string, options: RequestOptions = {}): Promise<PresenceMember[]> {
    const all: PresenceMember[] = [];
    let cursor: string | null = null;
    do {
      const page: PresencePage = await this.presencePage(channel, { ...options, cursor, limit: 1000 });
      all.push(...page.members);
      cursor = page.nextCursor;
    } while (cursor !== null);
    return all;
  }

  /**
   * One page of a channel's members: start without a cursor, pass `nextCursor` back until it is null.
   * `limit`: members per page (server default 100, max 1000). A server without paging returns every member
   * in one page (`nextCursor` null).
   */
  async presencePage(channel: string, options: RequestOptions & { cursor?: string | null; limit?: number } = {}): Promise<PresencePage> {
    const { cursor, limit, ...requestOptions } = options;
    const data: Record<string, unknown> = { channel };
    if (cursor) data.cursor = cursor;
    if (limit !== undefined) data.limit = limit;
    const reply = await this.request('presence', data, requestOptions);
    const d = reply.data as { members?: unknown; next_cursor?: unknown };
    return { members: Array.isArray(d.members) ? (d.members as PresenceMember[]) : [], nextCursor: typeof d.next_cursor === 'string' && d.next_cursor !== '' ? d.next_cursor : null };
  }

  /** Stored publications of a channel (`limit`, `before`, `after` or seed-000 `offset`). */
  async history(channel: string, options: HistoryOptions = {}): Promise<HistoryResult> {
    const { timeoutMs, ...query } = options;
    const reply = await this.request('history', { channel, ...query }, timeoutMs === undefined ? {} : { timeoutMs });
    const data = reply.data as Record<string, unknown>;
    const list = (Array.isArray(data.messages) ? data.messages : Array.isArray(data.publications) ? data.publications : []) as unknown[];
    const publications: Publication[] = [];
    for (const item of list) {
      if (item && typeof item === 'object') {
        const frame = item as ServerFrame;
        if (frame.data && typeof frame.data === 'object' && 'timestamp' in frame) publications.push(toPublication(channel, frame));
        else publications.push(toPublication(channel, { type: 'message', data: item as Record<string, unknown>, timestamp: '', message_id: '' }));
      }
    }
    if (publications.every((p) => typeof p.seq === 'number')) publications.sort((a, b) => a.seq! - b.seq!);
    const result: HistoryResult = { channel, publications, data };
    const offset = data.offset, epoch = data.epoch;
    if (typeof offset === 'number' && typeof epoch === 'string') result.position = { offset, epoch };
    return result;
  }

  /**
   * Every user with at least one live connection: walks the server's pages (`onlineUsersPage`) to the end.
   * For large deployments, page yourself instead.
   */
  async onlineUsers(options: RequestOptions = {}): Promise<OnlineUser[]> {
    const all: OnlineUser[] = [];
    let cursor: string | null = null;
    do {
      const page: OnlineUsersPage = await this.onlineUsersPage({ ...options, cursor, limit: 1000 });
      all.push(...page.users);
      cursor = page.nextCursor;
    } while (cursor !== null);
    return all;
  }

  /** One page of online users: start without a cursor, pass `nextCursor` back until it is null. */
  async onlineUsersPage(options: RequestOptions & { cursor?: string | null; limit?: number } = {}): Promise<OnlineUsersPage> {
    const { cursor, limit, ...requestOptions } = options;
    const data: Record<string, unknown> = {};
    if (cursor) data.cursor = cursor;
    if (limit !== undefined) data.limit = limit;
    const reply = await this.request('online_users', data, requestOptions);
    const d = reply.data as { users?: unknown; next_cursor?: unknown };
    return { users: Array.isArray(d.users) ? (d.users as OnlineUser[]) : [], nextCursor: typeof d.next_cursor === 'string' ? d.next_cursor : null };
  }

  /**
   * Sends `{type, data, id}` and resolves with the reply frame carrying that id (rejects with the server's
   * code on an `error` reply, TIMEOUT after `timeoutMs`, CONNECTION_LOST if the socket drops first). While
   * (re)connecting the request waits for the connection within the same timeout.
   */
  request(type: string, data: Record<string, unknown> = {}, options: RequestOptions = {}): Promise<ServerFrame> {
    const timeoutMs = options.timeoutMs ?? this.opts.requestTimeoutMs;
    const started = Date.now();
    const send = (): Promise<ServerFrame> =>
      new Promise<ServerFrame>((resolve, reject) => {
        const id = this.nextRequestId++;
        const left = Math.max(1, timeoutMs - (Date.now() - started));
        this.pending.add(id, left, { onReply: resolve, onFail: reject, tag: { kind: 'other' } });
        if (!this.sendFrame({ type, data, id })) {
          this.pending.cancel(id, new SwitchboardError(ClientErrorCode.CONNECTION_LOST, 'the socket is not open'));
        }
      });
    if (this.isOpen()) return send();
    if (!isPending(this._status)) return Promise.reject(this.notConnectedError());
    return this.waitConnected(timeoutMs).then(send);
  }

  // ---- SubscriptionHost -------------------------------------------------------------------------------

  /** @internal used by Subscription.unsubscribe(). */
  leave(sub: Subscription): void {
    this.removeSub(sub);
    this.forgetJoinRetry(sub);
    if (this.isOpen()) {
      const id = this.nextRequestId++;
      this.pending.add(id, this.opts.requestTimeoutMs, { onReply: () => {}, onFail: () => {}, tag: { kind: 'other' } });
      this.sendFrame({ type: 'leave_channel', data: { channel: sub.channel }, id });
    }
    sub.handleEnded();
  }

  // ---- status ----------------------------------------------------------------------------------------

  /** The one place the status changes. */
  private setStatus(next: ClientStatus): void {
    const previous = this._status;
    if (previous === next) return;
    if (!canTransition(previous, next)) throw new Error(`switchboard client: invalid status transition ${previous} -> ${next}`);
    this._status = next;
    this.emit('status', { status: next, previous });
    if (next === 'connected') this.flushWaiters(null);
    else if (next === 'disconnected' || next === 'closed') {
      this.flushWaiters(next === 'closed' ? new SwitchboardError(ClientErrorCode.CLIENT_CLOSED, 'client closed') : this.notConnectedError());
    }
  }

  private waitConnected(timeoutMs?: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | null = null;
      const waiter: Waiter = {
        resolve: () => {
          if (timer) clearTimeout(timer);
          resolve();
        },
        reject: (e) => {
          if (timer) clearTimeout(timer);
          reject(e);
        },
      };
      if (timeoutMs !== undefined && timeoutMs > 0 && Number.isFinite(timeoutMs)) {
        timer = setTimeout(() => {
          this.waiters.delete(waiter);
          reject(new SwitchboardError(ClientErrorCode.TIMEOUT, `not connected within ${timeoutMs} ms`));
        }, timeoutMs);
      }
      this.waiters.add(waiter);
    });
  }

  private flushWaiters(error: SwitchboardError | null): void {
    const all = [...this.waiters];
    this.waiters.clear();
    for (const w of all) {
      if (error) w.reject(error);
      else w.resolve();
    }
  }

  // ---- connection ------------------------------------------------------------------------------------

  private isOpen(): boolean {
    return this._status === 'connected' && this.socket !== null && this.socket.readyState === WS_OPEN;
  }

  private async openSocket(): Promise<void> {
    const gen = ++this.generation;
    if (this.opts.getToken) {
      try {
        const token = await this.opts.getToken();
        if (typeof token !== 'string' || token === '') throw new Error('getToken() returned no token');
        this.token = token;
      } catch (err) {
        if (gen !== this.generation) return;
        this.emit('error', new SwitchboardError(ClientErrorCode.TOKEN_FETCH_FAILED, `getToken() failed: ${String((err as Error)?.message ?? err)}`, err));
        this.handleClose(CloseCode.INTERNAL_ERROR, 'token fetch failed');
        return;
      }
      if (gen !== this.generation) return;
    }
    let socket: WebSocketLike;
    try {
      const Ctor = resolveWebSocket(this.opts.WebSocket);
      socket = new Ctor(buildUrl(this.opts.url, { ...this.opts.params, token: this.token, username: this.opts.username, batch: this.opts.batch ? '1' : undefined }));
    } catch (err) {
      const error = err instanceof SwitchboardError ? err : new SwitchboardError(ClientErrorCode.NOT_CONNECTED, String((err as Error)?.message ?? err), err);
      this.emit('error', error);
      if (error.code === ClientErrorCode.NO_WEBSOCKET) {
        this.setStatus('disconnected');
        this.failEverything(error);
      } else this.handleClose(CloseCode.INTERNAL_ERROR, error.message);
      return;
    }
    this.socket = socket;
    this.binarySent = 0;
    try {
      socket.binaryType = 'arraybuffer'; // document frames arrive as ArrayBuffer, in order with text frames
    } catch {
      /* an implementation without binaryType: views are handled too */
    }
    socket.onmessage = (ev) => {
      if (this.socket !== socket) return;
      const bytes = typeof ev.data === 'string' ? null : messageBytes(ev.data);
      if (bytes !== null) this.onBinary(bytes);
      else this.onText(messageText(ev.data));
    };
    socket.onclose = (ev) => {
      if (this.socket === socket) this.handleClose(ev.code, ev.reason);
    };
    socket.onerror = () => {
      /* a close event follows */
    };
    this.connectTimer = setTimeout(() => {
      if (this.socket !== socket) return;
      this.killSocket(socket, CloseCode.INTERNAL_ERROR, 'connect timeout');
    }, this.opts.connectTimeoutMs);
  }

  /** Drops a socket without waiting for a closing handshake and handles it as closed with `code`. */
  private killSocket(socket: WebSocketLike, code: number, reason: string): void {
    detach(socket);
    if (typeof socket.terminate === 'function') socket.terminate();
    else safeClose(socket, 4000, reason);
    if (this.socket === socket) this.handleClose(code, reason);
  }

  private teardownConnection(): void {
    const socket = this.socket;
    this.socket = null;
    this.documents.disconnected();
    if (socket) detach(socket);
    this.cancelJoinRetryTimers();
    for (const t of [this.connectTimer, this.livenessTimer, this.refreshTimer, this.reconnectTimer]) if (t) clearTimeout(t);
    this.connectTimer = this.livenessTimer = this.refreshTimer = this.reconnectTimer = null;
  }

  private handleClose(code: number, reason: string): void {
    const wasConnected = this._status === 'connected';
    this.teardownConnection();
    // In-flight publishes go back to the queue (resent with the same idempotency key); other requests fail.
    const inflight = this.pending.takeWhere((tag) => tag?.kind === 'publish').map((t) => (t as { kind: 'publish'; item: QueuedPublish }).item);
    this.queue.requeue(inflight);
    // Joins in flight are sent again on the next connection (as every join); reported below, once the
    // status says whether the client reconnects.
    const lostJoins = this.pending.takeWhere((tag) => tag?.kind === 'join').map((t) => (t as { kind: 'join'; sub: Subscription }).sub);
    const lost = new SwitchboardError(ClientErrorCode.CONNECTION_LOST, `connection closed (${code}) before the reply`, { code, reason });
    this.pending.failAll(lost);
    for (const sub of this.subs.values()) sub.markPending();

    const noToken = code === CloseCode.TOKEN_EXPIRED && !this.opts.getToken;
    const terminal = isTerminalCloseCode(code) || noToken || !this.reconnectEnabled || this.attempt >= this.maxAttempts;
    if (terminal) {
      this.setStatus('disconnected');
      this.emit('disconnected', { code, reason, willReconnect: false });
      this.failEverything(new SwitchboardError(ClientErrorCode.DISCONNECTED, `disconnected by the server (${code} ${reason})`, { code, reason }));
      this.reportLostJoins(lostJoins, lost);
      return;
    }
    const advice = (CLOSE_CODES as Record<number, { reconnect: string } | undefined>)[code]?.reconnect;
    let delayMs: number;
    if (advice === 'immediate' && wasConnected) {
      delayMs = Math.min(this.shutdownHintMs ?? 0, this.backoff.maxDelayMs);
    } else {
      delayMs = backoffDelay(this.attempt, this.backoff, this.opts.random);
    }
    this.shutdownHintMs = undefined;
    this.attempt++;
    this.setStatus('reconnecting');
    this.emit('disconnected', { code, reason, willReconnect: true, delayMs });
    const gen = this.generation;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      if (gen !== this.generation || this._status !== 'reconnecting') return;
      this.emit('reconnect_attempt', { attempt: this.attempt });
      void this.openSocket();
    }, delayMs);
    this.reportLostJoins(lostJoins, lost);
  }

  /** Joins that were in flight when the connection dropped: they are sent again on the next connection. */
  private reportLostJoins(subs: readonly Subscription[], error: SwitchboardError): void {
    for (const sub of subs) {
      if (this.subs.get(sub.channel) !== sub) continue;
      const attempt = this.joinRetries.get(sub)?.failures ?? 0;
      sub.handleError(new SubscriptionError(sub.channel, error, { willRetry: true, retryInMs: null, attempt }));
    }
  }

  /** Cancels every armed join retry (the next connection resubscribes every channel anyway); keeps the counts. */
  private cancelJoinRetryTimers(): void {
    for (const state of this.joinRetries.values()) {
      if (state.timer) clearTimeout(state.timer);
      state.timer = null;
    }
  }

  private forgetJoinRetry(sub: Subscription): void {
    const state = this.joinRetries.get(sub);
    if (state?.timer) clearTimeout(state.timer);
    this.joinRetries.delete(sub);
  }

  private failEverything(error: SwitchboardError): void {
    this.pending.failAll(error);
    for (const item of this.queue.drain()) item.reject(error);
  }

  private notConnectedError(): SwitchboardError {
    return new SwitchboardError(ClientErrorCode.NOT_CONNECTED, `client is ${this._status}`);
  }

  // ---- frames ----------------------------------------------------------------------------------------

  private sendFrame(frame: { type: string; data?: Record<string, unknown>; id?: RequestId }): boolean {
    const socket = this.socket;
    if (!socket || socket.readyState !== WS_OPEN) return false;
    try {
      socket.send(JSON.stringify(frame));
      return true;
    } catch {
      return false;
    }
  }

  private sendJoin(sub: Subscription): void {
    const data = sub.joinData();
    const asked = data.since ?? null;
    const id = this.nextRequestId++;
    this.pending.add(id, this.opts.requestTimeoutMs, {
      tag: { kind: 'join', sub },
      onReply: (frame) => {
        if (this.subs.get(sub.channel) !== sub) return;
        this.forgetJoinRetry(sub); // success: the next failure starts the backoff again
        sub.handleSubscribed(frame.data as unknown as SubscribedFrameData, asked);
      },
      onFail: (error) => this.onJoinFailed(sub, error),
    });
    this.sendFrame({ type: 'join_channel', data: data as unknown as Record<string, unknown>, id });
  }

  /**
   * A join got an `error` reply or timed out. Temporary (the frame's `temporary` flag, else the protocol
   * registry; TIMEOUT): the subscription stays `subscribing` and the join is sent again after a full-jitter
   * backoff. Final, or retries exhausted: the subscription ends (`unsubscribed`, `ready()` rejects).
   */
  private onJoinFailed(sub: Subscription, error: SwitchboardError): void {
    if (this.subs.get(sub.channel) !== sub) return;
    // The connection is gone (close(), a terminal close): not the join's fault; the next connection joins
    // every subscription again. (Joins in flight when a connection drops are handled by handleClose.)
    if (!this.isOpen()) return;
    const state = this.joinRetries.get(sub) ?? { failures: 0, timer: null };
    state.failures += 1;
    if (!error.temporary || state.failures > this.subscribeRetry.maxAttempts) {
      this.forgetJoinRetry(sub);
      this.removeSub(sub);
      const refused = new SubscriptionError(sub.channel, error, { willRetry: false, retryInMs: null, attempt: state.failures });
      sub.handleRefused(refused);
      // The app did not subscribe to `$users` itself, so it may listen on nothing but the client.
      if (sub === this.usersSub) this.emit('error', refused);
      return;
    }
    const delayMs = backoffDelay(state.failures - 1, this.subscribeRetry, this.opts.random);
    if (state.timer) clearTimeout(state.timer);
    const socket = this.socket;
    state.timer = setTimeout(() => {
      state.timer = null;
      // Superseded (unsubscribed, refused, or a new connection that resubscribes by itself): nothing to do.
      if (this.subs.get(sub.channel) !== sub || this.joinRetries.get(sub) !== state || this.socket !== socket || !this.isOpen()) return;
      this.sendJoin(sub);
    }, delayMs);
    this.joinRetries.set(sub, state);
    sub.handleError(new SubscriptionError(sub.channel, error, { willRetry: true, retryInMs: delayMs, attempt: state.failures }));
  }

  private sendPublish(item: QueuedPublish): void {
    const id = this.nextRequestId++;
    this.pending.add(id, item.timeoutMs, {
      tag: { kind: 'publish', item },
      onReply: (frame) => {
        const d = frame.data as { offset?: unknown; epoch?: unknown };
        item.resolve({ offset: typeof d.offset === 'number' ? d.offset : 0, epoch: typeof d.epoch === 'string' ? d.epoch : '' });
      },
      onFail: item.reject,
    });
    this.sendFrame({ type: 'publish', data: item.data, id });
  }

  /** A binary frame: a document message (`varstring channel + y-websocket message`). */
  private onBinary(bytes: Uint8Array): void {
    this.lastFrameAt = Date.now();
    this.documents.binary(bytes);
  }

  private sendBytes(frame: Uint8Array): boolean {
    const socket = this.socket;
    if (!socket || socket.readyState !== WS_OPEN) return false;
    try {
      socket.send(frame);
      this.binarySent++;
      return true;
    } catch {
      return false;
    }
  }

  private onText(text: string | null): void {
    this.lastFrameAt = Date.now();
    let frame: ServerFrame;
    try {
      if (text === null) throw new Error('non-text frame');
      frame = JSON.parse(text) as ServerFrame;
      if (!frame || typeof frame !== 'object' || typeof frame.type !== 'string') throw new Error('not a frame object');
    } catch (err) {
      this.emit('error', new SwitchboardError(ClientErrorCode.BAD_FRAME, `bad frame from server: ${String((err as Error).message)}`));
      return;
    }
    const batch = (frame as { messages?: unknown }).messages;
    if (frame.type === 'batch' && Array.isArray(batch)) {
      // Seed 002 batch frame (the `batch` option): its frames, in order, as if they had come one by one.
      for (const m of batch) {
        if (m && typeof m === 'object' && typeof (m as ServerFrame).type === 'string') this.onFrame(m as ServerFrame);
      }
      return;
    }
    this.onFrame(frame);
  }

  private onFrame(frame: ServerFrame): void {
    this.emit('frame', frame);
    if (frame.id !== undefined && frame.id !== null && this.pending.settle(frame)) return;
    this.route(frame);
    if (this.autoAckInbox && (frame as { inbox?: unknown }).inbox === true && typeof frame.message_id === 'string') {
      if (this.inboxAcks.length === 0) queueMicrotask(() => this.ackInbox(this.inboxAcks.splice(0)));
      this.inboxAcks.push(frame.message_id);
    }
  }

  /**
   * Answer server-to-client requests (`request` frames, e.g. from `hub.request(connectionId, method, params)`)
   * for `method`: the handler's return value (or resolved promise) becomes the `response` result; a throw
   * becomes `error: {code, message}` (`code` from the error's `code` property, else `CLIENT_ERROR`).
   * Requests for a method with no handler are answered `NOT_FOUND`. Returns a function removing the handler.
   */
  onRequest(method: string, handler: (params: Record<string, unknown>) => unknown): () => void {
    this.requestHandlers.set(method, handler);
    return () => {
      if (this.requestHandlers.get(method) === handler) this.requestHandlers.delete(method);
    };
  }

  private answerRequest(data: Record<string, unknown>): void {
    const requestId = data.request_id;
    if (typeof requestId !== 'string') return;
    const handler = typeof data.method === 'string' ? this.requestHandlers.get(data.method) : undefined;
    const reply = (body: Record<string, unknown>) => this.sendFrame({ type: 'response', data: { request_id: requestId, ...body } });
    if (handler === undefined) {
      reply({ error: { code: 'NOT_FOUND', message: `no handler for ${String(data.method)}` } });
      return;
    }
    const params = (data.params ?? {}) as Record<string, unknown>;
    Promise.resolve()
      .then(() => handler(params))
      .then(
        (result) => reply({ result: result ?? {} }),
        (err: unknown) => {
          const e = err as { code?: unknown; message?: unknown };
          reply({ error: { code: typeof e?.code === 'string' ? e.code : 'CLIENT_ERROR', message: typeof e?.message === 'string' ? e.message : String(err) } });
        },
      );
  }

  /**
   * Tell the server these offline-inbox frames (by `message_id`) were received, so they are not delivered
   * again on the next connect. Done automatically unless `autoAckInbox: false`. No-op while disconnected
   * (unacknowledged items are simply delivered again).
   */
  ackInbox(messageIds: readonly string[]): void {
    if (messageIds.length > 0 && this.isOpen()) this.sendFrame({ type: 'ack', data: { ids: [...messageIds] } });
  }

  private route(frame: ServerFrame): void {
    const data = (frame.data ?? {}) as Record<string, unknown>;
    switch (frame.type) {
      case 'connect':
        this.onConnected(data as unknown as ConnectFrameData);
        return;
      case 'ping':
        this.sendFrame({ type: 'pong' });
        return;
      case 'message': {
        const channel = typeof frame.channel === 'string' ? frame.channel : typeof data.channel === 'string' ? data.channel : '';
        const sub = this.subs.get(channel);
        let pub = sub ? sub.handlePublication(frame) : null;
        let routed = sub !== undefined;
        // Pattern subscriptions (`news:*`) matching the channel each see it too (the server sends it once).
        for (const p of this.patternSubs()) {
          if (!p.matches(channel)) continue;
          routed = true;
          pub = p.handlePublication(frame, channel) ?? pub;
        }
        if (!routed) pub = toPublication(channel, frame);
        if (pub) this.emit('message', pub);
        return;
      }
      case 'presence': {
        // Only announcements (a late reply to a `presence` request, after its timeout, lands here too).
        const p = data as unknown as PresenceFrameData;
        if (p.action !== 'joined' && p.action !== 'left') return;
        this.subs.get(p.channel ?? frame.channel ?? '')?.handlePresence(p);
        return;
      }
      case 'presence_diff': {
        const d = data as unknown as PresenceDiffFrameData;
        this.subs.get(typeof d.channel === 'string' ? d.channel : frame.channel ?? '')?.handlePresenceDiff(d, this.connection?.connection_id ?? null);
        return;
      }
      case 'presence_count': {
        const d = data as unknown as PresenceCountFrameData;
        if (typeof d.members === 'number') this.subs.get(typeof d.channel === 'string' ? d.channel : frame.channel ?? '')?.handleCount(d.members);
        return;
      }
      case 'replay_complete': {
        const channel = frame.channel ?? (data.channel as string | undefined) ?? '';
        const sub = this.subs.get(channel);
        if (sub) sub.handleReplayComplete(data);
        else for (const p of this.patternSubs()) if (p.matches(channel)) p.handleReplayComplete(data, channel);
        return;
      }
      case 'typing': {
        const channel = frame.channel ?? (data.channel as string | undefined) ?? '';
        this.subs.get(channel)?.handleTyping(data as unknown as TypingFrameData);
        return;
      }
      case 'private': {
        const pm: PrivateMessage = {
          from: frame.sender_id ?? null,
          to: frame.recipient_id ?? null,
          data,
          timestamp: frame.timestamp,
          messageId: frame.message_id,
          fromInbox: (frame as { inbox?: unknown }).inbox === true,
          frame,
        };
        this.emit('private', pm);
        return;
      }
      case 'broadcast':
        this.emit('broadcast', frame);
        return;
      case 'request':
        this.answerRequest(data);
        return;
      case 'notification':
        this.emit('notification', frame);
        return;
      case 'user_online':
      case 'user_offline':
        this.emit(frame.type, data as unknown as UserEventData);
        return;
      case 'users_diff': {
        // One event per user, as single frames would have given: offline first (in a batch the online
        // entries are usually the newer state, e.g. a user who reloaded the page), then online. The diff is
        // shared by every recipient and may name this connection's own user: skipped, as single frames are.
        const d = data as unknown as UsersDiffFrameData;
        const self = this.connection?.user_id ?? null;
        for (const [type, list] of [['user_offline', d.offline], ['user_online', d.online]] as const) {
          if (!Array.isArray(list)) continue;
          for (const u of list as UserEventData[]) if (u && typeof u === 'object' && (self === null || u.user_id !== self)) this.emit(type, u);
        }
        return;
      }
      case 'shutdown': {
        const after = data.reconnect_after_ms;
        if (typeof after === 'number' && after >= 0) this.shutdownHintMs = after;
        const ev: { reason: string; reconnect_after_ms?: number } = { reason: String(data.reason ?? '') };
        if (typeof after === 'number') ev.reconnect_after_ms = after;
        this.emit('shutdown', ev);
        return;
      }
      case 'doc_opened':
        if (typeof data.channel === 'string') this.documents.openedFrame(data as unknown as DocOpenedFrameData);
        return;
      case 'error': {
        const err = serverError(data);
        const channel = typeof data.channel === 'string' ? data.channel : frame.channel;
        if (channel) this.documents.error(channel, err);
        const sub = channel ? this.subs.get(channel) : undefined;
        if (sub) sub.handleError(new SubscriptionError(sub.channel, err, { willRetry: false, retryInMs: null, attempt: 0 }));
        this.emit('error', err);
        return;
      }
      default:
        return;
    }
  }

  private onConnected(info: ConnectFrameData): void {
    if (this.connectTimer) clearTimeout(this.connectTimer);
    this.connectTimer = null;
    this.info = info;
    this.attempt = 0;
    this.armLiveness();
    this.scheduleTokenRefresh();
    // Resubscribe first, then flush the offline queue, so queued publishes land after the joins. Every
    // subscription is joined now, so no join retry of an older connection may stay armed.
    const socket = this.socket;
    this.cancelJoinRetryTimers();
    for (const sub of this.subs.values()) this.sendJoin(sub);
    this.documentsOpening = true;
    try {
      this.documents.connected();
    } finally {
      this.documentsOpening = false;
    }
    for (const item of this.queue.drain()) this.sendPublish(item);
    if (this.socket !== socket) return;
    this.setStatus('connected');
    this.emit('connected', info);
  }

  /** Dead-connection detection: no frame (the server pings) for ping_interval_ms + pong_timeout_ms. */
  private armLiveness(): void {
    const info = this.info;
    if (!info || !(info.ping_interval_ms > 0)) return;
    const limit = info.ping_interval_ms + Math.max(0, info.pong_timeout_ms || 0);
    const socket = this.socket;
    const check = (): void => {
      this.livenessTimer = null;
      if (!socket || this.socket !== socket) return;
      const idle = Date.now() - this.lastFrameAt;
      if (idle >= limit) this.killSocket(socket, CLIENT_HEARTBEAT_CLOSE, `no ping from the server for ${idle} ms`);
      else this.livenessTimer = setTimeout(check, limit - idle);
    };
    this.livenessTimer = setTimeout(check, limit);
  }

  private scheduleTokenRefresh(): void {
    if (!this.opts.getToken || !this.token) return;
    const exp = jwtExpiry(this.token);
    if (exp === null) return;
    const delay = Math.max(1000, exp * 1000 - Date.now() - this.opts.tokenRefreshMarginMs);
    const socket = this.socket;
    this.refreshTimer = setTimeout(() => {
      this.refreshTimer = null;
      if (this.socket !== socket) return;
      void this.refreshToken();
    }, delay);
  }

  private async refreshToken(): Promise<void> {
    const socket = this.socket;
    try {
      const token = await this.opts.getToken!();
      if (typeof token !== 'string' || token === '') throw new Error('getToken() returned no token');
      this.token = token;
      if (this.socket !== socket) return;
      await this.request('refresh', { token });
      this.emit('token_refreshed', { expiresAt: jwtExpiry(token) });
    } catch (err) {
      this.emit('error', err instanceof SwitchboardError ? err : new SwitchboardError(ClientErrorCode.TOKEN_FETCH_FAILED, String((err as Error)?.message ?? err), err));
    }
    if (this.socket === socket && !this.refreshTimer) this.scheduleTokenRefresh();
  }
}

/**
 * Drop our handlers from a socket we are done with. `onerror` stays a no-op: Node's `ws` emits `error` when a
 * socket still CONNECTING is closed, and an `error` event without a listener is an uncaught exception.
 */
function detach(socket: WebSocketLike): void {
  socket.onmessage = socket.onclose = socket.onopen = null;
  socket.onerror = ignoreError;
}

function ignoreError(): void {}

function reportError(err: unknown): void {
  const g = globalThis as { reportError?: (e: unknown) => void };
  if (typeof g.reportError === 'function') g.reportError(err);
  else console.error('[switchboard] document handler threw', err);
}

function safeClose(socket: WebSocketLike, code: number, reason: string): void {
  try {
    socket.close(code, reason);
  } catch {
    try {
      socket.close();
    } catch {
      /* already closed */
    }
  }
}

function randomKey(): string {
  const c = (globalThis as { crypto?: { randomUUID?: () => string } }).crypto;
  if (c?.randomUUID) return c.randomUUID();
  return Date.now().toString(36) + Math.random().toString(36).slice(2) + Math.random().toString(36).slice(2);
}
