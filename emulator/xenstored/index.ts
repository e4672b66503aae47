/** xenstored: the store, the wire protocol, connections and transports. */
export * from './client.js';
export * from './connection.js';
export * from './daemon.js';
export * from './layout.js';
export * from './paths.js';
export * from './perms.js';
export * from './quotas.js';
export * from './socket-server.js';
export * from './xs-wire.js';
