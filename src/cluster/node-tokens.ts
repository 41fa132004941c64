// Remote routes live in the shared native trie as subscribers of their own: a peer node is a
// "node token", a subscriber id in a range no worker uses (workers are at most 256, their ids
// carry the worker index in the top 10 bits; node tokens use the last index, 1023). One match
// in a worker then gives its local subscribers, the other workers' and the peer nodes with
// interest together; LocalDelivery and the cross-worker records skip node tokens because their
// "worker" is never a real one.
import { subscriberId, subscriberWorker, SLOT_MASK } from '../shared/topic-index';

export const NODE_WORKER = 1023;
/** Node indexes are never reused in a process: a token matched before a node left cannot name another. */
export const MAX_NODE_INDEX = SLOT_MASK - 1; // SLOT_MASK itself would make NO_ORIGIN (0xffffffff)
/** Options of a node token: QoS 2 (the receiving node applies its own subscribers' QoS), no flags. */
export const NODE_TOKEN_OPTS = 2;

export const nodeToken = (index: number): number => subscriberId(NODE_WORKER, index);
export const isNodeToken = (sub: number): boolean => subscriberWorker(sub) === NODE_WORKER;
export const tokenNode = (sub: number): number => sub & SLOT_MASK;

/** True when the match triples out[from..] name a peer node. */
export function hasNodeTarget(out: Uint32Array, from: number, count: number): boolean {
  for (let k = 0; k < count; k++) if ((out[from + k * 3] >>> 22) === NODE_WORKER) return true;
  return false;
}

/** nodeId <-> index, assigned on first sight and never reassigned (see MAX_NODE_INDEX). */
export class NodeIndex {
  private readonly byId = new Map<string, number>();
  private readonly ids: string[] = [''];

  of(nodeId: string): number {
    let i = this.byId.get(nodeId);
    if (i === undefined) {
      i = this.ids.length;
      if (i > MAX_NODE_INDEX) throw new Error('cluster: too many distinct node ids seen by this process');
      this.ids.push(nodeId);
      this.byId.set(nodeId, i);
    }
    return i;
  }

  id(index: number): string | undefined { return index > 0 ? this.ids[index] : undefined; }
}
