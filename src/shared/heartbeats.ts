// One slot per thread (workers, the coordinator, the main thread) in a SharedArrayBuffer: each
// thread writes its own slot from a one-second timer, never from the message path; the main
// thread reads them for /livez and /metrics (src/http/). A thread whose heartbeat stops moving
// has a stuck event loop (or is gone); the loop's delay and utilization say how busy it is.
import { monitorEventLoopDelay, performance, type EventLoopUtilization } from 'node:perf_hooks';

/** A slot is one cache line of doubles; written once a second, so sharing is harmless anyway. */
export const SLOT = 8;
/** When the thread last beat, ms on the process's monotonic clock (0: not started yet). */
export const HB_AT = 0;
/** Event-loop delay over the last interval beyond the sampling timer's own period, ms: p99 and max. */
export const HB_DELAY_P99 = 1;
export const HB_DELAY_MAX = 2;
/** Fraction of the last interval the loop spent running callbacks (0..1). */
export const HB_UTILIZATION = 3;
/** Heartbeats written by this thread since it started (a replacement worker starts again at 1). */
export const HB_BEATS = 4;

export const HEARTBEAT_MS = 1000;
/** A thread whose heartbeat is older than this is stale (/livez answers 503 naming it). */
export const STALE_AFTER_MS = 5 * HEARTBEAT_MS;
/**
 * monitorEventLoopDelay samples with a timer of this period and records the time between its
 * ticks, so every sample is at least this long (Node's perf_hooks docs); it is subtracted. 20 ms
 * (Node's default is 10) halves the wake-ups an idle thread pays for the measurement.
 */
const DELAY_RESOLUTION_MS = 20;

/** Slots: workers 0..n-1, then the coordinator, then the main thread. */
export const coordinatorSlot = (workers: number): number => workers;
export const mainSlot = (workers: number): number => workers + 1;
export const threadCount = (workers: number): number => workers + 2;

export function createHeartbeats(workers: number): SharedArrayBuffer {
  return new SharedArrayBuffer(8 * SLOT * threadCount(workers));
}

/** The process-wide monotonic clock (libuv's hrtime) in ms: the same in every thread, unlike Date.now() immune to clock steps. */
export function monotonicMs(): number {
  const [s, ns] = process.hrtime();
  return s * 1e3 + ns / 1e6;
}

/**
 * Starts this thread's heartbeat in `slot`: a first beat at once, then one per HEARTBEAT_MS from
 * an unref'd timer (it never keeps a thread alive). Returns a function that stops it.
 */
export function startHeartbeat(sab: SharedArrayBuffer, slot: number): () => void {
  const row = new Float64Array(sab, slot * SLOT * 8, SLOT);
  const delay = monitorEventLoopDelay({ resolution: DELAY_RESOLUTION_MS });
  delay.enable();
  let elu: EventLoopUtilization = performance.eventLoopUtilization();
  let beats = 0;
  const beat = (): void => {
    const now = performance.eventLoopUtilization();
    row[HB_UTILIZATION] = performance.eventLoopUtilization(now, elu).utilization;
    elu = now;
    if (delay.count > 0) {
      // Nanoseconds; NaN / Infinity cannot come from a histogram with samples.
      row[HB_DELAY_P99] = Math.max(0, delay.percentile(99) / 1e6 - DELAY_RESOLUTION_MS);
      row[HB_DELAY_MAX] = Math.max(0, delay.max / 1e6 - DELAY_RESOLUTION_MS);
    }
    delay.reset();
    row[HB_BEATS] = ++beats;
    row[HB_AT] = monotonicMs();
  };
  row[HB_DELAY_P99] = 0;
  row[HB_DELAY_MAX] = 0;
  beat();
  const timer = setInterval(beat, HEARTBEAT_MS);
  timer.unref();
  return () => { clearInterval(timer); delay.disable(); };
}

/** What the main thread reads of one thread's slot. */
export interface ThreadBeat {
  /** ms since the last heartbeat; null: the thread never beat (still starting). */
  ageMs: number | null;
  delayP99Ms: number;
  delayMaxMs: number;
  utilization: number;
}

export function readHeartbeat(sab: SharedArrayBuffer, slot: number, nowMs = monotonicMs()): ThreadBeat {
  const row = new Float64Array(sab, slot * SLOT * 8, SLOT);
  const at = row[HB_AT];
  return {
    ageMs: at === 0 ? null : Math.max(0, nowMs - at),
    delayP99Ms: row[HB_DELAY_P99],
    delayMaxMs: row[HB_DELAY_MAX],
    utilization: row[HB_UTILIZATION],
  };
}
