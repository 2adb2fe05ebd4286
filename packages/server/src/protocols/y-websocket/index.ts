export { YWebsocketHandler, type YWebsocketOptions, type DocumentsPort } from './handler.js';
export { YWebsocketPeer } from './peer.js';
