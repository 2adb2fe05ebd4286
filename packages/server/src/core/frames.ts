import { ErrorCode, isTemporaryError, type RequestId } from '@switchboard/protocol';
import { newId } from './ids.js';
import type { NodeMetrics, Logger } from './ports/observability.js';
import type { ConnectionSink } from './ports/sink.js';
import { Outbound } from './outbound.js';

/** Optional fields of a server frame beyond type and data. */
export interface FrameExtra {
  channel?: string | null;
  senderId?: string | null;
  recipientId?: string | null;
  id?: RequestId | undefined;
  messageId?: string;
}

/** Something frames can be queued on: a client (its sink). */
export interface FrameTarget {
  readonly id: string;
  readonly sink: ConnectionSink;
}

/**
 * Server frames in the seed 000 envelope, and the one place that turns failures into `error` frames
 * (every error frame says whether retrying can help: `temporary`).
 */
export class Frames {
  constructor(
    private readonly now: () => number,
    private readonly metrics: NodeMetrics,
    private readonly log: Logger,
  ) {}

  /** Serialize a server frame. */
  frame(type: string, data: Record<string, unknown>, extra: FrameExtra = {}): string {
    const f: Record<string, unknown> = {
      type,
      data,
      timestamp: new Date(this.now()).toISOString(),
      message_id: extra.messageId ?? newId(),
      sender_id: extra.senderId ?? null,
      recipient_id: extra.recipientId ?? null,
      channel: extra.channel ?? null,
    };
    if (extra.id !== undefined) f.id = extra.id;
    return JSON.stringify(f);
  }

  /** Queue a frame on one connection. */
  send(c: FrameTarget, type: string, data: Record<string, unknown>, extra: FrameExtra = {}): void {
    c.sink.send(new Outbound(this.frame(type, data, extra), type));
    this.metrics.messagesOut(type, 1);
  }

  /** Queue an `error` frame (code from the registry, its temporary flag, the request id). */
  error(c: FrameTarget, code: string, message: string, id: RequestId | undefined): void {
    this.metrics.errorSent(code);
    this.send(c, 'error', { code, message, temporary: isTemporaryError(code) }, { id });
  }

  /**
   * A command failed with an exception: BROKER_UNAVAILABLE (and other registry errors thrown on purpose,
   * see CommandError) keep their code; anything else is logged and answered INTERNAL.
   */
  fail(c: FrameTarget, id: RequestId | undefined, err: unknown): void {
    const code = (err as { code?: unknown } | null)?.code;
    if (code === ErrorCode.BROKER_UNAVAILABLE) {
      this.error(c, ErrorCode.BROKER_UNAVAILABLE, 'Broker unavailable, try again', id);
      return;
    }
    if (err instanceof CommandError) {
      this.error(c, err.code, err.message, id);
      return;
    }
    this.log.error({ err, connection_id: c.id }, 'request failed');
    this.error(c, ErrorCode.INTERNAL, 'Internal error', id);
  }
}

/** A command refused with a registry error code, thrown where returning early is awkward. */
export class CommandError extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
  }
}
