// Starts the worker threads and the coordinator, wires their rings, and replaces a worker
// that dies without disturbing the others (src/README.md, "Threads").
import * as path from 'node:path';
import { Worker, MessageChannel } from 'node:worker_threads';
import type { BrokerConfig } from '../config';
import type { AuthService } from '../auth/auth-service';
import { native } from '../native';
import { createRingBuffer, createBell, RingProducer, RingConsumer } from '../shared/ring';
import { createStoreIds } from '../shared/store-ids';
import { ACCEPT_RECORD_BYTES, PeerReset, WorkerWiring } from '../shared/wiring';
import type { TlsMaterial, TlsReload, TlsReloaded, ReloadedLimits, LimitsReload } from '../shared/listeners';
import { createCounters, COUNTERS_PER_WORKER, C_CONNECTIONS_OPEN, C_ACCEPTED, C_CLIENTS_CONNECTED, C_SESSIONS, C_SUBSCRIPTIONS } from '../shared/counters';
import { topicIndex as trie } from '../shared/topic-index';
import { createSlabBuffer } from '../slab-layout';
import { createClusterState, ClusterState } from '../shared/cluster-state';
import type { ClusterNote, ToMain } from '../coordinator/coordinator';
import { createHeartbeats } from '../shared/heartbeats';
import type { BanEntry, BannedUpdate, BannedApplied } from '../shared/banned';
import type { AdminReply, PeerAsk } from '../shared/admin-messages';
import { createOpenConnections, OpenConnections } from '../shared/open-connections';
import { listenerSpecs } from '../shared/listeners';
import { createHistograms } from '../shared/histograms';
import { createWorkerGauges, GAUGES_PER_WORKER } from '../shared/worker-gauges';
import { LogHub } from '../log/log-hub';
import { log } from '../log/logger';
import { errFields } from '../log/thread-log';

const ACCEPT_RING_BYTES = 64 * 1024;
const PEER_RING_BYTES = 4 * 1024 * 1024;
/** Store requests, worker → coordinator: a turn's request is cut into 64 KiB records. */
const STORE_RING_BYTES = 4 * 1024 * 1024;
const WORKER_JS = path.resolve(__dirname, '..', '..', 'workers', 'worker.js');
const COORDINATOR_JS = path.resolve(__dirname, '..', 'coordinator', 'thread.js');

interface Slot {
  /** null while a replacement waits for the coordinator to purge the dead worker's state. */
  worker: Worker | null;
  accept: RingProducer;
  acceptSab: SharedArrayBuffer;
  handed: number;
  ready: boolean;
}

export class Supervisor {
  private readonly slots: Slot[] = [];
  private readonly bells: SharedArrayBuffer[] = [];
  /** rings[i][j]: worker i → worker j. */
  private readonly rings: (SharedArrayBuffer | null)[][] = [];
  readonly counters: SharedArrayBuffer;
  /** Every thread's heartbeat slot (src/shared/heartbeats.ts), read by /livez and /metrics. */
  readonly heartbeats: SharedArrayBuffer;
  private readonly counterView: Float64Array;
  /** The other threads' log rings, drained into the one writer (src/log/). */
  readonly logs: LogHub;
  /** Latency histograms, a row per thread (src/shared/histograms.ts). */
  readonly histograms: SharedArrayBuffer;
  /** Per-worker gauges (src/shared/worker-gauges.ts). */
  readonly gauges: SharedArrayBuffer;
  private coordinator!: Worker;
  private stopping = false;
  private rr = 0;
  readonly trieId: number;
  /** One slab per process, only when payloads cross workers. */
  private readonly slab: SharedArrayBuffer | null;
  private readonly slabHolders: SharedArrayBuffer;
  private readonly storeIds = createStoreIds();
  /** Rung by every worker's store ring. */
  private readonly coordBell = createBell();
  /** Written by the coordinator, read by workers (src/shared/cluster-state.ts). */
  private readonly clusterState = createClusterState();
  /** A cluster member catching up with its peers' retained messages (/readyz 503). */
  get retainedSyncing(): boolean { return new ClusterState(this.clusterState).syncing; }
  /** This node in the cluster, as the coordinator last said (null: a single node). */
  cluster: { incarnation: string; members: string[]; fenced: boolean } | null = null;
  /** Times this node fenced itself (the coordinator counts them in the shared cluster state). */
  get fencings(): number { return new ClusterState(this.clusterState).fencings; }
  readonly startedAt = Date.now();
  restarts = 0;
  /** Certificates in force: what a worker started now (or a replacement) is given. */
  private tls: (TlsMaterial | null)[] | null;
  private tlsSeq = 0;
  private readonly tlsAcks = new Map<number, { left: Set<number>; errors: string[]; done: () => void }>();
  /** Connections open per worker and listener (src/shared/open-connections.ts). */
  private readonly openSab: SharedArrayBuffer;
  readonly open: OpenConnections;

