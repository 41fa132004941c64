// The client-id registry of a cluster node: exactly one owner per client id across the nodes,
// with no etcd write per CONNECT (README.md here, "The client-id registry"). A CONNECT's claim
// registers the id with its primary home (rendezvous.ts over the view; registry-home.ts there),
// which answers with the previous owner; that owner is asked to end its session (its connection
// closes with 0x8E) before the claim goes on to this node's own (worker-level) registry and the
// CONNACK. On a view change this node re-registers, with their new homes, the ids it holds whose
// home moved, then says "synced". Runs in the coordinator thread, loaded only with --etcd.
import { primary, salted, type Scored } from './rendezvous';
import { RegistryHome } from './registry-home';
import type {
  AssertReq, AssertAns, Handed, Owner, RegisterAns, RegisterReq, RegistryTransport, RegistryView,
  ReleaseAns, ReleaseReq, SyncedReq, UnregisterReq,
} from './registry-wire';

/** This node's sessions, as the registry needs them (the coordinator's worker-level registry). */
export interface LocalSessions {
  /** Ends this node's session of `id`, if any (its connection closes with 0x8E); resolves once done. */
  evict(id: string): Promise<void>;
  /** Client ids with a session on this node (connected or not). */
  held(): Iterable<string>;
  /**
   * Phase 1 of handing this node's session of `id` to node `to` (handover.ts): its connection
   * closes with 0x8E and its snapshot is answered; null: nothing to hand over (then `evict`).
   */
  handOut?(id: string, to: string): Promise<Handed | null>;
}

/** What the registry counts (src/shared/counters.ts, fleetmq_cluster_*). */
export interface RegistryCounts {
  /** A claim granted by its home. */
  registered(): void;
  /** Another node's session of a client id ended for a claim here. */
  takeover(): void;
  /** A claim refused (not a member, or a home that refused). */
  refused(): void;
  /** A claim given up after claimTimeoutMs (home or previous owner unreachable, a barrier too long). */
  timedOut(): void;
  /** Ids re-registered with a new home after a view change or a rejoin. */
  reasserted(n: number): void;
  /** Ids this node held but whose home had another owner (or could not be told): ended here. */
  lost(n: number): void;
}

export class ClaimRefused extends Error {
  constructor(readonly why: string, readonly timeout = false) { super(`client id registry: ${why}`); }
}

export interface ClusterRegistryOptions {
  nodeId: string;
  transport: RegistryTransport;
  local: LocalSessions;
  counts: RegistryCounts;
  /** The barrier's bound (a member that says nothing for this long is about to fence itself). */
  barrierMs: number;
  /** A claim not settled within this is refused (CONNACK "server unavailable"). */
  claimTimeoutMs: number;
  /** Most requests a home holds behind its barrier (more are refused at once). */
  maxParked?: number;
  log?: (line: string) => void;
  now?: () => number;
}

interface Rec {
  /** Seq of the latest registration sent for the id (0: none). */
  sent: number;
  /** Seq of the latest registration let through to the local claim (0: none). */
  granted: number;
  /** A release for this seq or later arrived while a claim was in flight: end it right after. */
  supersededUpTo: number;
  /** Claims of this id on this node run one after another. */
  chain: Promise<unknown>;
  /**
   * The home (`node@incarnation`) known to hold the granted registration; null once a view made
   * another node the primary, even for a moment (that home dropped the entry then), until the id
   * is re-registered.
   */
  homeAt: string | null;
  /** The claim running now (not the ones queued behind it). */
  current: Promise<void> | null;
  pending: number;
}

/**
 * The answer to a claim: go on with the local claim, and end the session right after if
 * superseded; `handover`: the previous owner handed its session over (from node `from`).
 */
export interface ClaimResult { superseded: boolean; handover?: Handed & { from: string } }

export class ClusterRegistry {
  readonly home: RegistryHome;
  private view: RegistryView | null = null;
  private scored: Scored[] = [];
  private inc: string | null = null;
  private seq = 0;
  private readonly recs = new Map<string, Rec>();
  /** Releases asked of previous owners, by id and previous registration; they outlive a claim that timed out. */
  private readonly releasing = new Map<string, Promise<ReleaseAns | null>>();
  private syncEpoch = 0;
  private readonly viewWaiters = new Set<() => void>();
  private readonly unregisterBatch = new Map<string, Array<{ id: string; seq: number }>>();
  private unregisterScheduled = false;
  private readonly now: () => number;
  private closed = false;

