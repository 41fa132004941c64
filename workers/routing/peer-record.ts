// A PUBLISH crossing to another worker (workers/README.md, "Cross-worker records"): one record per target worker holding
// the message once and the list of that worker's matching subscribers, so the target never
// re-matches and subscribers are never copied per message.
//
//   0      1      2        4        8         12        16         20            28
//   ┌──────┬──────┬────────┬────────┬─────────┬─────────┬──────────┬─────────────┬───────────────┬──────────────────────┐
//   │ kind │flags │ nSubs  │ origin │topicLen │propsLen │payloadLen│ expiryAt f64│ nSubs×12 bytes│ topic|props|payload  │
//   └──────┴──────┴────────┴────────┴─────────┴─────────┴──────────┴─────────────┴───────────────┴──────────────────────┘
//   flags: bits 0-1 QoS, bit 2 retain, bit 3 props present, bit 4 stored.
//   each subscriber: [subscriber u32, options u32, subscriptionId u32] exactly as the trie gave them.
//   stored (the publisher persisted it, workers/README.md, "Persistence and write-behind"): f64 message id, then one f64 queue seq
//   per subscriber (0 = not stored for that one), between the triples and the body.
//   held (flag bit 6, instead of stored): the publisher's worker took message id f64 (between
//   the triples and the body) and holds no store request for these subscribers: this worker
//   holds it for them under that id (write-behind, workers/README.md, "Persistence and write-behind"). Bit 7: the publisher waits for
//   this worker's part; answered with a settle record once the message is durable here or
//   needs nothing written.
//   slab (flag bit 5): instead of the body, [handle u32][byteOffset u32] of the one slab slot
//   that holds topic|props|payload for every target worker (native/README.md, "Slab"); the target
//   copies it out and releases its reference. Without a slot (slab full, message over the largest
//   size class, a target not attached) the body travels inline.
//
// A settle record (kind 2) goes back the other way: [kind u8][ok u8][pad 6][message id f64].
import type { Message } from '../protocol/message';

export const KIND_PUBLISH = 1;
export const RECORD_HEADER = 28;
export const TRIPLE = 12;
export const FLAG_STORED = 16;
export const FLAG_SLAB = 32;
export const FLAG_HELD = 64;
export const FLAG_SETTLE = 128;
export const KIND_SETTLE = 2;
export const SETTLE_SIZE = 16;

/** `ids`: 0, FLAG_STORED, or FLAG_HELD (with or without FLAG_SETTLE). */
export function recordSize(msg: Message, nSubs: number, ids: number, slab: boolean): number {
  const idBytes = ids & FLAG_STORED ? 8 + nSubs * 8 : ids & FLAG_HELD ? 8 : 0;
  return RECORD_HEADER + nSubs * TRIPLE + idBytes + (slab ? 8 : msg.size);
}

/** Writes the record at `at` in `data`; `subs` holds nSubs triples starting at `from`. */
export function writeRecord(
  data: Buffer, view: DataView, at: number, msg: Message, subs: Uint32Array, from: number, nSubs: number,
  ids: number, msgId: number, seqOf: ((sub: number) => number) | null, slabHandle = 0, slabOffset = 0,
): void {
  view.setUint8(at, KIND_PUBLISH);
  view.setUint8(at + 1, msg.qos | (msg.retain ? 4 : 0) | (msg.props ? 8 : 0) | ids | (slabHandle ? FLAG_SLAB : 0));
  view.setUint16(at + 2, nSubs, true);
  view.setUint32(at + 4, msg.origin, true);
  view.setUint32(at + 8, msg.topic.length, true);
  view.setUint32(at + 12, msg.props ? msg.props.length : 0, true);
  view.setUint32(at + 16, msg.payload.length, true);
  view.setFloat64(at + 20, msg.expiryAt, true);
  let p = at + RECORD_HEADER;
  for (let i = 0; i < nSubs * 3; i++, p += 4) view.setUint32(p, subs[from + i], true);
  if (ids !== 0) {
    view.setFloat64(p, msgId, true);
    p += 8;
    if (ids & FLAG_STORED) for (let i = 0; i < nSubs; i++, p += 8) view.setFloat64(p, seqOf!(subs[from + i * 3]), true);
  }
  if (slabHandle) {
    view.setUint32(p, slabHandle, true);
    view.setUint32(p + 4, slabOffset, true);
    return;
  }
  p += msg.topic.copy(data, p);
  if (msg.props) p += msg.props.copy(data, p);
  msg.payload.copy(data, p);
}

/** A holding worker's part of a write-behind message is settled (`ok`: durable or nothing to write). */
export function writeSettle(view: DataView, at: number, msgId: number, ok: boolean): void {
  view.setUint8(at, KIND_SETTLE);
  view.setUint8(at + 1, ok ? 1 : 0);
  view.setFloat64(at + 8, msgId, true);
}
