// The worker's side of the coordinator conversation: requests with promises, and the
// coordinator's own requests (release a session for takeover) passed to a handler.
import type { MessagePort } from 'node:worker_threads';
import type { FromCoordinator, ToCoordinator, WireMessage, RestoredSession, PersistResult, ConnOrigin, ClusterForwardMsg, HandoverToWorker, HandoverFromWorker, WireSession } from '../../src/shared/messages';
import { RetainedBatchWriter, RETAINED_BATCH_BYTES } from '../../src/shared/retained-batch';

type Pending = { resolve: (v: never) => void; reject: (e: Error) => void };
const noReject = (): void => { /* claims are always answered */ };

/** `cursor` is 0 when `msgs` was the last page. */
export interface RetainedPage { cursor: number; msgs: WireMessage[] }

/** refused: the cluster's client-id registry could not settle the claim (why). */
export interface Grant { existed: boolean; local?: boolean; redirect?: number; refused?: string; handover?: WireSession }

export class CoordinatorClient {
  private nextReq = 1;
  private readonly pending = new Map<number, Pending>();
  /** Retained updates of this turn, sent in one buffer at its end (src/shared/retained-batch.ts). */
  private batch: RetainedBatchWriter | null = null;
  private batchQueued = false;
  /**
   * Claims and ends of this turn, posted together once it ends: a postMessage costs a clone, a
   * wake-up and a message event on each side, and one per CONNECT and per DISCONNECT was the
   * largest cost of a connect storm. Bounded by the turn (every CONNECT of one read pass).
   */
  private soon: ToCoordinator[] = [];
  private soonQueued = false;
  private readonly flushSoonBound = () => this.flushSoon();
  /** Cross-node forwarding (a cluster member's workers/cluster/forwarder.ts), set once at start. */
  onForward: ((m: ClusterForwardMsg) => void) | null = null;
  /** Cross-node session handover (workers/session/lifecycle.ts), set once at start. */
  onHandover: ((m: HandoverToWorker) => void) | null = null;

  constructor(
    readonly port: MessagePort,
    private readonly onRelease: (req: number, clientId: string, clean: boolean) => void,
    private readonly onAdopt: (s: RestoredSession) => void,
    private readonly onStored: (req: number, results: PersistResult[], error: string | null) => void,
    private readonly onConn: (fd: number, bytes: Uint8Array, identity: string | null, origin: ConnOrigin | null) => void,
    private readonly onAdoptDone: () => void,
    /** The cluster: this node fenced itself, or (worker 0) the member list changed. */
    private readonly onCluster: (m: Extract<FromCoordinator, { t: 'cluster-fenced' | 'cluster-view' }>) => void,
  ) {
    port.on('message', (m: FromCoordinator) => this.onMessage(m));
  }

  private onMessage(m: FromCoordinator): void {
    if (m.t === 'batch') { for (const x of m.msgs) this.onMessage(x); return; }
    if (m.t === 'release') { this.onRelease(m.req, m.clientId, m.clean); return; }
    if (m.t === 'adopt') { this.onAdopt(m.session); return; }
    if (m.t === 'stored') { this.onStored(m.req, m.results, m.error); return; }
    if (m.t === 'conn') { this.onConn(m.fd, m.bytes, m.identity ?? null, m.origin ?? null); return; }
    if (m.t === 'adopt-done') { this.onAdoptDone(); return; }
    if (m.t === 'cluster-fenced' || m.t === 'cluster-view') { this.onCluster(m); return; }
    if (m.t === 'cluster-fwd-acks' || m.t === 'cluster-fwd-in') { this.onForward?.(m); return; }
    if (m.t === 'handover-out' || m.t === 'handover-finish' || m.t === 'handover-rest') { this.onHandover?.(m); return; }
    const p = this.pending.get(m.req);
    if (!p) return;
    this.pending.delete(m.req);
    if (m.t === 'granted') (p.resolve as (v: Grant) => void)({ existed: m.existed, local: m.local, redirect: m.redirect, refused: m.refused, handover: m.handover });
    else if (m.t === 'retained') (p.resolve as (v: RetainedPage) => void)({ cursor: m.cursor, msgs: m.msgs });
  }

