// Latency histogram with logarithmic buckets (16 per power of two, ~4.4% resolution) from 1 µs
// to ~68 s. Fixed size and plain counters, so each worker thread records without allocating
// and the controller merges them by adding arrays.

const SUB_BUCKETS = 16;
export const HISTOGRAM_BUCKETS = SUB_BUCKETS * 36;

export function bucketOf(micros: number): number {
  if (micros < 1) return 0;
  const b = Math.floor(Math.log2(micros) * SUB_BUCKETS);
  return b >= HISTOGRAM_BUCKETS ? HISTOGRAM_BUCKETS - 1 : b;
}

/** Upper bound of a bucket in µs: percentiles err on the slow side. */
export function bucketUpperMicros(b: number): number {
  return Math.pow(2, (b + 1) / SUB_BUCKETS);
}

export function newHistogram(): Float64Array {
  return new Float64Array(HISTOGRAM_BUCKETS);
}

export function mergeInto(into: Float64Array, from: ArrayLike<number>): void {
  for (let i = 0; i < into.length; i++) into[i] += from[i];
}

/** Percentiles in milliseconds, NaN when nothing was recorded. */
export function percentilesMs(h: Float64Array, qs: readonly number[]): number[] {
  let total = 0;
  for (let i = 0; i < h.length; i++) total += h[i];
  if (total === 0) return qs.map(() => NaN);
  return qs.map((q) => {
    const rank = Math.ceil(q * total);
    let seen = 0;
    for (let i = 0; i < h.length; i++) {
      seen += h[i];
      if (seen >= rank) return bucketUpperMicros(i) / 1000;
    }
    return bucketUpperMicros(h.length - 1) / 1000;
  });
}
