/** The dom0/domU kernel model's public surface. */
export * from './block-device.js';
export * from './char-device.js';
export * from './errno.js';
export * from './eventfd.js';
export * from './file.js';
export * from './glob.js';
export * from './image-disk.js';
export * from './kernel.js';
export * from './namespace.js';
export * from './poll.js';
export * from './process.js';
export * from './procfs.js';
export * from './signals.js';
export * from './special-files.js';
export * from './sysfs.js';
export * from './unix-socket.js';
export * from './waits.js';
