export type * from '../core/ports/store.js';
export type * from '../core/ports/document-store.js';
export { StoreError, isStoreError } from './errors.js';
export { createStores, DEFAULT_SQLITE_PATH, type StoreConfig, type StoreDriver, type Stores } from './factory.js';
export { startRetention, type Retention, type RetentionOptions } from './retention.js';
