// Streaming MQTT frame counting, for tests that push a million frames through one connection.

/**
 * Counts complete MQTT frames in a byte stream without building packet objects, and hands each
 * PUBLISH to `onPublish(buf, start, end)` (the whole frame) so a caller can read its payload.
 * Fast enough for a million frames; tolerates frames split across reads.
 */
export class FrameCounter {
  frames = 0;
  publishes = 0;
  bytes = 0;
  private pending: Buffer | null = null;

  constructor(private readonly onPublish?: (buf: Buffer, headerByte: number, bodyStart: number, end: number) => void) {}

  push(chunk: Buffer): void {
    this.bytes += chunk.length;
    const buf = this.pending ? Buffer.concat([this.pending, chunk]) : chunk;
    this.pending = null;
    let off = 0;
    const n = buf.length;
    while (off < n) {
      if (off + 2 > n) break;
      let len = 0;
      let mul = 1;
      let i = off + 1;
      let ok = false;
      for (let k = 0; k < 4 && i < n; k++, i++) {
        const b = buf[i];
        len += (b & 0x7f) * mul;
        mul *= 128;
        if ((b & 0x80) === 0) { ok = true; i++; break; }
      }
      if (!ok) break; // varint incomplete
      const end = i + len;
      if (end > n) break;
      this.frames++;
      const h = buf[off];
      if ((h >> 4) === 3) {
        this.publishes++;
        if (this.onPublish) this.onPublish(buf, h, i, end);
      }
      off = end;
    }
    if (off < n) this.pending = Buffer.from(buf.subarray(off));
  }
}