  constructor(private readonly opts: ClusterRegistryOptions) {
    this.now = opts.now ?? Date.now;
    this.home = new RegistryHome({
      nodeId: opts.nodeId, barrierMs: opts.barrierMs, catchUpMs: opts.barrierMs,
      maxParked: opts.maxParked ?? 100_000, now: this.now, log: opts.log,
    });
  }

  get nodeId(): string { return this.opts.nodeId; }
  get members(): RegistryView | null { return this.view; }
  /** Sessions this node holds as the registry knows them (tests, diagnostics). */
  get tracked(): number { return this.recs.size; }

  /**
   * A view this node is a member of, as incarnation `inc`. A new incarnation (first join, rejoin
   * after fencing) re-registers every id held here; otherwise only the ids whose home moved.
   */
  setView(view: RegistryView, inc: string): void {
    const reassertAll = this.inc !== inc;
    this.inc = inc;
    this.view = view;
    this.scored = salted([...view.members.keys()]);
    this.home.setView(view);
    for (const [id, rec] of this.recs) {
      if (rec.homeAt !== null && (reassertAll || rec.homeAt !== this.homeOf(id, view))) rec.homeAt = null;
    }
    for (const w of [...this.viewWaiters]) w();
    void this.resync(view, reassertAll);
  }

  private homeOf(id: string, view: RegistryView): string {
    const h = primary(id, this.scored)!;
    return `${h}@${view.members.get(h)}`;
  }

  /** Not a member any more: claims are refused, the home table is dropped. */
  fenced(): void {
    this.view = null;
    this.syncEpoch++;
    this.home.clear();
    for (const w of [...this.viewWaiters]) w();
  }

  // ---- claims ----

  /**
   * Registers `id` for a CONNECT here, then runs `proceed` (the local claim, and with
   * `superseded` the end of that session right after), all before the next claim of the id here
   * starts. Rejects with ClaimRefused (then `proceed` does not run).
   */
  claim(id: string, proceed: (r: ClaimResult) => Promise<void> | void, keep = false): Promise<void> {
    let rec = this.recs.get(id);
    if (!rec) this.recs.set(id, (rec = { sent: 0, granted: 0, supersededUpTo: 0, chain: Promise.resolve(), current: null, pending: 0, homeAt: null }));
    const r = rec;
    r.pending++;
    const run: Promise<void> = r.chain.then(async () => {
      r.current = run.catch(() => undefined);
      const result = await this.claimStep(id, r, keep);
      await proceed(result);
    });
    r.chain = run.catch(() => undefined);
    return run.finally(() => {
      r.pending--;
      if (r.pending === 0 && r.granted === 0 && this.recs.get(id) === r) this.recs.delete(id);
    });
  }

  private async claimStep(id: string, rec: Rec, keep: boolean): Promise<ClaimResult> {
    const deadline = this.now() + this.opts.claimTimeoutMs;
    const seq = ++this.seq;
    rec.sent = seq;
    // A session handed over by a previous owner stays this claim's across a retry at a new home
    // (its old node waits for it), and that owner is not asked again for that registration.
    let handover: ClaimResult['handover'];
    let releasedPrev = '';
    for (;;) {
      const v = this.view;
      const inc = this.inc;
      if (!v || !inc || this.closed) { this.opts.counts.refused(); throw new ClaimRefused('this node is not a cluster member now'); }
      const owner: Owner = { node: this.opts.nodeId, inc, seq };
      const home = primary(id, this.scored)!;
      const req: RegisterReq = { id, owner, vid: v.vid, rev: v.rev.toString() };
      let ans: RegisterAns;
      try {
        ans = home === this.opts.nodeId ? await this.home.register(req) : await this.opts.transport.register(home, req);
      } catch {
        await this.pause(deadline, v);
        continue;
      }
      if (ans.s === 'stale') { await this.viewAfter(BigInt(ans.rev), deadline); continue; }
      if (ans.s === 'refused') {
        if (ans.why === 'timeout' || ans.why === 'not a member') { await this.pause(deadline, v); continue; }
        this.opts.counts.refused();
        throw new ClaimRefused(`home ${home} refused: ${ans.why}`);
      }
      // The previous owner is asked even if the view moved meanwhile: the home put this claim
      // after it, and nobody else will ask it (then the claim registers again at the new home).
      const prev = ans.prev;
      const prevKey = prev ? `${prev.node}\0${prev.inc}\0${prev.seq}` : '';
      if (prev && !(prev.node === this.opts.nodeId && prev.inc === inc) && prevKey !== releasedPrev) {
        const rel = await this.releasePrevious(id, prev, owner, deadline, keep && !handover);
        if (rel?.handover) { handover = { ...rel.handover, from: prev.node }; releasedPrev = prevKey; }
      }
      if (this.view !== v) continue;
      this.opts.counts.registered();
      // Superseded: granted, then taken over before it was let through; it connects and is ended
      // at once (its client sees CONNACK, then 0x8E), and holds nothing afterwards.
      if (rec.supersededUpTo >= seq) return { superseded: true, handover };
      rec.granted = seq;
      rec.homeAt = `${home}@${v.members.get(home)}`;
      return { superseded: false, handover };
    }
  }

