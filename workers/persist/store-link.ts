// The worker's end of its store ring (workers/README.md, "Persistence and write-behind"): each request is encoded once
// (src/shared/store-wire.ts) and written as one or more ring records, then the tail is
// published and the coordinator's doorbell rung. A full ring spills to the producer's overflow
// queue, retried until the coordinator has made room: requests are never dropped or reordered.
import { RingProducer } from '../../src/shared/ring';
import { CHUNK_BYTES, CHUNK_FIRST, CHUNK_LAST, RequestWriter } from '../../src/shared/store-wire';
import type { StoreOp } from '../../src/shared/messages';

export class StoreLink {
  private readonly ring: RingProducer;
  private readonly writer = new RequestWriter();
  private retry: NodeJS.Timeout | null = null;

  constructor(ring: SharedArrayBuffer, bell: SharedArrayBuffer) {
    this.ring = new RingProducer(ring, bell);
  }

  send(req: number, ops: StoreOp[]): void {
    const buf = this.writer.encode(req, ops);
    const ring = this.ring;
    let at = 0;
    do {
      const n = Math.min(CHUNK_BYTES, buf.length - at);
      const flags = (at === 0 ? CHUNK_FIRST : 0) | (at + n === buf.length ? CHUNK_LAST : 0);
      const pos = ring.reserve(n + 1);
      if (pos >= 0) {
        ring.bytes[pos] = flags;
        buf.copy(ring.bytes, pos + 1, at, at + n);
      } else {
        const rec = Buffer.allocUnsafe(n + 1);
        rec[0] = flags;
        buf.copy(rec, 1, at, at + n);
        ring.push(rec);
      }
      at += n;
    } while (at < buf.length);
    ring.commit();
    this.retryLater();
  }

  /** Records that did not fit wait in the overflow queue: retry until the coordinator drained. */
  private retryLater(): void {
    if (this.retry || this.ring.overflowLength === 0) return;
    this.retry = setTimeout(() => {
      this.retry = null;
      this.ring.commit();
      this.retryLater();
    }, 1);
  }
}
