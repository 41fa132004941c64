// Once per event-loop turn: match what is still batched, write each connection that has
// output exactly once (workers/README.md, "Output": per-turn write coalescing is what makes
// the broker fast under load), then publish ring tails and send the turn's store request.
import type { Connection } from './net/connection';

export interface TurnSteps {
  /** Before writing: route what the turn batched. */
  before(): void;
  /** After writing: commit rings, flush the store, end the turn's id block. */
  after(): void;
}

export class Turn {
  private readonly dirty: Connection[] = [];
  private scheduled = false;
  private readonly runBound = () => this.run();

  constructor(private readonly steps: TurnSteps) {}

  markDirty(c: Connection): void {
    this.dirty.push(c);
    this.schedule();
  }

  schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(this.runBound);
  }

  private run(): void {
    this.scheduled = false;
    this.steps.before();
    // A flush may let a session send more (Connection.flush → Session.pump): the connection
    // joins this list again and is written in this same pass.
    const d = this.dirty;
    for (let i = 0; i < d.length; i++) d[i].flush();
    d.length = 0;
    this.steps.after();
  }
}
