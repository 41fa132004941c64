// Minimal MQTT 3.1.1 / 5.0 encoders for the load generator. The load must cost far less than
// the broker it measures, so nothing here goes through a general-purpose codec: control
// packets are built once at setup and PUBLISH packets are built as templates that the
// publisher copies and patches in place (see publisher.ts).

export type MqttVersion = 4 | 5;

export const enum PacketType {
  CONNECT = 1, CONNACK = 2, PUBLISH = 3, PUBACK = 4, PUBREC = 5, PUBREL = 6, PUBCOMP = 7,
  SUBSCRIBE = 8, SUBACK = 9, UNSUBSCRIBE = 10, UNSUBACK = 11, PINGREQ = 12, PINGRESP = 13, DISCONNECT = 14,
}

/** Payload prefix every measured message carries: publisher id, sequence, send time (µs). */
export const STAMP_BYTES = 16;
export const STAMP_PUB = 0;
export const STAMP_SEQ = 4;
export const STAMP_TIME = 8;

export function varintLength(n: number): number {
  return n < 128 ? 1 : n < 16384 ? 2 : n < 2097152 ? 3 : 4;
}

export function writeVarint(buf: Buffer, off: number, n: number): number {
  do {
    let byte = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    buf[off++] = byte;
  } while (n > 0);
  return off;
}

function packet(firstByte: number, body: Buffer): Buffer {
  const out = Buffer.allocUnsafe(1 + varintLength(body.length) + body.length);
  out[0] = firstByte;
  const off = writeVarint(out, 1, body.length);
  body.copy(out, off);
  return out;
}

function utf8(s: string): Buffer {
  const b = Buffer.from(s, 'utf8');
  const out = Buffer.allocUnsafe(2 + b.length);
  out.writeUInt16BE(b.length, 0);
  b.copy(out, 2);
  return out;
}

/** `sessionExpiry` (v5 only, > 0): the Session Expiry Interval property, so the session outlives the connection. */
export function encodeConnect(clientId: string, version: MqttVersion, keepAlive: number, cleanStart = true, sessionExpiry = 0): Buffer {
  const parts: Buffer[] = [utf8('MQTT'), Buffer.from([version, cleanStart ? 0x02 : 0x00, keepAlive >> 8, keepAlive & 0xff])];
  if (version === 5 && sessionExpiry > 0) {
    const e = Buffer.from([5, 0x11, 0, 0, 0, 0]);
    e.writeUInt32BE(sessionExpiry, 2);
    parts.push(e);
  } else if (version === 5) parts.push(Buffer.from([0])); // no properties
  parts.push(utf8(clientId));
  return packet(PacketType.CONNECT << 4, Buffer.concat(parts));
}

export function encodeSubscribe(packetId: number, filters: readonly string[], qos: number, version: MqttVersion): Buffer {
  const parts: Buffer[] = [Buffer.from([packetId >> 8, packetId & 0xff])];
  if (version === 5) parts.push(Buffer.from([0]));
  for (const f of filters) parts.push(utf8(f), Buffer.from([qos]));
  return packet((PacketType.SUBSCRIBE << 4) | 0x02, Buffer.concat(parts));
}

/** PUBACK / PUBREC / PUBCOMP (flags 0) and PUBREL (flags 2): reason code omitted = success in v5. */
export function encodeAck(type: PacketType, packetId: number): Buffer {
  const flags = type === PacketType.PUBREL ? 0x02 : 0;
  return Buffer.from([(type << 4) | flags, 2, packetId >> 8, packetId & 0xff]);
}

export function writeAck(buf: Buffer, off: number, type: PacketType, packetId: number): number {
  buf[off] = (type << 4) | (type === PacketType.PUBREL ? 0x02 : 0);
  buf[off + 1] = 2;
  buf[off + 2] = packetId >> 8;
  buf[off + 3] = packetId & 0xff;
  return off + 4;
}

export const DISCONNECT = Buffer.from([PacketType.DISCONNECT << 4, 0]);
export const PINGREQ = Buffer.from([PacketType.PINGREQ << 4, 0]);

/**
 * One PUBLISH with a zeroed payload of `payloadSize` bytes. The offsets of the packet id and
 * the payload let the publisher patch copies without re-encoding.
 */
export interface PublishTemplate {
  bytes: Buffer;
  packetIdOffset: number; // -1 for QoS 0
  payloadOffset: number;
}

export function encodePublishTemplate(topic: string, qos: number, payloadSize: number, version: MqttVersion): PublishTemplate {
  const t = Buffer.from(topic, 'utf8');
  const idLen = qos > 0 ? 2 : 0;
  const propsLen = version === 5 ? 1 : 0;
  const remaining = 2 + t.length + idLen + propsLen + payloadSize;
  const bytes = Buffer.alloc(1 + varintLength(remaining) + remaining);
  bytes[0] = (PacketType.PUBLISH << 4) | (qos << 1);
  let off = writeVarint(bytes, 1, remaining);
  off = bytes.writeUInt16BE(t.length, off);
  off += t.copy(bytes, off);
  const packetIdOffset = qos > 0 ? off : -1;
  off += idLen + propsLen; // v5 property length 0 is already zero
  return { bytes, packetIdOffset, payloadOffset: off };
}
