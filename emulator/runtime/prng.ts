/**
 * sfc32 (Chris Doty-Humphrey's Small Fast Counting generator, 32-bit): four words of state, no
 * allocation per draw, good statistical quality for scheduling decisions and `env.random()`.
 */
export class Sfc32 {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number) {
    if (!Number.isFinite(seed)) throw new Error(`prng: seed must be a finite number, got ${seed}`);
    // Split a possibly >32-bit seed into two words; the counter starts at 1 as the reference does.
    this.a = 0x9e3779b9;
    this.b = seed >>> 0;
    this.c = Math.floor(seed / 0x1_0000_0000) >>> 0;
    this.d = 1;
    for (let i = 0; i < 12; i++) this.nextU32(); // mix the seed in before the first use
  }

  nextU32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    return this.nextU32() / 0x1_0000_0000;
  }

  /** Uniform integer in [0, n); n must be a positive integer below 2^32. */
  below(n: number): number {
    // Multiply-shift keeps it bias-small and branch-free; n is tiny (runnable tasks) in practice.
    return Math.floor((this.nextU32() * n) / 0x1_0000_0000);
  }
}
