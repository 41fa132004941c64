// Every session deadline of a worker (offline expiry, delayed will) in one min-heap behind one
// Node timer, instead of a timer per offline session: 100K offline sessions are 100K small heap
// entries (a deadline and its position), not 100K timer handles in libuv's list.
//
// The one timer is armed for the earliest deadline (at most 2^31-1 ms ahead: setTimeout's limit,
// past which Node fires at once; a longer wait simply re-arms). Adding a later deadline costs a
// heap insert and no timer call. A tick fires at most FIRE_PER_TURN due deadlines and yields to
// the event loop (setImmediate) for the rest, so a mass expiry after a restart never blocks the
// worker; each deadline fires in the first turn after it is due plus one turn per
// FIRE_PER_TURN deadlines due before it.
const MAX_DELAY = 0x7fffffff;
/** Deadlines fired per event-loop turn at most. */
export const FIRE_PER_TURN = 2048;

/** One deadline. Owned by whoever schedules it (a session keeps its two and reuses them). */
export class Deadline {
  /** Absolute time (ms since the epoch, Date.now()). */
  at = 0;
  /** Index in the heap; -1 when not scheduled. */
  pos = -1;
  constructor(readonly fire: () => void) {}
  get pending(): boolean { return this.pos >= 0; }
}

export class DeadlineHeap {
  private readonly heap: Deadline[] = [];
  private timer: NodeJS.Timeout | null = null;
  /** When the armed timer fires (ms), or Infinity. */
  private armedAt = Infinity;
  private immediate: NodeJS.Immediate | null = null;

  /** @param onSizeChange told of every change in the number of pending deadlines (a gauge). */
  constructor(private readonly onSizeChange: (delta: number) => void = () => undefined, private readonly now: () => number = Date.now) {}

  get size(): number { return this.heap.length; }

  /** Schedules (or moves) `d` to fire `ms` from now (0 or less: on the next tick). */
  schedule(d: Deadline, ms: number): void {
    const at = this.now() + Math.max(0, ms);
    if (d.pos >= 0) {
      const old = d.at;
      d.at = at;
      if (at < old) this.up(d.pos); else this.down(d.pos);
    } else {
      d.at = at;
      d.pos = this.heap.length;
      this.heap.push(d);
      this.up(d.pos);
      this.onSizeChange(1);
    }
    if (this.heap[0] === d) this.arm();
  }

  cancel(d: Deadline): void {
    const i = d.pos;
    if (i < 0) return;
    const last = this.heap.pop()!;
    d.pos = -1;
    this.onSizeChange(-1);
    if (last !== d) {
      this.heap[i] = last;
      last.pos = i;
      this.up(i);
      this.down(last.pos);
    }
    // The armed timer may now be early: it then finds nothing due and re-arms.
  }

  /** Stops the timer (worker shutdown); pending deadlines stay but never fire. */
  close(): void {
    if (this.timer) clearTimeout(this.timer);
    if (this.immediate) clearImmediate(this.immediate);
    this.timer = null;
    this.immediate = null;
    this.armedAt = Infinity;
  }

  private arm(): void {
    if (this.immediate !== null) return; // a tick is coming and re-arms after it
    const first = this.heap[0];
    if (!first) return;
    if (first.at >= this.armedAt && this.timer !== null) return;
    if (this.timer) clearTimeout(this.timer);
    const delay = Math.min(Math.max(0, first.at - this.now()), MAX_DELAY);
    this.armedAt = first.at;
    this.timer = setTimeout(this.tick, delay);
    this.timer.unref();
  }

  private readonly tick = (): void => {
    this.timer = null;
    this.immediate = null;
    this.armedAt = Infinity;
    const now = this.now();
    let fired = 0;
    while (this.heap.length > 0 && this.heap[0].at <= now) {
      if (fired === FIRE_PER_TURN) {
        this.immediate = setImmediate(this.tick);
        this.immediate.unref();
        return;
      }
      const d = this.heap[0];
      this.cancel(d);
      fired++;
      d.fire();
    }
    this.arm();
  };

  private up(i: number): void {
    const h = this.heap;
    const d = h[i];
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (h[p].at <= d.at) break;
      h[i] = h[p];
      h[i].pos = i;
      i = p;
    }
    h[i] = d;
    d.pos = i;
  }

  private down(i: number): void {
    const h = this.heap;
    const n = h.length;
    const d = h[i];
    for (;;) {
      let c = 2 * i + 1;
      if (c >= n) break;
      if (c + 1 < n && h[c + 1].at < h[c].at) c++;
      if (h[c].at >= d.at) break;
      h[i] = h[c];
      h[i].pos = i;
      i = c;
    }
    h[i] = d;
    d.pos = i;
  }
}
