// MQTT framing for tests: a streaming frame counter for a million frames through one
// connection, and a splitter that finds frame bounds the way the broker does.
import { readVarint } from '../../workers/protocol/varint';

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

/** One MQTT frame inside a buffer: fixed header byte, where the frame and its body start, where it ends. */
export interface FrameBounds { first: number; frameStart: number; start: number; end: number }

/**
 * Splits `buf` into frames the way the broker's reader does (workers/net/connection.ts, with
 * the broker's own readVarint): returns the complete frames, and what stopped the split:
 * 'end' (nothing left), 'partial' (an incomplete frame remains) or 'malformed' (a remaining
 * length of more than 4 bytes, §1.5.5).
 */
export function splitFrames(buf: Buffer): { frames: FrameBounds[]; rest: 'end' | 'partial' | 'malformed' } {
  const frames: FrameBounds[] = [];
  const vi = { len: 0 };
  let pos = 0;
  while (pos < buf.length) {
    const len = readVarint(buf, pos + 1, buf.length, vi);
    if (len === -2) return { frames, rest: 'malformed' };
    if (len < 0 || pos + 1 + vi.len + len > buf.length) return { frames, rest: 'partial' };
    const start = pos + 1 + vi.len;
    frames.push({ first: buf[pos], frameStart: pos, start, end: start + len });
    pos = start + len;
  }
  return { frames, rest: 'end' };
}
