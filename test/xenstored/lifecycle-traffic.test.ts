import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { latin1Bytes, latin1String, XsFrameParser } from '../../drivers/xenbus/xs-wire.js';
import type { XenstoreConnection } from '../../emulator/xenstored/connection.js';
import { XenstoreDaemon } from '../../emulator/xenstored/daemon.js';

type Input =
  | { connect: number; domid: number; privileged: boolean; label?: string }
  | { disconnect: number }
  | { conn: number; bytes: string }
  | { conn: number; request: number; payload: string; text: boolean; tx: number; reqId: number };

const fixture = JSON.parse(
  readFileSync(new URL('./fixtures/lifecycle-traffic.json', import.meta.url), 'utf8'),
) as { inputs: Input[]; outputs: unknown[][] };

describe('xenstored answers a recorded guest lifecycle byte for byte as before', () => {
  it('replies, errors and watch events of every connection, in order', () => {
    const xs = new XenstoreDaemon();
    const conns = new Map<number, XenstoreConnection>();
    const out: unknown[][] = [];
    for (const e of fixture.inputs) {
      if ('connect' in e) {
        const parser = new XsFrameParser();
        const id = e.connect;
        const conn = xs.connect({
          domid: e.domid,
          privileged: e.privileged,
          label: e.label,
          send: (b) => {
            for (const m of parser.push(b)) out.push([id, m.type, m.reqId, m.txId, latin1String(m.payload)]);
            return true;
          },
        });
        conns.set(id, conn);
      } else if ('disconnect' in e) {
        xs.disconnect(conns.get(e.disconnect)!);
      } else if ('bytes' in e) {
        conns.get(e.conn)!.receive(latin1Bytes(e.bytes));
      } else {
        const payload = e.text ? e.payload : latin1Bytes(e.payload);
        const r = conns.get(e.conn)!.request(e.request, payload, e.tx, e.reqId);
        out.push([e.conn, 'request', r.type, latin1String(r.payload)]);
      }
    }
    expect(out.length).toBe(fixture.outputs.length);
    for (let i = 0; i < out.length; i++) expect(out[i], `output ${i}`).toEqual(fixture.outputs[i]);
    xs.checkStore();
  });
});
