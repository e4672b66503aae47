/** Table-driven protocol runner: each row is (actor, transaction, request, expected reply, events). */

import {
  latin1String,
  nulStrings,
  writePayload,
  XsType,
  type XsTypeName,
} from '../../drivers/xenbus/xs-wire.js';
import type { XenstoreConnection } from '../../emulator/xenstored/connection.js';
import { XenstoreDaemon, type XenstoreDaemonOptions } from '../../emulator/xenstored/daemon.js';

export interface Step {
  /** Actor name: "d0" is dom0; "gN" is guest domain N. */
  as: string;
  tx?: number;
  op: XsTypeName | number;
  args?: string[];
  /** Exact payload instead of args. */
  raw?: Uint8Array;
  /** Reply rendered with NUL as "|", or the errno name. */
  expect: string;
  /** Watch events each actor must have received during this step ("path|token"), in order. */
  events?: Record<string, string[]>;
}

export class ProtocolRig {
  readonly xs: XenstoreDaemon;
  readonly conns = new Map<string, XenstoreConnection>();
  readonly inbox = new Map<string, string[]>();

  constructor(options: XenstoreDaemonOptions = {}, actors: string[] = ['d0', 'g5', 'g6']) {
    this.xs = new XenstoreDaemon(options);
    for (const a of actors) this.add(a);
  }

  add(actor: string): XenstoreConnection {
    const domid = actor === 'd0' ? 0 : Number(actor.slice(1));
    const box: string[] = [];
    this.inbox.set(actor, box);
    const conn = this.xs.connect({
      domid,
      label: actor,
      send: (m) => {
        box.push(latin1String(m.subarray(16)).replace(/\0/g, '|').replace(/\|$/, ''));
        return true;
      },
    });
    this.conns.set(actor, conn);
    return conn;
  }

  payload(s: Step): Uint8Array {
    if (s.raw) return s.raw;
    const args = s.args ?? [];
    if (s.op === 'WRITE') return writePayload(args[0], args[1] ?? '');
    return nulStrings(...args);
  }

  run(s: Step): { reply: string; events: Record<string, string[]> } {
    for (const box of this.inbox.values()) box.length = 0;
    const conn = this.conns.get(s.as);
    if (!conn) throw new Error(`no actor ${s.as}`);
    const type = typeof s.op === 'number' ? s.op : XsType[s.op];
    const r = conn.request(type, this.payload(s), s.tx ?? 0);
    const reply = r.error ?? latin1String(r.payload).replace(/\0/g, '|');
    const events: Record<string, string[]> = {};
    for (const [a, box] of this.inbox) if (box.length) events[a] = [...box];
    return { reply, events };
  }
}

export function describeStep(s: Step, i: number): string {
  return `#${i} ${s.as}${s.tx ? ` tx${s.tx}` : ''} ${String(s.op)} ${(s.args ?? []).join(' ')} -> ${s.expect}`;
}