  /** Waits a little (or until the view changes) before trying again; past the deadline, gives up. */
  private async pause(deadline: number, v: RegistryView): Promise<void> {
    if (this.now() >= deadline) { this.opts.counts.timedOut(); throw new ClaimRefused('timed out', true); }
    await this.waitView(() => this.view !== v, Math.min(100, Math.max(1, deadline - this.now())));
  }

  /**
   * The home is at a later view: waits until this node's view moves (to `rev` or to any other
   * view: a listing can name the same member set at a later revision than the watch event
   * that made it, so the next try may already match), bounded by the deadline.
   */
  private async viewAfter(rev: bigint, deadline: number): Promise<void> {
    const v = this.view;
    const moved = () => this.view !== v || (v !== null && v.rev >= rev);
    if (moved()) return;
    await this.waitView(moved, Math.max(1, deadline - this.now()));
    if (!moved()) { this.opts.counts.timedOut(); throw new ClaimRefused(`timed out waiting for view ${rev}`, true); }
  }

  private waitView(done: () => boolean, ms: number): Promise<void> {
    return new Promise((resolve) => {
      const finish = () => { clearTimeout(t); this.viewWaiters.delete(check); resolve(); };
      const check = () => { if (done()) finish(); };
      const t = setTimeout(finish, ms);
      this.viewWaiters.add(check);
    });
  }

