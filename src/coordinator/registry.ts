// clientId → owning worker, with takeover (workers/README.md, "Sessions"). Claims for one clientId
// are serialised: a second claim waits until the first one's takeover has completed.
import type { MessagePort } from 'node:worker_threads';
import type { FromCoordinator, WireSession } from '../shared/messages';

interface Entry {
  owner: number;
  /** A takeover in progress: claims that arrive meanwhile wait here. */
  busy: boolean;
  waiting: Array<() => void>;
}

interface PendingRelease {
  clientId: string;
  from: number;
  /** null: an eviction for the cluster registry (the session ends, nobody here takes the id). */
  claimer: number | null;
  claimReq: number;
  evicted?: () => void;
}

export class Registry {
  private readonly entries = new Map<string, Entry>();
  private readonly releases = new Map<number, PendingRelease>();
  private nextReq = 1;

  /** `later`: when send()'s answers go out (the end of this turn; tests may say "now"). */
  constructor(private readonly ports: (MessagePort | null)[], private readonly later: (fn: () => void) => void = setImmediate) {}

  /**
   * Answers per worker, posted once the turn ends (setImmediate): one post per CONNECT was a
   * large part of a connect storm's cost. Bounded by what one turn's claims and releases produce.
   */
  private outbox: FromCoordinator[][] = [];
  private flushQueued = false;
  private readonly flushBound = () => this.flush();

  private send(worker: number, msg: FromCoordinator): void {
    if (!this.ports[worker]) return;
    (this.outbox[worker] ??= []).push(msg);
    if (!this.flushQueued) { this.flushQueued = true; this.later(this.flushBound); }
  }

  /** Posts what send() holds, one message per worker. */
  flush(): void {
    this.flushQueued = false;
    for (let w = 0; w < this.outbox.length; w++) {
      const msgs = this.outbox[w];
      if (msgs === undefined || msgs.length === 0) continue;
      this.outbox[w] = [];
      this.ports[w]?.postMessage(msgs.length === 1 ? msgs[0] : ({ t: 'batch', msgs } satisfies FromCoordinator));
    }
  }

  claim(worker: number, req: number, clientId: string, clean: boolean): void {
    const e = this.entries.get(clientId);
    if (!e) {
      if (!this.ports[worker]) return; // the claimer died while the cluster registry answered
      this.entries.set(clientId, { owner: worker, busy: false, waiting: [] });
      this.send(worker, { t: 'granted', req, existed: false });
      return;
    }
    if (e.busy) { e.waiting.push(() => this.claim(worker, req, clientId, clean)); return; }
    if (e.owner === worker) { this.send(worker, { t: 'granted', req, existed: true, local: true }); return; }
    // A session that continues stays where it is: the connection moves to it (no gap in its
    // subscriptions). A clean start ends the old session wherever it is.
    if (!clean) { this.send(worker, { t: 'granted', req, existed: true, redirect: e.owner }); return; }
    e.busy = true;
    const id = this.nextReq++;
    this.releases.set(id, { clientId, from: e.owner, claimer: worker, claimReq: req });
    this.send(e.owner, { t: 'release', req: id, clientId, clean });
  }

  released(worker: number, req: number): void {
    const p = this.releases.get(req);
    if (!p || p.from !== worker) return;
    this.finishRelease(req, p);
  }

  private finishRelease(req: number, p: PendingRelease): void {
    this.releases.delete(req);
    const e = this.entries.get(p.clientId)!;
    if (p.claimer === null) {
      this.entries.delete(p.clientId);
      p.evicted!();
      // What waited on the ended session starts over against no entry, in order.
      for (const w of e.waiting.splice(0)) w();
      return;
    }
    e.owner = p.claimer;
    e.busy = false;
    this.send(p.claimer, { t: 'granted', req: p.claimReq, existed: true });
    this.drain(e);
  }

