// A log line that may repeat without bound (a handler error per bad packet) is written at most
// `max` times per window; the rest are counted and the count is written when the window ends,
// so a flood is visible as a number instead of either a flood or silence.
export class LimitedLog {
  private written = 0;
  private suppressed = 0;
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly prefix: string, private readonly max = 10, private readonly windowMs = 10_000,
    private readonly out: (line: string) => void = (l) => process.stderr.write(l)) {}

  write(line: string): void {
    if (this.timer === null) this.timer = setTimeout(() => this.endWindow(), this.windowMs).unref();
    if (this.written < this.max) { this.written++; this.out(`${this.prefix}${line}\n`); return; }
    this.suppressed++;
  }

  private endWindow(): void {
    this.timer = null;
    if (this.suppressed > 0) this.out(`${this.prefix}${this.suppressed} more like this in the last ${this.windowMs / 1000} s were not logged\n`);
    this.written = 0;
    this.suppressed = 0;
  }
}
