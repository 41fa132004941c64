// The worker's side of persistence: store operations collected during a loop turn and sent to
// the coordinator as one request on this worker's store ring (it group-commits across workers). Callers that must not
// acknowledge before the write is durable pass a callback; it runs once the commit landed.
//
// Operations go out in the order they were made. A held publish (held-publish.ts) waits up to
// the linger for its deliveries to end; what was queued after it waits with it, unless a
// caller needs an answer (a barrier or a store-first publish), which sends everything now.
import type { NewMessage } from '../../src/store/types';
import type { PersistResult, PersistTarget, StoreOp, WireMessage } from '../../src/shared/messages';
import type { StoreLink } from './store-link';
import type { Message } from '../protocol/message';
import { HeldPublish, toStoreMessage } from './held-publish';
import { C_STORE_FORCED, C_STORE_HELD, C_STORE_UNWRITTEN } from '../../src/shared/counters';

type PublishDone = (r: PersistResult | null) => void;
/** `ok` is false when the commit failed: nothing it carried is durable. */
type Landed = (ok: boolean) => void;

/** What a request's answer settles: store-first publishes (with their ids), held ones, barriers. */
interface Waiting { publishes: PublishDone[]; held: HeldPublish[]; barriers: Landed[] }

/** A store-first publish: routed only when `done` has the ids. */
class FirstPublish {
  constructor(readonly op: StoreOp, readonly done: PublishDone) {}
}

export class Persister {
  /** Not yet sent, in order, from `head` on: plain operations and held publishes. */
  private queue: Array<StoreOp | FirstPublish | HeldPublish | undefined> = [];
  private head = 0;
  /** Entries dropped from the front of `queue` so far: `dropped + i` is entry i's position for good. */
  private dropped = 0;
  /** Position of the last forced held publish: the next flush sends everything up to it. */
  private mustReach = -1;
  /** Held publishes in `queue`: past MAX_HELD the oldest go without waiting out the linger. */
  private heldCount = 0;
  private barriers: Landed[] = [];
  /** Someone waits for an answer: the next flush sends the whole queue. */
  private urgent = false;
  private readonly waiting = new Map<number, Waiting>();
  private nextReq = 1;
  private timer: NodeJS.Timeout | null = null;
  /**
   * When the last flush ran: a held publish is stamped with it rather than reading the clock
   * per message, so it may go out up to one turn before its linger is over.
   */
  private clock: number;
  /** Flushes so far: one per worker turn. */
  private turns = 0;

  constructor(private readonly link: StoreLink | null, private readonly schedule: () => void,
    private readonly lingerMs: number, private readonly count: (counter: number, n: number) => void = () => undefined,
    private readonly now: () => number = () => performance.now()) {
    this.clock = now();
  }

  get enabled(): boolean { return this.link !== null; }

  /** A retained update, stored in its turn among this worker's other operations. */
  retain(msg: WireMessage): void {
    if (!this.enabled || msg.topic.startsWith('$SYS/')) return; // republished at every start
    this.op({ o: 'retain', msg });
  }

  op(o: StoreOp): void {
    if (!this.enabled) return;
    this.queue.push(o);
    this.schedule();
  }

  /** Stores `msg` once, queued for each target; `done` gets the ids after the commit (null on failure). */
  publish(msg: NewMessage, targets: PersistTarget[], done: PublishDone): void {
    this.queue.push(new FirstPublish({ o: 'publish', msg, targets }, done));
    this.urgent = true;
    this.schedule();
  }

  /** A message routed before it is stored, under ids the worker took (targets carry `seq`). */
  hold(msg: Message, id: number, targets: PersistTarget[]): HeldPublish {
    const h = new HeldPublish(msg, id, targets, this.clock, this.turns, this.dropped + this.queue.length, this.onForced);
    this.count(C_STORE_HELD, 1);
    this.queue.push(h);
    if (++this.heldCount > MAX_HELD) this.urgent = true;
    this.schedule();
    return h;
  }

  /**
   * Runs `done` once everything queued so far is durable (at once if nothing is queued): a
   * SUBACK or UNSUBACK of a persistent session is not sent before its subscription change is.
   */
  barrier(done: Landed): void {
    if (this.queue.length === this.head) { done(true); return; }
    this.barriers.push(done);
    this.urgent = true;
    this.schedule();
  }

