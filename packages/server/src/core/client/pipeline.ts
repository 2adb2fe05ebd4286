import { CloseCode, ErrorCode, type RequestId } from '@switchboard/protocol';
import type { CoreContext } from '../context.js';
import type { Client } from './client.js';
import { InboundParser, type Command } from './inbound.js';
import { takeToken } from './rate-limit.js';

/** Runs one command; returns a promise only when the command has to wait (then later ones wait for it). */
export type Execute = (c: Client, cmd: Command) => void | Promise<void>;

/** Commands that may overtake a running command: they change no state the queue protects. */
const PASSING = new Set<string>(['ping', 'pong', 'heartbeat', 'response']);
/** Commands that draw from the subscription bucket instead of the message bucket. */
const SUBSCRIPTION = new Set<string>(['join_channel', 'leave_channel']);

/**
 * A connection's inbound path: parse -> rate limit -> ORDERED dispatch.
 *
 * Commands take effect in the order received. A command that completes synchronously (the usual case for a
 * publish decided by a synchronous rule until the broker call) costs no queue; when a command returns a
 * promise, the commands behind it wait in `client.queue` (bounded by limits.maxPendingCommands) and run one
 * at a time as each finishes. ping, pong, heartbeat and response pass the queue. No closure, promise or
 * timer exists per connection at rest: `queue` is null. A flood (closeAfterDropped refusals in a row) closes
 * with 4021 once the running command has replied; the waiting ones are dropped unapplied (closeFlooded).
 */
export class CommandPipeline {
  private readonly parser: InboundParser;

  constructor(
    private readonly ctx: Pick<CoreContext, 'options' | 'frames' | 'metrics' | 'now'>,
    private readonly execute: Execute,
  ) {
    this.parser = new InboundParser(ctx.options.limits.maxJsonDepth);
  }

  /** One text frame from the client. Never throws. */
  text(c: Client, text: string): void {
    if (c.closed || c.floodClosing) return;
    const now = this.ctx.now();
    c.lastSeen = now;
    c.pingSentAt = 0;
    const parsed = this.parser.parse(text);
    const limits = this.ctx.options.limits;
    if ('code' in parsed) {
      // Bad input costs a message token like any frame: a flood of garbage is throttled and closed (4021) too.
      this.ctx.metrics.messageIn('invalid', text.length);
      const rate = limits.rateLimit;
      if (!takeToken(c, false, now, rate.perSecond, rate.burst)) this.refuse(c, parsed.id, `Rate limit of ${rate.perSecond} messages/s exceeded`);
      else this.ctx.frames.error(c, parsed.code, parsed.message, parsed.id);
      return;
    }
    this.ctx.metrics.messageIn(parsed.type, text.length);
    if (parsed.type === 'pong' && parsed.id === undefined) return; // a sign of life: nothing to answer
    this.accept(c, parsed, now);
  }

  /**
   * A command that came as a binary frame (a binary app publish, core/client/binary-frames.ts): the same
   * rate limit, pending bound and order as a text frame's command. Never throws.
   */
  binary(c: Client, cmd: Command, bytes: number): void {
    if (c.closed || c.floodClosing) return;
    this.ctx.metrics.messageIn(`${cmd.type}_binary`, bytes);
    this.accept(c, cmd, this.ctx.now());
  }

  /** Rate limit, then run now or queue behind the running command. */
  private accept(c: Client, parsed: Command, now: number): void {
    const limits = this.ctx.options.limits;
    const subscription = SUBSCRIPTION.has(parsed.type);
    const rate = subscription ? limits.subscribeRateLimit : limits.rateLimit;
    if (!takeToken(c, subscription, now, rate.perSecond, rate.burst)) {
      this.refuse(c, parsed.id, subscription ? `Rate limit of ${rate.perSecond} joins/leaves per second exceeded` : `Rate limit of ${rate.perSecond} messages/s exceeded`);
      return;
    }
    if (parsed.type !== 'ping' && parsed.type !== 'pong' && parsed.type !== 'heartbeat') c.lastActivity = now;
    if (c.queue !== null && !PASSING.has(parsed.type)) {
      if (c.queue.length >= limits.maxPendingCommands) {
        this.refuse(c, parsed.id, `More than ${limits.maxPendingCommands} commands waiting; slow down`);
        return;
      }
      c.dropped = 0;
      c.queue.push(parsed);
      return;
    }
    c.dropped = 0;
    this.run(c, parsed);
  }

  /** Queue a command on the server's initiative (a join from the URL or SSE), behind the client's own. */
  enqueue(c: Client, cmd: Command): void {
    if (c.closed || c.floodClosing) return;
    if (c.queue !== null) c.queue.push(cmd);
    else this.run(c, cmd);
  }

  /** A command refused by a limiter: RATE_LIMITED, or close 4021 after closeAfterDropped in a row. */
  private refuse(c: Client, id: RequestId | undefined, message: string): void {
    c.dropped += 1;
    if (c.dropped >= this.ctx.options.limits.rateLimit.closeAfterDropped) this.closeFlooded(c);
    else this.ctx.frames.error(c, ErrorCode.RATE_LIMITED, message, id);
  }

  /**
   * Close a flooding connection with 4021 without leaving an applied command unacknowledged. The command
   * running now may already be applied (a publish at the broker, delivered to others): the close waits until
   * it has replied, so its `ok` goes out before the close frame (the sink flushes queued frames first). The
   * commands waiting behind it are dropped unapplied and unanswered, and nothing more is taken. So after a
   * 4021, every command without a reply was not applied and can be retried as is.
   */
  private closeFlooded(c: Client): void {
    c.floodClosing = true; // nothing more is taken from this connection
    if (c.queue === null) {
      c.sink.close(CloseCode.RATE_LIMITED, 'rate limit exceeded');
      return;
    }
    c.queue.length = 0;
  }

  private run(c: Client, cmd: Command): void {
    const pending = this.start(c, cmd);
    if (pending === undefined) return;
    c.queue = [];
    void this.drain(c, cmd.id, pending);
  }

  /** Await the running command, then run the queued ones in order until the queue is empty. */
  private async drain(c: Client, id: RequestId | undefined, pending: Promise<void>): Promise<void> {
    for (;;) {
      try {
        await pending;
      } catch (err) {
        if (!c.closed) this.ctx.frames.fail(c, id, err);
      }
      let next: Promise<void> | undefined;
      while (next === undefined) {
        const cmd = c.closed || c.floodClosing ? undefined : c.queue!.shift();
        if (cmd === undefined) {
          c.queue = null;
          if (c.floodClosing && !c.closed) c.sink.close(CloseCode.RATE_LIMITED, 'rate limit exceeded');
          return;
        }
        id = cmd.id;
        next = this.start(c, cmd);
      }
      pending = next;
    }
  }

  /** Run a command; synchronous failures are answered here. Returns the promise of a command that waits. */
  private start(c: Client, cmd: Command): Promise<void> | undefined {
    try {
      return this.execute(c, cmd) ?? undefined;
    } catch (err) {
      this.ctx.frames.fail(c, cmd.id, err);
      return undefined;
    }
  }
}