  /**
   * Runs the claims that waited, in order, until one starts a takeover of its own: a claim
   * answered at once (granted locally, or redirected to the owner) leaves the entry free, and
   * the claims behind it must not wait for a release that will never come.
   */
  private drain(e: Entry): void {
    while (!e.busy && e.waiting.length > 0) e.waiting.shift()!();
  }

  /**
   * The cluster registry gave the id to another node: this node's session ends (its connection
   * closes with 0x8E, its will follows MQTT 5 §3.1.2.5 as for a clean start elsewhere). After a
   * claim in progress for the id, never in the middle of one.
   */
  evict(clientId: string): Promise<void> {
    return new Promise((resolve) => {
      const run = (): void => {
        const e = this.entries.get(clientId);
        if (!e) { resolve(); return; }
        if (e.busy) { e.waiting.push(run); return; }
        e.busy = true;
        const id = this.nextReq++;
        this.releases.set(id, { clientId, from: e.owner, claimer: null, claimReq: 0, evicted: resolve });
        this.send(e.owner, { t: 'release', req: id, clientId, clean: true });
      };
      run();
    });
  }

  /** Client ids with a session here (connected or not). */
  held(): IterableIterator<string> { return this.entries.keys(); }

  /** A session restored from the store at start is owned by the worker it was handed to. */
  own(clientId: string, worker: number): void {
    this.entries.set(clientId, { owner: worker, busy: false, waiting: [] });
  }

  /** The session is gone (clean disconnect, expiry) — only its current owner may say so. */
  ended(worker: number, clientId: string): boolean {
    const e = this.entries.get(clientId);
    if (e && e.owner === worker && !e.busy && e.waiting.length === 0) { this.entries.delete(clientId); return true; }
    return false;
  }

  /** A worker died: its sessions are lost (in memory), and releases it owed resolve empty. Returns the ids dropped. */
  workerDied(worker: number): string[] {
    this.outbox[worker] = []; // answers to the dead worker must not reach its replacement
    for (const [req, p] of this.releases) if (p.from === worker) this.finishRelease(req, p);
    const dropped: string[] = [];
    for (const [id, e] of this.entries) if (e.owner === worker && !e.busy) { this.entries.delete(id); dropped.push(id); }
    return dropped;
  }

  // ---- cross-node handover (src/cluster/handover.ts) ----

  /**
   * A session handed in from another node goes to the claiming worker with its grant; false
   * (nothing sent) if this node has a session of the id already: the caller claims as usual.
   */
  claimHandedIn(worker: number, req: number, clientId: string, session: WireSession): boolean {
    if (this.entries.has(clientId) || !this.ports[worker]) return false;
    this.entries.set(clientId, { owner: worker, busy: true, waiting: [] });
    this.send(worker, { t: 'granted', req, existed: true, handover: session });
    return true;
  }

  /** The handed-in session's queue is in (or will not come): other claims of the id may go on. */
  handedIn(clientId: string): void {
    const e = this.entries.get(clientId);
    if (e?.busy) { e.busy = false; this.drain(e); }
  }

  /** The worker owning `clientId` now, if any (not in the middle of a takeover). */
  ownerOf(clientId: string): number | null { return this.entries.get(clientId)?.owner ?? null; }

  /**
   * The session is being handed to another node: claims of the id here wait until it is gone
   * or back (handOutEnd). Resolves with its worker, or null without a session here.
   */
  handOutStart(clientId: string): Promise<number | null> {
    return new Promise((resolve) => {
      const run = (): void => {
        const e = this.entries.get(clientId);
        if (!e) { resolve(null); return; }
        if (e.busy) { e.waiting.push(run); return; }
        e.busy = true;
        resolve(e.owner);
      };
      run();
    });
  }

  handOutEnd(clientId: string, gone: boolean): void {
    const e = this.entries.get(clientId);
    if (!e) return;
    e.busy = false;
    if (gone) { this.entries.delete(clientId); for (const w of e.waiting.splice(0)) w(); return; }
    this.drain(e);
  }
}
