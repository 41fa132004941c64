// The registry's home side: the table of the client ids this node is the primary home of, by
// rendezvous hashing over the view (rendezvous.ts). Registrations of one id are serialised here
// simply because each is answered in one synchronous step (read the previous owner, write the
// new one); what waits is admission: a request is judged only at this node's own view, and after
// a view change only once every member said it re-registered what it holds (the barrier).
// README.md here, "The client-id registry", gives the answer for every view change.
import { primary, salted, type Scored } from './rendezvous';
import type {
  AssertAns, AssertReq, At, Owner, RegisterAns, RegisterReq, RegistryView, SyncedReq, UnregisterReq,
} from './registry-wire';

export interface HomeOptions {
  nodeId: string;
  /** How long a view's barrier holds registrations for members that did not say "synced". */
  barrierMs: number;
  /** How long a request from a sender ahead of this node waits for this node's view to catch up. */
  catchUpMs: number;
  /** Bound on requests waiting (barrier or catch-up); more are refused at once. */
  maxParked: number;
  now?: () => number;
  log?: (line: string) => void;
}

interface Parked {
  /** Answers and returns true, or returns false to keep waiting. */
  retry(): boolean;
  giveUp(): void;
  until: number;
}

const own = (o: Owner): Owner => ({ node: o.node, inc: o.inc, seq: o.seq });

export class RegistryHome {
  private readonly entries = new Map<string, Owner>();
  /** The owner each entry's registration replaced (what its answer named), for a repeated registration. */
  private readonly replaced = new Map<string, Owner>();
  private view: RegistryView | null = null;
  private scored: Scored[] = [];
  /** Members of the current view that have not said "synced" for it yet (empty: no barrier). */
  private waitingFor = new Set<string>();
  private barrierUntil = 0;
  /** "synced" heard for views this node has not reached yet: vid → nodes. Bounded by pruning on each view. */
  private readonly early = new Map<string, Set<string>>();
  private parked: Parked[] = [];
  private timer: NodeJS.Timeout | null = null;
  private timerAt = 0;
  private readonly now: () => number;
  /** Registrations refused because too many waited. */
  droppedParked = 0;

  constructor(private readonly opts: HomeOptions) {
    this.now = opts.now ?? Date.now;
  }

  get size(): number { return this.entries.size; }
  get barrierUp(): boolean { return this.waitingFor.size > 0; }

  /** The entry for `id` (tests, diagnostics). */
  entry(id: string): Owner | undefined { return this.entries.get(id); }

  /**
   * A new view. Entries of owners no longer in it are dropped (a fenced node rejoins with a new
   * incarnation and re-registers what it kept), and so are the ids this node is no longer the
   * primary of (their owners re-register them with the new primary). Registrations wait until
   * every other member said "synced" for this view, or `barrierMs`.
   */
  setView(view: RegistryView): void {
    // The same member set listed again (a re-list after a cancelled watch): nothing moved, no barrier.
    if (this.view && this.view.vid === view.vid) { this.view = view; this.wake(); return; }
    this.view = view;
    this.scored = salted([...view.members.keys()]);
    for (const [id, o] of this.entries) {
      if (primary(id, this.scored) !== this.opts.nodeId) { this.entries.delete(id); this.replaced.delete(id); continue; }
      if (view.members.get(o.node) === o.inc) continue;
      // Its owner left (fenced: its connections are closed). The owner it replaced may never have
      // been asked to let go (the leaver's claim stopped at its fencing): that one is the owner
      // again, so the next claim of the id asks it.
      const r = this.replaced.get(id);
      this.replaced.delete(id);
      if (r && view.members.get(r.node) === r.inc) this.entries.set(id, r);
      else this.entries.delete(id);
    }
    // "synced" heard early for this view counts; for other views it is kept (bounded): a view
    // passed through on the way must not lose what was said about the one after it.
    const heard = this.early.get(view.vid);
    this.early.delete(view.vid);
    this.waitingFor = new Set([...view.members.keys()].filter((n) => !heard?.has(n)));
    this.barrierUntil = this.now() + this.opts.barrierMs;
    if (this.waitingFor.size > 0) this.arm(this.barrierUntil);
    this.wake();
  }

  /** Not a member (fenced): nothing held here is trusted any more. */
  clear(): void {
    this.view = null;
    this.entries.clear();
    this.replaced.clear();
    this.waitingFor.clear();
    this.wake();
  }

  synced(req: SyncedReq): void {
    const v = this.view;
    if (v && req.vid === v.vid) {
      if (this.waitingFor.delete(req.node) && this.waitingFor.size === 0) this.wake();
      return;
    }
    if (v && BigInt(req.rev) < v.rev) return; // an older view's news
    let s = this.early.get(req.vid);
    if (!s) { if (this.early.size >= 8) this.early.clear(); this.early.set(req.vid, (s = new Set())); }
    s.add(req.node);
  }

