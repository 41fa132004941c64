// The worker's side of persistence: store operations collected during a loop turn and sent to
// the coordinator in one message (it group-commits across workers). Callers that must not
// acknowledge before the write is durable pass a callback; it runs once the commit landed.
import type { MessagePort } from 'node:worker_threads';
import type { NewMessage } from '../../src/store/types';
import type { PersistResult, PersistTarget, StoreOp, ToCoordinator } from '../../src/shared/messages';

type PublishDone = (r: PersistResult | null) => void;

interface Waiting { publishes: PublishDone[]; barriers: Array<() => void> }

export class Persister {
  private ops: StoreOp[] = [];
  private publishes: PublishDone[] = [];
  private barriers: Array<() => void> = [];
  private readonly waiting = new Map<number, Waiting>();
  private nextReq = 1;

  constructor(readonly enabled: boolean, private readonly port: MessagePort, private readonly schedule: () => void) {}

  op(o: StoreOp): void {
    if (!this.enabled) return;
    this.ops.push(o);
    this.schedule();
  }

  /** Stores `msg` once, queued for each target; `done` gets the ids after the commit (null on failure). */
  publish(msg: NewMessage, targets: PersistTarget[], done: PublishDone): void {
    this.ops.push({ o: 'publish', msg, targets });
    this.publishes.push(done);
    this.schedule();
  }

  /**
   * Runs `done` once everything queued so far is durable (at once if nothing is queued): a
   * SUBACK or UNSUBACK of a persistent session is not sent before its subscription change is.
   */
  barrier(done: () => void): void {
    if (this.ops.length === 0) { done(); return; }
    this.barriers.push(done);
    this.schedule();
  }

  /** Once per turn: everything collected goes out as one request. */
  flush(): void {
    if (this.ops.length === 0) return;
    const wait = this.publishes.length > 0 || this.barriers.length > 0;
    const req = wait ? this.nextReq++ : 0;
    if (wait) this.waiting.set(req, { publishes: this.publishes, barriers: this.barriers });
    this.port.postMessage({ t: 'store', req, ops: this.ops } satisfies ToCoordinator);
    this.ops = [];
    this.publishes = [];
    this.barriers = [];
  }

  onStored(req: number, results: PersistResult[], error: string | null): void {
    const w = this.waiting.get(req);
    if (!w) return;
    this.waiting.delete(req);
    w.publishes.forEach((done, i) => done(error ? null : results[i] ?? null));
    for (const done of w.barriers) done();
  }
}
