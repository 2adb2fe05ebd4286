export * from './close-codes.js';
export * from './error-codes.js';
export * from './messages.js';
export * from './schemas.js';
