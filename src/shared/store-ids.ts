// Store ids (message ids and queue sequence numbers) come from one counter in shared memory, so
// a worker can name a message's store slots the moment it routes it, without a round trip to
// the coordinator (workers/README.md, "Persistence and write-behind"): routing no longer waits for the store, only the publisher's
// acknowledgement does. The coordinator sets the counter above every id on disk before any
// worker starts. One counter for both kinds keeps queue order the order ids were taken in.

export function createStoreIds(): SharedArrayBuffer {
  return new SharedArrayBuffer(8);
}

/**
 * Ids are taken from the shared counter a block at a time and the rest of a block is dropped
 * at the end of the worker's turn (`endTurn`): one atomic add per turn rather than a BigInt
 * per id, and still every id taken in a later turn, in any worker, is larger than every id
 * taken before it, so a publisher that reconnects to another worker keeps its order.
 */
const BLOCK = 256;

export class StoreIds {
  private readonly cell: BigInt64Array;
  private nextId = 0;
  private end = 0;

  constructor(sab: SharedArrayBuffer) { this.cell = new BigInt64Array(sab); }

  /** Coordinator, after loading: every id handed out from now on is above `floor`. */
  raiseTo(floor: bigint): void {
    const cur = Atomics.load(this.cell, 0);
    if (floor > cur) Atomics.store(this.cell, 0, floor);
  }

  /** A fresh id; doubles hold them exactly up to 2^53, far beyond what a store will see. */
  next(): number {
    if (this.nextId === this.end) {
      this.nextId = Number(Atomics.add(this.cell, 0, BigInt(BLOCK))) + 1;
      this.end = this.nextId + BLOCK;
    }
    return this.nextId++;
  }

  endTurn(): void { this.end = this.nextId; }
}
