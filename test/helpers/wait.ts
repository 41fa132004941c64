// Bounded waiting: every wait in the suites goes through these, fails with a message naming
// what was awaited, and never relies on a fixed sleep being "long enough".

/** Default bound for anything a test waits for. Generous: the suite runs on 2 loaded cores. */
export const WAIT_MS = 10000;

/**
 * Polls `cond` every `every` ms until it is true; rejects after `ms` with `what` (a function is
 * evaluated at the timeout, so the message can say what was seen by then).
 */
export async function waitUntil(cond: () => boolean, what: string | (() => string), ms = WAIT_MS, every = 5): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (cond()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${typeof what === 'function' ? what() : what}`);
    await delay(every);
  }
}

/** Resolves with the first emission of `event`; rejects with `what` after `ms`. */
export function onceEvent<T = unknown>(em: NodeJS.EventEmitter, event: string, what: string, ms = WAIT_MS): Promise<T> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => { em.removeListener(event, on); reject(new Error(`timed out after ${ms} ms waiting for ${what}`)); }, ms);
    const on = (...args: unknown[]) => { clearTimeout(t); resolve(args[0] as T); };
    em.once(event, on);
  });
}

/** Races `p` against a timeout that rejects with `what`. */
export async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms); });
  try { return await Promise.race([p, t]); } finally { clearTimeout(timer); }
}

/** Resolves after `ms`. Only for bounded observation windows where no event exists to wait on. */
/** Polls an async condition (an HTTP reading, a page's DOM) every `every` ms until it holds; rejects with `what` after `ms`. */
export async function pollUntil(cond: () => Promise<boolean>, what: () => string | Promise<string>, ms = WAIT_MS * 3, every = 100): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms: ${await what()}`);
    await delay(every);
  }
}

export function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Runs `fn` over `items` with at most `limit` in flight. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (x: T, i: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const runners = Array.from({ length: Math.min(limit, items.length) }, async () => {
    for (;;) {
      const i = next++;
      if (i >= items.length) return;
      out[i] = await fn(items[i], i);
    }
  });
  await Promise.all(runners);
  return out;
}

/**
 * Conditions re-checked whenever the owner signals that something happened (a packet arrived,
 * the connection closed, the broker printed a line), instead of polling.
 */
export class Wakeups {
  private checks: Array<() => void> = [];
  /** Re-checks every pending condition. */
  wake(): void { for (const c of this.checks.slice()) c(); }
  /** Resolves true once `cond()` holds (checked now and on every wake()), false after `ms`. */
  until(cond: () => boolean, ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      const check = () => { if (cond()) { done(); resolve(true); } };
      const t = setTimeout(() => { done(); resolve(false); }, ms);
      const done = () => { clearTimeout(t); const i = this.checks.indexOf(check); if (i >= 0) this.checks.splice(i, 1); };
      this.checks.push(check);
      check();
    });
  }
}
