/**
 * One worker's status in shared memory, read by the main thread's watchdog: a seqlock (odd while the
 * owner writes) over a few counters and a JSON snapshot of the worker's blocked parties. Only the owner
 * writes; readers retry until they see the same even sequence number before and after reading.
 */
import type { WaitNode } from './waitgraph.js';

/** A blocked party as a worker publishes it; holders are labels resolved at publish time. */
export interface SnapshotNode extends WaitNode {
  label: string;
  /** 'wait' | 'lock' | 'sleep' | 'background' for tasks, 'holder' for other parties. */
  kind: string;
  daemon: boolean;
  /** Task id within its domain (deadlock reports start at the lowest blocked non-daemon task). */
  id?: number;
}

export interface SlotStatus {
  /** Task switches plus messages handled: changes whenever the worker does anything. */
  progress: number;
  /** 1 when no task is runnable (the worker waits for a timer, a kick or a message). */
  idle: number;
  /** The kick-word value the worker last consumed. */
  kickSeen: number;
  /** Messages the worker has posted to, and received from, the main thread. */
  sent: number;
  received: number;
}

export interface Snapshot extends SlotStatus {
  nodes: SnapshotNode[];
}

const SEQ = 0;
const PROGRESS = 1;
const IDLE = 2;
const KICK_SEEN = 3;
const SENT = 4;
const RECEIVED = 5;
const SNAP_PROGRESS = 6;
const SNAP_LENGTH = 7;
const HEADER_BYTES = 64;

export const DEFAULT_SLOT_BYTES = 256 * 1024;

export class StatusSlot {
  private readonly words: Int32Array;
  private readonly bytes: Uint8Array;

  constructor(readonly buffer: SharedArrayBuffer) {
    this.words = new Int32Array(buffer, 0, HEADER_BYTES / 4);
    this.bytes = new Uint8Array(buffer, HEADER_BYTES);
  }

  static create(bytes = DEFAULT_SLOT_BYTES): StatusSlot {
    return new StatusSlot(new SharedArrayBuffer(HEADER_BYTES + bytes));
  }

  /** Counters only (cheap; done each time the worker goes idle or wakes). */
  writeStatus(s: SlotStatus): void {
    const w = this.words;
    Atomics.add(w, SEQ, 1);
    this.counters(s);
    Atomics.add(w, SEQ, 1);
  }

  /** The counters, written between the two SEQ increments of a writer. */
  private counters(s: SlotStatus): void {
    const w = this.words;
    w[PROGRESS] = s.progress;
    w[IDLE] = s.idle;
    w[KICK_SEEN] = s.kickSeen;
    w[SENT] = s.sent;
    w[RECEIVED] = s.received;
  }

  setIdle(idle: number): void {
    Atomics.store(this.words, IDLE, idle);
  }

  /** Counters and the blocked parties, valid for `progress`. */
  writeSnapshot(s: Snapshot): void {
    let json = new TextEncoder().encode(JSON.stringify(s.nodes));
    if (json.length > this.bytes.length) {
      // Too many blocked parties to publish: say so rather than publish a cut graph.
      json = new TextEncoder().encode(JSON.stringify([{ label: '(snapshot overflow)', kind: 'overflow' }]));
    }
    const w = this.words;
    Atomics.add(w, SEQ, 1);
    this.counters(s);
    this.bytes.set(json, 0);
    w[SNAP_LENGTH] = json.length;
    w[SNAP_PROGRESS] = s.progress;
    Atomics.add(w, SEQ, 1);
  }

  /** A consistent read; `nodes` is undefined when the published snapshot is older than `progress`. */
  read(): SlotStatus & { nodes: SnapshotNode[] | undefined } {
    const w = this.words;
    for (;;) {
      const s1 = Atomics.load(w, SEQ);
      if (s1 & 1) continue;
      const status = {
        progress: w[PROGRESS],
        idle: w[IDLE],
        kickSeen: w[KICK_SEEN],
        sent: w[SENT],
        received: w[RECEIVED],
      };
      const snapProgress = w[SNAP_PROGRESS];
      const len = w[SNAP_LENGTH];
      const raw = snapProgress === status.progress && len > 0 ? this.bytes.slice(0, len) : undefined;
      if (Atomics.load(w, SEQ) !== s1) continue;
      const nodes =
        raw === undefined ? undefined : (JSON.parse(new TextDecoder().decode(raw)) as SnapshotNode[]);
      return { ...status, nodes };
    }
  }
}
