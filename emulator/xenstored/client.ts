/**
 * A typed, synchronous client over a daemon connection (the in-process counterpart of libxenstore's
 * xs_read/xs_write/...). Error replies throw XsError with the errno name.
 */

import {
  latin1String,
  nulStrings,
  splitNulStrings,
  utf8String,
  writePayload,
  XsType,
} from '../../drivers/xenbus/xs-wire.js';
import type { XenstoreConnection, XsReply } from './connection.js';
import { XsError } from './errors.js';
import { formatPerm, parsePerm, type XsPerm } from './perms.js';

export class XsClient {
  constructor(readonly conn: XenstoreConnection) {}

  private call(type: number, payload: Uint8Array, tx: number): XsReply {
    const r = this.conn.request(type, payload, tx);
    if (r.error) throw new XsError(r.error, `${latin1String(payload.subarray(0, 80)).replace(/\0/g, '|')}`);
    return r;
  }

  readBytes(path: string, tx = 0): Uint8Array {
    return this.call(XsType.READ, nulStrings(path), tx).payload;
  }

  /** The value as UTF-8 text (what write() of a string stores); readBytes() gives the raw bytes. */
  read(path: string, tx = 0): string {
    return utf8String(this.readBytes(path, tx));
  }

  /** read() that answers undefined for ENOENT. */
  tryRead(path: string, tx = 0): string | undefined {
    try {
      return this.read(path, tx);
    } catch (e) {
      if (e instanceof XsError && e.errno === 'ENOENT') return undefined;
      throw e;
    }
  }

  write(path: string, value: string | Uint8Array, tx = 0): void {
    this.call(XsType.WRITE, writePayload(path, value), tx);
  }

  mkdir(path: string, tx = 0): void {
    this.call(XsType.MKDIR, nulStrings(path), tx);
  }

  rm(path: string, tx = 0): void {
    this.call(XsType.RM, nulStrings(path), tx);
  }

  /** rm() that ignores ENOENT (the parent is missing too). */
  tryRm(path: string, tx = 0): void {
    try {
      this.rm(path, tx);
    } catch (e) {
      if (!(e instanceof XsError && e.errno === 'ENOENT')) throw e;
    }
  }

  directory(path: string, tx = 0): string[] {
    return splitNulStrings(this.call(XsType.DIRECTORY, nulStrings(path), tx).payload).strings;
  }

  getPerms(path: string, tx = 0): XsPerm[] {
    return splitNulStrings(this.call(XsType.GET_PERMS, nulStrings(path), tx).payload).strings.map(parsePerm);
  }

  setPerms(path: string, perms: readonly XsPerm[], tx = 0): void {
    this.call(XsType.SET_PERMS, nulStrings(path, ...perms.map(formatPerm)), tx);
  }

  watch(path: string, token: string): void {
    this.call(XsType.WATCH, nulStrings(path, token), 0);
  }

  unwatch(path: string, token: string): void {
    this.call(XsType.UNWATCH, nulStrings(path, token), 0);
  }

  transactionStart(): number {
    return Number(splitNulStrings(this.call(XsType.TRANSACTION_START, nulStrings(''), 0).payload).strings[0]);
  }

  /** Commit (true) or abort (false); throws XsError('EAGAIN') on a conflict. */
  transactionEnd(tx: number, commit: boolean): void {
    this.call(XsType.TRANSACTION_END, nulStrings(commit ? 'T' : 'F'), tx);
  }

  /** Run `body` in a transaction, redoing it from the start on EAGAIN, as Linux drivers and libxl do. */
  transaction<T>(body: (tx: number) => T, maxAttempts = 100): T {
    for (let attempt = 1; ; attempt++) {
      const tx = this.transactionStart();
      let result: T;
      try {
        result = body(tx);
      } catch (e) {
        this.transactionEnd(tx, false);
        throw e;
      }
      try {
        this.transactionEnd(tx, true);
        return result;
      } catch (e) {
        if (!(e instanceof XsError && e.errno === 'EAGAIN') || attempt >= maxAttempts) throw e;
      }
    }
  }
}
