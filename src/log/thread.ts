// This thread's logger, installed once at thread start (worker.ts, coordinator/thread.ts; the
// main thread's is logger.ts's). Parts deep in a thread (a connection's close, a dropped
// message) log through it without a logger threaded through every constructor; before
// installation (a unit test importing a part) records go nowhere.
import { BaseLogger, type Fields, type Logger } from './thread-log';
import { RateLimitedLog } from './rate-limit';

class NullLog extends BaseLogger {
  enabled(): boolean { return false; }
  protected emit(_l: number, _m: string, _f: Fields | undefined): void { /* not installed */ }
}

let current: Logger = new NullLog();
let limited = new RateLimitedLog(current);

export function installLogger(l: Logger): void {
  current = l;
  limited = new RateLimitedLog(l);
}

/** This thread's logger. */
export function tlog(): Logger { return current; }

/** This thread's rate-limited warnings and errors (rate-limit.ts): anything a client can repeat. */
export function limitedLog(): RateLimitedLog { return limited; }
