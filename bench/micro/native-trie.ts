// Native trie match rate (target, bench/README.md: ≥ 10M matches/s per core on 100K subscriptions
// with 10% wildcards, cached) and slab alloc/release. Matches run in batches of 64 topics per
// native call, as the broker does; a second thread churns (un)subscribes to show that
// matching takes no lock a writer can hold up (native/README.md).
//
//   node dist/bench/micro/native-trie.js      (or npm run bench:micro -- native)
//
// Figures are per topic matched (or per slab handle). "per core" divides by the CPU time of the
// matching thread (native.threadCpuNs), so other load on a shared machine distorts it less than
// wall-clock rates; tinybench is not used because its per-iteration bookkeeping would be a
// visible part of a 3 µs batch.
import { Worker, isMainThread, workerData } from 'node:worker_threads';
import { native } from '../../src/native';
import { Trie } from '../../src/trie';
import { createSlabBuffer, releaseWithAtomics } from '../../src/slab-layout';

const BATCH = 64;
const SITES = 100;
const DEVICES = 90;
const METRICS = 10;
const DISTINCT_TOPICS = 4096; // fits the per-thread cache (8192 entries)

/** 90K literal filters + 10K wildcard filters (1K `+`, 9K `#`) = 100K subscriptions. */
function populate(trie: Trie): number {
  let sub = 0;
  for (let s = 0; s < SITES; s++) {
    for (let d = 0; d < DEVICES; d++) {
      for (let m = 0; m < METRICS; m++) trie.subscribe(`dev/${s}/${d}/${m}`, sub++, 1);
      trie.subscribe(`dev/${s}/${d}/#`, sub++, 0);
    }
    for (let m = 0; m < METRICS; m++) trie.subscribe(`dev/${s}/+/${m}`, sub++, 0);
  }
  return sub;
}

/** All topics of a kind, packed in one buffer with (offset, length) spans, 64 per batch. */
function topicSet(kind: 'hit' | 'miss', n: number): { buf: Buffer; spans: Uint32Array[] } {
  const names = Array.from({ length: n }, (_, i) => {
    const s = i % SITES;
    const d = Math.floor(i / SITES) % DEVICES;
    return kind === 'hit' ? `dev/${s}/${d}/${i % METRICS}` : `dev/${s}/x${d}/z${i % 7}`;
  });
  const parts = names.map((t) => Buffer.from(t));
  const buf = Buffer.concat(parts);
  const spans: Uint32Array[] = [];
  let off = 0;
  for (let b = 0; b < n / BATCH; b++) {
    const sp = new Uint32Array(BATCH * 2);
    for (let i = 0; i < BATCH; i++) {
      const p = parts[b * BATCH + i]!;
      sp[2 * i] = off;
      sp[2 * i + 1] = p.length;
      off += p.length;
    }
    spans.push(sp);
  }
  return { buf, spans };
}

type Churn = { worker: Worker; ops: Int32Array; stop(): Promise<void> };

/** A thread that (un)subscribes `rate` ops/s (0 = as fast as it can) until stopped. */
function startChurn(trieId: number, rate: number): Churn {
  const shared = new SharedArrayBuffer(8);
  const worker = new Worker(__filename, { workerData: { trieId, rate, shared } });
  const ctl = new Int32Array(shared);
  return {
    worker,
    ops: ctl,
    async stop() {
      Atomics.store(ctl, 1, 1);
      await new Promise((resolve) => worker.once('exit', resolve));
    },
  };
}

function churnLoop(): void {
  const { trieId, rate, shared } = workerData as { trieId: number; rate: number; shared: SharedArrayBuffer };
  const ctl = new Int32Array(shared);
  const sleeper = new Int32Array(new SharedArrayBuffer(4));
  const STEP = 100;
  let i = 0;
  while (Atomics.load(ctl, 1) === 0) {
    const t0 = performance.now();
    for (let k = 0; k < STEP; k += 2, i++) {
      // Wildcard filters on the hot paths, so every change touches nodes readers walk.
      const f = i % 2 ? `dev/${i % SITES}/+/${i % METRICS}` : `dev/${i % SITES}/${i % DEVICES}/#`;
      native.trieSubscribe(trieId, f, 5_000_000 + (i % 1000), 0, 0);
      native.trieUnsubscribe(trieId, f, 5_000_000 + (i % 1000));
    }
    Atomics.add(ctl, 0, STEP);
    if (rate > 0) {
      const wait = (STEP / rate) * 1000 - (performance.now() - t0);
      if (wait > 0) Atomics.wait(sleeper, 0, 0, wait); // a dedicated bench thread may block
    }
  }
}

interface Row {
  task: string;
  'M/s per core (CPU)': number;
  'M/s wall': number;
  'ns/op (CPU)': number;
  'churn ops/s'?: number;
}