  /** The banned list in force: posted to every worker on change, and to each one as it starts. */
  private banned: BannedUpdate = { t: 'banned', seq: 0, entries: [] };
  /** Per banned list posted: the workers that have not said they check with it yet. */
  private readonly bannedAcks = new Map<number, { left: Set<number>; done: () => void }>();
  /** Answers of workers and the coordinator to admin queries (src/main/admin-bridge.ts). */
  onAdminReply: (m: AdminReply<unknown>) => void = () => undefined;
  /** A cluster member's admin query, posted by the coordinator (src/main/node-admin.ts answers it). */
  onAdminPeer: (m: PeerAsk) => void = () => undefined;
  /** This node joined its cluster (first join or a rejoin after fencing). */
  onClusterJoined: (rejoin: boolean) => void = () => undefined;

  constructor(private readonly config: BrokerConfig, private readonly testHooks: boolean, private readonly auth: AuthService, tls: (TlsMaterial | null)[] | null = null) {
    this.tls = tls;
    const n = config.workers;
    this.counters = createCounters(n);
    this.counterView = new Float64Array(this.counters);
    this.heartbeats = createHeartbeats(n);
    const listeners = listenerSpecs(config).length;
    this.openSab = createOpenConnections(n, listeners);
    this.open = new OpenConnections(this.openSab, listeners);
    this.logs = new LogHub(n, config.logLevel);
    this.histograms = createHistograms(n);
    this.gauges = createWorkerGauges(n);
    this.trieId = trie.create();
    this.slab = n > 1 ? createSlabBuffer() : null;
    this.slabHolders = new SharedArrayBuffer(4 * n);
    new Int32Array(this.slabHolders).fill(-1);
    for (let i = 0; i < n; i++) {
      this.bells.push(createBell());
      this.rings.push([]);
      for (let j = 0; j < n; j++) this.rings[i].push(i === j ? null : createRingBuffer(PEER_RING_BYTES));
    }
  }

  async start(): Promise<void> {
    this.coordinator = new Worker(COORDINATOR_JS, { workerData: { workers: this.config.workers, config: this.config, trieId: this.trieId, storeIds: this.storeIds, coordBell: this.coordBell, clusterState: this.clusterState, heartbeats: this.heartbeats, log: this.logs.wiring(this.config.workers), histograms: this.histograms, counters: this.counters }, ...this.limits() });
    this.coordinator.on('error', (err) => {
      log.fatal('fleetmq: coordinator failed', { err: errFields(err) });
      this.logs.drainThread(this.config.workers);
      process.exitCode = 1;
      // The record must reach stdout before the process goes.
      void import('../log/logger').then((m) => m.flushLogs()).finally(() => process.exit(1));
    });
    // The store is opened and read back before any client can connect.
    await new Promise<void>((resolve, reject) => {
      this.coordinator.on('message', (m: { t: string; line?: string; error?: boolean; message?: string }) => {
        if (m.t === 'log') { if (m.error) log.error(`fleetmq: ${m.line}`); else log.info(`fleetmq: ${m.line}`); }
        else if (m.t === 'cluster') this.onCluster((m as Extract<ToMain, { t: 'cluster' }>).note);
        else if (m.t === 'purged') this.onPurged((m as unknown as { index: number }).index);
        else if (m.t === 'admin-reply') this.onAdminReply(m as unknown as AdminReply<unknown>);
        else if (m.t === 'admin-peer') this.onAdminPeer(m as unknown as PeerAsk);
        else if (m.t === 'loaded') resolve();
        else if (m.t === 'failed') reject(new Error(m.message));
      });
    });
    const ready: Promise<void>[] = [];
    for (let i = 0; i < this.config.workers; i++) ready.push(this.spawn(i));
    await Promise.all(ready);
    this.started = true;
    for (const s of this.slots) s.worker?.postMessage({ t: 'go' });
  }

