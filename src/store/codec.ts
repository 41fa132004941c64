// Binary key and value layout of the RocksDB store. One file past 300 lines on purpose: every
// record's encoder stands next to its decoder, so a layout change is made in one place.
//
// Keys start with one type byte so each kind is one contiguous range; client-scoped keys put
// the client id behind a u16 length so "everything of client X" is a prefix range whatever
// bytes the id holds. Numbers that order a range (seq, message id, packet id) are big-endian.
//
//   v                                  format version            u32
//   s <len16 clientId>                 session                   encodeSession
//   u <len16 clientId> <filter>        subscription              encodeSubscription
//   q <len16 clientId> <seq u64>       offline queue slot        encodeQueueEntry
//   o <len16 clientId> <packetId u16>  outbound in-flight        encodeInflight
//   i <len16 clientId> <packetId u16>  inbound QoS 2 awaiting PUBREL   (empty value)
//   m <messageId u64>                  message body, stored once encodeMessage
//   r <topic>                          retained message          encodeMessage (id 0)
//   h <topic>                          its cluster stamp or tombstone   encodeRetainedStamp
//                                      (absent in data dirs of single nodes: stamp 0)
//
// Values are hand-written binary (no JSON on the message path); a value that does not decode
// throws DecodeError, which the store reports as a corrupt store.
import type {
  InflightEntry, MessageProperties, NewMessage, NewQueueEntry, ProtocolVersion, QoS, RetainedStamp,
  StoredSession, StoredSubscription, StoredWill,
} from './types';

export const FORMAT_VERSION = 1;

export const T_VERSION = 0x76; // v
export const T_SESSION = 0x73; // s
export const T_SUB = 0x75; // u
export const T_QUEUE = 0x71; // q
export const T_INFLIGHT = 0x6f; // o
export const T_INBOUND = 0x69; // i
export const T_MESSAGE = 0x6d; // m
export const T_RETAINED = 0x72; // r
export const T_RETAINED_STAMP = 0x68; // h

export class DecodeError extends Error {}

// ---------------------------------------------------------------- primitives

class Writer {
  private buf: Buffer;
  private pos = 0;

  constructor(size: number) { this.buf = Buffer.allocUnsafe(Math.max(size, 16)); }

  private room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  u8(v: number): this { this.room(1); this.buf[this.pos++] = v; return this; }
  u16(v: number): this { this.room(2); this.pos = this.buf.writeUInt16BE(v, this.pos); return this; }
  u32(v: number): this { this.room(4); this.pos = this.buf.writeUInt32BE(v, this.pos); return this; }
  /** ms timestamps: 48 bits last until the year 10889. */
  u48(v: number): this { this.room(6); this.pos = this.buf.writeUIntBE(v, this.pos, 6); return this; }
  u64(v: bigint): this { this.room(8); this.pos = this.buf.writeBigUInt64BE(v, this.pos); return this; }

  bytes(b: Buffer): this {
    this.room(b.length);
    this.pos += b.copy(this.buf, this.pos);
    return this;
  }

  str16(s: string): this {
    const n = Buffer.byteLength(s);
    if (n > 0xffff) throw new RangeError(`string of ${n} bytes exceeds the MQTT limit of 65535`);
    this.u16(n).room(n);
    this.pos += this.buf.write(s, this.pos, 'utf8');
    return this;
  }

  bin16(b: Buffer): this {
    if (b.length > 0xffff) throw new RangeError(`binary of ${b.length} bytes exceeds 65535`);
    return this.u16(b.length).bytes(b);
  }

  u32list(list: number[]): this {
    this.u16(list.length);
    for (const v of list) this.u32(v);
    return this;
  }

  done(): Buffer { return this.buf.subarray(0, this.pos); }
}

class Reader {
  private pos: number;

  constructor(private readonly buf: Buffer, start = 0) { this.pos = start; }

  private need(n: number): number {
    if (this.pos + n > this.buf.length) {
      throw new DecodeError(`truncated value: need ${n} bytes at offset ${this.pos} of ${this.buf.length}`);
    }
    const at = this.pos;
    this.pos += n;
    return at;
  }

  u8(): number { return this.buf[this.need(1)]; }
  u16(): number { return this.buf.readUInt16BE(this.need(2)); }
  u32(): number { return this.buf.readUInt32BE(this.need(4)); }
  u48(): number { return this.buf.readUIntBE(this.need(6), 6); }
  u64(): bigint { return this.buf.readBigUInt64BE(this.need(8)); }
  str16(): string { const n = this.u16(); const at = this.need(n); return this.buf.toString('utf8', at, at + n); }
  /** Copies, so a decoded value never pins RocksDB's read buffer. */
  bin16(): Buffer { const n = this.u16(); const at = this.need(n); return Buffer.from(this.buf.subarray(at, at + n)); }
  bytes(n: number): Buffer { const at = this.need(n); return Buffer.from(this.buf.subarray(at, at + n)); }
  rest(): Buffer { return this.bytes(this.buf.length - this.pos); }

