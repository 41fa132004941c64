// The cluster state every thread reads, in one small SharedArrayBuffer (Int32 slots): written
// only by the coordinator (which runs the membership, src/cluster/README.md), read by workers.
// A worker reads REFUSING on each CONNECT (one Atomics.load, no message per connection);
// $SYS reads FENCINGS. A single node (no --etcd) has the buffer too, always zero.

/** 1 while this node is not a member (fenced, rejoining): CONNECT is refused with "server busy". */
export const CS_REFUSING = 0;
/** Times this node fenced itself since it started. */
export const CS_FENCINGS = 1;
/** 1 while this node catches up with its peers' retained messages: /readyz says 503. */
export const CS_SYNCING = 2;
const SLOTS = 3;

export function createClusterState(): SharedArrayBuffer {
  return new SharedArrayBuffer(4 * SLOTS);
}

export class ClusterState {
  private readonly a: Int32Array;
  constructor(sab: SharedArrayBuffer) { this.a = new Int32Array(sab); }
  get refusing(): boolean { return Atomics.load(this.a, CS_REFUSING) !== 0; }
  get fencings(): number { return Atomics.load(this.a, CS_FENCINGS); }
  get syncing(): boolean { return Atomics.load(this.a, CS_SYNCING) !== 0; }
  /** Coordinator only. */
  setSyncing(on: boolean): void { Atomics.store(this.a, CS_SYNCING, on ? 1 : 0); }
  /** Coordinator only. */
  setRefusing(on: boolean): void { Atomics.store(this.a, CS_REFUSING, on ? 1 : 0); }
  /** Coordinator only. */
  fenced(): void { Atomics.add(this.a, CS_FENCINGS, 1); Atomics.store(this.a, CS_REFUSING, 1); }
}
