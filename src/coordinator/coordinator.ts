// What must be single per process (src/README.md, "Threads"): the session registry, the
// retained messages and their cursors, and the store. A module with its state in one object,
// so it can run without a thread (test/unit/coordinator.test.ts); thread.ts runs it as the
// coordinator thread. With --etcd it is also this process's cluster member (cluster/node.ts)
// and runs its data plane (cluster/data-plane.ts): cross-node forwarding is the one
// per-message work on its loop, which the fencing timer shares (cluster/README.md, "Limits").
import { tlog, limitedLog } from '../log/thread';
import { HistogramWriter } from '../shared/histograms';
import { coordinatorSlot } from '../shared/heartbeats';
import { type MessagePort, receiveMessageOnPort } from 'node:worker_threads';
import { topicIndex, subscriberWorker } from '../shared/topic-index';
import { native } from '../native';
import type { BrokerConfig } from '../config';
import type { FromCoordinator, PersistResult, RestoredSession, ToCoordinator, WireMessage } from '../shared/messages';
import { Registry } from './registry';
import { RetainedStore, RetainedCursors } from './retained';
import { readRetainedBatch } from '../shared/retained-batch';
import { Persistence } from './persistence';
import { StoreIds } from '../shared/store-ids';
import { StoreInbox } from './store-inbox';
import { BellWaiter } from '../shared/ring';
import { ClusterState } from '../shared/cluster-state';
import { COUNTERS_PER_WORKER } from '../shared/counters';
import type { ClusterNode } from '../cluster/node';
import type { CoordinatorAnswer, CoordinatorQuery, PeerAsk, PeerAskReply, RetainedInfo } from '../shared/admin-messages';
import type { AdminService } from '../cluster/admin-service';
import { C_CLUSTER_ADMIN_ASKED, C_CLUSTER_ADMIN_MISSING, C_CLUSTER_ADMIN_REFUSED } from '../shared/counters';
import type { RegistryNode } from '../cluster/registry-node';
import type { ClusterDataPlane } from '../cluster/data-plane';
import type { ClusterHandover } from '../cluster/handover';
import type { RetainedSync } from '../cluster/retained-sync';
import type { RetainedStamp } from '../store/types';

export interface CoordinatorOptions {
  workers: number;
  config: BrokerConfig;
  trieId: number;
  storeIds: SharedArrayBuffer;
  coordBell: SharedArrayBuffer;
  /** src/shared/cluster-state.ts: this coordinator writes it, workers read it. */
  clusterState: SharedArrayBuffer;
  /** The counter rows (src/shared/counters.ts): the cluster gauges go in row 0. */
  counters?: SharedArrayBuffer;
  /** Latency histograms (src/shared/histograms.ts); the coordinator writes its own row. */
  histograms?: SharedArrayBuffer;
}

/** What the main thread logs about the cluster (cluster name and node id come from the config). */
export type ClusterNote =
  | { ev: 'joined'; incarnation: string; members: string[]; rejoin: boolean }
  | { ev: 'view'; members: string[] }
  | { ev: 'fenced'; incarnation: string; reason: string }
  | { ev: 'log'; line: string };

/** What the coordinator tells the main thread. */
export type ToMain =
  /** A line for the operator; `error` goes to stderr. */
  | { t: 'log'; line: string; error?: boolean }
  | { t: 'purged'; index: number; removed: number }
  | { t: 'cluster'; note: ClusterNote }
  /** A member's admin query for the main thread (src/cluster/admin-service.ts). */
  | PeerAsk;