  private request<T>(build: (req: number) => ToCoordinator): Promise<T> {
    const req = this.nextReq++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(req, { resolve: resolve as (v: never) => void, reject });
      this.post(build(req));
    });
  }

  /**
   * `done` runs inside the message that answers, not a promise job later: answers arrive in
   * batches, and a takeover needs each claim's CONNACK to have gone (the session online)
   * before the next answer for the same client id is looked at.
   */
  claim(clientId: string, clean: boolean, done: (g: Grant) => void): void {
    const req = this.nextReq++;
    this.pending.set(req, { resolve: done as (v: never) => void, reject: noReject });
    this.postSoon({ t: 'claim', req, clientId, clean });
  }

  /** A page of `filter`'s retained messages: from a new cursor (0) or the open one named. */
  retained(filter: string, cursor: number): Promise<RetainedPage> {
    return this.request((req) => ({ t: 'retained?', req, filter, cursor }));
  }

  retainedClose(cursor: number): void {
    this.post({ t: 'retained-close', cursor } satisfies ToCoordinator);
  }

  released(req: number): void {
    this.post({ t: 'released', req } satisfies ToCoordinator);
  }

  /** Answers and news of a cross-node handover (src/cluster/handover.ts). */
  postHandover(m: HandoverFromWorker): void { this.post(m); }

  ended(clientId: string): void {
    this.postSoon({ t: 'ended', clientId });
  }

  /** Hands a connection (a dup'd fd and the bytes read so far) to the worker that owns its session. */
  move(to: number, fd: number, bytes: Uint8Array, identity: string | null, origin: ConnOrigin | null = null): void {
    this.post({ t: 'move', to, fd, bytes, identity, ...(origin ? { origin } : {}) } satisfies ToCoordinator);
  }

  /** Posted before the trie changes, so a worker that dies right after leaves nothing unjournaled. */
  journal(t: 'sub' | 'unsub', sub: number, filter: string): void {
    this.post({ t, sub, filter } satisfies ToCoordinator);
  }

  /** Packed with the turn's other retained updates; sent at the end of the turn or once the batch is large. */
  retain(msg: WireMessage): void {
    (this.batch ??= new RetainedBatchWriter()).add(msg);
    if (this.batch.bytes >= RETAINED_BATCH_BYTES) this.flushRetained();
    else if (!this.batchQueued) { this.batchQueued = true; queueMicrotask(() => this.flushRetained()); }
  }

  /**
   * Every other message goes after the retained updates before it: a SUBSCRIBE handled after a
   * retained PUBLISH in the same turn must find that message in the coordinator's index.
   */
  private post(m: ToCoordinator): void {
    this.flushRetained();
    this.port.postMessage(m);
  }

  /** Sent at the end of the turn (setImmediate), in order with every other post. */
  private postSoon(m: ToCoordinator): void {
    this.soon.push(m);
    if (!this.soonQueued) { this.soonQueued = true; setImmediate(this.flushSoonBound); }
  }

  /** What postSoon holds goes now (before any later post, which keeps the order). */
  flushSoon(): void {
    this.soonQueued = false;
    const s = this.soon;
    if (s.length === 0) return;
    this.soon = [];
    this.port.postMessage(s.length === 1 ? s[0] : ({ t: 'batch', msgs: s } satisfies ToCoordinator));
  }

  private flushRetained(): void {
    this.flushSoon();
    this.batchQueued = false;
    const b = this.batch;
    if (b === null) return;
    this.batch = null;
    const bytes = b.take();
    this.port.postMessage({ t: 'retain-batch', bytes } satisfies ToCoordinator, [bytes.buffer as ArrayBuffer]);
  }
}
