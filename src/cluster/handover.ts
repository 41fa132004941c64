// A persistent session follows its client id from node A to node B (README.md here, "Session
// handover"). Run by each node's coordinator; the client-id registry (registry.ts) decides who
// owns the id, this moves what the session holds, in two phases:
//
// 1. B's claim asks A to release the id with `keep` (the CONNECT has clean start 0). A's worker
//    closes the old connection (0x8E; its will: at once if its delay is 0, else cancelled, the
//    session being resumed within the delay) and answers a snapshot: subscriptions with their
//    options and identifiers, in-flight messages both ways with packet ids and states, the
//    expiry. The session stays subscribed on A and offline: what arrives for it meanwhile queues
//    there (bounded as any offline queue: --max-queued-messages / --queue-policy, counted). The
//    snapshot comes back in the Release answer.
// 2. B's worker installs the session (its subscriptions reach the trie and B's route deltas),
//    answers CONNACK session present = 1 and resends in-flight messages with DUP; what arrives
//    on B waits behind the queue to come. B then calls A's Handover/Finish. A lingers until B's
//    routes for the session's filters have reached it (bounded), plus a margin for the other
//    peers' route streams and frames already on their way to A (the stragglers, which queue on
//    A too), then answers the whole queue and drops the session (its store copy too). B puts
//    that queue first and what it got meanwhile after it; a message both nodes got goes again
//    with DUP (QoS 0: not again).
//
// A dies or does not answer Finish: B goes on without the queue (counted failed; as for a dead
// node, what A held is lost). B does not call Finish in time (or says not ok): A puts the
// session back offline and registers the id again; if its home has another owner by then, that
// one wins and A's copy ends (README.md here, "Session handover").
import * as grpc from '@grpc/grpc-js';
import { bytesMethod, type PeerServer } from './peer-server';
import type { PeerLinks } from './peer-links';
import type { RouteSync } from './routes';
import { announced } from './routes';
import type { Handed } from './registry-wire';
import { encodeSession, decodeSession, encodeQueue, decodeQueue } from './handover-wire';
import type { HandoverFromWorker, HandoverToWorker, WireQueued, WireSession } from '../shared/messages';
import * as K from '../shared/counters';

const FINISH = bytesMethod('Handover', 'Finish', 'unary');

/** The node-local registry (src/coordinator/registry.ts), as a handover needs it. */
export interface HandoverLocal {
  handOutStart(id: string): Promise<number | null>;
  handOutEnd(id: string, gone: boolean): void;
  handedIn(id: string): void;
  ownerOf(id: string): number | null;
}

/** The cluster registry, for a session that comes back to this node after a handover was given up. */
export interface HandoverRegistry { reown(id: string): void }

export interface HandoverDeps {
  peers: PeerLinks;
  server: PeerServer;
  routes: RouteSync;
  local: HandoverLocal;
  registry: HandoverRegistry;
  post(worker: number, m: HandoverToWorker): boolean;
  /** Counter row 0 (written by this thread), or null. */
  counters: SharedArrayBuffer | null;
  /** How long each side waits for the other (the registry's claim timeout). */
  timeoutMs: number;
  /** After B's routes reached A: how long A still takes stragglers (ms). */
  lingerMs: number;
  /** The longest A waits for B's routes before that margin. */
  maxRouteWaitMs: number;
  log(line: string): void;
}

interface Out {
  id: string;
  to: string;
  worker: number;
  filters: string[];
  timer: NodeJS.Timeout;
}

interface In { from: string; hid: string; timer: NodeJS.Timeout }

interface FinishReq { hid: string; ok: boolean }
type FinishAns = { s: 'ok'; queue: string } | { s: 'gone' };

const identity = (b: Buffer): Buffer => b;

export class ClusterHandover {
  private readonly row: Float64Array | null;
  private nextReq = 1;
  private nextHid = 1;
  private readonly waiting = new Map<number, (m: HandoverFromWorker) => void>();
  private readonly outgoing = new Map<string, Out>();
  private readonly incoming = new Map<string, In>();
  private closed = false;

