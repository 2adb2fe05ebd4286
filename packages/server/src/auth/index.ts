/** Public surface of the auth layer (see docs/security.md). */
export * from './config.js';
export * from './failures.js';
export * from './identity.js';
export * from './hooks.js';
export { createJwtVerifier, type JwtVerifier, type JwtResult, type JwtVerifierOptions } from './jwt.js';
export * from './token-source.js';
export * from './origin.js';
export * from './ed25519.js';
export * from './channel-rules.js';
export * from './authenticator.js';
