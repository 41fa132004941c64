// Layout of a single-producer / single-consumer ring in a SharedArrayBuffer (native/README.md).
//
//   Int32 header (64 bytes, its own cache line)          data (capacity bytes, power of two)
//   ┌──────┬──────┬─────────┐                           ┌───────────────────────────────────┐
//   │ head │ tail │ spilled │                           │ [len u32][record ...][len][rec]...│
//   └──────┴──────┴─────────┘                           └───────────────────────────────────┘
//     ▲ consumer     ▲ producer                            records are 4-byte aligned; a record
//       owns head      owns tail                           never wraps: a WRAP marker (len =
//                                                          0xFFFFFFFF) sends the reader to 0
//
// head and tail are byte counters that only grow (mod 2^31 handled by masking), so
// `tail - head` is the number of bytes in use without a separate full/empty flag.
//
// A consumer thread drains several rings (one per producer) but can wait on one address only,
// so the wake-up state lives in a separate per-consumer doorbell:
//
//   Int32[2]: ┌──────────┬──────────┐
//             │ sleeping │ doorbell │
//             └──────────┴──────────┘
// Only the consumer writes `sleeping`; the producer only reads it and rings the doorbell
// (src/README.md, "Measured": a producer that cleared the flag itself lost wake-ups in 25% of runs).

export const HEADER_BYTES = 64;
export const I_HEAD = 0;
export const I_TAIL = 1;
/** Records that did not fit and went to the producer's overflow queue (a metric). */
export const I_SPILLED = 2;
export const BELL_BYTES = 8;
export const B_SLEEPING = 0;
export const B_DOORBELL = 1;
export const WRAP = 0xffffffff;
export const LEN_BYTES = 4;