  u32list(): number[] {
    const n = this.u16();
    const out = new Array<number>(n);
    for (let i = 0; i < n; i++) out[i] = this.u32();
    return out;
  }

  end(): void {
    if (this.pos !== this.buf.length) throw new DecodeError(`${this.buf.length - this.pos} trailing bytes`);
  }
}

function qosOf(bits: number): QoS {
  const q = bits & 3;
  if (q === 3) throw new DecodeError('QoS 3');
  return q as QoS;
}

// ---------------------------------------------------------------- keys

function clientPrefixLen(clientId: string): number { return 3 + Buffer.byteLength(clientId); }

function writeClientPrefix(buf: Buffer, type: number, clientId: string): number {
  buf[0] = type;
  const n = buf.write(clientId, 3, 'utf8');
  buf.writeUInt16BE(n, 1);
  return 3 + n;
}

/** The prefix shared by every key of one type for one client. */
export function clientPrefix(type: number, clientId: string): Buffer {
  const buf = Buffer.allocUnsafe(clientPrefixLen(clientId));
  writeClientPrefix(buf, type, clientId);
  return buf;
}

export const versionKey = (): Buffer => Buffer.from([T_VERSION]);
export const sessionKey = (clientId: string): Buffer => clientPrefix(T_SESSION, clientId);

export function subscriptionKey(clientId: string, filter: string): Buffer {
  return Buffer.concat([clientPrefix(T_SUB, clientId), Buffer.from(filter, 'utf8')]);
}

export function queueKey(clientId: string, seq: bigint): Buffer {
  const buf = Buffer.allocUnsafe(clientPrefixLen(clientId) + 8);
  buf.writeBigUInt64BE(seq, writeClientPrefix(buf, T_QUEUE, clientId));
  return buf;
}

function packetKey(type: number, clientId: string, packetId: number): Buffer {
  const buf = Buffer.allocUnsafe(clientPrefixLen(clientId) + 2);
  buf.writeUInt16BE(packetId, writeClientPrefix(buf, type, clientId));
  return buf;
}

export const inflightKey = (c: string, p: number): Buffer => packetKey(T_INFLIGHT, c, p);
export const inboundKey = (c: string, p: number): Buffer => packetKey(T_INBOUND, c, p);

export function messageKey(id: bigint): Buffer {
  const buf = Buffer.allocUnsafe(9);
  buf[0] = T_MESSAGE;
  buf.writeBigUInt64BE(id, 1);
  return buf;
}

export function retainedKey(topic: string): Buffer {
  return Buffer.concat([Buffer.from([T_RETAINED]), Buffer.from(topic, 'utf8')]);
}

export function retainedStampKey(topic: string): Buffer {
  return Buffer.concat([Buffer.from([T_RETAINED_STAMP]), Buffer.from(topic, 'utf8')]);
}

/** [t u48][c u48][tombstone u8] */
export function encodeRetainedStamp(s: RetainedStamp): Buffer {
  return new Writer(13).u48(s.t).u48(s.c).u8(s.tombstone ? 1 : 0).done();
}

export function decodeRetainedStamp(b: Buffer): RetainedStamp {
  const r = new Reader(b);
  const t = r.u48();
  const c = r.u48();
  const kind = r.u8();
  if (kind > 1) throw new DecodeError(`retained stamp kind ${kind}`);
  return { t, c, tombstone: kind === 1 };
}

/** Smallest key greater than every key starting with `prefix` (exclusive upper bound). */
export function prefixEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i] < 0xff) { end[i]++; return end.subarray(0, i + 1); }
  }
  throw new RangeError('prefix of 0xff bytes has no end');
}

export interface ClientKey { clientId: string; rest: Buffer }

/** Splits a client-scoped key into its client id and what follows it. */
export function parseClientKey(key: Buffer): ClientKey {
  if (key.length < 3) throw new DecodeError(`key too short (${key.length} bytes)`);
  const n = key.readUInt16BE(1);
  if (3 + n > key.length) throw new DecodeError('client id runs past the key');
  return { clientId: key.toString('utf8', 3, 3 + n), rest: key.subarray(3 + n) };
}

