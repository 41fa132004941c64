// Refused connections on stderr, like the broker's other logs, with the client's address and
// never a password; at most `perWindow` lines per window, then one line counting the rest, so
// a client hammering wrong passwords cannot flood the log.
export class RefusalLog {
  private windowStart = 0;
  private lines = 0;
  private suppressed = 0;
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly write: (line: string) => void = (l) => { process.stderr.write(l); },
    private readonly perWindow = 20, private readonly windowMs = 10_000) {}

  refused(addr: string, user: string | null, why: string): void {
    const now = Date.now();
    if (now - this.windowStart >= this.windowMs) {
      this.flush();
      this.windowStart = now;
      this.lines = 0;
    }
    if (this.lines < this.perWindow) {
      this.lines++;
      this.write(`fleetmq: auth: refused ${addr}${user === null ? ' (no username)' : ` user ${quote(user)}`}: ${why}\n`);
      return;
    }
    this.suppressed++;
    this.timer ??= setTimeout(() => { this.timer = null; this.flush(); }, this.windowStart + this.windowMs - now).unref();
  }

  /** Says how many refusals went unlogged, if any. */
  flush(): void {
    if (this.suppressed === 0) return;
    this.write(`fleetmq: auth: ${this.suppressed} more refusal${this.suppressed === 1 ? '' : 's'} not logged (at most ${this.perWindow} lines per ${this.windowMs / 1000} s)\n`);
    this.suppressed = 0;
  }

  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.flush();
  }
}

/** A client-chosen name, escaped and cut so it cannot forge or flood a log line. */
function quote(user: string): string {
  return JSON.stringify(user.length > 64 ? `${user.slice(0, 64)}…` : user);
}
