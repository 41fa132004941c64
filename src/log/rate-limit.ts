// Warnings that a client can cause without bound (refused passwords, drops to a slow consumer,
// handler errors) are written at most `max` times per window for each kind; what is held back
// is counted, and when the window ends ONE record says how many of that kind were suppressed.
// So a flood shows as a few examples plus a number, every window, for as long as it lasts.
import type { Fields, Logger } from './thread-log';

type Level = 'warn' | 'error' | 'info';

interface Kind { written: number; suppressed: number; level: Level; msg: string }

export class RateLimitedLog {
  private readonly kinds = new Map<string, Kind>();
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly log: Logger, private readonly max = 10, private readonly windowMs = 10_000) {}

  warn(kind: string, msg: string, fields?: Fields | (() => Fields)): void { this.write('warn', kind, msg, fields); }
  error(kind: string, msg: string, fields?: Fields | (() => Fields)): void { this.write('error', kind, msg, fields); }

  private write(level: Level, kind: string, msg: string, fields?: Fields | (() => Fields)): void {
    let k = this.kinds.get(kind);
    if (k === undefined) {
      // A bounded set of kinds (each caller names a fixed one), so this map stays small.
      k = { written: 0, suppressed: 0, level, msg };
      this.kinds.set(kind, k);
    }
    if (this.timer === null) this.timer = setTimeout(() => this.endWindow(), this.windowMs).unref();
    if (k.written < this.max) {
      k.written++;
      const f = typeof fields === 'function' ? fields() : fields;
      this.log[level](msg, { kind, ...f });
      return;
    }
    k.suppressed++;
  }

  private endWindow(): void {
    this.timer = null;
    for (const [kind, k] of this.kinds) {
      if (k.suppressed > 0) {
        this.log[k.level](`${k.suppressed} more "${kind}" records suppressed in the last ${this.windowMs / 1000} s`,
          { kind, suppressed: k.suppressed, windowSeconds: this.windowMs / 1000 });
      }
    }
    this.kinds.clear();
  }

  /** Writes what is pending now (shutdown), so no count is lost. */
  flush(): void {
    if (this.timer) { clearTimeout(this.timer); this.endWindow(); }
  }
}