export function parseSeq(rest: Buffer): bigint {
  if (rest.length !== 8) throw new DecodeError(`queue key tail of ${rest.length} bytes`);
  return rest.readBigUInt64BE(0);
}

export function parsePacketId(rest: Buffer): number {
  if (rest.length !== 2) throw new DecodeError(`packet key tail of ${rest.length} bytes`);
  return rest.readUInt16BE(0);
}

export function parseMessageId(key: Buffer): bigint {
  if (key.length !== 9) throw new DecodeError(`message key of ${key.length} bytes`);
  return key.readBigUInt64BE(1);
}

// ---------------------------------------------------------------- values

export function encodeVersion(v: number): Buffer { return new Writer(4).u32(v).done(); }

export function decodeVersion(b: Buffer): number {
  const r = new Reader(b);
  const v = r.u32();
  r.end();
  return v;
}

const P_PFI = 1, P_MEI = 2, P_EXP = 4, P_CT = 8, P_RT = 16, P_CD = 32, P_UP = 64;

function writeProps(w: Writer, p: MessageProperties): void {
  const mask = (p.payloadFormatIndicator !== undefined ? P_PFI : 0)
    | (p.messageExpiryInterval !== undefined ? P_MEI : 0)
    | (p.expiresAt !== undefined ? P_EXP : 0)
    | (p.contentType !== undefined ? P_CT : 0)
    | (p.responseTopic !== undefined ? P_RT : 0)
    | (p.correlationData !== undefined ? P_CD : 0)
    | (p.userProperties !== undefined ? P_UP : 0);
  w.u8(mask);
  if (mask === 0) return;
  if (mask & P_PFI) w.u8(p.payloadFormatIndicator!);
  if (mask & P_MEI) w.u32(p.messageExpiryInterval!);
  if (mask & P_EXP) w.u48(p.expiresAt!);
  if (mask & P_CT) w.str16(p.contentType!);
  if (mask & P_RT) w.str16(p.responseTopic!);
  if (mask & P_CD) w.bin16(p.correlationData!);
  if (mask & P_UP) {
    w.u16(p.userProperties!.length);
    for (const [k, v] of p.userProperties!) w.str16(k).str16(v);
  }
}

function readProps(r: Reader): MessageProperties {
  const mask = r.u8();
  const p: MessageProperties = {};
  if (mask === 0) return p;
  if (mask & ~127) throw new DecodeError(`unknown property bits 0x${mask.toString(16)}`);
  if (mask & P_PFI) p.payloadFormatIndicator = (r.u8() & 1) as 0 | 1;
  if (mask & P_MEI) p.messageExpiryInterval = r.u32();
  if (mask & P_EXP) p.expiresAt = r.u48();
  if (mask & P_CT) p.contentType = r.str16();
  if (mask & P_RT) p.responseTopic = r.str16();
  if (mask & P_CD) p.correlationData = r.bin16();
  if (mask & P_UP) {
    const n = r.u16();
    const list: Array<[string, string]> = [];
    for (let i = 0; i < n; i++) list.push([r.str16(), r.str16()]);
    p.userProperties = list;
  }
  return p;
}

/** [qos|retain<<2 u8][publishedAt u48][topic str16][props][payload: the rest] */
export function encodeMessage(m: NewMessage): Buffer {
  const w = new Writer(16 + m.topic.length * 3 + m.payload.length);
  w.u8(m.qos | (m.retain ? 4 : 0)).u48(m.publishedAt).str16(m.topic);
  writeProps(w, m.properties);
  return w.bytes(m.payload).done();
}

export function decodeMessage(b: Buffer): NewMessage {
  const r = new Reader(b);
  const flags = r.u8();
  if (flags & ~7) throw new DecodeError(`message flags 0x${flags.toString(16)}`);
  const publishedAt = r.u48();
  const topic = r.str16();
  const properties = readProps(r);
  return { topic, payload: r.rest(), qos: qosOf(flags), retain: (flags & 4) !== 0, properties, publishedAt };
}

const S_OFFLINE = 1, S_WILL = 2;

/** [protocol u8][expiry u32][flags u8][disconnectedAt u48?][will?] */
export function encodeSession(s: StoredSession): Buffer {
  const w = new Writer(32 + (s.will ? s.will.payload.length + s.will.topic.length * 3 : 0));
  w.u8(s.protocolVersion).u32(s.sessionExpiryInterval);
  w.u8((s.disconnectedAt !== null ? S_OFFLINE : 0) | (s.will ? S_WILL : 0));
  if (s.disconnectedAt !== null) w.u48(s.disconnectedAt);
  if (s.will) writeWill(w, s.will);
  return w.done();
}