export class Coordinator {
  /** Every worker's trie subscriptions (subscriber id → filters), to clean up after a dead worker. */
  private readonly journal = new Map<number, Set<string>>();
  private readonly ports: (MessagePort | null)[];
  /** Each worker's store ring (its store requests, in order). */
  private readonly inboxes: (StoreInbox | null)[];
  private readonly bell: BellWaiter;
  private readonly registry: Registry;
  readonly retained = new RetainedStore();
  private readonly cursors = new RetainedCursors(this.retained);
  private persistence: Persistence | null = null;
  /** Restored sessions not yet handed to a worker, per worker index. */
  private readonly toAdopt: RestoredSession[][];
  private readonly clusterState: ClusterState;
  private cluster: ClusterNode | null = null;
  /** With --etcd: who owns each client id across the nodes (src/cluster/registry.ts). */
  private clusterRegistry: RegistryNode | null = null;
  /** Restored sessions the cluster registry ended before their worker attached. */
  private readonly evictOnAdopt = new Set<string>();
  /** Routes and forwarding between nodes (a cluster member only). */
  private dataPlane: ClusterDataPlane | null = null;
  /** Sessions moving between nodes on a takeover (a cluster member only). */
  private handover: ClusterHandover | null = null;
  /** What worker 0 publishes in $SYS/broker/cluster/ (null: not a cluster member). */
  private clusterInfo: { node: string; incarnation: string; members: string[] } | null = null;
  /** The admin API's questions to and from the other members (a cluster member only). */
  private adminService: AdminService | null = null;
  /** Retained messages replicated to every member (a cluster member only). */
  private retainedSync: RetainedSync | null = null;
  /** Retained stamps and tombstones read back at start, for retainedSync (a cluster member only). */
  private restoredStamps: Array<[string, RetainedStamp]> | null = null;

  constructor(private readonly opts: CoordinatorOptions, private readonly toMain: (m: ToMain) => void) {
    this.ports = new Array(opts.workers).fill(null);
    this.inboxes = new Array(opts.workers).fill(null);
    this.bell = new BellWaiter(opts.coordBell);
    this.registry = new Registry(this.ports);
    this.toAdopt = Array.from({ length: opts.workers }, () => []);
    this.clusterState = new ClusterState(opts.clusterState);
  }

  /** Opens the store and restores what it holds; restored sessions go to workers as they attach. */
  async start(): Promise<void> {
    this.persistence = await Persistence.open(this.opts.config, new StoreIds(this.opts.storeIds));
    if (this.opts.histograms && this.opts.config.metrics !== 'false') {
      this.persistence.timeCommits(new HistogramWriter(this.opts.histograms, coordinatorSlot(this.opts.workers)));
    }
    const stamps: Array<[string, RetainedStamp]> | null = this.opts.config.etcd !== undefined ? (this.restoredStamps = []) : null;
    const { sessions } = await this.persistence.load((line) => tlog().info(`fleetmq: ${line}`), (m) => this.retained.set(m),
      stamps ? (topic, s) => stamps.push([topic, s]) : undefined);
    sessions.forEach((s, i) => this.toAdopt[i % this.opts.workers].push(s));
    this.parkStores();
    if (this.opts.config.etcd !== undefined) await this.joinCluster();
  }

