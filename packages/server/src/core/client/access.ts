import { ErrorCode, type RequestId } from '@switchboard/protocol';
import type { CoreContext } from '../context.js';
import type { ChannelAction, Decision } from '../ports/hooks.js';
import type { Client } from './client.js';

/** Concrete channels whose pattern authorization a connection remembers. */
const PATTERN_AUTH_CACHE = 256;

const EVERYONE = (): boolean => true;
const NOBODY = (): boolean => false;

const DENIED_BY_FAILURE: Decision = { allowed: false, code: ErrorCode.INTERNAL, message: 'Authorization failed' };

/**
 * Access checks of client commands: channel names, and the application's authorization hooks. A decision
 * the hook returns synchronously is used synchronously (`true`/`false`); only a hook that returns a promise
 * makes the check a promise. A denial is answered with an `error` frame here; the caller just stops.
 */
export class Access {
  private readonly channelName: RegExp;

  constructor(private readonly ctx: Pick<CoreContext, 'options' | 'hooks' | 'frames' | 'log' | 'namespaces'>) {
    this.channelName = new RegExp(`^(?:${ctx.options.limits.channelNamePattern})$`);
  }

  /** Whether `channel` is a valid channel name (length and pattern). */
  isValidChannel(channel: string): boolean {
    return channel.length <= this.ctx.options.limits.maxChannelNameLength && this.channelName.test(channel);
  }

  /** Valid channel name (or a reserved channel, e.g. `$users`), or an INVALID_CHANNEL error frame and false. */
  checkChannel(c: Client, channel: string, id: RequestId | undefined): boolean {
    if (this.isValidChannel(channel) || this.ctx.namespaces.isReserved(channel)) return true;
    const l = this.ctx.options.limits;
    this.ctx.frames.error(c, ErrorCode.INVALID_CHANNEL, `Invalid channel name (max ${l.maxChannelNameLength} characters of ${l.channelNamePattern})`, id);
    return false;
  }

  /** A pattern name (`news:*`) whose prefix is made of channel-name characters, or an INVALID_CHANNEL frame. */
  checkPattern(c: Client, name: string, prefix: string, id: RequestId | undefined): boolean {
    if (prefix === '' || this.isValidChannel(prefix)) return true;
    this.ctx.frames.error(c, ErrorCode.INVALID_CHANNEL, `Invalid pattern "${name.slice(0, 200)}" (a channel-name prefix ending in ":", then "*")`, id);
    return false;
  }

  /**
   * Who may receive a publication of `channel` through a pattern: decided once per publication when the rules
   * give every connection the same answer (`channelDecisionForAll`), else per connection (patternAllows).
   */
  patternAudience(channel: string): (c: Client) => boolean {
    const hooks = this.ctx.hooks;
    if (hooks.authorizeChannel === undefined) return EVERYONE;
    const shared = hooks.channelDecisionForAll?.('subscribe', channel) ?? null;
    if (shared === null) return (c) => this.patternAllows(c, channel);
    const own = hooks.hasOwnChannelDecisions;
    if (own === undefined) return shared ? EVERYONE : NOBODY;
    return (c) => (own(c) ? this.patternAllows(c, channel) : shared);
  }

  /**
   * May the client receive publications of `channel` through its patterns? The channel rules for `subscribe`,
   * decided synchronously and cached per connection (bounded): a rule that needs an asynchronous hook answer
   * denies (subscribe to such channels by name). Refusals send nothing: the publication is just not delivered.
   */
  patternAllows(c: Client, channel: string): boolean {
    const hook = this.ctx.hooks.authorizeChannel;
    if (hook === undefined) return true;
    let cache = c.patternAuth;
    const known = cache?.get(channel);
    if (known !== undefined) return known;
    let allowed = false;
    try {
      const d = hook(c, 'subscribe', channel);
      if (d instanceof Promise) d.catch(() => undefined);
      else allowed = d.allowed;
    } catch (err) {
      this.ctx.log.error({ err }, 'authorization hook failed');
    }
    if (cache === null) c.patternAuth = cache = new Map();
    else if (cache.size >= PATTERN_AUTH_CACHE) cache.clear();
    cache.set(channel, allowed);
    return allowed;
  }

  /**
   * May the client perform `action` on `channel`? Sync when the hook answers synchronously. Nobody publishes
   * in a reserved channel (FORBIDDEN); joining one goes through the hook like any channel.
   */
  channel(c: Client, action: ChannelAction, channel: string, id: RequestId | undefined): boolean | Promise<boolean> {
    if (action === 'publish' && this.ctx.namespaces.isReserved(channel)) {
      this.ctx.frames.error(c, ErrorCode.FORBIDDEN, `"${channel}" is reserved: the server publishes in it`, id);
      return false;
    }
    const hook = this.ctx.hooks.authorizeChannel;
    if (hook === undefined) return true;
    return this.decide(c, id, () => hook(c, action, channel));
  }

  /** May the client send a private message to `recipient`? Default: allowed. */
  privateMessage(c: Client, recipient: string, id: RequestId | undefined): boolean | Promise<boolean> {
    const hook = this.ctx.hooks.authorizePrivate;
    if (hook === undefined) return true;
    return this.decide(c, id, () => hook(c, recipient));
  }

  /** May the client send a message of a permission-guarded type? Default: denied. */
  messageType(c: Client, type: string, id: RequestId | undefined): boolean | Promise<boolean> {
    const hook = this.ctx.hooks.authorizeType;
    if (hook === undefined) {
      this.ctx.frames.error(c, ErrorCode.FORBIDDEN, `${type} needs the admin:${type} permission`, id);
      return false;
    }
    return this.decide(c, id, () => hook(c, type));
  }

  private decide(c: Client, id: RequestId | undefined, ask: () => Decision | Promise<Decision>): boolean | Promise<boolean> {
    let d: Decision | Promise<Decision>;
    try {
      d = ask();
    } catch (err) {
      d = this.hookFailed(err);
    }
    if (d instanceof Promise) return d.then((x) => this.apply(c, id, x), (err: unknown) => this.apply(c, id, this.hookFailed(err)));
    return this.apply(c, id, d);
  }

  private apply(c: Client, id: RequestId | undefined, d: Decision): boolean {
    if (!d.allowed) this.ctx.frames.error(c, d.code, d.message, id);
    return d.allowed;
  }

  private hookFailed(err: unknown): Decision {
    this.ctx.log.error({ err }, 'authorization hook failed');
    return DENIED_BY_FAILURE;
  }
}

/** Continue with `next` once `check` allowed it; sync when the check was sync. */
export function whenAllowed(check: boolean | Promise<boolean>, next: () => void | Promise<void>): void | Promise<void> {
  if (check === true) return next();
  if (check === false) return;
  return check.then((ok) => (ok ? next() : undefined));
}
