/**
 * The time scale threads-engine tests of a whole machine run at. In threads, virtual time is host time
 * divided by the time scale, so every modelled timeout is also a budget of host time: xenbus's
 * wait_for_devices gives a booting guest 30 s to connect its disks, which at 0.01 is 300 ms of real
 * time, and a CI host running test files in parallel on 2 cores can spend that before the frontends
 * are Connected (init then runs without disks: ENXIO). At 0.1 it is 3 s. Upper bounds on virtual time
 * are not asserted in threads at all (emulator/scenario/time-bounds.ts).
 */
export const THREADS_TIME_SCALE = 0.1;

/** Threads watchdog period (real ms): a stall is judged after this long without progress. */
export const THREADS_WATCHDOG_MS = 20;
