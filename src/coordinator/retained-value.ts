// One retained message as the coordinator keeps it: a single one-byte-per-char (latin1) string
// holding the set sequence number, the flags, the expiry, the MQTT 5 properties and the payload.
// A string, because it is the smallest thing V8 can hold bytes in: 16 bytes of header and the
// bytes themselves, no ArrayBuffer, no backing store, no per-message object with fields — for
// 32-byte payloads about 56 bytes a message against ~300 for a WireMessage with its own
// Uint8Array. The topic is not in here: the trie path spells it.
//
//   [seq u48][flags u8: qos | expiry<<2 | props<<3 | stamp<<4][stamp 12]?[expiryAt u48]?[props len u32 + props]?[payload]
//
// The stamp (a cluster member only: src/cluster/hlc.ts) is the hybrid logical clock of the set,
// [wall ms u48][logical u16][node u32]; a single node never writes one (no cost).
import type { WireMessage } from '../shared/messages';

const F_EXPIRY = 4;
const F_PROPS = 8;
const F_STAMP = 16;
const SEQ_BYTES = 6;
export const STAMP_BYTES = 12;

/**
 * A hybrid logical clock value: `t` = wall ms, `c` = logical counter × 2^32 + the node's 32-bit
 * id hash (both exact in a double: 2^48). Later = larger (t, then c).
 */
export interface Stamp { t: number; c: number }

export const ZERO_STAMP: Stamp = { t: 0, c: 0 };

export function compareStamps(a: Stamp, b: Stamp): number { return a.t !== b.t ? a.t - b.t : a.c - b.c; }

export function writeStamp(b: Buffer, o: number, s: Stamp): void {
  b.writeUIntBE(s.t, o, 6);
  b.writeUIntBE(s.c, o + 6, 6);
}

export function readStamp(b: Uint8Array, o: number): Stamp {
  const buf = Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  return { t: buf.readUIntBE(o, 6), c: buf.readUIntBE(o + 6, 6) };
}

/** Encodes `m` (retained, non-empty payload) under set number `seq`, with its cluster stamp if any. */
export function encodeRetained(m: WireMessage, seq: number, stamp: Stamp | null = null): string {
  const props = m.props !== null && m.props.byteLength > 0 ? m.props : null;
  const head = SEQ_BYTES + 1 + (stamp ? STAMP_BYTES : 0) + (m.expiryAt !== 0 ? 6 : 0) + (props ? 4 + props.byteLength : 0);
  // A pooled scratch Buffer: only the string outlives this call.
  const b = Buffer.allocUnsafe(head + m.payload.byteLength);
  b.writeUIntBE(seq, 0, SEQ_BYTES);
  b[SEQ_BYTES] = (m.qos & 3) | (m.expiryAt !== 0 ? F_EXPIRY : 0) | (props ? F_PROPS : 0) | (stamp ? F_STAMP : 0);
  let o = SEQ_BYTES + 1;
  if (stamp) { writeStamp(b, o, stamp); o += STAMP_BYTES; }
  if (m.expiryAt !== 0) { b.writeUIntBE(m.expiryAt, o, 6); o += 6; }
  if (props) { b.writeUInt32BE(props.byteLength, o); b.set(props, o + 4); o += 4 + props.byteLength; }
  b.set(m.payload, o);
  return b.toString('latin1');
}

/** The set number of an encoded message: later sets have larger numbers. */
export function seqOf(v: string): number {
  let n = 0;
  for (let i = 0; i < SEQ_BYTES; i++) n = n * 256 + v.charCodeAt(i);
  return n;
}

/** The same message under another set number (a message taken from a peer gets a local one). */
export function withSeq(v: string, seq: number): string {
  let head = '';
  for (let i = SEQ_BYTES - 1, n = seq; i >= 0; i--, n = Math.floor(n / 256)) head = String.fromCharCode(n % 256) + head;
  return head + v.slice(SEQ_BYTES);
}

/** The cluster stamp of an encoded message (null: none, e.g. set on a single node). */
export function stampOf(v: string): Stamp | null {
  if ((v.charCodeAt(SEQ_BYTES) & F_STAMP) === 0) return null;
  let t = 0, c = 0;
  const o = SEQ_BYTES + 1;
  for (let i = 0; i < 6; i++) t = t * 256 + v.charCodeAt(o + i);
  for (let i = 6; i < 12; i++) c = c * 256 + v.charCodeAt(o + i);
  return { t, c };
}

/** The same message with `stamp` as its cluster stamp (added or replaced). */
export function withStamp(v: string, stamp: Stamp): string {
  const flags = v.charCodeAt(SEQ_BYTES);
  const b = Buffer.allocUnsafe(STAMP_BYTES);
  writeStamp(b, 0, stamp);
  const rest = v.slice(SEQ_BYTES + 1 + ((flags & F_STAMP) !== 0 ? STAMP_BYTES : 0));
  return v.slice(0, SEQ_BYTES) + String.fromCharCode(flags | F_STAMP) + b.toString('latin1') + rest;
}

const stampSkip = (flags: number): number => ((flags & F_STAMP) !== 0 ? STAMP_BYTES : 0);

/** Absolute expiry in ms since the epoch, 0 = never [MQTT-3.3.2-5]. */
export function expiryOf(v: string): number {
  const flags = v.charCodeAt(SEQ_BYTES);
  if ((flags & F_EXPIRY) === 0) return 0;
  const o = SEQ_BYTES + 1 + stampSkip(flags);
  let n = 0;
  for (let i = o; i < o + 6; i++) n = n * 256 + v.charCodeAt(i);
  return n;
}

/** Where the payload starts in an encoded message (its length is the rest). */
export function payloadOffset(v: string): number {
  const flags = v.charCodeAt(SEQ_BYTES);
  let o = SEQ_BYTES + 1 + stampSkip(flags) + ((flags & F_EXPIRY) !== 0 ? 6 : 0);
  if ((flags & F_PROPS) !== 0) {
    const len = ((v.charCodeAt(o) << 24) >>> 0) + (v.charCodeAt(o + 1) << 16) + (v.charCodeAt(o + 2) << 8) + v.charCodeAt(o + 3);
    o += 4 + len;
  }
  return o;
}

/**
 * The WireMessages of one page: every payload and property block is a view of one ArrayBuffer
 * made for the page, so the page crosses to the worker as one buffer (structured clone copies
 * a view's whole buffer, once per buffer), not one per message.
 */
export function decodePage(topics: readonly string[], values: readonly string[]): WireMessage[] {
  let total = 0;
  for (const v of values) total += v.length;
  if (total === 0) return [];
  const page = Buffer.allocUnsafeSlow(total);
  const ab = page.buffer;
  const out: WireMessage[] = new Array(values.length);
  let at = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    page.write(v, at, v.length, 'latin1');
    const flags = page[at + SEQ_BYTES];
    let o = at + SEQ_BYTES + 1 + stampSkip(flags);
    let expiryAt = 0;
    if ((flags & F_EXPIRY) !== 0) { expiryAt = page.readUIntBE(o, 6); o += 6; }
    let props: Uint8Array | null = null;
    if ((flags & F_PROPS) !== 0) {
      const len = page.readUInt32BE(o);
      props = new Uint8Array(ab, page.byteOffset + o + 4, len);
      o += 4 + len;
    }
    const end = at + v.length;
    out[i] = { topic: topics[i], payload: new Uint8Array(ab, page.byteOffset + o, end - o), qos: flags & 3, retain: true, props, expiryAt };
    at = end;
  }
  return out;
}
