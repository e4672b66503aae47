/** xenstored: the store, connections and transports. The wire codec is drivers/xenbus/xs-wire.ts. */
export * from './client.js';
export * from './connection.js';
export * from './daemon.js';
export * from './errors.js';
export * from './layout.js';
export * from './paths.js';
export * from './perms.js';
export * from './quotas.js';
export * from './ring-transport.js';
export * from './socket-server.js';
export * from './store-channels.js';