  /**
   * Once per turn: sends what is due as one request: everything up to the last entry someone
   * waits for (a store-first publish, a forced held one, or all of it for a barrier or `all`:
   * shutting down), then on until a held publish still inside its linger.
   */
  flush(all = false): void {
    if (!this.enabled) return;
    this.clock = this.now();
    this.turns++;
    const q = this.queue;
    if (q.length === this.head) return;
    const reach = this.urgent || all ? Infinity : this.mustReach;
    const due = this.clock - this.lingerMs;
    const dueTurn = this.turns - HOLD_TURNS;
    const overdue = this.clock - this.lingerMs * MAX_LINGER_FACTOR;
    const ops: StoreOp[] = [];
    // The coordinator answers store-first 'publish' ops in op order: callbacks are kept in that order.
    const publishes: PublishDone[] = [];
    const posted: HeldPublish[] = [];
    let i = this.head;
    for (; i < q.length; i++) {
      const e = q[i]!;
      if (e instanceof HeldPublish) {
        if (e.dead) { this.heldCount--; this.count(C_STORE_UNWRITTEN, 1); }
        else if (this.dropped + i > reach && (e.at > due || e.turn > dueTurn) && e.at > overdue) break;
        else { this.postHeld(e, ops); posted.push(e); }
      } else if (e instanceof FirstPublish) { ops.push(e.op); publishes.push(e.done); }
      else ops.push(e);
      q[i] = undefined;
    }
    this.consumed(i);
    this.armTimer();
    if (ops.length > 0) { this.post(ops, publishes, posted); return; }
    // Everything queued was cancelled: a barrier has nothing left to wait for.
    const barriers = this.barriers;
    this.barriers = [];
    this.urgent = false;
    for (const done of barriers) done(true);
  }

  private postHeld(e: HeldPublish, ops: StoreOp[]): void {
    this.heldCount--;
    if (e.forced) this.count(C_STORE_FORCED, 1);
    e.posted = true;
    ops.push({ o: 'publish', msg: toStoreMessage(e.msg!), targets: e.liveTargets(), id: e.id });
  }

  /** Entries before `i` are sent or dropped; the array is reset or compacted now and then. */
  private consumed(i: number): void {
    const q = this.queue;
    if (i === q.length) { this.dropped += q.length; this.queue = []; this.head = 0; return; }
    this.head = i;
    if (i > 1024 && i * 2 > q.length) { this.queue = q.slice(i); this.dropped += i; this.head = 0; }
  }

  /** A held publish that has to go at the next flush (a delivery was queued), with what precedes it. */
  private readonly onForced = (h: HeldPublish): void => {
    if (h.pos > this.mustReach) this.mustReach = h.pos;
    this.schedule();
  };

  private post(ops: StoreOp[], publishes: PublishDone[], held: HeldPublish[]): void {
    const req = this.nextReq++;
    this.waiting.set(req, { publishes, held, barriers: this.barriers });
    this.link!.send(req, ops);
    this.barriers = [];
    this.urgent = false;
  }

  /** Held publishes at the head fall due without another turn when the worker goes quiet. */
  private armTimer(): void {
    if (this.timer || this.queue.length === this.head) return;
    const head = this.queue[this.head];
    // Quiet worker: no turns pass, so the milliseconds decide.
    const wait = head instanceof HeldPublish ? Math.max(1, head.at + this.lingerMs - this.now()) : 1;
    this.timer = setTimeout(() => { this.timer = null; this.schedule(); }, wait);
  }

  onStored(req: number, results: PersistResult[], error: string | null): void {
    const w = this.waiting.get(req);
    if (!w) return;
    this.waiting.delete(req);
    w.publishes.forEach((done, i) => done(error ? null : results[i] ?? null));
    for (const h of w.held) h.settle(error === null);
    for (const done of w.barriers) done(error === null);
  }
}

/**
 * Bound on held publishes per worker (each pins its message): beyond it everything queued is
 * posted at the next flush, so memory stays bounded whatever --commit-linger-ms and the rate.
 */
const MAX_HELD = 65536;

/**
 * A held publish waits the linger AND this many turns, at most MAX_LINGER_FACTOR lingers. A
 * subscriber's PUBACK comes back a turn or two after the delivery was written; under
 * saturation a turn takes longer than the linger, and counting only milliseconds then posted
 * nearly everything, which made turns longer still (measured: bimodal 210K / 108K msg/s).
 */
const HOLD_TURNS = 3;
const MAX_LINGER_FACTOR = 10;
