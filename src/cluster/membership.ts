// Cluster membership and self-fencing on etcd. Past 300 lines on purpose: join, keepalive,
// watch, fence and rejoin share one state machine, and splitting it would split its invariants.
//
// A node registers /fleetmq/<cluster>/members/<nodeId> (only if absent) under a lease, watches the
// prefix, and reports the member set at each etcd revision as the cluster *view* ('view' events).
// It keeps its lease alive with its own loop (one keepalive round trip every TTL/3) and counts its
// own fencing deadline (see fence.ts): when that passes without a newer acknowledged keepalive it
// emits 'fenced' — before etcd can have expired the lease — and then rejoins with a new
// incarnation (new lease, put-if-absent), emitting 'joined'. etcd3's `lost` event is not used.
//
// Unreachable etcd at start: join() keeps trying for `startTimeoutMs` (default 15 s), logging one
// line every `logEveryMs` (default 3 s) naming the endpoints and the last error, then rejects with
// EtcdUnreachableError; the process that called it is expected to print it and exit non-zero (the
// test fixture exits with 1). A syntactically wrong endpoint is refused at once (EtcdConfigError).
// A node id that is already registered is refused at once (DuplicateNodeError naming the other
// incarnation); a node that restarts after a crash must wait until its old lease expires (≤ TTL).
//
// Leader changes in a 3-member etcd do not fence: every call has a 1 s per-attempt deadline and is
// retried on other endpoints within the time left before the fencing deadline.
//
// Pure module with explicit state: no thread, injectable monotonic clock, timers owned here and
// all cleared by leave().
import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { EtcdClient, EtcdUnavailableError, KeyValue, WatchBatch, WatchHandle } from './etcd-client';
import { LeaseFence, defaultMarginMs } from './fence';
import { nameProblem } from './names';

export interface MemberInfo {
  nodeId: string;
  /** New on every join: `<ms since epoch in base 36>-<8 random hex>`. */
  incarnation: string;
  advertise: string;
  clusterPort: number;
  /** Wall-clock ms when this incarnation joined. */
  startedAt: number;
}

export interface ClusterView {
  revision: bigint;
  /** Sorted by nodeId. */
  members: MemberInfo[];
}

export interface FencedEvent {
  /** Monotonic ms (the membership's clock) when fencing happened. */
  at: number;
  /** The deadline that passed. */
  deadline: number;
  lastAckSentAt: number;
  incarnation: string;
  reason: string;
}

export interface JoinedEvent {
  at: number;
  incarnation: string;
  leaseId: string;
  revision: bigint;
  rejoin: boolean;
}

export interface MembershipOptions {
  client: EtcdClient;
  cluster: string;
  nodeId: string;
  advertise: string;
  clusterPort: number;
  /** Lease TTL in seconds (default 10; etcd's minimum is 2 with its default election timeout). */
  ttlSec?: number;
  marginMs?: number;
  /** Keepalive period (default TTL/3). */
  keepaliveEveryMs?: number;
  /** How long join() waits for an unreachable etcd before it rejects (default 15 s). */
  startTimeoutMs?: number;
  /** Period of the "still waiting for etcd" log line (default 3 s). */
  logEveryMs?: number;
  /** Pause between rejoin attempts after fencing (default 500 ms). */
  rejoinRetryMs?: number;
  /** Monotonic clock in ms (default performance.now). */
  clock?: () => number;
  log?: (line: string) => void;
}

export type MembershipState = 'idle' | 'joining' | 'joined' | 'fenced' | 'left';

export class DuplicateNodeError extends Error {
  constructor(readonly nodeId: string, readonly other: MemberInfo | null, cluster: string) {
    super(`node id "${nodeId}" is already a member of cluster "${cluster}"` +
      (other ? ` (incarnation ${other.incarnation}, advertise ${other.advertise}:${other.clusterPort}, started ${new Date(other.startedAt).toISOString()})` : ' (its value is unreadable)') +
      '; refusing to join with the same id (if that node is dead, its lease expires within the TTL)');
  }
}

export class EtcdUnreachableError extends Error {}