function writeWill(w: Writer, will: StoredWill): void {
  w.u8(will.qos | (will.retain ? 4 : 0)).u32(will.delayInterval).str16(will.topic);
  writeProps(w, will.properties);
  w.u32(will.payload.length).bytes(will.payload);
}

function readWill(r: Reader): StoredWill {
  const flags = r.u8();
  const delayInterval = r.u32();
  const topic = r.str16();
  const properties = readProps(r);
  const payload = r.bytes(r.u32());
  return { topic, payload, qos: qosOf(flags), retain: (flags & 4) !== 0, properties, delayInterval };
}

export function decodeSession(clientId: string, b: Buffer): StoredSession {
  const r = new Reader(b);
  const protocolVersion = r.u8();
  if (protocolVersion < 3 || protocolVersion > 5) throw new DecodeError(`protocol version ${protocolVersion}`);
  const sessionExpiryInterval = r.u32();
  const flags = r.u8();
  const disconnectedAt = flags & S_OFFLINE ? r.u48() : null;
  const will = flags & S_WILL ? readWill(r) : null;
  r.end();
  return { clientId, protocolVersion: protocolVersion as ProtocolVersion, sessionExpiryInterval, disconnectedAt, will };
}

/** [qos | noLocal<<2 | rap<<3 | retainHandling<<4 u8][subscriptionIdentifier u32, 0 = none] */
export function encodeSubscription(s: StoredSubscription): Buffer {
  const flags = s.qos | (s.noLocal ? 4 : 0) | (s.retainAsPublished ? 8 : 0) | (s.retainHandling << 4);
  return new Writer(5).u8(flags).u32(s.subscriptionIdentifier ?? 0).done();
}

export function decodeSubscription(clientId: string, filter: string, b: Buffer): StoredSubscription {
  const r = new Reader(b);
  const flags = r.u8();
  const subId = r.u32();
  r.end();
  const retainHandling = (flags >> 4) & 3;
  if (retainHandling === 3 || flags & ~0x3f) throw new DecodeError(`subscription flags 0x${flags.toString(16)}`);
  const sub: StoredSubscription = {
    clientId, filter, qos: qosOf(flags), noLocal: (flags & 4) !== 0,
    retainAsPublished: (flags & 8) !== 0, retainHandling: retainHandling as 0 | 1 | 2,
  };
  if (subId !== 0) sub.subscriptionIdentifier = subId;
  return sub;
}

/** [messageId u64][qos|retain<<2 u8][subscription ids u16 count + u32 each] */
export function encodeQueueEntry(e: NewQueueEntry): Buffer {
  return new Writer(11 + 4 * e.subscriptionIdentifiers.length)
    .u64(e.messageId).u8(e.qos | (e.retain ? 4 : 0)).u32list(e.subscriptionIdentifiers).done();
}

export function decodeQueueEntry(b: Buffer): NewQueueEntry {
  const r = new Reader(b);
  const messageId = r.u64();
  const flags = r.u8();
  const subscriptionIdentifiers = r.u32list();
  r.end();
  return { messageId, qos: qosOf(flags), retain: (flags & 4) !== 0, subscriptionIdentifiers };
}

const F_PUBREL = 4, F_DUP = 8, F_RETAIN = 16, F_HASMSG = 32;

/** [qos | pubrel<<2 | dup<<3 | retain<<4 | hasMessage<<5 u8][messageId u64?][subscription ids] */
export function encodeInflight(e: InflightEntry): Buffer {
  const flags = e.qos | (e.state === 'pubrel' ? F_PUBREL : 0) | (e.dup ? F_DUP : 0)
    | (e.retain ? F_RETAIN : 0) | (e.messageId !== null ? F_HASMSG : 0);
  const w = new Writer(11 + 4 * e.subscriptionIdentifiers.length).u8(flags);
  if (e.messageId !== null) w.u64(e.messageId);
  return w.u32list(e.subscriptionIdentifiers).done();
}

export function decodeInflight(packetId: number, b: Buffer): InflightEntry {
  const r = new Reader(b);
  const flags = r.u8();
  const qos = qosOf(flags);
  if (qos === 0 || flags & ~63) throw new DecodeError(`in-flight flags 0x${flags.toString(16)}`);
  const messageId = flags & F_HASMSG ? r.u64() : null;
  const subscriptionIdentifiers = r.u32list();
  r.end();
  return {
    packetId, messageId, qos, state: flags & F_PUBREL ? 'pubrel' : 'publish',
    dup: (flags & F_DUP) !== 0, retain: (flags & F_RETAIN) !== 0, subscriptionIdentifiers,
  };
}