  /**
   * Joins the cluster before any worker serves (a taken node id or an unreachable etcd fails the
   * start). Loaded on demand: a single node never loads the etcd client.
   */
  private async joinCluster(): Promise<void> {
    const { ClusterNode } = await import('../cluster/node');
    const { RegistryNode } = await import('../cluster/registry-node');
    const c = this.opts.config;
    tlog().info(`fleetmq: cluster ${c.clusterName}: joining as ${c.nodeId} through etcd ${c.etcd}`, { cluster: c.clusterName, node: c.nodeId });
    const { ClusterDataPlane } = await import('../cluster/data-plane');
    const note = (n: ClusterNote) => this.toMain({ t: 'cluster', note: n });
    const node = new ClusterNode(this.opts.config, {
      log: (line) => note({ ev: 'log', line }),
      members: (list, revision) => this.clusterRegistry?.members(list, revision),
      view: (members) => {
        if (this.clusterInfo) this.clusterInfo.members = members;
        this.tellSys();
        note({ ev: 'view', members });
      },
      fenced: (ev) => {
        // The flag first: a CONNECT handled after a worker drops its clients sees it (workers/README.md).
        this.clusterState.fenced();
        this.adminService?.setFenced(true);
        for (const port of this.ports) port?.postMessage({ t: 'cluster-fenced' } satisfies FromCoordinator);
        note({ ev: 'fenced', incarnation: ev.incarnation, reason: ev.reason });
      },
      rejoined: (ev, members) => {
        this.clusterInfo = { node: node.nodeId, incarnation: ev.incarnation, members };
        this.adminService?.setFenced(false);
        // Clients come back once the retained messages cleared or set meanwhile are here.
        void this.catchUpRetained().then(() => {
          if (this.clusterInfo?.incarnation === ev.incarnation) this.clusterState.setRefusing(false);
          this.tellSys();
          note({ ev: 'joined', incarnation: ev.incarnation, members, rejoin: true });
        });
      },
    });
    this.clusterRegistry = new RegistryNode(node, {
      nodeId: node.nodeId, ttlMs: this.opts.config.leaseTtl * 1000, counters: this.opts.counters ?? null,
      log: (line) => note({ ev: 'log', line }),
      local: { evict: (id) => this.evictLocal(id), held: () => this.heldIds(), handOut: (id, to) => this.handover?.handOut(id, to) ?? Promise.resolve(null) },
    });
    // Its services are on the peer server before the node joins (peer-server.ts).
    this.dataPlane = new ClusterDataPlane(node, {
      trieId: this.opts.trieId,
      workers: this.opts.workers,
      queueBytes: this.opts.config.clusterForwardQueueBytes,
      counters: this.opts.counters ?? null,
      post: (w, m, transfer) => { const port = this.ports[w]; if (!port) return false; port.postMessage(m satisfies FromCoordinator, transfer ?? []); return true; },
      log: (line) => note({ ev: 'log', line }),
    });
    const { ClusterHandover } = await import('../cluster/handover');
    const ttlMs = this.opts.config.leaseTtl * 1000;
    this.handover = new ClusterHandover({
      peers: node.peers, server: node.peerServer, routes: this.dataPlane.routes, local: this.registry, registry: this.clusterRegistry,
      post: (w, m) => { const port = this.ports[w]; if (!port) return false; port.postMessage(m satisfies FromCoordinator); return true; },
      counters: this.opts.counters ?? null, timeoutMs: 2 * ttlMs + 2000, lingerMs: this.opts.config.clusterHandoverLingerMs,
      maxRouteWaitMs: ttlMs, log: (line) => note({ ev: 'log', line }),
    });
    const { AdminService } = await import('../cluster/admin-service');
    const row = this.opts.counters ? new Float64Array(this.opts.counters) : null;
    const add = (c: number) => { if (row) row[c] += 1; };
    this.adminService = new AdminService(node, {
      toMain: (m) => this.toMain(m),
      count: { asked: () => add(C_CLUSTER_ADMIN_ASKED), missing: () => add(C_CLUSTER_ADMIN_MISSING), refused: () => add(C_CLUSTER_ADMIN_REFUSED) },
    });
    await this.startRetainedSync(node);
    const joined = await node.join();
    note({ ev: 'log', line: `peer server listening on ${this.opts.config.host}:${node.clusterPort}` });
    this.cluster = node;
    this.clusterInfo = { node: node.nodeId, ...joined };
    note({ ev: 'joined', incarnation: joined.incarnation, members: joined.members, rejoin: false });
    // No worker serves before this node holds what its peers hold (retained-sync.ts).
    await this.catchUpRetained();
  }

