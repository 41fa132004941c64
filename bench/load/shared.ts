// Counters shared by the controller and the load threads in one SharedArrayBuffer. Threads
// add to them once per read chunk or write batch; the controller reads them at the window
// boundaries, so the measured window is cut at the same instant for every thread.
//
//   [0]                       phase (Phase)
//   [1 .. 1+T*STRIDE)         per thread: received, outOfOrder, published, completed, connects, errors
//   [.. +P)                   per publisher: messages sent
//   [.. +P)                   per publisher: deliveries seen by any subscriber (closed-loop feedback)

export const enum Phase { SETUP = 0, WARMUP = 1, MEASURE = 2, DRAIN = 3, DONE = 4 }

export const enum Stat { RECEIVED = 0, OUT_OF_ORDER = 1, PUBLISHED = 2, COMPLETED = 3, CONNECTS = 4, ERRORS = 5 }
const STRIDE = 6;

export interface SharedView {
  all: Int32Array;
  threads: number;
  publishers: number;
}

export function createShared(threads: number, publishers: number): SharedArrayBuffer {
  return new SharedArrayBuffer(4 * (1 + threads * STRIDE + 2 * publishers));
}

export function view(sab: SharedArrayBuffer, threads: number, publishers: number): SharedView {
  return { all: new Int32Array(sab), threads, publishers };
}

export function statIndex(thread: number, stat: Stat): number {
  return 1 + thread * STRIDE + stat;
}

export function sentIndex(v: SharedView, pub: number): number {
  return 1 + v.threads * STRIDE + pub;
}

export function seenIndex(v: SharedView, pub: number): number {
  return 1 + v.threads * STRIDE + v.publishers + pub;
}

export function sumStat(v: SharedView, stat: Stat): number {
  let total = 0;
  for (let t = 0; t < v.threads; t++) total += Atomics.load(v.all, statIndex(t, stat));
  return total;
}
