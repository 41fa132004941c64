// Refused connections, logged as warnings with the client's address and the username it gave,
// never a password; rate-limited (src/log/rate-limit.ts): at most `perWindow` records per
// window, then one record counting the rest, so a client hammering wrong passwords can neither
// flood the log nor go unseen.
import { RateLimitedLog } from '../log/rate-limit';
import type { Logger } from '../log/thread-log';

export class RefusalLog {
  private readonly limited: RateLimitedLog;

  constructor(log: Logger, perWindow = 20, windowMs = 10_000) {
    this.limited = new RateLimitedLog(log, perWindow, windowMs);
  }

  refused(addr: string, user: string | null, why: string): void {
    this.limited.warn('auth-refused', 'auth: refused', () => ({ address: addr, username: user === null ? null : cut(user), reason: why }));
  }

  close(): void { this.limited.flush(); }
}

/** A client-chosen name, cut so it cannot flood a record (JSON escapes the rest). */
function cut(user: string): string {
  return user.length > 64 ? `${user.slice(0, 64)}…` : user;
}
