// Byte layouts of forwarded publishes: a message is encoded once by the publisher's worker
// (the "wire entry") and travels unchanged to the receiving node's worker; the coordinators in
// between only slice and frame it (no parse, no protobuf per message). Little-endian.
//
// Wire entry (WIRE_HEADER bytes, then topic | origin | props | payload):
//   0 u8 flags: bits 0-1 QoS, bit 2 retain, bit 3 v5 properties present
//   1 u8 0 | 2 u16 topicLen | 4 u32 propsLen | 8 u32 payloadLen | 12 u32 originLen
//   origin: the publisher's client id (UTF-8, may be empty: a will, $SYS): a subscriber with
//   No Local under the same client id on the receiving node does not get it [MQTT5-3.8.3-3].
//   16 f64 remaining message expiry in ms (0 = never) [MQTT5-3.3.2-6]: clocks of two nodes
//      differ, so the remaining time travels, not the deadline.
//   props: the publisher's v5 properties as the worker keeps them (user properties, content
//   type, response topic, correlation data, payload format; no alias, subscription ids or expiry).
//
// Worker -> coordinator batch (one postMessage per routed batch), entries back to back:
//   u16 nTargets | u16 0 | u32 wireLen | f64 fwdId (0: nobody waits for the acks) |
//   u32 nodeIndex x nTargets | wire entry
//
// Node -> node frame on the Forward stream (one gRPC message, many entries):
//   kind 0 HELLO: u8 0 then JSON {from, incarnation, to, toIncarnation}
//   kind 1 DATA:  u8 1 | 3 x 0 | u32 count, then per entry: u32 seq | u16 srcWorker | u16 0 | u32 wireLen | wire entry
//   kind 2 ACKS (answer):  u8 2 | 3 x 0 | u32 count | u32 seq x count
//
// Coordinator -> worker (receiving node): entries back to back: u32 wireLen | wire entry.

export const WIRE_HEADER = 24;
export const BATCH_HEADER = 16;
export const FRAME_HEADER = 8;
export const FRAME_ENTRY_HEADER = 12;
export const KIND_HELLO = 0;
export const KIND_DATA = 1;
export const KIND_ACKS = 2;

export interface WireFields {
  topic: Buffer;
  payload: Buffer;
  props: Buffer | null;
  qos: number;
  retain: boolean;
  expiryAt: number;
}

/** `originBytes`: Buffer.byteLength of the publisher's client id (0 if none). */
export function wireSize(m: WireFields, originBytes = 0): number {
  return WIRE_HEADER + m.topic.length + originBytes + (m.props ? m.props.length : 0) + m.payload.length;
}

/** Writes the wire entry of `m` (from client `origin`, '' if none) at `at`; returns the offset after it. */
export function writeWire(buf: Buffer, at: number, m: WireFields, now: number, origin = '', originBytes = 0): number {
  buf.writeUInt8(m.qos | (m.retain ? 4 : 0) | (m.props ? 8 : 0), at);
  buf.writeUInt8(0, at + 1);
  buf.writeUInt16LE(m.topic.length, at + 2);
  buf.writeUInt32LE(m.props ? m.props.length : 0, at + 4);
  buf.writeUInt32LE(m.payload.length, at + 8);
  buf.writeUInt32LE(originBytes, at + 12);
  buf.writeDoubleLE(m.expiryAt === 0 ? 0 : Math.max(1, m.expiryAt - now), at + 16);
  let p = at + WIRE_HEADER;
  p += m.topic.copy(buf, p);
  if (originBytes > 0) p += buf.write(origin, p, originBytes, 'utf8');
  if (m.props) p += m.props.copy(buf, p);
  p += m.payload.copy(buf, p);
  return p;
}

/** Reads a wire entry at `at` (views into `buf`, no copy); null when it does not fit in `end`. */
export function readWire(buf: Buffer, at: number, end: number, now: number): (WireFields & { size: number; origin: string | null }) | null {
  if (at + WIRE_HEADER > end) return null;
  const flags = buf.readUInt8(at);
  const tlen = buf.readUInt16LE(at + 2);
  const plen = buf.readUInt32LE(at + 4);
  const dlen = buf.readUInt32LE(at + 8);
  const olen = buf.readUInt32LE(at + 12);
  const rem = buf.readDoubleLE(at + 16);
  const size = WIRE_HEADER + tlen + olen + plen + dlen;
  if (at + size > end || tlen === 0 || (flags & 3) === 3 || !(rem >= 0)) return null;
  const t = at + WIRE_HEADER;
  const o = t + tlen;
  return {
    topic: buf.subarray(t, t + tlen),
    origin: olen > 0 ? buf.toString('utf8', o, o + olen) : null,
    props: flags & 8 ? buf.subarray(o + olen, o + olen + plen) : null,
    payload: buf.subarray(o + olen + plen, at + size),
    qos: flags & 3,
    retain: (flags & 4) !== 0,
    expiryAt: rem === 0 ? 0 : now + rem,
    size,
  };
}

/** QoS of the wire entry at `at`. */
export const wireQos = (buf: Buffer, at: number): number => buf.readUInt8(at) & 3;
