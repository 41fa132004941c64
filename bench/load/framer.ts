// Splits a TCP byte stream into MQTT frames by the fixed header alone. The load generator never
// decodes a whole packet: the sink reads only the bytes it needs (type, packet id, the payload
// stamp), so receiving costs a few reads per message, not a parse.

export interface FrameSink {
  onFrame(buf: Buffer, firstByte: number, bodyStart: number, bodyEnd: number): void;
}

export class Framer {
  private pending: Buffer | null = null;

  push(chunk: Buffer, sink: FrameSink): void {
    // A frame split across reads is rare for small messages, so joining is cheaper than
    // keeping a chain of views.
    const buf = this.pending === null ? chunk : Buffer.concat([this.pending, chunk]);
    this.pending = null;
    const end = buf.length;
    let off = 0;
    while (off < end) {
      if (end - off < 2) break;
      let len = 0;
      let mul = 1;
      let p = off + 1;
      let complete = false;
      for (let i = 0; i < 4 && p < end; i++) {
        const b = buf[p++];
        len += (b & 0x7f) * mul;
        mul *= 128;
        if ((b & 0x80) === 0) { complete = true; break; }
      }
      if (!complete) {
        if (p - off - 1 >= 4) throw new Error('malformed remaining length from broker');
        break;
      }
      if (p + len > end) break;
      sink.onFrame(buf, buf[off], p, p + len);
      off = p + len;
    }
    if (off < end) this.pending = buf.subarray(off);
  }
}
