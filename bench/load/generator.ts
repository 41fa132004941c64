// The load controller: spreads a plan over worker threads, runs warm-up → measured window →
// drain, and samples the broker (through `probe`) and its own CPU at exactly the instants the
// window opens and closes. Every wait is bounded; a broker that stalls or drops connections
// yields a result with `fault` set, never a hang.
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { mergeInto, newHistogram, percentilesMs } from './histogram';
import type { LoadPlan, PublisherSpec, SubscriberSpec, WorkerInit } from './plan';
import type { CpuJiffies } from '../proc';
import { createShared, Phase, sentIndex, SharedView, Stat, sumStat, view } from './shared';

export interface BrokerSample {
  cpuSeconds: number;
  /** The same CPU, apart: user space and kernel (utime, stime). */
  userSeconds: number;
  sysSeconds: number;
  rssKiB: number;
  /** Per-CPU busy time of the whole machine: shows what other processes took meanwhile. */
  machine: CpuJiffies;
}

export interface Sample {
  atMs: number;
  received: number;
  published: number;
  completed: number;
  connects: number;
  errors: number;
  loadCpuMicros: number;
  broker: BrokerSample;
}

export interface LoadTiming {
  threads: number;
  warmupMs: number;
  measureMs: number;
  /** Longest wait for in-flight messages after publishing stops. */
  drainMs: number;
}

export interface LoadResult {
  setupMs: number;
  beforeSetup: Sample;
  afterSetup: Sample;
  windowStart: Sample;
  windowEnd: Sample;
  /** Whole run, warm-up included: what was sent, what should have arrived, what did. */
  published: number;
  expected: number;
  received: number;
  lost: number;
  outOfOrder: number;
  latencyMs: { p50: number; p99: number; p999: number };
  fault?: string;
}

interface Thread {
  worker: Worker;
  inbox: Array<{ type: string; [k: string]: unknown }>;
  waiters: Array<() => void>;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function spawnThread(init: WorkerInit, onFault: (m: string) => void): Thread {
  const worker = new Worker(path.join(__dirname, 'worker.js'), { workerData: init });
  const t: Thread = { worker, inbox: [], waiters: [] };
  const wake = () => { for (const w of t.waiters.splice(0)) w(); };
  worker.on('message', (m: { type: string; message?: string }) => {
    if (m.type === 'fault') onFault(m.message ?? 'fault');
    else t.inbox.push(m);
    wake();
  });
  worker.on('error', (err) => { onFault(`load thread ${init.thread} crashed: ${err.message}`); t.inbox.push({ type: 'error', message: err.message }); wake(); });
  worker.on('exit', () => { t.inbox.push({ type: 'exit' }); wake(); });
  return t;
}

/** The next message of `type` from a thread, or an error after `ms`. */
async function expect(t: Thread, type: string, ms: number): Promise<{ [k: string]: unknown }> {
  const deadline = Date.now() + ms;
  for (;;) {
    const i = t.inbox.findIndex((m) => m.type === type || m.type === 'error' || m.type === 'exit');
    if (i >= 0) {
      const m = t.inbox.splice(i, 1)[0];
      if (m.type !== type) throw new Error(`load thread: ${String(m.message ?? m.type)}`);
      return m;
    }
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`load thread did not answer '${type}' within ${ms} ms`);
    await new Promise<void>((r) => { const timer = setTimeout(r, left); t.waiters.push(() => { clearTimeout(timer); r(); }); });
  }
}

function split<T>(items: readonly T[], threads: number, offset: number): T[][] {
  const out: T[][] = Array.from({ length: threads }, () => []);
  items.forEach((it, i) => out[(i + offset) % threads].push(it));
  return out;
}

function shares(total: number, threads: number): number[] {
  return Array.from({ length: threads }, (_, i) => Math.floor(total / threads) + (i < total % threads ? 1 : 0));
}

function take(v: SharedView, probe: () => BrokerSample): Sample {
  const cpu = process.cpuUsage();
  return {
    atMs: performance.now(),
    received: sumStat(v, Stat.RECEIVED),
    published: sumStat(v, Stat.PUBLISHED),
    completed: sumStat(v, Stat.COMPLETED),
    connects: sumStat(v, Stat.CONNECTS),
    errors: sumStat(v, Stat.ERRORS),
    loadCpuMicros: cpu.user + cpu.system,
    broker: probe(),
  };
}

function expectedDeliveries(plan: LoadPlan, v: SharedView): number {
  if (plan.kind !== 'pubsub') return 0;
  let sent = 0;
  for (let p = 0; p < v.publishers; p++) sent += Atomics.load(v.all, sentIndex(v, p));
  return sent * plan.fanout;
}

