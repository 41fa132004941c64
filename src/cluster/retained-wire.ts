// Byte layout of the retained replication frames (retained-sync.ts), one frame per
// `fleetmq.Retained/Push` call:
//
//   frame  = [version u8 = 1][flags u8: END=2][from str16][fromIncarnation str16][toIncarnation str16] entry*
//   entry  = [kind u8][topic str16]
//              kind 1 (set):       [len u32][the message as the retained store encodes it, from its
//                                   flags byte on: stamp, expiry, properties, payload]
//              kind 2 (tombstone): [t u48][c u48]
//   answer = [code u8]: 0 applied, 1 not for this incarnation (yet): the sender retries later
//
// END marks the last frame of a snapshot (everything the sender held when it began, and every
// change since): the receiver counts itself caught up with that sender.
// str16 = u16 byte length + UTF-8. Malformed input throws RetainedWireError.
import { STAMP_BYTES, type Stamp } from '../coordinator/retained-value';

export const FRAME_END = 2;
export const ANSWER_OK = 0;
export const ANSWER_RETRY = 1;
const VERSION = 1;
const K_SET = 1;
const K_TOMB = 2;

export class RetainedWireError extends Error {}

export type RetainedEntry =
  /** `body`: the encoded message without its 6-byte set number (latin1, one char per byte). */
  | { topic: string; body: string; stamp?: undefined }
  | { topic: string; body?: undefined; stamp: Stamp };

export interface RetainedFrame {
  flags: number;
  from: string;
  fromIncarnation: string;
  toIncarnation: string;
  entries: RetainedEntry[];
}

/** Bytes an entry adds to a frame (for the sender's frame budget). */
export function entryBytes(e: RetainedEntry): number {
  return 3 + Buffer.byteLength(e.topic, 'utf8') + (e.body !== undefined ? 4 + e.body.length : STAMP_BYTES);
}

export function encodeFrame(f: RetainedFrame): Buffer {
  let size = 2 + 6 + Buffer.byteLength(f.from) + Buffer.byteLength(f.fromIncarnation) + Buffer.byteLength(f.toIncarnation);
  for (const e of f.entries) size += entryBytes(e);
  const b = Buffer.allocUnsafe(size);
  let o = 0;
  b[o++] = VERSION;
  b[o++] = f.flags;
  const str = (s: string) => { const n = b.write(s, o + 2, 'utf8'); b.writeUInt16BE(n, o); o += 2 + n; };
  str(f.from); str(f.fromIncarnation); str(f.toIncarnation);
  for (const e of f.entries) {
    b[o++] = e.body !== undefined ? K_SET : K_TOMB;
    str(e.topic);
    if (e.body !== undefined) { b.writeUInt32BE(e.body.length, o); o += 4; o += b.write(e.body, o, 'latin1'); }
    else { b.writeUIntBE(e.stamp.t, o, 6); b.writeUIntBE(e.stamp.c, o + 6, 6); o += STAMP_BYTES; }
  }
  return b.subarray(0, o);
}

export function decodeFrame(b: Buffer): RetainedFrame {
  let o = 0;
  const need = (n: number) => { if (o + n > b.length) throw new RetainedWireError(`retained frame truncated at byte ${o}`); const at = o; o += n; return at; };
  const str = () => { const n = b.readUInt16BE(need(2)); const at = need(n); return b.toString('utf8', at, at + n); };
  const version = b[need(1)];
  if (version !== VERSION) throw new RetainedWireError(`retained frame version ${version}`);
  const flags = b[need(1)];
  const from = str();
  const fromIncarnation = str();
  const toIncarnation = str();
  const entries: RetainedEntry[] = [];
  while (o < b.length) {
    const kind = b[need(1)];
    const topic = str();
    if (kind === K_SET) {
      const n = b.readUInt32BE(need(4));
      const at = need(n);
      if (n < 1 + STAMP_BYTES) throw new RetainedWireError('retained entry too short');
      entries.push({ topic, body: b.toString('latin1', at, at + n) });
    } else if (kind === K_TOMB) {
      const at = need(STAMP_BYTES);
      entries.push({ topic, stamp: { t: b.readUIntBE(at, 6), c: b.readUIntBE(at + 6, 6) } });
    } else throw new RetainedWireError(`retained entry kind ${kind}`);
  }
  return { flags, from, fromIncarnation, toIncarnation, entries };
}
