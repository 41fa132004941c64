// Latency histograms in shared memory, for /metrics: fixed buckets, one row per thread (the
// heartbeat slots' numbering: workers 0..n-1, then the coordinator, then the main thread). A
// thread adds to its own row only, without locks (as the counters, counters.ts); the main
// thread sums the rows at scrape time and exports Prometheus histograms.
//
//   row (ROW_DOUBLES, padded to cache lines plus a spare one, as counters.ts explains):
//   [ H_STORE_COMMIT: bucket counts (bounds.length + 1, the last is +Inf), sum, count ]
//   [ H_AUTH:         bucket counts ...,                                   sum, count ]
//
// Bucket counts are per bucket here (not cumulative): an observation is two adds and one
// increment; readHistogram makes them cumulative.

export interface HistogramSpec {
  readonly name: string;
  readonly help: string;
  /** Upper bounds in seconds, ascending. */
  readonly bounds: readonly number[];
}

export const HISTOGRAMS: readonly HistogramSpec[] = [
  {
    name: 'fleetmq_store_commit_duration_seconds',
    help: 'Time from a group commit\'s write to the store until it is durable (per --durability), per commit (the coordinator).',
    bounds: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
  },
  {
    name: 'fleetmq_auth_duration_seconds',
    help: 'Time a password check took on the main thread, from the worker\'s request to the verdict (queue wait and hash included; cache hits in a worker are not timed).',
    bounds: [0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
  },
];
export const H_STORE_COMMIT = 0;
export const H_AUTH = 1;

const offsets: number[] = [];
let used = 0;
for (const h of HISTOGRAMS) { offsets.push(used); used += h.bounds.length + 3; }
/** Row stride in doubles. */
export const ROW_DOUBLES = (Math.ceil((used * 8) / 64) + 1) * 8;

/** Rows for `workers` workers, the coordinator and the main thread. */
export function createHistograms(workers: number): SharedArrayBuffer {
  return new SharedArrayBuffer(8 * ROW_DOUBLES * (workers + 2));
}

/** One thread's writer into its own row. */
export class HistogramWriter {
  private readonly row: Float64Array;
  constructor(sab: SharedArrayBuffer, slot: number) {
    this.row = new Float64Array(sab, slot * ROW_DOUBLES * 8, ROW_DOUBLES);
  }

  observe(h: number, seconds: number): void {
    const bounds = HISTOGRAMS[h].bounds;
    const base = offsets[h];
    let i = 0;
    while (i < bounds.length && seconds > bounds[i]) i++;
    this.row[base + i] += 1;
    this.row[base + bounds.length + 1] += seconds;
    this.row[base + bounds.length + 2] += 1;
  }
}

export interface HistogramSnapshot {
  /** Cumulative counts per bound, then +Inf (= count). */
  cumulative: number[];
  sum: number;
  count: number;
}

/** Sums every row of `h`. */
export function readHistogram(sab: SharedArrayBuffer, h: number): HistogramSnapshot {
  const all = new Float64Array(sab);
  const rows = all.length / ROW_DOUBLES;
  const n = HISTOGRAMS[h].bounds.length;
  const base = offsets[h];
  const per = new Array<number>(n + 1).fill(0);
  let sum = 0;
  let count = 0;
  for (let r = 0; r < rows; r++) {
    const o = r * ROW_DOUBLES + base;
    for (let i = 0; i <= n; i++) per[i] += all[o + i];
    sum += all[o + n + 1];
    count += all[o + n + 2];
  }
  let acc = 0;
  const cumulative = per.map((v) => (acc += v));
  // Rows are written without locks: a scrape between a bucket's add and the count's may see
  // one more in a bucket; the format wants +Inf == _count, so the count is the bucket total.
  count = Math.max(acc, 0);
  return { cumulative, sum, count };
}
