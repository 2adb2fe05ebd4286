export { Switchboard, type SwitchboardOptions } from './server.js';
export { DEFAULT_CONFIG, mergeConfig, configFromEnv, readConfigFile, resolveConfig, loadConfig, type ConfigSources, type SwitchboardConfig, type DeepPartial } from './config.js';
export { ConfigError, type ConfigProblem } from './config-validate.js';
export { CONFIG_SCHEMA } from './config-schema.js';
export { Node, type NodeDeps, type NodeStats } from './core/node.js';
export type { ConnectionSummary } from './core/hub/hub.js';
export type { PublishRequest } from './core/features/publish.js';
export type { UserDelivery } from './core/features/direct.js';
export type { HistoryPage, HistoryRequest } from './core/features/history.js';
export type { Client } from './core/client/client.js';
export type { Broker, BrokerHandler, Publication, PublishOptions, HistoryQuery, HistoryResult, ControlMessage } from './core/ports/broker.js';
export type { PresenceStore, OnlineUsersPage } from './core/ports/presence-store.js';
export type { HubHooks, NodeHooks, ChannelAction, Decision, ConnectionInfo } from './core/ports/hooks.js';
export type { SessionIdentity, SessionInit, SessionPort, SessionHandle, SessionRejection, SlotReservation } from './core/ports/session-port.js';
export type { HandshakeAuthenticator, AuthOutcome, Endpoint, CredentialSource } from './core/ports/handshake.js';
export type { WsProtocolHandler, WsProtocolContext } from './core/ports/wire-protocol.js';
export type { EndpointConfig, EndpointsSection } from './config.js';
export { EndpointConfigError, RESERVED_CLIENT_IDS, type EndpointAuth } from './transport/endpoints.js';
export { SseTransport } from './transport/sse-transport.js';
export { Documents, type DocumentRefusal } from './core/features/documents.js';
export { DocumentSession, type DocumentPeer } from './core/features/documents-session.js';
export { DocumentFrame } from './core/features/documents-wire.js';
export { DEFAULT_DOCUMENT_OPTIONS, type DocumentOptions } from './core/document-options.js';
export type * from './core/ports/document-store.js';
export { YWebsocketHandler, type YWebsocketOptions } from './protocols/y-websocket/index.js';
export type { AuthHooks } from './auth/hooks.js';
export { MemoryBroker } from './broker/memory/memory-broker.js';
export { MemoryPresenceStore } from './broker/memory/memory-presence.js';
export * from '@switchboard/protocol';

/** @deprecated The hub was split: the public API is `Node` (`sb.node`). */
export type { Node as Hub } from './core/node.js';
/** @deprecated Hooks receive a `ConnectionInfo`. */
export type { ConnectionInfo as Session } from './core/ports/hooks.js';
/** @deprecated Renamed `NodeStats`. */
export type { NodeStats as HubStats } from './core/node.js';
