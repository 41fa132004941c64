// A publisher's acknowledgements (PUBACK / PUBREC) go out in the order its PUBLISHes came
// [MQTT-4.6.0-2, MQTT5-4.6.0-2], even when one of them waits for the store (write-behind): the
// ones behind it wait too. A connection gets this queue only once an acknowledgement has had to
// wait; until then they are written at once.
import type { Connection } from '../net/connection';
import type { AckWait } from '../persist/ack-wait';
import { encodeAck } from '../protocol/publish-codec';

export class AckOrder {
  /** From `head` on: one waiting for the store, or a ready ack as (reason << 20) | (type << 16) | packet id. */
  private q: Array<AckWait | number> = [];
  private head = 0;

  /** Something waits: a ready acknowledgement must queue behind it. */
  get pending(): boolean { return this.q.length > this.head; }

  ready(type: number, pid: number, reason = 0): void { this.q.push((reason << 20) | (type << 16) | pid); }

  wait(a: AckWait): void { this.q.push(a); }

  /** Writes what is ready, in order, up to the first still waiting. */
  write(c: Connection): void {
    const q = this.q;
    let i = this.head;
    for (; i < q.length; i++) {
      const e = q[i];
      if (typeof e === 'number') { c.write(encodeAck((e >>> 16) & 0xf, e & 0xffff, e >>> 20, c.v5)); continue; }
      if (e.settled === 0) break;
      // Not durable: no acknowledgement; the publisher resends after reconnecting.
      if (e.settled === 2) { q.length = 0; this.head = 0; c.protocolClose(0x80); return; }
      c.write(encodeAck(e.ackType, e.ackPid, 0, c.v5));
    }
    if (i === q.length) { q.length = 0; this.head = 0; return; }
    this.head = i;
    if (i > 1024) { this.q = q.slice(i); this.head = 0; }
  }
}

/** Acknowledges `pid` now, or behind what `c` still waits for. */
export function acknowledge(c: Connection, type: number, pid: number, reason = 0): void {
  const order = c.ackOrder;
  if (order !== null && order.pending) order.ready(type, pid, reason);
  else c.write(encodeAck(type, pid, reason, c.v5));
}
