// The shared word every thread's logger reads (the level in force, so a level change reaches
// every thread at once and a record below it costs one Atomics.load), and the counts of the
// records the log path dropped.
//
//   Int32 [0]       level in force (levels.ts numbers)
//   Int32 [1]       records the writer dropped: stdout did not keep up (its buffer is bounded)
//   Int32 [2 + t]   records thread t dropped: its log ring to the main thread was full
//                   (t = worker index; the coordinator is t = workers)
export const S_LEVEL = 0;
export const S_WRITER_DROPPED = 1;
const S_THREAD0 = 2;

export function createLogState(threads: number, level: number): SharedArrayBuffer {
  const sab = new SharedArrayBuffer(4 * (S_THREAD0 + threads));
  Atomics.store(new Int32Array(sab), S_LEVEL, level);
  return sab;
}

export const threadDropSlot = (t: number): number => S_THREAD0 + t;

/** Records dropped in the threads' rings, all threads together. */
export function ringDrops(state: Int32Array): number {
  let n = 0;
  for (let i = S_THREAD0; i < state.length; i++) n += Atomics.load(state, i);
  return n;
}