  /** Retained replication on the node's peer server and links, with the stamps the store kept. */
  private async startRetainedSync(node: ClusterNode): Promise<void> {
    const { RetainedSync } = await import('../cluster/retained-sync');
    const c = this.opts.config;
    const sync = new RetainedSync({
      selfId: node.nodeId, incarnation: () => node.incarnation, links: node.peers, store: this.retained,
      persist: (writes) => this.persistence?.writeRetained(writes, (error) => {
        if (error) limitedLog().error('store-error', `fleetmq: store: retained stamps: ${error}`);
      }),
      tombstoneTtlMs: c.retainedTombstoneTtl * 1000, maxTombstones: c.retainedTombstonesMax,
      gauges: this.opts.counters ? new Float64Array(this.opts.counters, 0, COUNTERS_PER_WORKER) : null,
      log: (line) => this.toMain({ t: 'cluster', note: { ev: 'log', line } }),
    });
    for (const [topic, s] of this.restoredStamps ?? []) sync.restored(topic, s);
    this.restoredStamps = null;
    node.peerServer.addService(...sync.service());
    node.peers.on('up', (link) => sync.linkUp(link));
    node.peers.on('down', (link, reason) => sync.linkDown(link, reason));
    this.retainedSync = sync;
  }

  /**
   * Waits (bounded) for every peer's retained snapshot; /readyz says 503 meanwhile
   * (src/shared/cluster-state.ts CS_SYNCING).
   */
  private async catchUpRetained(): Promise<void> {
    const sync = this.retainedSync;
    if (!sync) return;
    this.clusterState.setSyncing(true);
    const started = Date.now();
    const { missing } = await sync.catchUp(this.opts.config.retainedSyncTimeoutMs);
    this.clusterState.setSyncing(false);
    const line = missing.length === 0
      ? `retained messages caught up with every peer in ${Date.now() - started} ms`
      : `retained messages: no snapshot from ${missing.join(', ')} within --retained-sync-timeout-ms (${this.opts.config.retainedSyncTimeoutMs} ms); serving with what the others sent`;
    this.toMain({ t: 'cluster', note: { ev: 'log', line } });
  }

  /** The cluster registry gave `id` to another node: the session here ends. */
  private evictLocal(id: string): Promise<void> {
    if (this.toAdopt.some((list) => list.some((s) => s.clientId === id))) { this.evictOnAdopt.add(id); return Promise.resolve(); }
    return this.registry.evict(id);
  }

  private *heldIds(): Iterable<string> {
    yield* this.registry.held();
    for (const list of this.toAdopt) for (const s of list) yield s.clientId;
  }

  /**
   * A CONNECT's claim on a cluster member: the cluster registry first (the previous owner on
   * another node ends its session), then this node's registry as on a single node.
   */
  private clusterClaim(index: number, port: MessagePort, m: Extract<ToCoordinator, { t: 'claim' }>): void {
    this.clusterRegistry!.claim(m.clientId, ({ superseded, handover }) => {
      if (this.ports[index] !== port) { if (handover) this.handover!.refuse(handover.from, handover.hid); return undefined; }
      // The previous owner handed its session over (clean start 0): it comes with the grant.
      const session = handover ? this.handover!.decode(handover.session) : null;
      if (handover && session && this.registry.claimHandedIn(index, m.req, m.clientId, session)) this.handover!.expect(m.clientId, handover.from, handover.hid);
      else {
        if (handover) this.handover!.refuse(handover.from, handover.hid);
        this.registry.claim(index, m.req, m.clientId, m.clean);
      }
      // Taken over before it connected: it connects, then ends at once (CONNACK, then 0x8E).
      return superseded ? this.registry.evict(m.clientId) : undefined;
    }, !m.clean).catch((err: Error) => {
      if (this.ports[index] === port) port.postMessage({ t: 'granted', req: m.req, existed: false, refused: err.message } satisfies FromCoordinator);
    });
  }

  /** Worker 0 publishes $SYS/broker/cluster/ (workers/sys/sys-topics.ts). */
  private tellSys(): void {
    const info = this.clusterInfo;
    if (info) this.ports[0]?.postMessage({ t: 'cluster-view', ...info } satisfies FromCoordinator);
  }