  /**
   * What the coordinator says about the cluster: kept for the startup line (cli.ts), logged once
   * the broker is up. Fencing and rejoining go to stderr: an operator must see them.
   */
  private onCluster(n: ClusterNote): void {
    const name = `cluster ${this.config.clusterName}`;
    const out = (line: string, error = false) => { if (error) log.warn(`fleetmq: ${line}`, { cluster: this.config.clusterName }); else log.info(`fleetmq: ${line}`, { cluster: this.config.clusterName }); };
    if (n.ev === 'log') { out(`${name}: ${n.line}`, true); return; }
    const was = this.cluster;
    if (n.ev === 'joined') {
      this.cluster = { incarnation: n.incarnation, members: n.members, fenced: false };
      this.onClusterJoined(n.rejoin);
      if (n.rejoin) out(`${name}: rejoined as ${this.config.nodeId} (incarnation ${n.incarnation}), members: ${n.members.join(', ')}; accepting connections again`, true);
    } else if (n.ev === 'fenced') {
      if (was) was.fenced = true;
      out(`${name}: FENCED as ${this.config.nodeId} (incarnation ${n.incarnation}): ${n.reason}; refusing CONNECT and disconnecting every client until it rejoins`, true);
    } else if (was) {
      const before = new Set(was.members);
      const after = new Set(n.members);
      const change = [...n.members.filter((x) => !before.has(x)).map((x) => `+${x}`), ...was.members.filter((x) => !after.has(x)).map((x) => `-${x}`)];
      was.members = n.members;
      if (this.started) out(`${name}: members: ${n.members.join(', ')} (${change.join(' ') || 'updated'})`);
    }
  }

  /**
   * A bounded young generation: V8's default lets each thread's grow to tens of MiB under a
   * connection burst and keeps it, ~3 KiB of RSS per idle connection at 10K. The default (2 MiB)
   * keeps idle connections under 8 KiB; saturated QoS 1 wants more (16 MiB: ~1.5 KiB more per
   * idle connection at 10K, in-memory QoS 1 +15-50%), bench/README.md "Young generation".
   * Set per isolate only: a V8 flag such as --max-semi-space-size is process-wide and would
   * override this for every thread started after it.
   */
  private limits(): { resourceLimits?: { maxYoungGenerationSizeMb: number } } {
    const mb = this.config.youngGenerationMb;
    return mb > 0 ? { resourceLimits: { maxYoungGenerationSizeMb: mb } } : {};
  }

  /** Every worker has its restored sessions: wills due since the last run may go out. */
  private started = false;

