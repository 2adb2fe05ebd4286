import type { StoreErrorCode } from '../core/ports/store.js';

/** The only error type store implementations reject with. `cause` keeps the driver's original error. */
export class StoreError extends Error {
  readonly code: StoreErrorCode;
  constructor(code: StoreErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StoreError';
    this.code = code;
  }
}

export function isStoreError(err: unknown): err is StoreError {
  return err instanceof StoreError;
}

/** Wrap an unknown driver error as STORE_UNAVAILABLE unless it already is a StoreError. */
export function toStoreError(err: unknown, what: string): StoreError {
  if (err instanceof StoreError) return err;
  const detail = err instanceof Error ? err.message : String(err);
  return new StoreError('STORE_UNAVAILABLE', `${what}: ${detail}`, { cause: err });
}
