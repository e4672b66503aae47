/**
 * A transaction: a private fork of the store taken at TRANSACTION_START (snapshot isolation), the
 * generation each accessed node had in that snapshot (-1 = absent), and the log of modifying requests
 * to replay on the live store at commit. Commit succeeds only if every accessed node still has the
 * generation seen here; otherwise EAGAIN (tools/xenstored/transaction.c).
 */
import type { XsPerm } from './perms.js';
import type { NodeStore } from './store.js';

export type TxOp =
  | { kind: 'write'; name: string; value: Uint8Array }
  | { kind: 'mkdir'; name: string }
  | { kind: 'rm'; name: string }
  | { kind: 'setperms'; name: string; perms: XsPerm[] };

export const ABSENT_GENERATION = -1;

export class XsTransaction {
  readonly accessed = new Map<string, number>();
  readonly ops: TxOp[] = [];
  /** Set when a write failed half-way (C: fail_transaction); commit then answers ENOMEM. */
  failed = false;

  constructor(
    readonly id: number,
    readonly store: NodeStore,
    readonly startGeneration: number,
  ) {}
}
