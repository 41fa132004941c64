// The fencing arithmetic, pure (no timers, no etcd), so it can be tested on its own.
//
// etcd expires a lease TTL after the leader *received* the last keepalive for it (or the grant).
// That is after we *sent* it, so "send time of the last acknowledged keepalive + TTL" is never
// later than etcd's expiry, whatever the network delay was. We fence `margin` before that:
//   deadline = sentAt(last acknowledged keepalive or grant) + min(TTL asked, TTL granted) − margin
// measured on a monotonic clock (performance.now()), so wall-clock steps cannot move it.
// margin = max(500 ms, TTL/5) by default: it covers our own timer lateness on a loaded machine
// and clock-rate differences between us and the etcd leader. A keepalive that was sent earlier
// than the one that set the deadline can never move it back (max).

export const MIN_MARGIN_MS = 500;

export function defaultMarginMs(ttlMs: number): number {
  return Math.max(MIN_MARGIN_MS, Math.round(ttlMs / 5));
}

export class LeaseFence {
  private deadlineMs = -Infinity;
  private lastAckSentMs = -Infinity;

  constructor(readonly ttlMs: number, readonly marginMs: number = defaultMarginMs(ttlMs)) {
    if (!(ttlMs > 0)) throw new RangeError(`lease TTL must be > 0 ms, got ${ttlMs}`);
    if (!(marginMs >= 0 && marginMs < ttlMs)) {
      throw new RangeError(`fencing margin ${marginMs} ms must be >= 0 and below the TTL (${ttlMs} ms)`);
    }
  }

  /**
   * etcd acknowledged a grant or keepalive that we sent at `sentAtMs`, renewing the lease to
   * `grantedTtlSec` seconds. Returns the (possibly unchanged) deadline.
   */
  acknowledged(sentAtMs: number, grantedTtlSec: number): number {
    if (!(grantedTtlSec > 0)) return this.deadlineMs; // TTL 0 = the lease is gone: no renewal
    const ttl = Math.min(this.ttlMs, grantedTtlSec * 1000);
    const d = sentAtMs + ttl - this.marginMs;
    if (d > this.deadlineMs) { this.deadlineMs = d; this.lastAckSentMs = sentAtMs; }
    return this.deadlineMs;
  }

  /** Forget everything (a new lease starts from its own grant). */
  reset(): void { this.deadlineMs = -Infinity; this.lastAckSentMs = -Infinity; }

  deadline(): number { return this.deadlineMs; }
  lastAckSentAt(): number { return this.lastAckSentMs; }
  expired(nowMs: number): boolean { return nowMs >= this.deadlineMs; }
  remaining(nowMs: number): number { return this.deadlineMs - nowMs; }
}
