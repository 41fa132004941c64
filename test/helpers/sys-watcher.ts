// A $SYS subscriber that keeps the latest value of every $SYS/broker/... topic, for tests that
// check what the broker counted (drops by reason and the like).
import { RawClient, rawSession } from './raw-client';
import { waitUntil } from './wait';

/** $SYS watcher: the latest value of every $SYS topic. */
export class SysWatcher {
  readonly values = new Map<string, string>();
  /** How many times each topic has been published to this watcher. */
  private readonly seen = new Map<string, number>();
  private constructor(readonly c: RawClient) {
    c.socket.on('data', () => {
      for (const p of c.publishes()) { this.values.set(p.topic, p.payload.toString()); this.seen.set(p.topic, (this.seen.get(p.topic) ?? 0) + 1); }
      c.packets.length = 0;
    });
  }

  /**
   * The value of `$SYS/broker/<name>` as of now: the second publication after the call (the
   * first may have been computed before it). Needs the broker's --sys-interval to be short.
   */
  async current(name: string, ms = 20000): Promise<number> {
    const topic = `$SYS/broker/${name}`;
    const from = this.seen.get(topic) ?? 0;
    await waitUntil(() => (this.seen.get(topic) ?? 0) >= from + 2, `two fresh publications of ${topic}`, ms, 20);
    return Number(this.values.get(topic));
  }
  static async start(port: number): Promise<SysWatcher> {
    const c = await rawSession(port, 4, { clientId: `sys-${Math.random().toString(36).slice(2)}` });
    const w = new SysWatcher(c);
    await c.subscribe('$SYS/#', 0);
    return w;
  }
  /** Waits (bounded) until some $SYS topic matching `re` has a numeric value >= `atLeast`. */
  async waitCounter(re: RegExp, atLeast: number, what: string, ms = 20000): Promise<{ topic: string; value: number }> {
    const find = () => {
      for (const [t, v] of this.values) if (re.test(t) && Number(v) >= atLeast) return { topic: t, value: Number(v) };
      return null;
    };
    try {
      await waitUntil(() => find() !== null, what, ms, 50);
    } catch {
      const seen = [...this.values].map(([t, v]) => `${t}=${v.slice(0, 20)}`).sort();
      const matching = seen.filter((s) => re.test(s.split('=')[0]));
      throw new Error(matching.length
        ? `${what}: no $SYS counter matching ${re} reached ${atLeast} within ${ms} ms; matching: ${matching.join(', ')}`
        : `${what}: the broker publishes NO $SYS counter matching ${re} (dropped-messages counter missing); $SYS topics seen: ${seen.join(', ') || 'none'}`);
    }
    return find()!;
  }
  close(): void { this.c.destroy(); }
}