  private spawn(index: number): Promise<void> {
    // A replacement keeps the accept ring that queued connections while it was pending.
    const pending = this.slots[index]?.worker === null ? this.slots[index] : null;
    const acceptSab = pending ? pending.acceptSab : createRingBuffer(ACCEPT_RING_BYTES);
    const { port1, port2 } = new MessageChannel();
    // A fresh store ring per worker life: the coordinator drained the dead one's before purging.
    const storeRing = createRingBuffer(STORE_RING_BYTES);
    this.coordinator.postMessage({ t: 'attach', index, port: port1, storeRing }, [port1]);
    const authChannel = new MessageChannel();
    this.auth.attach(authChannel.port1);
    const wiring: WorkerWiring = {
      index,
      config: this.config,
      trieId: this.trieId,
      acceptRing: acceptSab,
      bell: this.bells[index],
      inbound: this.rings.map((row) => row[index]),
      outbound: this.rings[index],
      bells: this.bells,
      counters: this.counters,
      heartbeats: this.heartbeats,
      coordinator: port2,
      auth: authChannel.port2,
      acl: this.auth.aclState,
      slab: this.slab,
      slabHolders: this.slabHolders,
      storeIds: this.storeIds,
      storeRing,
      coordBell: this.coordBell,
      clusterState: this.clusterState,
      startedAt: this.startedAt,
      testHooks: this.testHooks,
      tls: this.tls,
      open: this.openSab,
      log: this.logs.wiring(index),
      gauges: this.gauges,
    };
    const worker = new Worker(WORKER_JS, { workerData: wiring, transferList: [port2, authChannel.port2], ...this.limits() });
    const slot: Slot = pending ?? { worker, accept: new RingProducer(acceptSab, this.bells[index]), acceptSab, handed: 0, ready: false };
    slot.worker = worker;
    this.slots[index] = slot;
    worker.on('error', (err) => { this.logs.drainThread(index); log.error(`fleetmq: worker ${index} failed`, { worker: index, err: errFields(err) }); });
    worker.on('exit', (code) => this.onExit(index, slot, code));
    if (this.banned.entries.length) worker.postMessage(this.banned);
    return new Promise((resolve) => {
      worker.on('message', (m: { t: string }) => {
        if (m.t === 'admin-reply') { this.onAdminReply(m as AdminReply<unknown>); return; }
        if (m.t === 'banned-applied') { this.onBannedApplied(index, m as BannedApplied); return; }
        if (m.t === 'tls-reloaded') { this.onTlsReloaded(index, m as TlsReloaded); return; }
        if (m.t === 'ready' && !slot.ready) {
          slot.ready = true;
          if (this.started) worker.postMessage({ t: 'go' }); // a replacement
          resolve();
        }
      });
      worker.once('exit', () => resolve());
    });
  }

  /**
   * Picks the worker with the fewest connections (ties: round-robin) and queues the fd. A
   * worker still starting (a replacement) is used only when no other is ready: its ring
   * holds the fd until it runs, so a client reconnecting at once is not refused.
   */
  /** Accept rings written by handOff(…, true) and not yet published. */
  private unpublished: RingProducer[] = [];

  /** Publishes what handOff(…, true) wrote: one tail store, and one doorbell per sleeping worker. */
  publishHandOffs(): void {
    const rings = this.unpublished;
    if (rings.length === 0) return;
    this.unpublished = [];
    for (const r of rings) r.commit();
  }

  /** `defer`: the record is published by publishHandOffs() (a listener's turn of accepts), not now. */
  handOff(fd: number, listener = 0, defer = false): boolean {
    const n = this.slots.length;
    let best = -1;
    let bestLoad = Infinity;
    for (let k = 0; k < n; k++) {
      const i = (this.rr + k) % n;
      const s = this.slots[i];
      const accepted = this.counterView[i * COUNTERS_PER_WORKER + C_ACCEPTED];
      const load = this.counterView[i * COUNTERS_PER_WORKER + C_CONNECTIONS_OPEN] + (s.handed - accepted) + (s.ready ? 0 : 1e9);
      if (load < bestLoad) { bestLoad = load; best = i; }
    }
    if (best < 0) return false;
    this.rr = (best + 1) % n;
    const s = this.slots[best];
    const at = s.accept.reserve(ACCEPT_RECORD_BYTES);
    if (at < 0) return false;
    s.accept.dataView.setInt32(at, fd, true);
    s.accept.dataView.setInt32(at + 4, listener, true);
    if (!defer) s.accept.commit();
    else if (!this.unpublished.includes(s.accept)) this.unpublished.push(s.accept);
    s.handed++;
    this.open.add(best, listener, 1);
    return true;
  }