  register(req: RegisterReq): Promise<RegisterAns> {
    return new Promise((resolve) => {
      const attempt = (): boolean => {
        const a = this.admit(req, true);
        if (a === 'wait') return false;
        if (a !== null) { resolve(a); return true; }
        if (primary(req.id, this.scored) !== this.opts.nodeId) { resolve({ s: 'refused', why: 'not the home' }); return true; }
        const cur = this.entries.get(req.id);
        const o = req.owner;
        if (cur && cur.node === o.node && cur.inc === o.inc && cur.seq >= o.seq) {
          // The same registration again (its answer was lost: a call past its deadline) gets the
          // same answer, so the previous owner it names is still asked to let go. One node's
          // claims of an id come in order (registry.ts chains them): a lower seq is a duplicate.
          resolve({ s: 'granted', prev: cur.seq === o.seq ? this.replaced.get(req.id) ?? null : own(cur) });
          return true;
        }
        // Replacing this node's own earlier registration: the owner that one replaced may not
        // have been asked yet (that claim may have lost its answer), so it is named again
        // (asking twice is harmless: a release names the registration it ends).
        const prev = cur && cur.node === o.node && cur.inc === o.inc ? this.replaced.get(req.id) ?? null : cur ?? null;
        this.entries.set(req.id, { node: o.node, inc: o.inc, seq: o.seq });
        if (prev) this.replaced.set(req.id, own(prev)); else this.replaced.delete(req.id);
        resolve({ s: 'granted', prev: prev ? own(prev) : null });
        return true;
      };
      if (!attempt()) this.park(attempt, () => resolve({ s: 'refused', why: 'timeout' }));
    });
  }

  /** Re-registrations after a view change: never held by the barrier (they are what it waits for). */
  assert(req: AssertReq): Promise<AssertAns> {
    return new Promise((resolve) => {
      const attempt = (): boolean => {
        const a = this.admit(req, false);
        if (a === 'wait') return false;
        if (a !== null) { resolve(a); return true; }
        const taken: string[] = [];
        for (const it of req.items) {
          if (primary(it.id, this.scored) !== this.opts.nodeId) { taken.push(it.id); continue; }
          const cur = this.entries.get(it.id);
          if (!cur) { this.entries.set(it.id, { node: req.node, inc: req.inc, seq: it.seq }); this.replaced.delete(it.id); }
          else if (cur.node === req.node && cur.inc === req.inc) this.entries.set(it.id, { node: req.node, inc: req.inc, seq: Math.max(it.seq, cur.seq) });
          else taken.push(it.id);
        }
        resolve({ s: 'ok', taken });
        return true;
      };
      if (!attempt()) this.park(attempt, () => resolve({ s: 'refused', why: 'timeout' }));
    });
  }

  unregister(req: UnregisterReq): void {
    for (const it of req.items) {
      const cur = this.entries.get(it.id);
      if (cur && cur.node === req.node && cur.inc === req.inc && cur.seq === it.seq) { this.entries.delete(it.id); this.replaced.delete(it.id); }
    }
  }

  /**
   * null: admitted at this view. 'wait': the sender is ahead (or, for a registration, the barrier
   * is up). Otherwise the answer to give now.
   */
  private admit(at: At, heldByBarrier: boolean): { s: 'stale'; rev: string } | { s: 'refused'; why: string } | 'wait' | null {
    const v = this.view;
    if (!v) return { s: 'refused', why: 'not a member' };
    if (at.vid !== v.vid) {
      if (BigInt(at.rev) < v.rev) return { s: 'stale', rev: v.rev.toString() };
      return 'wait';
    }
    if (heldByBarrier && this.waitingFor.size > 0 && this.now() < this.barrierUntil) return 'wait';
    if (heldByBarrier && this.waitingFor.size > 0) {
      this.opts.log?.(`registry: view ${v.rev}: no "synced" from ${[...this.waitingFor].join(', ')} within ${this.opts.barrierMs} ms; answering registrations`);
      this.waitingFor.clear();
    }
    return null;
  }

  private park(retry: () => boolean, giveUp: () => void): void {
    if (this.parked.length >= this.opts.maxParked) { this.droppedParked++; giveUp(); return; }
    const until = this.now() + Math.max(this.opts.catchUpMs, this.opts.barrierMs);
    this.parked.push({ retry, giveUp, until });
    this.arm(until);
  }

  /** Re-judges every waiting request (a view, a "synced", a timer). */
  private wake(): void {
    const now = this.now();
    const still: Parked[] = [];
    for (const p of this.parked.splice(0)) {
      if (p.retry()) continue;
      if (now >= p.until) p.giveUp();
      else still.push(p);
    }
    // A retry may have parked nothing new (it only answers), so this is the whole list.
    this.parked = still.concat(this.parked);
    if (this.parked.length === 0) return;
    let next = this.waitingFor.size > 0 ? this.barrierUntil : Infinity;
    for (const p of this.parked) if (p.until < next) next = p.until;
    this.arm(next);
  }

  /** One timer, at the earliest moment something waiting must be judged again. */
  private arm(at: number): void {
    if (this.timer && this.timerAt <= at) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(() => { this.timer = null; this.wake(); }, Math.max(1, at - this.now()));
  }

  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    for (const p of this.parked.splice(0)) p.giveUp();
  }
}
