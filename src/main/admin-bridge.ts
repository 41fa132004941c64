// Admin API queries from the main thread to the workers and the coordinator, over the channels
// they already listen on (a worker's parentPort, the coordinator thread's), each with an id its
// answer repeats and a timeout. At most MAX_OUTSTANDING queries wait at once: beyond that the
// API answers 503 instead of queueing without bound (BridgeBusy); a thread that does not answer
// within the timeout (stuck, or dying) fails its query, never the request forever.
import type { Supervisor } from './supervisor';
import type { AdminAsk, AdminReply, CoordinatorAnswer, CoordinatorQuery, WorkerAnswer, WorkerQuery } from '../shared/admin-messages';

const MAX_OUTSTANDING = 256;
const TIMEOUT_MS = 5000;

export class BridgeBusy extends Error {}
export class BridgeTimeout extends Error {}

interface Waiting { resolve(a: unknown): void; reject(e: Error): void; timer: NodeJS.Timeout }

export class AdminBridge {
  private nextId = 1;
  private readonly waiting = new Map<number, Waiting>();

  constructor(private readonly supervisor: Supervisor, private readonly timeoutMs = TIMEOUT_MS) {
    supervisor.onAdminReply = (m) => this.onReply(m);
  }

  /** Asks every worker that can answer now; answers in worker order (a worker gone meanwhile is left out). */
  async askWorkers(q: WorkerQuery): Promise<WorkerAnswer[]> {
    const workers = this.supervisor.readyWorkers();
    if (this.waiting.size + workers.length > MAX_OUTSTANDING) throw new BridgeBusy(`${this.waiting.size} admin queries waiting for the workers already`);
    const answers = await Promise.all(workers.map((i) => this.ask<WorkerAnswer>(`worker ${i}`, (m) => this.supervisor.postToWorker(i, m), q).catch((err: Error) => {
      if (err instanceof BridgeTimeout && !this.supervisor.readyWorkers().includes(i)) return null; // it died meanwhile
      throw err;
    })));
    return answers.filter((a): a is WorkerAnswer => a !== null);
  }

  /** Asks one worker (the first that can answer). */
  askAnyWorker(q: WorkerQuery): Promise<WorkerAnswer> {
    const [i] = this.supervisor.readyWorkers();
    if (i === undefined) return Promise.reject(new BridgeBusy('no worker is ready'));
    return this.ask<WorkerAnswer>(`worker ${i}`, (m) => this.supervisor.postToWorker(i, m), q);
  }

  askCoordinator(q: CoordinatorQuery): Promise<CoordinatorAnswer> {
    return this.ask<CoordinatorAnswer>('the coordinator', (m) => this.supervisor.postToCoordinator(m), q);
  }

  private ask<A>(who: string, post: (m: AdminAsk<unknown>) => boolean, q: unknown): Promise<A> {
    if (this.waiting.size >= MAX_OUTSTANDING) return Promise.reject(new BridgeBusy(`${this.waiting.size} admin queries waiting already`));
    const id = this.nextId++;
    return new Promise<A>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new BridgeTimeout(`${who} did not answer within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      this.waiting.set(id, { resolve: resolve as (a: unknown) => void, reject, timer });
      if (!post({ t: 'admin', id, q })) {
        clearTimeout(timer);
        this.waiting.delete(id);
        reject(new BridgeBusy(`${who} is not running`));
      }
    });
  }

  private onReply(m: AdminReply<unknown>): void {
    const w = this.waiting.get(m.id);
    if (!w) return; // timed out already
    this.waiting.delete(m.id);
    clearTimeout(w.timer);
    if (m.error !== undefined) w.reject(new Error(m.error));
    else w.resolve(m.a);
  }

  /** Fails what still waits (the broker stops). */
  close(): void {
    for (const [id, w] of this.waiting) { clearTimeout(w.timer); w.reject(new BridgeBusy('the broker is stopping')); this.waiting.delete(id); }
  }
}
