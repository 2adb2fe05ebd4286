import type { RequestId, ServerFrame } from '@switchboard/protocol';
import { ClientErrorCode, serverError, SwitchboardError } from './errors.js';

/** What to do when the reply to one request arrives, fails or times out. Callbacks run synchronously. */
export interface PendingHandlers<Tag> {
  /** Reply frame (any type except `error`) carrying the request id. */
  onReply(frame: ServerFrame): void;
  /** `error` reply (SwitchboardError with the server code), timeout (TIMEOUT) or connection loss. */
  onFail(error: SwitchboardError): void;
  /** Free-form tag used by `takeWhere` (e.g. a publish that can be resent after a reconnect). */
  tag?: Tag;
}

interface Entry<Tag> extends PendingHandlers<Tag> {
  timer: ReturnType<typeof setTimeout> | null;
}

/**
 * Requests awaiting a reply, correlated by `id`. Each has its own timeout; a late reply after a timeout is
 * ignored (`settle` returns false).
 */
export class PendingRequests<Tag = unknown> {
  private readonly entries = new Map<RequestId, Entry<Tag>>();

  get size(): number {
    return this.entries.size;
  }

  has(id: RequestId): boolean {
    return this.entries.has(id);
  }

  /** Registers a request; `timeoutMs <= 0` or Infinity means no timeout. */
  add(id: RequestId, timeoutMs: number, handlers: PendingHandlers<Tag>): void {
    const entry: Entry<Tag> = { ...handlers, timer: null };
    if (timeoutMs > 0 && Number.isFinite(timeoutMs)) {
      entry.timer = setTimeout(() => {
        if (this.entries.get(id) !== entry) return;
        this.entries.delete(id);
        entry.onFail(new SwitchboardError(ClientErrorCode.TIMEOUT, `no reply to request ${String(id)} within ${timeoutMs} ms`));
      }, timeoutMs);
    }
    this.entries.set(id, entry);
  }

  /** Routes a reply frame to its request. Returns false if no request waits for this id. */
  settle(frame: ServerFrame): boolean {
    const id = frame.id;
    if (id === undefined || id === null) return false;
    const entry = this.entries.get(id);
    if (!entry) return false;
    this.entries.delete(id);
    if (entry.timer) clearTimeout(entry.timer);
    if (frame.type === 'error') {
      entry.onFail(serverError((frame.data ?? {}) as Record<string, unknown>, 'request failed'));
    } else {
      entry.onReply(frame);
    }
    return true;
  }

  /** Fails one request now (e.g. its frame could not be sent). */
  cancel(id: RequestId, error: SwitchboardError): void {
    const entry = this.entries.get(id);
    if (!entry) return;
    this.entries.delete(id);
    if (entry.timer) clearTimeout(entry.timer);
    entry.onFail(error);
  }

  /** Removes (without calling back) and returns the tags of entries matching `pred`. */
  takeWhere(pred: (tag: Tag | undefined) => boolean): Tag[] {
    const out: Tag[] = [];
    for (const [id, entry] of this.entries) {
      if (!pred(entry.tag)) continue;
      this.entries.delete(id);
      if (entry.timer) clearTimeout(entry.timer);
      out.push(entry.tag as Tag);
    }
    return out;
  }

  /** Fails every pending request with `error`. */
  failAll(error: SwitchboardError): void {
    const all = [...this.entries.values()];
    this.entries.clear();
    for (const entry of all) {
      if (entry.timer) clearTimeout(entry.timer);
      entry.onFail(error);
    }
  }
}
