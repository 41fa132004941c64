// A broker process as a cluster member: the etcd client and the Membership built from the
// broker's settings, run by the coordinator thread (src/README.md, "Threads"), whose event loop
// does no per-message work, so the fencing timer fires on time (see README.md here, "Limits").
// Loaded only when --etcd is given (the coordinator imports it on demand): a single node loads
// no etcd client at all.
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import type { BrokerConfig } from '../config';
import { advertisedAddress } from '../config';
import { Etcd3Client } from './etcd-client';
import { Membership, type ClusterView, type FencedEvent, type JoinedEvent } from './membership';

export interface ClusterNodeEvents {
  /** The member set changed (sorted node ids), while this node is a member. */
  view(members: string[], revision: bigint): void;
  /** This node stopped counting itself in: refuse CONNECT, drop clients. */
  fenced(ev: FencedEvent): void;
  /** Registered again after fencing (a new incarnation), with the view it sees. */
  rejoined(ev: JoinedEvent, members: string[]): void;
  log(line: string): void;
}

export class ClusterNode {
  readonly cluster: string;
  readonly nodeId: string;
  private readonly client: Etcd3Client;
  private readonly membership: Membership;
  /** True from a (re)join until fenced: views are reported only then. */
  private member = false;
  /**
   * This thread's event-loop delay (a 20 ms libuv timer): the fencing timer is late by as much
   * (README.md here, "Limits"). Checked every second: a delay over half the fencing margin is
   * logged (at most once per 10 s); the largest is reported when the node leaves.
   */
  private readonly loopDelay: IntervalHistogram = monitorEventLoopDelay({ resolution: 20 });
  private loopCheck: NodeJS.Timeout | null = null;
  private loopMaxMs = 0;
  private loopWarnedAt = -Infinity;

  constructor(config: BrokerConfig, private readonly on: ClusterNodeEvents) {
    this.cluster = config.clusterName;
    this.nodeId = config.nodeId!;
    this.client = new Etcd3Client({ endpoints: config.etcd! });
    this.membership = new Membership({
      client: this.client,
      cluster: this.cluster,
      nodeId: this.nodeId,
      advertise: advertisedAddress(config),
      clusterPort: config.clusterPort,
      ttlSec: config.leaseTtl,
      startTimeoutMs: config.clusterJoinTimeoutMs,
      log: (line) => on.log(line),
    });
    const m = this.membership;
    // A rejoin lists the members before it emits 'joined': that view goes with 'rejoined'. A view
    // without this node comes just before the fencing its own key's deletion causes.
    m.on('view', (v: ClusterView) => {
      const members = ids(v);
      if (this.member && members.includes(this.nodeId)) on.view(members, v.revision);
    });
    m.on('fenced', (ev: FencedEvent) => { this.member = false; on.fenced(ev); });
    m.on('joined', (ev: JoinedEvent) => {
      if (!ev.rejoin) return; // the first join is join()'s answer
      this.member = true;
      on.rejoined(ev, ids(m.view()));
    });
  }

  /**
   * Registers this node (bounded wait for an unreachable etcd, then EtcdUnreachableError;
   * DuplicateNodeError when the id is taken). The etcd client is closed on failure.
   */
  async join(): Promise<{ incarnation: string; members: string[] }> {
    try {
      await this.membership.join();
    } catch (err) {
      this.client.close();
      throw err;
    }
    this.member = true;
    this.loopDelay.enable();
    this.loopCheck = setInterval(() => this.checkLoop(), 1000);
    this.loopCheck.unref();
    return { incarnation: this.membership.self()!.incarnation, members: ids(this.membership.view()) };
  }

  private checkLoop(): void {
    const max = this.loopDelay.count > 0 ? this.loopDelay.max / 1e6 : 0;
    this.loopDelay.reset();
    this.loopMaxMs = Math.max(this.loopMaxMs, max);
    const now = Date.now();
    if (max > this.membership.marginMs / 2 && now - this.loopWarnedAt >= 10_000) {
      this.loopWarnedAt = now;
      this.on.log(`the coordinator's event loop was blocked for up to ${Math.round(max)} ms; ` +
        `fencing is late by as much, and its margin is ${this.membership.marginMs} ms (raise --lease-ttl if this repeats)`);
    }
  }

  get incarnation(): string | null { return this.membership.self()?.incarnation ?? null; }

  /** Revokes the lease (peers see this node gone at once) and closes the client. Never throws. */
  async leave(): Promise<void> {
    const gap = this.membership.stats.maxAckGapMs;
    if (this.loopCheck) { clearInterval(this.loopCheck); this.loopCheck = null; }
    this.loopDelay.disable();
    const loopMax = Math.max(this.loopMaxMs, this.loopDelay.count > 0 ? this.loopDelay.max / 1e6 : 0);
    await this.membership.leave();
    this.client.close();
    this.on.log(`left the cluster (largest gap between acknowledged keepalives ${Math.round(gap)} ms, ` +
      `fencing window ${this.membership.ttlMs - this.membership.marginMs} ms, margin ${this.membership.marginMs} ms; ` +
      `largest coordinator event-loop delay ${Math.round(loopMax)} ms)`);
  }
}

function ids(v: ClusterView): string[] { return v.members.map((m) => m.nodeId); }
