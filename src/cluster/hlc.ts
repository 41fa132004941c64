// A hybrid logical clock per node (Kulkarni et al.): a stamp is (wall ms, logical counter, node).
// It follows the wall clock while the wall clock moves forward, never goes back, and after a
// node has seen a stamp it stamps every later event above it, so "last writer" across nodes is
// the causally later one, or the later by wall time for concurrent ones; the node id hash breaks
// exact ties so every node picks the same winner.
import { createHash } from 'node:crypto';
import type { Stamp } from '../coordinator/retained-value';

const LOGICAL_MAX = 0xffff;
const NODE_SPACE = 2 ** 32;
/**
 * A peer's stamp further ahead of our wall clock than this is still applied (its order is
 * what it is) but does not drag our clock with it: one node with a wrong clock must not push
 * every stamp of the cluster into the future.
 */
export const MAX_DRIFT_MS = 60_000;

/** The 32-bit tiebreak of a node id (same on every node). */
export function nodeHash(nodeId: string): number {
  return createHash('sha256').update(nodeId).digest().readUInt32BE(0);
}

export class HybridClock {
  private t = 0;
  private l = 0;
  private readonly node: number;

  constructor(nodeId: string, private readonly wall: () => number = Date.now) {
    this.node = nodeHash(nodeId);
  }

  /** A stamp for an event here, above every stamp made or seen before. */
  now(): Stamp {
    const pt = this.wall();
    if (pt > this.t) { this.t = pt; this.l = 0; } else this.bump();
    return { t: this.t, c: this.l * NODE_SPACE + this.node };
  }

  /** A stamp from a peer: later stamps here are above it. */
  observe(s: Stamp): void {
    const pt = this.wall();
    if (s.t > pt + MAX_DRIFT_MS) return;
    const l = Math.floor(s.c / NODE_SPACE);
    if (s.t > this.t) { this.t = s.t; this.l = l; } else if (s.t === this.t && l > this.l) this.l = l;
  }

  private bump(): void {
    if (this.l < LOGICAL_MAX) this.l++;
    else { this.t++; this.l = 0; }
  }
}
