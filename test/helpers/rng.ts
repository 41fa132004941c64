// Seeded PRNG (mulberry32): the same seed gives the same sequence, so a randomized or fuzz
// failure reproduces from the seed it prints.

export class Rng {
  private s: number;
  constructor(readonly seed: number) { this.s = seed >>> 0; }
  /** A float in [0, 1). */
  next(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** An integer in [0, n). */
  int(n: number): number { return Math.floor(this.next() * n); }
  /** An integer in [lo, hi]. */
  range(lo: number, hi: number): number { return lo + this.int(hi - lo + 1); }
  pick<T>(xs: readonly T[]): T { return xs[this.int(xs.length)]; }
  bytes(n: number): Buffer { const b = Buffer.alloc(n); for (let i = 0; i < n; i++) b[i] = this.int(256); return b; }
  chance(p: number): boolean { return this.next() < p; }
}

/** FLEETMQ_SEED if set (to replay a failure), else a fresh seed (print it with the test). */
export function seedFromEnv(): number {
  const s = process.env.FLEETMQ_SEED;
  return s ? Number(s) : (Date.now() ^ (process.pid << 8)) >>> 0;
}