export function membersPrefix(cluster: string): string { return `/fleetmq/${cluster}/members/`; }

export function newIncarnation(nowWallMs = Date.now()): string {
  return `${nowWallMs.toString(36)}-${randomBytes(4).toString('hex')}`;
}

export function parseMember(kv: KeyValue, prefix: string): MemberInfo | null {
  try {
    const v = JSON.parse(kv.value.toString()) as MemberInfo;
    if (typeof v.nodeId !== 'string' || typeof v.incarnation !== 'string') return null;
    if (v.nodeId !== kv.key.slice(prefix.length)) return null;
    return v;
  } catch {
    return null;
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class Membership extends EventEmitter {
  readonly ttlMs: number;
  readonly marginMs: number;
  readonly keepaliveEveryMs: number;
  readonly key: string;
  readonly prefix: string;
  private readonly client: EtcdClient;
  private readonly opts: MembershipOptions;
  private readonly clock: () => number;
  private readonly log: (line: string) => void;
  private readonly fence: LeaseFence;

  private st: MembershipState = 'idle';
  /** Bumped on every join/fence/leave: loops of an older epoch stop. */
  private epoch = 0;
  private me: MemberInfo | null = null;
  private leaseId: string | null = null;
  /** A lease granted by a registration still in flight (leave() must revoke it too). */
  private pendingLeaseId: string | null = null;
  private fenceTimer: NodeJS.Timeout | null = null;
  private watch: WatchHandle | null = null;
  private members = new Map<string, MemberInfo>();
  private viewRevision = -1n;
  private wakeKeepalive: (() => void) | null = null;

  /** Counters for tests and $SYS later. */
  readonly stats = { keepalivesOk: 0, keepaliveErrors: 0, maxAckGapMs: 0, fenced: 0, joins: 0 };
  private lastAckAt = -Infinity;

  constructor(opts: MembershipOptions) {
    super();
    const bad = nameProblem('node id', opts.nodeId) ?? nameProblem('cluster name', opts.cluster);
    if (bad) throw new Error(bad);
    const ttlSec = opts.ttlSec ?? 10;
    if (!Number.isInteger(ttlSec) || ttlSec < 2) throw new RangeError(`lease TTL must be an integer >= 2 s (etcd's minimum), got ${ttlSec}`);
    this.opts = opts;
    this.client = opts.client;
    this.ttlMs = ttlSec * 1000;
    this.marginMs = opts.marginMs ?? defaultMarginMs(this.ttlMs);
    this.keepaliveEveryMs = opts.keepaliveEveryMs ?? Math.round(this.ttlMs / 3);
    if (this.keepaliveEveryMs >= this.ttlMs - this.marginMs) {
      throw new RangeError(`keepalive period ${this.keepaliveEveryMs} ms must be below TTL − margin (${this.ttlMs - this.marginMs} ms)`);
    }
    this.fence = new LeaseFence(this.ttlMs, this.marginMs);
    this.clock = opts.clock ?? (() => performance.now());
    this.log = opts.log ?? ((l) => process.stderr.write(`fleetmq cluster: ${l}\n`));
    this.prefix = membersPrefix(opts.cluster);
    this.key = this.prefix + opts.nodeId;
  }

  get state(): MembershipState { return this.st; }
  /** This node's current registration (null when not joined). */
  self(): MemberInfo | null { return this.st === 'joined' ? this.me : null; }
  currentLeaseId(): string | null { return this.leaseId; }
  view(): ClusterView { return { revision: this.viewRevision, members: [...this.members.values()].sort((a, b) => (a.nodeId < b.nodeId ? -1 : a.nodeId > b.nodeId ? 1 : 0)) }; }
  fenceDeadline(): number { return this.fence.deadline(); }
  lastAckSentAt(): number { return this.fence.lastAckSentAt(); }

  /**
   * Registers this node. Rejects with DuplicateNodeError when the id is taken, EtcdUnreachableError
   * when etcd did not answer within startTimeoutMs, or any non-transient etcd error.
   */
  async join(): Promise<void> {
    if (this.st !== 'idle') throw new Error(`join() called in state ${this.st}`);
    this.st = 'joining';
    const startTimeout = this.opts.startTimeoutMs ?? 15000;
    const logEvery = this.opts.logEveryMs ?? 3000;
    const t0 = this.clock();
    let nextLog = t0 + logEvery;
    let last: Error | null = null;
    for (;;) {
      if (this.st !== 'joining') throw new Error('join() aborted by leave()');
      const left = t0 + startTimeout - this.clock();
      if (left <= 0) break;
      try {
        await this.register(false, Math.max(1, Math.min(left, logEvery, 3000)));
        return;
      } catch (err) {
        if (!(err instanceof EtcdUnavailableError)) { if (this.st === 'joining') this.st = 'idle'; throw err; }
        last = err;
      }
      const now = this.clock();
      if (now >= nextLog) {
        this.log(`waiting for etcd at ${this.client.endpoints.join(',')} (${((t0 + startTimeout - now) / 1000).toFixed(1)} s left): ${last.message}`);
        nextLog = now + logEvery;
      }
      await sleep(Math.min(200, Math.max(0, t0 + startTimeout - this.clock())));
    }
    if (this.st === 'joining') this.st = 'idle';
    throw new EtcdUnreachableError(`etcd unreachable at ${this.client.endpoints.join(',')} for ${startTimeout} ms; giving up (last error: ${last?.message ?? 'none'})`);
  }

  /** Revokes the lease (the key disappears for everyone at once) and stops everything. Never throws. */
  async leave(): Promise<void> {
    if (this.st === 'left') return;
    const wasJoined = this.st === 'joined';
    this.st = 'left';
    this.epoch++;
    this.stopLoops();
    await this.stopWatch();
    const leases = [this.leaseId, this.pendingLeaseId].filter((l): l is string => l !== null);
    this.leaseId = null;
    this.pendingLeaseId = null;
    for (const lease of leases) {
      try { await this.client.leaseRevoke(lease, { budgetMs: 2000 }); } catch (err) {
        this.log(`leave: could not revoke lease ${lease} (${(err as Error).message}); the key expires within ${this.ttlMs / 1000} s`);
      }
    }
    if (wasJoined) this.emit('left', { at: this.clock() });
  }

  // ---- joining ----

  /** One attempt: grant, put-if-absent, list, watch. Throws EtcdUnavailableError when etcd did not answer. */
  private async register(rejoin: boolean, budgetMs: number, old?: { incarnation: string; leaseId: string | null }): Promise<void> {
    const epoch = ++this.epoch;
    const me: MemberInfo = {
      nodeId: this.opts.nodeId,
      incarnation: newIncarnation(),
      advertise: this.opts.advertise,
      clusterPort: this.opts.clusterPort,
      startedAt: Date.now(),
    };
    const sentAt = this.clock();
    const lease = await this.client.leaseGrant(this.ttlMs / 1000, { budgetMs });
    if (epoch !== this.epoch) {
      await this.client.leaseRevoke(lease.id, { budgetMs: 1000 }).catch(() => undefined);
      throw new Error('join() aborted by leave()');
    }
    this.pendingLeaseId = lease.id;
    const fence = new LeaseFence(this.ttlMs, this.marginMs);
    fence.acknowledged(sentAt, lease.ttlSec);
    const dropLease = () => this.client.leaseRevoke(lease.id, { budgetMs: 1000 }).catch(() => undefined);
    try {
      let put = await this.client.putIfAbsent(this.key, Buffer.from(JSON.stringify(me)), lease.id, { budgetMs: Math.max(1, fence.remaining(this.clock())) });
      if (!put.created && put.existing && old) {
        const other = parseMember(put.existing, this.prefix);
        // Our own previous incarnation (same incarnation id and same lease): safe to delete.
        if (other && other.incarnation === old.incarnation && put.existing.lease === old.leaseId) {
          await this.client.deleteIfUnchanged(this.key, put.existing.modRevision, { budgetMs: 1000 });
          put = await this.client.putIfAbsent(this.key, Buffer.from(JSON.stringify(me)), lease.id, { budgetMs: Math.max(1, fence.remaining(this.clock())) });
        }
      }
      if (!put.created) {
        const other = put.existing ? parseMember(put.existing, this.prefix) : null;
        throw new DuplicateNodeError(this.opts.nodeId, other, this.opts.cluster);
      }
      if (fence.expired(this.clock())) throw new EtcdUnavailableError('registration took longer than the fencing window');
      const list = await this.client.getPrefix(this.prefix, { budgetMs: Math.max(1, fence.remaining(this.clock())) });
      if (epoch !== this.epoch || (this.st !== 'joining' && this.st !== 'fenced')) { await dropLease(); throw new Error('join() aborted by leave()'); }
      // Registered: from here on this incarnation is live.
      this.me = me;
      this.leaseId = lease.id;
      this.pendingLeaseId = null;
      this.fence.reset();
      this.fence.acknowledged(sentAt, lease.ttlSec);
      this.lastAckAt = this.clock();
      this.st = 'joined';
      this.stats.joins++;
      this.armFenceTimer(epoch);
      void this.keepaliveLoop(epoch);
      this.applyList(list.revision, list.kvs);
      await this.startWatch(epoch, list.revision + 1n);
      this.emit('joined', { at: this.clock(), incarnation: me.incarnation, leaseId: lease.id, revision: put.revision, rejoin } satisfies JoinedEvent);
    } catch (err) {
      if (this.leaseId !== lease.id) await dropLease();
      if (this.pendingLeaseId === lease.id) this.pendingLeaseId = null;
      throw err;
    }
  }

  // ---- keepalive and fencing ----

  private async keepaliveLoop(epoch: number): Promise<void> {
    while (epoch === this.epoch && this.st === 'joined') {
      const lease = this.leaseId!;
      const sentAt = this.clock();
      try {
        // Worth trying only while the lease can still be ours.
        const budget = Math.max(1, this.fence.remaining(sentAt));
        const res = await this.client.leaseKeepAliveOnce(lease, { budgetMs: budget });
        if (epoch !== this.epoch || this.st !== 'joined') return;
        if (res.ttlSec <= 0) { this.doFence(epoch, `etcd says lease ${lease} no longer exists`); return; }
        const now = this.clock();
        this.stats.keepalivesOk++;
        this.stats.maxAckGapMs = Math.max(this.stats.maxAckGapMs, now - this.lastAckAt);
        this.lastAckAt = now;
        this.fence.acknowledged(sentAt, res.ttlSec);
        this.armFenceTimer(epoch);
        await this.pause(Math.max(0, sentAt + this.keepaliveEveryMs - this.clock()));
      } catch (err) {
        if (epoch !== this.epoch || this.st !== 'joined') return;
        this.stats.keepaliveErrors++;
        this.log(`keepalive of lease ${lease} failed (${Math.round(this.fence.remaining(this.clock()))} ms before fencing): ${(err as Error).message}`);
        await this.pause(100);
      }
    }
  }

  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => { this.wakeKeepalive = null; resolve(); }, ms);
      this.wakeKeepalive = () => { clearTimeout(t); this.wakeKeepalive = null; resolve(); };
    });
  }

  private armFenceTimer(epoch: number): void {
    if (this.fenceTimer) clearTimeout(this.fenceTimer);
    const ms = Math.max(0, Math.ceil(this.fence.remaining(this.clock())));
    this.fenceTimer = setTimeout(() => {
      this.fenceTimer = null;
      if (epoch !== this.epoch || this.st !== 'joined') return;
      if (this.fence.expired(this.clock())) this.doFence(epoch, 'no keepalive acknowledged within TTL − margin');
      else this.armFenceTimer(epoch);
    }, ms);
  }

  private doFence(epoch: number, reason: string): void {
    if (epoch !== this.epoch || this.st !== 'joined') return;
    const at = this.clock();
    const old = { incarnation: this.me!.incarnation, leaseId: this.leaseId };
    this.st = 'fenced';
    this.epoch++;
    this.stats.fenced++;
    this.stopLoops();
    const ev: FencedEvent = { at, deadline: this.fence.deadline(), lastAckSentAt: this.fence.lastAckSentAt(), incarnation: old.incarnation, reason };
    this.log(`fenced (incarnation ${old.incarnation}): ${reason}`);
    this.emit('fenced', ev);
    void this.rejoinLoop(old);
  }

  private async rejoinLoop(old: { incarnation: string; leaseId: string | null }): Promise<void> {
    await this.stopWatch();
    this.members.clear();
    const retry = this.opts.rejoinRetryMs ?? 500;
    let lastLog = -Infinity;
    while (this.st === 'fenced') {
      // Revoking our own old lease removes our old key at once (it can hold nothing else).
      if (old.leaseId) {
        try { await this.client.leaseRevoke(old.leaseId, { budgetMs: 1000 }); old.leaseId = null; } catch { /* unreachable: try again */ }
      }
      if (this.st !== 'fenced') return;
      try {
        await this.register(true, 2000, old);
        return;
      } catch (err) {
        if (this.st !== 'fenced') return;
        const now = this.clock();
        if (now - lastLog >= (this.opts.logEveryMs ?? 3000)) {
          this.log(`rejoin failed, retrying every ${retry} ms: ${(err as Error).message}`);
          lastLog = now;
        }
      }
      await sleep(retry);
    }
  }

  private stopLoops(): void {
    if (this.fenceTimer) { clearTimeout(this.fenceTimer); this.fenceTimer = null; }
    this.wakeKeepalive?.();
  }

  // ---- view ----

  private applyList(revision: bigint, kvs: KeyValue[]): void {
    this.members.clear();
    for (const kv of kvs) {
      const m = parseMember(kv, this.prefix);
      if (m) this.members.set(m.nodeId, m);
      else this.log(`ignoring unreadable member key ${kv.key}`);
    }
    this.viewRevision = revision;
    this.emit('view', this.view());
  }

  private applyBatch(batch: WatchBatch): void {
    if (batch.events.length === 0) return; // progress notification
    let lostOwnKey: string | null = null;
    for (const ev of batch.events) {
      const nodeId = ev.kv.key.slice(this.prefix.length);
      const m = ev.type === 'put' ? parseMember(ev.kv, this.prefix) : null;
      if (m) this.members.set(nodeId, m); else this.members.delete(nodeId);
      if (nodeId === this.opts.nodeId && this.me && m?.incarnation !== this.me.incarnation) {
        lostOwnKey = ev.type === 'delete' ? `our key was deleted in etcd at revision ${batch.revision}`
          : `our key was replaced in etcd at revision ${batch.revision} (incarnation ${m?.incarnation ?? 'unreadable'})`;
      }
    }
    this.viewRevision = batch.revision;
    this.emit('view', this.view());
    // The others no longer see this incarnation: it must not count itself in either.
    if (lostOwnKey) this.doFence(this.epoch, lostOwnKey);
  }

  private async startWatch(epoch: number, fromRevision: bigint): Promise<void> {
    const handle = await this.client.watchPrefix(this.prefix, fromRevision, {
      onBatch: (b) => { if (epoch === this.epoch && this.st === 'joined') this.applyBatch(b); },
      onCancelled: (err) => {
        if (epoch !== this.epoch || this.st !== 'joined') return;
        this.log(`watch cancelled (${err.message}); listing again`);
        void this.resync(epoch);
      },
    });
    if (epoch !== this.epoch || this.st !== 'joined') { await handle.cancel(); return; }
    this.watch = handle;
  }

  /** After a cancelled watch (e.g. compaction): list again, then watch from there. */
  private async resync(epoch: number): Promise<void> {
    const old = this.watch;
    this.watch = null;
    await old?.cancel();
    while (epoch === this.epoch && this.st === 'joined') {
      try {
        const list = await this.client.getPrefix(this.prefix, { budgetMs: 3000 });
        if (epoch !== this.epoch || this.st !== 'joined') return;
        this.applyList(list.revision, list.kvs);
        await this.startWatch(epoch, list.revision + 1n);
        return;
      } catch { await sleep(500); }
    }
  }

  private async stopWatch(): Promise<void> {
    const w = this.watch;
    this.watch = null;
    await w?.cancel();
  }
}