  /** Worker `index` (new or a replacement) talks to the coordinator on `port`. */
  attach(index: number, port: MessagePort, storeRing: SharedArrayBuffer): void {
    this.ports[index]?.close();
    this.ports[index] = port;
    this.inboxes[index] = new StoreInbox(storeRing);
    port.on('message', (msg: ToCoordinator) => this.onWorkerMessage(index, port, msg));
    const evicted: string[] = [];
    for (const session of this.toAdopt[index].splice(0)) {
      this.registry.own(session.clientId, index);
      port.postMessage({ t: 'adopt', session } satisfies FromCoordinator);
      if (this.evictOnAdopt.delete(session.clientId)) evicted.push(session.clientId);
    }
    port.postMessage({ t: 'adopt-done' } satisfies FromCoordinator);
    for (const id of evicted) void this.registry.evict(id);
    if (index === 0) this.tellSys();
  }

  private onWorkerMessage(index: number, port: MessagePort, m: ToCoordinator): void {
    if (this.ports[index] !== port) return; // a message from a worker that has since been replaced
    // What the worker wrote to its store ring before posting this comes first (e.g. the store
    // ops of a session's old owner before its connection moves).
    this.drainStore(index);
    if (m.t === 'batch') { for (const x of m.msgs) this.onWorkerMessage(index, port, x); return; }
    switch (m.t) {
      case 'claim':
        if (this.clusterRegistry) this.clusterClaim(index, port, m);
        else this.registry.claim(index, m.req, m.clientId, m.clean);
        break;
      case 'released': this.registry.released(index, m.req); break;
      case 'ended': if (this.registry.ended(index, m.clientId)) this.clusterRegistry?.ended(m.clientId); break;
      case 'retain': this.setRetained(m.msg); break;
      case 'retain-batch': readRetainedBatch(m.bytes, (w) => this.setRetained(w)); break;
      case 'sub': {
        let f = this.journal.get(m.sub);
        if (!f) this.journal.set(m.sub, (f = new Set()));
        if (!f.has(m.filter)) { f.add(m.filter); this.dataPlane?.routes.localSub(m.filter); }
        break;
      }
      case 'unsub': {
        const f = this.journal.get(m.sub);
        if (f?.delete(m.filter)) { this.dataPlane?.routes.localUnsub(m.filter); if (f.size === 0) this.journal.delete(m.sub); }
        break;
      }
      case 'cluster-fwd': this.dataPlane?.forwarding.fromWorker(index, m.buf); break;
      case 'cluster-fwd-done': this.dataPlane?.forwarding.workerDone(m.batch); break;
      case 'handover-snap': case 'handover-queue': case 'handover-installed': this.handover?.fromWorker(m); break;
      case 'retained?': {
        const now = Date.now();
        const page = m.cursor === 0 ? this.cursors.first(index, m.filter, now) : this.cursors.next(index, m.cursor, now);
        port.postMessage({ t: 'retained', req: m.req, cursor: page.cursor, msgs: page.msgs } satisfies FromCoordinator);
        break;
      }
      case 'retained-close': this.cursors.close(index, m.cursor); break;
      case 'move': {
        const target = this.ports[m.to];
        if (target) target.postMessage({ t: 'conn', fd: m.fd, bytes: m.bytes, identity: m.identity, origin: m.origin } satisfies FromCoordinator);
        else native.closeFd(m.fd);
        break;
      }
    }
  }

  /** A retained set or clear received on this node (replicated to the peers on a cluster member). */
  private setRetained(m: WireMessage): void {
    if (this.retainedSync) this.retainedSync.local(m);
    else this.retained.set(m);
  }

  /** Applies a worker's store requests from its ring; each is answered on its port. */
  private drainStore(index: number): void {
    const inbox = this.inboxes[index];
    const port = this.ports[index];
    if (!inbox || !port || !this.persistence) return;
    const persistence = this.persistence;
    inbox.drain((req, ops, decodeError) => {
      const answer = (results: PersistResult[], error: string | null) => {
        if (error) limitedLog().error('store-error', `fleetmq: store: ${error}`, { worker: index });
        port.postMessage({ t: 'stored', req, results, error } satisfies FromCoordinator);
      };
      if (!ops) { answer([], decodeError); return; }
      persistence.apply(ops, answer);
    });
  }

