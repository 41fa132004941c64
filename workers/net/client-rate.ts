// --max-client-msg-rate and --max-client-byte-rate: one token bucket per connection and limit,
// a second's worth deep, refilled by the time between reads. A frame that finds a bucket empty
// is not processed: it and what follows wait in the connection, reading the socket pauses
// until the bucket has refilled, then processing goes on where it stopped. The client's own
// TCP window then holds what it sends (backpressure); nothing is dropped. Off (no limit set), a
// connection has no ClientRate at all and its read path tests one null field per frame; on, a
// frame costs a few arithmetic operations and a pause one timer.
import { C_CLIENT_RATE_PAUSES } from '../../src/shared/counters';

/** A PUBLISH's first byte, high nibble. */
const PUBLISH = 3;

export class ClientRate {
  /** Reading is paused until the buckets refill. */
  paused = false;
  private msgTokens: number;
  private byteTokens: number;
  private last = Date.now();

  constructor(private readonly msgRate: number, private readonly byteRate: number, private readonly count: (counter: number, n: number) => void) {
    this.msgTokens = msgRate;
    this.byteTokens = byteRate;
  }

  /** Time has passed: the buckets fill (once per read, not per frame). */
  refill(now: number): void {
    const dt = (now - this.last) / 1000;
    if (dt <= 0) return;
    this.last = now;
    if (this.msgRate > 0) this.msgTokens = Math.min(this.msgRate, this.msgTokens + dt * this.msgRate);
    if (this.byteRate > 0) this.byteTokens = Math.min(this.byteRate, this.byteTokens + dt * this.byteRate);
  }

  /**
   * Whether a frame (first byte, total bytes) may be processed now; if so it is paid for. A
   * frame larger than the byte bucket goes through when the bucket has anything, leaving a
   * debt that the next pause repays.
   */
  take(first: number, bytes: number): boolean {
    const publish = first >> 4 === PUBLISH;
    if ((this.msgRate > 0 && publish && this.msgTokens < 1) || (this.byteRate > 0 && this.byteTokens <= 0)) return false;
    if (publish) this.msgTokens--;
    this.byteTokens -= bytes;
    return true;
  }

  /** A frame was refused by take(): the wait until it would pass, counted; `resume` runs after it. */
  pause(resume: () => void): void {
    if (this.paused) return;
    this.paused = true;
    this.count(C_CLIENT_RATE_PAUSES, 1);
    let wait = 0;
    if (this.msgRate > 0 && this.msgTokens < 1) wait = (1 - this.msgTokens) / this.msgRate;
    if (this.byteRate > 0 && this.byteTokens <= 0) wait = Math.max(wait, (1 - this.byteTokens) / this.byteRate);
    setTimeout(() => { this.paused = false; resume(); }, Math.max(1, Math.ceil(wait * 1000))).unref();
  }
}
