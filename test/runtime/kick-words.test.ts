import { describe, expect, test } from 'vitest';
import {
  ASYNC,
  AWAKE,
  createKickBuffers,
  KickWatcher,
  kickCount,
  notePosted,
  resetKickWords,
  sharedKicker,
  sleepState,
} from '../../emulator/runtime/kick-words.js';

function setup(domid = 3) {
  const bufs = createKickBuffers();
  const kicks = new Int32Array(bufs.kicks);
  const present = new Int32Array(bufs.present);
  present[domid] = 1;
  resetKickWords(kicks, domid);
  const kicker = sharedKicker(kicks, present);
  const seen: number[] = [];
  let received = 0;
  const watcher = new KickWatcher(
    kicks,
    domid,
    (v) => seen.push(v),
    () => received,
  );
  return { kicks, kicker, watcher, seen, domid, receive: () => received++ };
}

describe('kick words', () => {
  test('kicks coalesce: one poll hands over the latest count once', () => {
    const { kicks, kicker, watcher, seen, domid } = setup();
    expect(watcher.poll()).toBe(false);
    kicker.kick(domid);
    kicker.kick(domid);
    kicker.kick(domid);
    expect(kickCount(kicks, domid)).toBe(3);
    expect(watcher.poll()).toBe(true);
    expect(watcher.poll()).toBe(false);
    expect(seen).toEqual([3]);
    expect(watcher.seen).toBe(3);
  });

  test.each([
    [-1, 'kick: no domain -1'],
    [7, 'kick: no domain 7'],
    [1.5, 'kick: no domain 1.5'],
    [0x7ff0, 'kick: no domain 32752'],
  ])('kicking domain %s is refused', (domid, message) => {
    const { kicker } = setup();
    expect(() => kicker.kick(domid)).toThrow(message);
  });

  test('block: a kick already there is taken without waiting, and the owner is AWAKE after', () => {
    const { kicks, kicker, watcher, seen, domid } = setup();
    kicker.kick(domid);
    expect(watcher.block(60_000)).toBe('kick');
    expect(seen).toEqual([1]);
    expect(sleepState(kicks, domid)).toBe(AWAKE);
  });

  test('block: a posted message not yet received sends the thread to its event loop at once', () => {
    const { kicks, watcher, domid, receive } = setup();
    notePosted(kicks, domid);
    expect(watcher.messagePending()).toBe(true);
    expect(watcher.block(60_000)).toBe('message');
    expect(sleepState(kicks, domid)).toBe(AWAKE);
    receive();
    expect(watcher.messagePending()).toBe(false);
  });

  test('block: nothing comes within the bound, so it times out', () => {
    const { watcher, seen } = setup();
    expect(watcher.block(1)).toBe('timeout');
    expect(seen).toEqual([]);
  });

  test('sleep: a kick that is already there is taken and the thread does not sleep', () => {
    const { kicks, kicker, watcher, seen, domid } = setup();
    kicker.kick(domid);
    expect(watcher.sleep()).toBe(true);
    expect(seen).toEqual([1]);
    expect(sleepState(kicks, domid)).toBe(AWAKE);
  });

  test('sleep: a later kick settles the waitAsync and is handed over; the watcher stays armed', async () => {
    const { kicks, kicker, watcher, seen, domid } = setup();
    expect(watcher.sleep()).toBe(false);
    expect(sleepState(kicks, domid)).toBe(ASYNC);
    for (let n = 1; n <= 3; n++) {
      const handed = new Promise<void>((resolve) => {
        const poll = () => (seen.length >= n ? resolve() : setTimeout(poll, 1));
        poll();
      });
      kicker.kick(domid);
      await handed;
      expect(seen).toEqual([1, 2, 3].slice(0, n));
      // Still asleep in the event loop: the next kick must be notified too.
      expect(sleepState(kicks, domid)).toBe(ASYNC);
    }
  });

  test('sleeping twice with a waitAsync outstanding still hands over every later kick', async () => {
    const { kicker, watcher, seen, domid } = setup();
    const handedOver = (n: number) =>
      new Promise<void>((resolve) => {
        const poll = () => (seen.length >= n ? resolve() : setTimeout(poll, 1));
        poll();
      });
    expect(watcher.sleep()).toBe(false);
    expect(watcher.sleep()).toBe(false);
    kicker.kick(domid);
    await handedOver(1);
    kicker.kick(domid);
    await handedOver(2);
    expect(seen).toEqual([1, 2]);
  });

  test('a watcher started from a baseline takes kicks that came before it at once', () => {
    const { kicks, kicker, domid } = setup();
    kicker.kick(domid);
    kicker.kick(domid);
    const got: number[] = [];
    const late = new KickWatcher(
      kicks,
      domid,
      (v) => got.push(v),
      () => 0,
      1,
    );
    expect(late.poll()).toBe(true);
    expect(got).toEqual([2]);
  });
});
