// Store ids (message ids and queue sequence numbers) come from one counter in shared memory, so
// a worker can name a message's store slots the moment it routes it, without a round trip to
// the coordinator (DESIGN.md §4): routing no longer waits for the store, only the publisher's
// acknowledgement does. The coordinator sets the counter above every id on disk before any
// worker starts. One counter for both kinds keeps queue order the order ids were taken in.

export function createStoreIds(): SharedArrayBuffer {
  return new SharedArrayBuffer(8);
}

export class StoreIds {
  private readonly cell: BigInt64Array;

  constructor(sab: SharedArrayBuffer) { this.cell = new BigInt64Array(sab); }

  /** Coordinator, after loading: every id handed out from now on is above `floor`. */
  raiseTo(floor: bigint): void {
    const cur = Atomics.load(this.cell, 0);
    if (floor > cur) Atomics.store(this.cell, 0, floor);
  }

  /** A fresh id; doubles hold them exactly up to 2^53, far beyond what a store will see. */
  next(): number {
    return Number(Atomics.add(this.cell, 0, 1n)) + 1;
  }
}
