// The coordinator's end of one worker's store ring: reassembles requests from their chunks
// (src/shared/store-wire.ts). Ring memory is reused once drained, so each request is copied
// out before it is decoded.
import { RingConsumer } from '../shared/ring';
import { CHUNK_FIRST, CHUNK_LAST, decodeRequest } from '../shared/store-wire';
import type { StoreOp } from '../shared/messages';

export type OnRequest = (req: number, ops: StoreOp[] | null, error: string | null) => void;

export class StoreInbox {
  private readonly ring: RingConsumer;
  private parts: Buffer[] = [];

  constructor(sab: SharedArrayBuffer) { this.ring = new RingConsumer(sab); }

  isEmpty(): boolean { return this.ring.isEmpty(); }

  drain(onRequest: OnRequest): void {
    this.ring.drain((data, _view, off, len) => {
      const flags = data[off];
      if (flags & CHUNK_FIRST) this.parts = [];
      this.parts.push(Buffer.from(data.subarray(off + 1, off + len)));
      if (!(flags & CHUNK_LAST)) return;
      const whole = this.parts.length === 1 ? this.parts[0] : Buffer.concat(this.parts);
      this.parts = [];
      let decoded: { req: number; ops: StoreOp[] };
      try {
        decoded = decodeRequest(whole);
      } catch (err) {
        // A bug, not bad input (workers write these): fail the request so its waiters hear of it.
        onRequest(whole.length >= 4 ? whole.readUInt32LE(0) : 0, null, `undecodable store request: ${(err as Error).message}`);
        return;
      }
      onRequest(decoded.req, decoded.ops, null);
    });
  }
}
