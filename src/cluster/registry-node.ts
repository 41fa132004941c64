// The client-id registry as this broker process runs it (README.md here, "The client-id
// registry"): built by the coordinator beside its ClusterNode, before the node joins (its gRPC
// service must be on the peer server when peers first see the node), fed every view the node
// acts on, and counted in worker 0's counter row. Loaded only with --etcd.
import { ClusterRegistry, ClaimRefused, type LocalSessions, type ClaimResult } from './registry';
import { registryView } from './registry-wire';
import { addRegistryService, GrpcRegistryTransport } from './registry-service';
import type { ClusterNode } from './node';
import type { MemberInfo } from './membership';
import * as K from '../shared/counters';

export { ClaimRefused };

export interface RegistryNodeDeps {
  nodeId: string;
  /** The lease TTL: the barrier's bound, and the scale of every registry timeout. */
  ttlMs: number;
  local: LocalSessions;
  /** The process's counters (createCounters); the registry writes slots 88–94 of row 0. */
  counters: SharedArrayBuffer | null;
  log(line: string): void;
}

export class RegistryNode {
  readonly registry: ClusterRegistry;
  private readonly row: Float64Array | null;
  private readonly gauge: NodeJS.Timeout;

  constructor(node: ClusterNode, deps: RegistryNodeDeps) {
    this.row = deps.counters ? new Float64Array(deps.counters, 0, K.COUNTERS_PER_WORKER) : null;
    const row = this.row;
    const add = (c: number, n = 1) => { if (row) row[c] += n; };
    // A member that cannot say "synced" within a TTL is about to fence itself (its lease ends);
    // a claim may wait for a barrier, a stale view and a takeover: two TTLs and a margin.
    const barrierMs = deps.ttlMs;
    const claimTimeoutMs = 2 * deps.ttlMs + 2000;
    // A registration can wait a barrier at its home: its call outlives that, so its answer (which
    // names the previous owner) is not lost to a deadline.
    const transport = new GrpcRegistryTransport(node.peers, claimTimeoutMs, claimTimeoutMs);
    this.registry = new ClusterRegistry({
      nodeId: deps.nodeId, transport, local: deps.local, barrierMs, claimTimeoutMs, log: deps.log,
      counts: {
        registered: () => add(K.C_CLUSTER_REGISTRATIONS),
        takeover: () => add(K.C_CLUSTER_TAKEOVERS),
        refused: () => add(K.C_CLUSTER_REGISTRY_REFUSED),
        timedOut: () => add(K.C_CLUSTER_REGISTRY_TIMEOUTS),
        reasserted: (n) => add(K.C_CLUSTER_REASSERTED, n),
        lost: (n) => add(K.C_CLUSTER_REASSERT_LOST, n),
      },
    });
    addRegistryService(node.peerServer, () => this.registry);
    this.gauge = setInterval(() => { if (row) row[K.C_CLUSTER_HOME_ENTRIES] = this.registry.home.size; }, 1000);
    this.gauge.unref();
  }

  /** Every view the node acts on ([] while fenced or leaving). */
  members(list: readonly MemberInfo[], revision: bigint): void {
    const self = list.find((m) => m.nodeId === this.registry.nodeId);
    if (!self) { this.registry.fenced(); return; }
    this.registry.setView(registryView(revision, list), self.incarnation);
  }

  claim(id: string, proceed: (r: ClaimResult) => Promise<void> | void, keep = false): Promise<void> { return this.registry.claim(id, proceed, keep); }
  ended(id: string): void { this.registry.ended(id); }
  /** A session handed over came back (its handover was given up): registered again or ended (registry.ts). */
  reown(id: string): void { void this.registry.reown(id); }

  close(): void {
    clearInterval(this.gauge);
    this.registry.close();
  }
}
