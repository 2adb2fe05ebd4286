import { ErrorCode } from '@switchboard/protocol';
import { shortId } from '../ids.js';

interface Pending {
  sessionId: string;
  resolve: (value: Record<string, unknown>) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

/** Error of a server-to-client request, with a registry code (TIMEOUT, NOT_FOUND, or the client's code). */
export class RequestError extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
  }
}

/**
 * Server-to-client requests (seed 002 request/response): the node sends `request` {request_id, method, params}
 * and the client answers `response` {request_id, result} or {request_id, error: {code, message}}.
 * One timer per outstanding request (they are rare); all are rejected when their session closes.
 */
export class PendingRequests {
  private readonly pending = new Map<string, Pending>();

  /** Register a request; returns its id and the promise of the answer. */
  open(sessionId: string, timeoutMs: number): { requestId: string; answer: Promise<Record<string, unknown>> } {
    const requestId = shortId(9);
    const answer = new Promise<Record<string, unknown>>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(requestId);
        reject(new RequestError(ErrorCode.TIMEOUT, `No response within ${timeoutMs} ms`));
      }, timeoutMs);
      timer.unref();
      this.pending.set(requestId, { sessionId, resolve, reject, timer });
    });
    return { requestId, answer };
  }

  /** A `response` arrived. Returns false if no such request is outstanding for this session. */
  settle(sessionId: string, data: Record<string, unknown>): boolean {
    const requestId = data.request_id as string;
    const p = this.pending.get(requestId);
    if (p === undefined || p.sessionId !== sessionId) return false;
    this.pending.delete(requestId);
    clearTimeout(p.timer);
    const error = data.error as { code?: unknown; message?: unknown } | undefined;
    if (error !== undefined && error !== null) {
      p.reject(new RequestError(typeof error.code === 'string' ? error.code : 'CLIENT_ERROR', typeof error.message === 'string' ? error.message : 'client error'));
    } else {
      p.resolve((data.result ?? {}) as Record<string, unknown>);
    }
    return true;
  }

  /** Reject every request of a closed session. */
  dropSession(sessionId: string): void {
    for (const [id, p] of this.pending) {
      if (p.sessionId !== sessionId) continue;
      this.pending.delete(id);
      clearTimeout(p.timer);
      p.reject(new RequestError(ErrorCode.NOT_FOUND, 'Connection closed before responding'));
    }
  }
}
