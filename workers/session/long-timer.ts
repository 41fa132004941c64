// setTimeout holds at most 2^31-1 ms (24.8 days); a longer delay fires at once (Node warns).
// Session expiry and will delay may be up to 2^32-1 seconds, so long delays are chained.
const MAX = 0x7fffffff;

export class LongTimer {
  private handle: NodeJS.Timeout | null = null;

  constructor(fn: () => void, ms: number) {
    const arm = (left: number) => {
      this.handle = setTimeout(() => (left > MAX ? arm(left - MAX) : fn()), Math.min(left, MAX));
      this.handle.unref();
    };
    arm(Math.max(0, ms));
  }

  cancel(): void {
    if (this.handle) clearTimeout(this.handle);
    this.handle = null;
  }
}
