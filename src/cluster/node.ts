// A broker process as a cluster member: the etcd client and the Membership built from the
// broker's settings, run by the coordinator thread (src/README.md, "Threads"), whose event loop
// must stay short for the fencing timer to fire on time; cross-node forwarding is the one
// per-message work on it (see README.md here, "Limits").
// Loaded only when --etcd is given (the coordinator imports it on demand): a single node loads
// no etcd client at all.
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import type { BrokerConfig } from '../config';
import { advertisedAddress } from '../config';
import { Etcd3Client } from './etcd-client';
import { Membership, type ClusterView, type FencedEvent, type JoinedEvent, type MemberInfo } from './membership';
import { PeerServer } from './peer-server';
import { PeerLinks } from './peer-links';

export interface ClusterNodeEvents {
  /** The member set changed (sorted node ids), while this node is a member. */
  view(members: string[], revision: bigint): void;
  /** This node stopped counting itself in: refuse CONNECT, drop clients. */
  fenced(ev: FencedEvent): void;
  /** Registered again after fencing (a new incarnation), with the view it sees. */
  rejoined(ev: JoinedEvent, members: string[]): void;
  /**
   * The full member records this node acts on: every view while it is a member, [] when it
   * is fenced or leaves. PeerLinks follows it (called before `view` / `rejoined`).
   */
  members?(members: MemberInfo[], revision: bigint): void;
  log(line: string): void;
}

export class ClusterNode {
  readonly cluster: string;
  readonly nodeId: string;
  private readonly client: Etcd3Client;
  private membership!: Membership;
  /**
   * The gRPC server on --cluster-port: services are added before join(), which binds it before
   * registering, so the member record announces the bound port (peer-server.ts).
   */
  readonly peerServer = new PeerServer();
  /** A channel per other member, following the views this node acts on (peer-links.ts). */
  readonly peers: PeerLinks;
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

  constructor(private readonly config: BrokerConfig, private readonly on: ClusterNodeEvents) {
    this.cluster = config.clusterName;
    this.nodeId = config.nodeId!;
    this.client = new Etcd3Client({ endpoints: config.etcd! });
    this.peers = new PeerLinks(this.nodeId);
  }

  /** Built once the peer server is bound: the member record carries the bound port. */
  private makeMembership(config: BrokerConfig, clusterPort: number): void {
    const on = this.on;
    this.membership = new Membership({
      client: this.client,
      cluster: this.cluster,
      nodeId: this.nodeId,
      advertise: advertisedAddress(config),
      clusterPort,
      ttlSec: config.leaseTtl,
      startTimeoutMs: config.clusterJoinTimeoutMs,
      log: (line) => on.log(line),
    });
    const m = this.membership;
    // A rejoin lists the members before it emits 'joined': that view goes with 'rejoined'. A view
    // without this node comes just before the fencing its own key's deletion causes.
    m.on('view', (v: ClusterView) => {
      const members = ids(v);
      if (this.member && members.includes(this.nodeId)) { this.tellMembers(v.members, v.revision); on.view(members, v.revision); }
    });
    m.on('fenced', (ev: FencedEvent) => { this.member = false; this.tellMembers([]); on.fenced(ev); });
    m.on('joined', (ev: JoinedEvent) => {
      if (!ev.rejoin) return; // the first join is join()'s answer
      this.member = true;
      this.tellMembers(m.view().members, m.view().revision);
      on.rejoined(ev, ids(m.view()));
    });
  }

  private tellMembers(members: MemberInfo[], revision = 0n): void {
    this.peers.update(members);
    this.on.members?.(members, revision);
  }

  /**
   * Registers this node (bounded wait for an unreachable etcd, then EtcdUnreachableError;
   * DuplicateNodeError when the id is taken). The etcd client is closed on failure.
   */
  async join(): Promise<{ incarnation: string; members: string[] }> {
    try {
      const port = await this.peerServer.start(this.config.host, this.config.clusterPort);
      this.makeMembership(this.config, this.config.clusterAdvertisePort ?? port);
      await this.membership.join();
    } catch (err) {
      this.client.close();
      await this.peerServer.stop();
      throw err;
    }
    this.member = true;
    this.tellMembers(this.membership.view().members, this.membership.view().revision);
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

  get incarnation(): string | null { return this.membership?.self()?.incarnation ?? null; }

  /** The port the peer server is bound to (0 before join). */
  get clusterPort(): number { return this.peerServer.port; }

  /** Revokes the lease (peers see this node gone at once) and closes the client. Never throws. */
  async leave(): Promise<void> {
    const gap = this.membership.stats.maxAckGapMs;
    if (this.loopCheck) { clearInterval(this.loopCheck); this.loopCheck = null; }
    this.loopDelay.disable();
    const loopMax = Math.max(this.loopMaxMs, this.loopDelay.count > 0 ? this.loopDelay.max / 1e6 : 0);
    this.tellMembers([]);
    await this.membership.leave();
    this.client.close();
    await this.peerServer.stop();
    this.on.log(`left the cluster (largest gap between acknowledged keepalives ${Math.round(gap)} ms, ` +
      `fencing window ${this.membership.ttlMs - this.membership.marginMs} ms, margin ${this.membership.marginMs} ms; ` +
      `largest coordinator event-loop delay ${Math.round(loopMax)} ms)`);
  }
}

function ids(v: ClusterView): string[] { return v.members.map((m) => m.nodeId); }
