// --max-client-msg-rate and --max-client-byte-rate: one token bucket per connection and limit,
// a second's worth deep, refilled by the time between reads. A read that leaves a bucket in
// debt pauses reading the socket until the debt is repaid: the client's own TCP window then
// holds what it sends (backpressure), nothing is dropped. Off (no limit set), a connection has
// no ClientRate at all and the read path tests one null field; on, a read costs a few
// arithmetic operations and a pause one timer.
import { ConnState, type Connection } from './connection';
import { C_CLIENT_RATE_PAUSES } from '../../src/shared/counters';

export class ClientRate {
  /** Reading is paused until the debt is repaid. */
  paused = false;
  /** PUBLISH packets in the read being processed (handlers/publish.ts adds them). */
  msgs = 0;
  private msgTokens: number;
  private byteTokens: number;
  private last = Date.now();

  constructor(private readonly msgRate: number, private readonly byteRate: number, private readonly count: (counter: number, n: number) => void) {
    this.msgTokens = msgRate;
    this.byteTokens = byteRate;
  }

  /** One read of `bytes` (with this.msgs PUBLISHes in it) at `now` (ms). */
  spent(c: Connection, bytes: number, now: number): void {
    const dt = (now - this.last) / 1000;
    this.last = now;
    let wait = 0;
    if (this.msgRate > 0) {
      this.msgTokens = Math.min(this.msgRate, this.msgTokens + dt * this.msgRate) - this.msgs;
      if (this.msgTokens < 0) wait = -this.msgTokens / this.msgRate;
    }
    this.msgs = 0;
    if (this.byteRate > 0) {
      this.byteTokens = Math.min(this.byteRate, this.byteTokens + dt * this.byteRate) - bytes;
      if (this.byteTokens < 0) wait = Math.max(wait, -this.byteTokens / this.byteRate);
    }
    if (wait <= 0 || this.paused) return;
    this.paused = true;
    this.count(C_CLIENT_RATE_PAUSES, 1);
    c.socket.pause();
    setTimeout(() => {
      this.paused = false;
      // A connection still deciding a takeover or closed stays as it is; Connection.resume reads on.
      if (c.state === ConnState.CONNECTED) c.socket.resume();
    }, Math.ceil(wait * 1000)).unref();
  }
}
