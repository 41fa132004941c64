// Per-worker gauges that are not counters of events: open connections by transport (kept as
// connections open and close) and messages in flight and queued across the worker's sessions
// (sampled once a second from a timer: no work per message). Written by each worker in its own
// row, read by /metrics (src/http/metrics.ts); rows padded as counters.ts explains.
export const G_INFLIGHT = 0;
export const G_QUEUED = 1;
/** Open connections by transport: G_CONN_BASE + index in TRANSPORTS. */
export const G_CONN_BASE = 2;
export const TRANSPORTS = ['tcp', 'tls', 'websocket'] as const;
const USED = G_CONN_BASE + TRANSPORTS.length;
export const GAUGES_PER_WORKER = (Math.ceil((USED * 8) / 64) + 1) * 8;

export function createWorkerGauges(workers: number): SharedArrayBuffer {
  return new SharedArrayBuffer(8 * GAUGES_PER_WORKER * workers);
}

export function sumGauge(sab: SharedArrayBuffer, workers: number, g: number): number {
  const all = new Float64Array(sab);
  let s = 0;
  for (let w = 0; w < workers; w++) s += all[w * GAUGES_PER_WORKER + g];
  return s;
}

export function transportGauge(transport: string): number {
  const i = TRANSPORTS.indexOf(transport as (typeof TRANSPORTS)[number]);
  return G_CONN_BASE + (i < 0 ? 0 : i);
}