  /**
   * A new banned list for every worker (and for the ones started later). Resolves once every
   * running worker checks CONNECTs against it (at most 5 s: a worker that does not answer is
   * dying, and its replacement starts with this list), so an API call that adds a ban answers
   * only when the ban holds everywhere.
   */
  setBanned(entries: BanEntry[]): Promise<void> {
    const msg: BannedUpdate = { t: 'banned', seq: this.banned.seq + 1, entries };
    this.banned = msg;
    const left = new Set<number>();
    this.slots.forEach((s, i) => { if (s.worker) { left.add(i); s.worker.postMessage(msg); } });
    if (left.size === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => { this.bannedAcks.delete(msg.seq); resolve(); }, 5000);
      timer.unref(); // a worker that died does not answer: its wait must not hold the process
      this.bannedAcks.set(msg.seq, { left, done: () => { clearTimeout(timer); this.bannedAcks.delete(msg.seq); resolve(); } });
    });
  }

  private onBannedApplied(index: number, m: BannedApplied): void {
    // A newer list applied implies the older ones were.
    for (const [seq, wait] of this.bannedAcks) {
      if (seq > m.seq) continue;
      wait.left.delete(index);
      if (wait.left.size === 0) wait.done();
    }
  }

  /** Workers that can answer an admin query now (a replacement still starting cannot yet). */
  readyWorkers(): number[] {
    const out: number[] = [];
    this.slots.forEach((s, i) => { if (s.worker && s.ready) out.push(i); });
    return out;
  }

  /** Posts an admin query (src/main/admin-bridge.ts); false if that worker is gone. */
  postToWorker(index: number, m: unknown): boolean {
    const w = this.slots[index]?.worker;
    if (!w || !this.slots[index].ready) return false;
    w.postMessage(m);
    return true;
  }

  postToCoordinator(m: unknown): boolean {
    if (!this.coordinator || this.stopping) return false;
    this.coordinator.postMessage(m);
    return true;
  }

  /** SIGHUP: every worker (and any started later) takes `limits` into its config. */
  reloadLimits(limits: ReloadedLimits): void {
    Object.assign(this.config, limits);
    const msg: LimitsReload = { t: 'limits', limits };
    for (const s of this.slots) s.worker?.postMessage(msg);
  }

  /** Main-thread counters (accept limits) live in row 0 at indices no worker writes (src/shared/counters.ts). */
  countMain(counter: number, n: number): void {
    this.counterView[counter] += n;
  }

  private onExit(index: number, slot: Slot, code: number): void {
    if (this.stopping || this.slots[index] !== slot) return;
    this.logs.drainThread(index);
    log.error(`fleetmq: worker ${index} exited (code ${code}); replacing it`, { worker: index, code });
    this.restarts++;
    const acceptSab = createRingBuffer(ACCEPT_RING_BYTES);
    const next: Slot = { worker: null, accept: new RingProducer(acceptSab, this.bells[index]), acceptSab, handed: 0, ready: false };
    // The dead worker's fds closed with it; what its ring still held is counted in again below.
    this.open.zeroWorker(index);
    this.carryQueuedFds(slot, next, index);
    this.slots[index] = next;
    const row = this.counterView.subarray(index * COUNTERS_PER_WORKER, (index + 1) * COUNTERS_PER_WORKER);
    // Gauges of the dead worker go to zero; its message totals stay in $SYS.
    row[C_CONNECTIONS_OPEN] = 0;
    row[C_ACCEPTED] = 0;
    row[C_CLIENTS_CONNECTED] = 0;
    row[C_SESSIONS] = 0;
    row[C_SUBSCRIPTIONS] = 0;
    new Float64Array(this.gauges, index * GAUGES_PER_WORKER * 8, GAUGES_PER_WORKER).fill(0);
    // Its slab references were released by its env cleanup hook; nobody may name it as a holder.
    Atomics.store(new Int32Array(this.slabHolders), index, -1);
    // The coordinator removes the dead worker's subscriptions from the trie first: the
    // replacement reuses its subscriber ids. Connections meanwhile queue in the new accept ring.
    this.resetRings(index);
    this.pendingRespawn.add(index);
    this.coordinator.postMessage({ t: 'worker-died', index });
  }

  private readonly pendingRespawn = new Set<number>();

  private onPurged(index: number): void {
    if (!this.pendingRespawn.delete(index) || this.stopping) return;
    void this.spawn(index);
  }

  /** fds handed over but never adopted by the dead worker would leak otherwise (src/README.md, "Measured"). */
  /**
   * Connections handed to the dead worker that it never took (a client reconnecting at once
   * can land there before the main thread sees the exit) go to its replacement; closed only if
   * even that ring is full (src/README.md, "Measured": never leak an fd).
   */
  private carryQueuedFds(dead: Slot, next: Slot, index: number): void {
    this.publishHandOffs(); // what this turn wrote to the dead ring is carried too
    new RingConsumer(dead.acceptSab).drain((_d, view, off) => {
      const fd = view.getInt32(off, true);
      const at = next.accept.reserve(ACCEPT_RECORD_BYTES);
      if (at < 0) { native.closeFd(fd); return; }
      const listener = view.getInt32(off + 4, true);
      next.accept.dataView.setInt32(at, fd, true);
      next.accept.dataView.setInt32(at + 4, listener, true);
      next.handed++;
      this.open.add(index, listener, 1);
    });
    next.accept.commit();
  }

  private resetRings(index: number): void {
    for (let j = 0; j < this.slots.length; j++) {
      if (j === index) continue;
      this.rings[index][j] = createRingBuffer(PEER_RING_BYTES);
      this.rings[j][index] = createRingBuffer(PEER_RING_BYTES);
      const msg: PeerReset = { t: 'peer-reset', index, inbound: this.rings[index][j]!, outbound: this.rings[j][index]! };
      this.slots[j].worker?.postMessage(msg);
    }
  }

  /**
   * SIGHUP: every worker rebuilds its TLS contexts from `material` for new connections (the
   * ones open keep theirs). Resolves once each running worker has answered (at most 5 s), so
   * the log line that follows is true for every connection accepted after it. A worker
   * started later gets `material` with its wiring.
   */
  reloadTls(material: (TlsMaterial | null)[]): Promise<string[]> {
    this.tls = material;
    const seq = ++this.tlsSeq;
    const left = new Set<number>();
    const msg: TlsReload = { t: 'tls-reload', seq, material };
    this.slots.forEach((s, i) => { if (s.worker && s.ready) { left.add(i); s.worker.postMessage(msg); } });
    return new Promise((resolve) => {
      const errors: string[] = [];
      const timer = setTimeout(() => { this.tlsAcks.delete(seq); resolve([...errors, ...[...left].map((i) => `worker ${i} did not answer`)]); }, 5000);
      const done = () => { clearTimeout(timer); this.tlsAcks.delete(seq); resolve(errors); };
      if (left.size === 0) { done(); return; }
      this.tlsAcks.set(seq, { left, errors, done });
    });
  }

  private onTlsReloaded(index: number, m: TlsReloaded): void {
    const wait = this.tlsAcks.get(m.seq);
    if (!wait) return;
    if (m.error) wait.errors.push(`worker ${index}: ${m.error}`);
    wait.left.delete(index);
    if (wait.left.size === 0) wait.done();
  }

  /**
   * Asks every worker to disconnect its clients (v5: 0x8B) and exit; resolves when all have, the
   * store is closed and the coordinator is gone. Releases the trie too, so a process can start
   * another broker (src/index.ts). Safe before start() and twice.
   */
  async stop(timeoutMs = 5000): Promise<void> {
    if (this.stopped) return this.stopped;
    this.stopped = this.stopAll(timeoutMs);
    return this.stopped;
  }

  private stopped: Promise<void> | null = null;

  private async stopAll(timeoutMs: number): Promise<void> {
    this.stopping = true;
    const exits = this.slots.map((s) => new Promise<void>((resolve) => {
      const w = s.worker;
      if (!w || w.threadId < 0) { resolve(); return; }
      w.once('exit', () => resolve());
      w.postMessage({ t: 'shutdown' });
    }));
    const timer = setTimeout(() => { for (const s of this.slots) void s.worker?.terminate(); }, timeoutMs);
    await Promise.all(exits);
    clearTimeout(timer);
    if (this.coordinator) await this.stopCoordinator();
    this.logs.close();
    // No thread is left that could use the trie.
    trie.destroy(this.trieId);
  }

  private async stopCoordinator(): Promise<void> {
    // The store closes cleanly (pending commits land) before the coordinator goes.
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, 5000);
      this.coordinator.on('message', (m: { t: string }) => { if (m.t === 'closed') { clearTimeout(t); resolve(); } });
      this.coordinator.postMessage({ t: 'close' });
    });
    await this.coordinator.terminate();
  }
}