  constructor(private readonly d: HandoverDeps) {
    this.row = d.counters ? new Float64Array(d.counters, 0, K.COUNTERS_PER_WORKER) : null;
    d.server.addService({ Finish: FINISH } as grpc.ServiceDefinition, {
      Finish: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
        let body: unknown;
        try { body = JSON.parse(call.request.toString('utf8')); } catch { body = null; }
        const r = body as Record<string, unknown> | null;
        if (!r || typeof r !== 'object' || typeof r.hid !== 'string' || typeof r.ok !== 'boolean') { cb({ code: grpc.status.INVALID_ARGUMENT, details: 'not a Finish request' }); return; }
        this.onFinish({ hid: r.hid, ok: r.ok }).then((ans) => cb(null, Buffer.from(JSON.stringify(ans))), (err: Error) => cb({ code: grpc.status.INTERNAL, details: err.message }));
      },
    });
  }

  private count(c: number, n = 1): void { if (this.row) this.row[c] += n; }

  private ask(worker: number, build: (req: number) => HandoverToWorker): Promise<HandoverFromWorker | null> {
    const req = this.nextReq++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => { this.waiting.delete(req); resolve(null); }, this.d.timeoutMs);
      this.waiting.set(req, (m) => { clearTimeout(timer); resolve(m); });
      if (!this.d.post(worker, build(req))) { clearTimeout(timer); this.waiting.delete(req); resolve(null); }
    });
  }

  /** A worker's answer or news. */
  fromWorker(m: HandoverFromWorker): void {
    if (m.t === 'handover-installed') { this.installed(m.clientId); return; }
    const w = this.waiting.get(m.req);
    if (w) { this.waiting.delete(m.req); w(m); }
  }

  // ---- node A: the session leaves ----

  /** Phase 1 (the registry's Release with `keep`): null when there is nothing to hand over. */
  async handOut(id: string, to: string): Promise<Handed | null> {
    if (this.closed) return null;
    const worker = await this.d.local.handOutStart(id);
    if (worker === null) return null;
    const ans = await this.ask(worker, (req) => ({ t: 'handover-out', req, clientId: id }));
    const session = ans?.t === 'handover-snap' ? ans.session : null;
    if (!session) { this.d.local.handOutEnd(id, false); return null; }
    const hid = `${id.length}:${id}:${this.nextHid++}`;
    const timer = setTimeout(() => { void this.finishHere(hid, false); }, this.d.timeoutMs);
    this.outgoing.set(hid, { id, to, worker, filters: session.subscriptions.map((s) => s.filter).filter(announced), timer });
    return { hid, session: encodeSession(session) };
  }

  private async onFinish(req: FinishReq): Promise<FinishAns> {
    const out = this.outgoing.get(req.hid);
    if (!out) return { s: 'gone' };
    if (req.ok) await this.routesReached(out);
    const queue = await this.finishHere(req.hid, req.ok);
    if (queue === null) return { s: 'gone' };
    const { text, dropped } = encodeQueue(queue);
    if (dropped > 0) {
      this.count(K.C_CLUSTER_HANDOVER_DROPPED, dropped);
      this.d.log(`handover of ${JSON.stringify(out.id)} to ${out.to}: ${dropped} queued message(s) left out (over the bytes one handover carries)`);
    }
    return { s: 'ok', queue: text };
  }

  /** B's routes for the session's filters reached this node (bounded), then the stragglers' margin. */
  private async routesReached(out: Out): Promise<void> {
    const until = Date.now() + this.d.maxRouteWaitMs;
    while (!this.closed && Date.now() < until && !out.filters.every((f) => this.d.routes.peerHas(out.to, f))) await sleep(10);
    await sleep(this.d.lingerMs);
  }

  /** Phase 2 here (ok) or the handover given up (the session goes back offline here). */
  private async finishHere(hid: string, ok: boolean): Promise<WireQueued[] | null> {
    const out = this.outgoing.get(hid);
    if (!out) return null;
    this.outgoing.delete(hid);
    clearTimeout(out.timer);
    const ans = await this.ask(out.worker, (req) => ({ t: 'handover-finish', req, clientId: out.id, ok }));
    this.d.local.handOutEnd(out.id, ok);
    if (!ok) {
      this.count(K.C_CLUSTER_HANDOVERS_FAILED);
      this.d.log(`handover of ${JSON.stringify(out.id)} to ${out.to} not finished: the session is offline here again, registered again unless its id is owned elsewhere now`);
      this.d.registry.reown(out.id);
      return null;
    }
    this.count(K.C_CLUSTER_HANDOVERS_OUT);
    return ans?.t === 'handover-queue' ? ans.queue : [];
  }

  // ---- node B: the session arrives ----

  /** The snapshot in a Release answer; null if malformed (then the claim goes on without it). */
  decode(text: string): WireSession | null { return decodeSession(text); }

  /** The claim's worker got the session (claimHandedIn); its Finish follows its 'handover-installed'. */
  expect(id: string, from: string, hid: string): void {
    const old = this.incoming.get(id);
    if (old) clearTimeout(old.timer);
    // A worker that never says installed (it died): A is told to keep the session.
    const timer = setTimeout(() => { if (this.incoming.get(id)?.hid === hid) { this.incoming.delete(id); this.d.local.handedIn(id); void this.callFinish(from, hid, false); this.count(K.C_CLUSTER_HANDOVERS_FAILED); } }, this.d.timeoutMs);
    this.incoming.set(id, { from, hid, timer });
  }

  /** The claim could not take the handed session (the node had one already): A keeps it. */
  refuse(from: string, hid: string): void { void this.callFinish(from, hid, false); }

  private installed(id: string): void {
    const inc = this.incoming.get(id);
    if (!inc) return;
    this.incoming.delete(id);
    clearTimeout(inc.timer);
    void this.callFinish(inc.from, inc.hid, true).then((ans) => {
      let queue: WireQueued[] | null = null;
      if (ans?.s === 'ok') queue = decodeQueue(ans.queue);
      if (queue) this.count(K.C_CLUSTER_HANDOVERS_IN);
      else {
        this.count(K.C_CLUSTER_HANDOVERS_FAILED);
        this.d.log(`handover of ${JSON.stringify(id)} from ${inc.from}: its queue did not come (${ans ? ans.s : 'no answer'}); going on without it`);
      }
      const w = this.d.local.ownerOf(id);
      if (w !== null) this.d.post(w, { t: 'handover-rest', clientId: id, queue });
      this.d.local.handedIn(id);
    });
  }

  private callFinish(node: string, hid: string, ok: boolean): Promise<FinishAns | null> {
    const link = this.d.peers.link(node);
    if (!link) return Promise.resolve(null);
    const ms = this.d.timeoutMs + this.d.maxRouteWaitMs + this.d.lingerMs;
    return new Promise((resolve) => {
      link.client.makeUnaryRequest(FINISH.path, identity, identity, Buffer.from(JSON.stringify({ hid, ok } satisfies FinishReq)), new grpc.Metadata(),
        { deadline: Date.now() + ms }, (err, res) => {
          if (err || !res) { resolve(null); return; }
          try { resolve(JSON.parse(res.toString('utf8')) as FinishAns); } catch { resolve(null); }
        });
    });
  }

  close(): void {
    this.closed = true;
    for (const o of this.outgoing.values()) clearTimeout(o.timer);
    for (const i of this.incoming.values()) clearTimeout(i.timer);
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