  /**
   * The previous owner ends its session before this claim goes on [MQTT5-3.1.4-3]. A node no
   * longer in the view is not asked: it fenced itself before its lease expired, so its
   * connections are closed. Asking goes on after a claim times out, until the node answers or
   * leaves the view, so a refused claim never leaves the old connection unnoticed.
   */
  private async releasePrevious(id: string, prev: Owner, by: Owner, deadline: number, keep: boolean): Promise<ReleaseAns | null> {
    // One job per previous registration (not per id: a later claim may find another owner).
    const key = `${id}\0${prev.node}\0${prev.inc}\0${prev.seq}`;
    let job = this.releasing.get(key);
    if (!job) {
      job = this.askRelease(id, prev, by, keep).finally(() => { if (this.releasing.get(key) === job) this.releasing.delete(key); });
      this.releasing.set(key, job);
    }
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => { timer = setTimeout(() => resolve('late'), Math.max(1, deadline - this.now())); });
    const r = await Promise.race([job, late]);
    clearTimeout(timer);
    if (r === 'late') { this.opts.counts.timedOut(); throw new ClaimRefused(`previous owner ${prev.node} did not answer`, true); }
    return r;
  }

  private async askRelease(id: string, prev: Owner, by: Owner, keep: boolean): Promise<ReleaseAns | null> {
    for (;;) {
      const v = this.view;
      if (this.closed || !v || v.members.get(prev.node) !== prev.inc) return null;
      try {
        const ans = await this.opts.transport.release(prev.node, keep ? { id, target: prev, by, keep } : { id, target: prev, by });
        if (ans.s === 'released') this.opts.counts.takeover();
        return ans;
      } catch {
        await this.waitView(() => this.view !== v, 200);
      }
    }
  }

  /** Another node's claim names this node as the previous owner. */
  async onRelease(req: ReleaseReq): Promise<ReleaseAns> {
    const rec = this.recs.get(req.id);
    if (rec && rec.granted > req.target.seq) return { s: 'stale' }; // registered again since: that claim ends the asker's
    if (rec && rec.sent > rec.granted && rec.sent <= req.target.seq) {
      // A claim here that the home granted before the asker's is still on its way: it ends
      // before the asker goes on (so two connections never outlive this answer).
      rec.supersededUpTo = Math.max(rec.supersededUpTo, req.target.seq);
      await rec.current;
    }
    const handover = req.keep && this.opts.local.handOut ? await this.opts.local.handOut(req.id, req.by.node) : null;
    if (!handover) await this.opts.local.evict(req.id);
    if (rec && rec.granted <= req.target.seq) {
      rec.granted = 0;
      if (rec.pending === 0 && this.recs.get(req.id) === rec) this.recs.delete(req.id);
    }
    return handover ? { s: 'released', handover } : { s: 'released' };
  }

  /** This node's session of `id` ended (clean disconnect, expiry): its home forgets it. */
  ended(id: string): void {
    const rec = this.recs.get(id);
    if (!rec || rec.pending > 0 || rec.granted === 0) return;
    this.recs.delete(id);
    const v = this.view;
    if (!v || !this.inc) return;
    const home = primary(id, this.scored)!;
    if (home === this.opts.nodeId) { this.home.unregister({ node: this.opts.nodeId, inc: this.inc, items: [{ id, seq: rec.granted }] }); return; }
    let b = this.unregisterBatch.get(home);
    if (!b) this.unregisterBatch.set(home, (b = []));
    b.push({ id, seq: rec.granted });
    if (!this.unregisterScheduled) { this.unregisterScheduled = true; setImmediate(() => this.flushUnregister()); }
  }

  private flushUnregister(): void {
    this.unregisterScheduled = false;
    const inc = this.inc;
    for (const [node, items] of this.unregisterBatch) {
      // Best effort: a lost one leaves an entry that the next claim of the id replaces.
      if (inc) this.opts.transport.unregister(node, { node: this.opts.nodeId, inc, items }).catch(() => undefined);
    }
    this.unregisterBatch.clear();
  }

  // ---- view changes ----

  /**
   * Re-registers what this node holds with the homes of `view`, then tells every member
   * "synced". A newer view (or fencing) interrupts it; an id whose primary moved in any view
   * since it was last registered stays marked (homeAt null) until re-registered, so a view that
   * only flickered past (its home dropped the entry) is not skipped. An id whose new home has another
   * owner, or that cannot be told within the barrier, is ended here: its owner is elsewhere, or
   * may be soon.
   */
  private async resync(view: RegistryView, all: boolean): Promise<void> {
    const epoch = ++this.syncEpoch;
    const inc = this.inc!;
    const current = () => epoch === this.syncEpoch && this.view === view;
    if (all) {
      for (const id of this.opts.local.held()) {
        const rec = this.recs.get(id);
        if (!rec) this.recs.set(id, { sent: 0, granted: ++this.seq, supersededUpTo: 0, chain: Promise.resolve(), current: null, pending: 0, homeAt: null });
        else if (rec.granted === 0 && rec.pending === 0) rec.granted = ++this.seq;
      }
    }
    const groups = new Map<string, Array<{ id: string; seq: number }>>();
    for (const [id, rec] of this.recs) {
      if (rec.granted === 0 || rec.homeAt !== null) continue;
      const h = primary(id, this.scored)!;
      let g = groups.get(h);
      if (!g) groups.set(h, (g = []));
      g.push({ id, seq: rec.granted });
    }
    const deadline = this.now() + this.opts.barrierMs;
    await Promise.all([...groups].map(async ([node, items]) => {
      const req: AssertReq = { node: this.opts.nodeId, inc, vid: view.vid, rev: view.rev.toString(), items };
      let lost: string[] = [];
      for (;;) {
        if (!current()) return;
        let ans: AssertAns | null = null;
        try { ans = node === this.opts.nodeId ? await this.home.assert(req) : await this.opts.transport.assert(node, req); } catch { /* retried below */ }
        if (!current()) return;
        if (ans?.s === 'ok') {
          lost = ans.taken;
          this.opts.counts.reasserted(items.length - lost.length);
          const gone = new Set(lost);
          const at = `${node}@${view.members.get(node)}`;
          for (const it of items) {
            const rec = this.recs.get(it.id);
            if (rec && rec.granted === it.seq && !gone.has(it.id)) rec.homeAt = at;
          }
          break;
        }
        if (this.now() >= deadline) { lost = items.map((i) => i.id); break; }
        await this.waitView(() => !current(), 100);
      }
      if (lost.length > 0) {
        this.opts.counts.lost(lost.length);
        this.opts.log?.(`registry: ${lost.length} client id(s) owned elsewhere or not re-registered with ${node} for view ${view.rev}: their sessions here end`);
        await Promise.all(lost.map((id) => this.dropHeld(id, items.find((i) => i.id === id)!.seq)));
      }
    }));
    if (!current()) return;
    const synced: SyncedReq = { node: this.opts.nodeId, inc, vid: view.vid, rev: view.rev.toString() };
    this.home.synced(synced);
    // Retried while the view holds, up to the barrier: a link still connecting must not cost
    // the others a whole barrier.
    const until = this.now() + this.opts.barrierMs;
    for (const node of view.members.keys()) {
      if (node === this.opts.nodeId) continue;
      void (async () => {
        while (current() && !this.closed) {
          try { await this.opts.transport.synced(node, synced); return; } catch { /* again below */ }
          if (this.now() >= until) return;
          await this.waitView(() => !current(), 100);
        }
      })();
    }
  }

  /**
   * A session this node released (handed over) is back here: its handover was given up
   * (handover.ts). It is registered again as a re-registration is: if the id's home has an owner
   * now (the node it was handed to, or a later claim), that one wins and the copy here ends;
   * otherwise (that node died) this node owns it again. Not answered within the barrier: the
   * next view change asserts it (homeAt null).
   */
  async reown(id: string): Promise<void> {
    if (this.recs.get(id)) return; // claimed here again meanwhile: that claim decides
    const rec: Rec = { sent: 0, granted: ++this.seq, supersededUpTo: 0, chain: Promise.resolve(), current: null, pending: 0, homeAt: null };
    this.recs.set(id, rec);
    const deadline = this.now() + this.opts.barrierMs;
    while (!this.closed && this.now() < deadline && this.recs.get(id) === rec && rec.homeAt === null) {
      const v = this.view;
      const inc = this.inc;
      if (!v || !inc) return;
      const node = primary(id, this.scored)!;
      const req: AssertReq = { node: this.opts.nodeId, inc, vid: v.vid, rev: v.rev.toString(), items: [{ id, seq: rec.granted }] };
      let ans: AssertAns | null = null;
      try { ans = node === this.opts.nodeId ? await this.home.assert(req) : await this.opts.transport.assert(node, req); } catch { /* again below */ }
      if (ans?.s === 'ok' && this.view === v) {
        if (ans.taken.length > 0) { this.opts.counts.lost(1); await this.dropHeld(id, rec.granted); return; }
        rec.homeAt = `${node}@${v.members.get(node)}`;
        return;
      }
      await this.waitView(() => this.view !== v, 100);
    }
  }

  private async dropHeld(id: string, seq: number): Promise<void> {
    const rec = this.recs.get(id);
    if (!rec || rec.granted !== seq) return; // claimed again meanwhile: that claim decides
    await this.opts.local.evict(id);
    if (rec.granted === seq) { rec.granted = 0; if (rec.pending === 0) this.recs.delete(id); }
  }

  // ---- what other nodes ask of this one as a home ----

  onRegister(req: RegisterReq): Promise<RegisterAns> { return this.home.register(req); }
  onAssert(req: AssertReq): Promise<AssertAns> { return this.home.assert(req); }
  onSynced(req: SyncedReq): void { this.home.synced(req); }
  onUnregister(req: UnregisterReq): void { this.home.unregister(req); }

  close(): void {
    this.closed = true;
    this.syncEpoch++;
    this.home.close();
    for (const w of [...this.viewWaiters]) w();
  }
}