/**
 * Waits until every expected delivery (and QoS ack) arrived, progress stops for 2 s, or `ms`.
 * What has not arrived by then is reported lost; a broker that is merely seconds behind shows
 * up as latency first, and as loss only past this bound.
 */
async function drain(plan: LoadPlan, v: SharedView, ms: number): Promise<void> {
  if (plan.kind !== 'pubsub') return;
  const deadline = Date.now() + ms;
  let last = -1;
  let lastChange = Date.now();
  while (Date.now() < deadline) {
    const got = sumStat(v, Stat.RECEIVED) + sumStat(v, Stat.COMPLETED);
    const want = expectedDeliveries(plan, v) + (plan.qos > 0 ? sumStat(v, Stat.PUBLISHED) : 0);
    if (got >= want) return;
    if (got !== last) { last = got; lastChange = Date.now(); } else if (Date.now() - lastChange > 2000) return;
    await sleep(20);
  }
}

function buildInits(plan: LoadPlan, host: string, port: number, threads: number, sab: SharedArrayBuffer, pubCount: number): WorkerInit[] {
  const pubs: PublisherSpec[] = plan.kind === 'pubsub' ? plan.publishers : [];
  const subs: SubscriberSpec[] = plan.kind === 'pubsub' ? plan.subscribers : [];
  const idle = plan.kind === 'pubsub' ? plan.idle : plan.kind === 'idle' ? plan.count : 0;
  const pubSplit = split(pubs, threads, 0);
  // Offset so a pair's subscriber tends to sit on another thread than its publisher.
  const subSplit = split(subs, threads, 1);
  const idleSplit = shares(idle, threads);
  return Array.from({ length: threads }, (_, thread) => ({
    thread, threads, host, port, plan, shared: sab, publisherCount: pubCount,
    publishers: pubSplit[thread], subscribers: subSplit[thread], idle: idleSplit[thread],
  }));
}

export async function runLoad(plan: LoadPlan, host: string, port: number, timing: LoadTiming, probe: () => BrokerSample): Promise<LoadResult> {
  const pubCount = plan.kind === 'pubsub' ? plan.publishers.length : 0;
  const threads = Math.max(1, timing.threads);
  const sab = createShared(threads, pubCount);
  const v = view(sab, threads, pubCount);
  let fault: string | undefined;
  const onFault = (m: string) => { fault ??= m; };
  const inits = buildInits(plan, host, port, threads, sab, pubCount);
  const pool = inits.map((init) => spawnThread(init, onFault));
  try {
    await Promise.all(pool.map((t) => expect(t, 'online', 10000)));
    const idle = plan.kind === 'idle' ? plan.count : plan.kind === 'pubsub' ? plan.idle : 0;
    const beforeSetup = take(v, probe);
    pool.forEach((t) => t.worker.postMessage({ type: 'setup' }));
    await Promise.all(pool.map((t) => expect(t, 'ready', 30000 + idle * 5)));
    const setupMs = performance.now() - beforeSetup.atMs;
    if (plan.kind === 'idle') await sleep(1000); // let the broker finish per-connection work
    const afterSetup = take(v, probe);

    Atomics.store(v.all, 0, Phase.WARMUP);
    pool.forEach((t) => t.worker.postMessage({ type: 'start' }));
    if (plan.kind !== 'idle') await sleep(timing.warmupMs);
    const windowStart = take(v, probe);
    Atomics.store(v.all, 0, Phase.MEASURE);
    if (plan.kind !== 'idle') await sleep(timing.measureMs);
    Atomics.store(v.all, 0, Phase.DRAIN);
    const windowEnd = take(v, probe);
    await drain(plan, v, timing.drainMs);

    const histogram = newHistogram();
    pool.forEach((t) => t.worker.postMessage({ type: 'report' }));
    for (const t of pool) mergeInto(histogram, (await expect(t, 'report', 5000)).histogram as number[]);
    const [p50, p99, p999] = percentilesMs(histogram, [0.5, 0.99, 0.999]);
    const expected = expectedDeliveries(plan, v);
    const received = sumStat(v, Stat.RECEIVED);
    return {
      setupMs, beforeSetup, afterSetup, windowStart, windowEnd,
      published: sumStat(v, Stat.PUBLISHED), expected, received,
      lost: Math.max(0, expected - received), outOfOrder: sumStat(v, Stat.OUT_OF_ORDER),
      latencyMs: { p50, p99, p999 }, fault,
    };
  } finally {
    Atomics.store(v.all, 0, Phase.DONE);
    pool.forEach((t) => t.worker.postMessage({ type: 'close' }));
    await Promise.race([Promise.all(pool.map((t) => expect(t, 'exit', 2000).catch(() => undefined))), sleep(2500)]);
    await Promise.all(pool.map((t) => t.worker.terminate().catch(() => 0)));
  }
}