/**
 * Runs `fn` (which does `perCall` operations) in REPS rounds of ~ROUND_MS and reports the
 * median per-thread-CPU rate: other processes on a shared machine change wall-clock rates a
 * lot, CPU time much less. Wall rate is reported next to it.
 */
function measure(task: string, fn: () => void, perCall: number): Row {
  const REPS = 5;
  const ROUND_MS = 300;
  for (let i = 0; i < 2000; i++) fn(); // warm up JIT and caches
  const cpuRates: number[] = [];
  const wallRates: number[] = [];
  for (let r = 0; r < REPS; r++) {
    const c0 = native.threadCpuNs();
    const w0 = performance.now();
    let calls = 0;
    while (performance.now() - w0 < ROUND_MS) {
      for (let i = 0; i < 256; i++) fn();
      calls += 256;
    }
    const ops = calls * perCall;
    cpuRates.push(ops / ((native.threadCpuNs() - c0) / 1e9));
    wallRates.push(ops / ((performance.now() - w0) / 1e3));
  }
  const median = (a: number[]) => a.sort((x, y) => x - y)[a.length >> 1]!;
  const cpu = median(cpuRates);
  return {
    task,
    'M/s per core (CPU)': Number((cpu / 1e6).toFixed(2)),
    'M/s wall': Number((median(wallRates) / 1e6).toFixed(2)),
    'ns/op (CPU)': Number((1e9 / cpu).toFixed(1)),
  };
}

async function main(): Promise<void> {
  const trie = Trie.create();
  const t0 = performance.now();
  const subs = populate(trie);
  const buildMs = performance.now() - t0;
  const hit = topicSet('hit', DISTINCT_TOPICS);
  const miss = topicSet('miss', DISTINCT_TOPICS);
  let out = new Uint32Array(BATCH * 16);
  let cursor = 0;
  const matchBatch = (set: { buf: Buffer; spans: Uint32Array[] }, count = BATCH) => () => {
    const spans = set.spans[cursor++ % set.spans.length]!;
    const n = native.trieMatch(trie.id, set.buf, spans, count, out);
    if (n < 0) out = new Uint32Array(-n * 2);
  };

  const rows: Row[] = [];
  for (const cached of [true, false]) {
    trie.setCache(cached);
    const tag = cached ? 'cached' : 'uncached';
    rows.push(measure(`match hit, ${tag}, 64/call`, matchBatch(hit), BATCH));
    rows.push(measure(`match miss, ${tag}, 64/call`, matchBatch(miss), BATCH));
    rows.push(measure(`match hit, ${tag}, 1/call`, matchBatch(hit, 1), 1));
  }

  for (const rate of [10_000, 0]) {
    const label = rate ? `${rate / 1000}K ops/s` : 'unpaced';
    for (const cached of [true, false]) {
      trie.setCache(cached);
      const churn = startChurn(trie.id, rate);
      await new Promise((resolve) => setTimeout(resolve, 50)); // let it start
      const before = Atomics.load(churn.ops, 0);
      const start = performance.now();
      const row = measure(`match hit, ${cached ? 'cached' : 'uncached'}, 64/call, churn ${label}`, matchBatch(hit), BATCH);
      row['churn ops/s'] = Math.round(((Atomics.load(churn.ops, 0) - before) / (performance.now() - start)) * 1000);
      rows.push(row);
      await churn.stop();
    }
  }

  // Slab: one native call per batch of 64 handles; release natively or from JS with Atomics.
  const sab = createSlabBuffer();
  const me = native.slabAttach(new Uint8Array(sab));
  const words = new Int32Array(sab);
  const req = new Uint32Array(BATCH * 3);
  for (let i = 0; i < BATCH; i++) req.set([100, me < 32 ? 1 << me : 0, me >= 32 ? 1 << (me - 32) : 0], 3 * i);
  const slabOut = new Uint32Array(BATCH * 2);
  const handles = new Uint32Array(BATCH);
  rows.push(measure('slab alloc+release (native), 64/call', () => {
    const n = native.slabAlloc(req, BATCH, slabOut);
    for (let i = 0; i < n; i++) handles[i] = slabOut[2 * i]!;
    native.slabRelease(handles, n);
  }, BATCH));
  rows.push(measure('slab alloc (native) + release (JS Atomics)', () => {
    const n = native.slabAlloc(req, BATCH, slabOut);
    for (let i = 0; i < n; i++) releaseWithAtomics(words, slabOut[2 * i]!, me);
  }, BATCH));

  console.log(`native trie: ${subs} subscriptions (10% wildcards), built in ${buildMs.toFixed(0)} ms; ${JSON.stringify(trie.stats())}`);
  console.log(`hit topics match 3 filters each; ${DISTINCT_TOPICS} distinct topics per set; per-core = ops per CPU-second of the matching thread`);
  console.table(rows);
  trie.destroy();
}

if (isMainThread) {
  if (require.main === module) main().catch((err) => { console.error(err); process.exit(1); });
} else {
  churnLoop();
}