  /** Sleeps on the doorbell every worker's store ring rings. */
  private parkStores(): void {
    this.bell.park(() => this.inboxes.some((b) => b !== null && !b.isEmpty()), () => {
      for (let i = 0; i < this.opts.workers; i++) this.drainStore(i);
      this.parkStores();
    });
  }

  /** Takes what a worker posted and has not been handled yet (it died, or the process stops). */
  private takePosted(index: number): void {
    const port = this.ports[index];
    if (!port) return;
    for (let m = receiveMessageOnPort(port); m; m = receiveMessageOnPort(port)) this.onWorkerMessage(index, port, m.message as ToCoordinator);
    this.drainStore(index);
  }

  /**
   * A worker died: take what it posted before dying, then remove its subscriptions from the
   * shared trie before a replacement reuses its subscriber ids (the main thread waits for 'purged').
   */
  workerDied(index: number): void {
    const port = this.ports[index];
    if (port) {
      this.takePosted(index);
      port.close();
      this.ports[index] = null;
      this.inboxes[index] = null;
    }
    for (const id of this.registry.workerDied(index)) this.clusterRegistry?.ended(id);
    this.dataPlane?.forwarding.workerDied(index);
    this.cursors.workerDied(index);
    let removed = 0;
    for (const [sub, filters] of this.journal) {
      if (subscriberWorker(sub) !== index) continue;
      for (const f of filters) {
        if (topicIndex.unsubscribe(this.opts.trieId, f, sub)) removed++;
        this.dataPlane?.routes.localUnsub(f);
      }
      this.journal.delete(sub);
    }
    this.toMain({ t: 'purged', index, removed });
  }

  /** The admin API's retained queries (src/http/api.ts); a delete is durable before it is answered. */
  admin(q: CoordinatorQuery): Promise<CoordinatorAnswer> {
    const now = Date.now();
    const info = (m: WireMessage): RetainedInfo => ({ topic: m.topic, payload: m.payload, qos: m.qos, props: m.props, expiryAt: m.expiryAt });
    switch (q.op) {
      case 'peers': {
        if (!this.adminService) return Promise.reject(new Error('not a cluster member'));
        return this.adminService.askPeers(q.q);
      }
      case 'retained-list': {
        const r = this.retained.list(q.filter, q.after, q.limit, now);
        return Promise.resolve({ op: 'retained-list', messages: r.messages.map(info), total: r.total });
      }
      case 'retained-get': {
        const m = this.retained.get(q.topic, now);
        return Promise.resolve({ op: 'retained-get', message: m ? info(m) : null });
      }
      case 'retained-delete': {
        const existed = this.retained.get(q.topic, now) !== null;
        const clear: WireMessage = { topic: q.topic, payload: new Uint8Array(0), qos: 0, retain: true, props: null, expiryAt: 0 };
        this.setRetained(clear);
        if (!existed || !this.persistence || q.topic.startsWith('$')) return Promise.resolve({ op: 'retained-delete', existed });
        return new Promise((resolve, reject) => {
          this.persistence!.apply([{ o: 'retain', msg: clear }], (_r, error) => {
            if (error) reject(new Error(`store: ${error}`));
            else resolve({ op: 'retained-delete', existed });
          });
        });
      }
    }
  }

  /** The main thread's answer to a member's admin query. */
  adminPeerReply(m: PeerAskReply): void { this.adminService?.fromMain(m); }

  /** Store operations workers posted before they exited land before the store closes. */
  async close(): Promise<void> {
    for (let i = 0; i < this.opts.workers; i++) this.takePosted(i);
    this.clusterRegistry?.close();
    this.handover?.close();
    this.dataPlane?.close();
    this.adminService?.close();
    this.retainedSync?.close();
    await this.cluster?.leave();
    await this.persistence?.close();
  }
}
