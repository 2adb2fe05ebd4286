export { RedisBroker, type RedisBrokerOptions } from './redis-broker.js';
export { RedisPresenceStore, type RedisPresenceStoreOptions } from './redis-presence-store.js';
export { RedisNodeRegistry, type RedisNodeRegistryOptions, type NodeStats, type NodeInfo } from './node-registry.js';
export { BrokerUnavailableError, BROKER_UNAVAILABLE, type EngineErrorContext, type EngineErrorHandler } from './errors.js';
export { type RedisConnectionOptions, DEFAULT_KEY_PREFIX, DEFAULT_COMMAND_TIMEOUT_MS, parseSentinels } from './connection.js';
