/**
 * `xenpv`: the public protocol API — Xen's shared ring (ring.h), the blkif request/response codecs for
 * both ABIs, and blkback's request validation. See docs/protocol-api.md.
 */
export * from './drivers/blkif.js';
export * from './drivers/blkif-validate.js';
export * from './drivers/ring.js';
