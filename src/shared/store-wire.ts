// Store requests on the worker → coordinator store ring (workers/README.md, "Persistence and write-behind"): one request per worker
// turn, the operations in the order the worker made them.
//
// Request:  u32 req | u32 op count | ops
// Op:       u8 kind | body
//   PUBLISH     f64 id (0: the coordinator takes one) | u16 targets × target | message
//     target    u32 sub | u8 qos | u8 retain | f64 seq (0: none) | i32 pid (-1: none) | u16 n | u32 × n subscription ids
//     message   str16 topic | u32 len + payload | u8 qos | u8 retain | f64 publishedAt | props
//     props     u8 0 (none) | 1 + f64 expiresAt | 2 + u32 len + v8-serialized MessageProperties
//   DEQUEUE     str16 client | f64 seq
//   INFLIGHT    str16 client | u16 packet id | f64 message id (-1: none) | u8 qos | u8 state | u8 dup | u8 retain | u16 n | u32 × n
//   DEL_INFLIGHT str16 client | u16 packet id
//   CLONE       u32 len + v8-serialized StoreOp (sessions, subscriptions…: rare ops)
//   RETAIN      str16 topic | u8 qos | f64 expiryAt | u8 has props + u32 len + props | u32 len + payload (empty: cleared)
//
// The message path (the first four) is hand-encoded: no structured clone, no object graph per
// op on the worker side. A request larger than a ring record goes as several chunks
// (`chunkRecords`), reassembled in order by the coordinator.
import * as v8 from 'node:v8';
import type { StoreOp, PersistTarget } from './messages';
import type { InflightEntry, MessageProperties, NewMessage } from '../store/types';

const K_PUBLISH = 1;
const K_DEQUEUE = 2;
const K_INFLIGHT = 3;
const K_DEL_INFLIGHT = 4;
const K_CLONE = 5;
/** Retained updates come at the publish rate of retained topics: hand-encoded too. */
const K_RETAIN = 6;

/** Chunk flags: first and last record of a request. */
export const CHUNK_FIRST = 1;
export const CHUNK_LAST = 2;
/** Largest ring record a request is cut into (the ring holds many of them). */
export const CHUNK_BYTES = 64 * 1024;

class Out {
  buf = Buffer.allocUnsafe(4096);
  pos = 0;

  room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  u8(v: number): void { this.room(1); this.buf[this.pos++] = v; }
  u16(v: number): void { this.room(2); this.pos = this.buf.writeUInt16LE(v, this.pos); }
  u32(v: number): void { this.room(4); this.pos = this.buf.writeUInt32LE(v, this.pos); }
  i32(v: number): void { this.room(4); this.pos = this.buf.writeInt32LE(v, this.pos); }
  f64(v: number): void { this.room(8); this.pos = this.buf.writeDoubleLE(v, this.pos); }
  bytes(b: Uint8Array): void { this.u32(b.length); this.room(b.length); this.buf.set(b, this.pos); this.pos += b.length; }

  str16(s: string): void {
    const n = Buffer.byteLength(s);
    this.u16(n);
    this.room(n);
    this.pos += this.buf.write(s, this.pos, 'utf8');
  }

  ids(list: number[]): void {
    this.u16(list.length);
    for (const v of list) this.u32(v);
  }
}

class In {
  pos = 0;
  constructor(readonly buf: Buffer) {}
  u8(): number { return this.buf[this.pos++]; }
  u16(): number { const v = this.buf.readUInt16LE(this.pos); this.pos += 2; return v; }
  u32(): number { const v = this.buf.readUInt32LE(this.pos); this.pos += 4; return v; }
  i32(): number { const v = this.buf.readInt32LE(this.pos); this.pos += 4; return v; }
  f64(): number { const v = this.buf.readDoubleLE(this.pos); this.pos += 8; return v; }
  /** A view: the request buffer is the coordinator's own copy, kept alive by what points into it. */
  bytes(): Buffer { const n = this.u32(); const b = this.buf.subarray(this.pos, this.pos + n); this.pos += n; return b; }
  str16(): string { const n = this.u16(); const s = this.buf.toString('utf8', this.pos, this.pos + n); this.pos += n; return s; }
  ids(): number[] { const n = this.u16(); const out = new Array<number>(n); for (let i = 0; i < n; i++) out[i] = this.u32(); return out; }
}

function onlyExpiry(p: MessageProperties): boolean {
  for (const k in p) if (k !== 'expiresAt') return false;
  return true;
}

function writeMessage(o: Out, m: NewMessage): void {
  o.str16(m.topic);
  o.bytes(m.payload);
  o.u8(m.qos);
  o.u8(m.retain ? 1 : 0);
  o.f64(m.publishedAt);
  const p = m.properties;
  if (onlyExpiry(p)) {
    if (p.expiresAt === undefined) o.u8(0);
    else { o.u8(1); o.f64(p.expiresAt); }
  } else {
    o.u8(2);
    o.bytes(v8.serialize(p));
  }
}

function readMessage(r: In): NewMessage {
  const topic = r.str16();
  const payload = r.bytes();
  const qos = r.u8() as 0 | 1 | 2;
  const retain = r.u8() === 1;
  const publishedAt = r.f64();
  const kind = r.u8();
  let properties: MessageProperties = {};
  if (kind === 1) properties = { expiresAt: r.f64() };
  else if (kind === 2) properties = v8.deserialize(r.bytes()) as MessageProperties;
  return { topic, payload, qos, retain, properties, publishedAt };
}

function writeTarget(o: Out, t: PersistTarget): void {
  o.u32(t.sub);
  o.u8(t.qos);
  o.u8(t.retain ? 1 : 0);
  o.f64(t.seq ?? 0);
  o.i32(t.pid ?? -1);
  o.ids(t.subIds);
}

function readTarget(r: In): PersistTarget {
  const t: PersistTarget = { sub: r.u32(), qos: r.u8(), retain: r.u8() === 1, subIds: [] };
  const seq = r.f64();
  const pid = r.i32();
  t.subIds = r.ids();
  if (seq !== 0) t.seq = seq;
  if (pid >= 0) t.pid = pid;
  return t;
}

function writeOp(o: Out, op: StoreOp): void {
  switch (op.o) {
    case 'publish':
      o.u8(K_PUBLISH);
      o.f64(op.id ?? 0);
      o.u16(op.targets.length);
      for (const t of op.targets) writeTarget(o, t);
      writeMessage(o, op.msg);
      return;
    case 'dequeue':
      o.u8(K_DEQUEUE);
      o.str16(op.clientId);
      o.f64(op.seq);
      return;
    case 'inflight': {
      const e = op.entry;
      o.u8(K_INFLIGHT);
      o.str16(op.clientId);
      o.u16(e.packetId);
      o.f64(e.messageId === null ? -1 : Number(e.messageId));
      o.u8(e.qos);
      o.u8(e.state === 'publish' ? 0 : 1);
      o.u8(e.dup ? 1 : 0);
      o.u8(e.retain ? 1 : 0);
      o.ids(e.subscriptionIdentifiers);
      return;
    }
    case 'delInflight':
      o.u8(K_DEL_INFLIGHT);
      o.str16(op.clientId);
      o.u16(op.packetId);
      return;
    case 'retain': {
      const m = op.msg;
      o.u8(K_RETAIN);
      o.str16(m.topic);
      o.u8(m.qos);
      o.f64(m.expiryAt);
      o.u8(m.props ? 1 : 0);
      if (m.props) o.bytes(m.props);
      o.bytes(m.payload);
      return;
    }
    default:
      o.u8(K_CLONE);
      o.bytes(v8.serialize(op));
  }
}

function readOp(r: In): StoreOp {
  const kind = r.u8();
  switch (kind) {
    case K_PUBLISH: {
      const id = r.f64();
      const n = r.u16();
      const targets: PersistTarget[] = [];
      for (let i = 0; i < n; i++) targets.push(readTarget(r));
      const msg = readMessage(r);
      return id !== 0 ? { o: 'publish', msg, targets, id } : { o: 'publish', msg, targets };
    }
    case K_DEQUEUE: return { o: 'dequeue', clientId: r.str16(), seq: r.f64() };
    case K_INFLIGHT: {
      const clientId = r.str16();
      const packetId = r.u16();
      const id = r.f64();
      const qos = r.u8() as 1 | 2;
      const state = r.u8() === 0 ? 'publish' : 'pubrel';
      const dup = r.u8() === 1;
      const retain = r.u8() === 1;
      const entry: InflightEntry = {
        packetId, messageId: id < 0 ? null : BigInt(id), qos, state, dup, retain, subscriptionIdentifiers: r.ids(),
      };
      return { o: 'inflight', clientId, entry };
    }
    case K_DEL_INFLIGHT: return { o: 'delInflight', clientId: r.str16(), packetId: r.u16() };
    case K_CLONE: return v8.deserialize(r.bytes()) as StoreOp;
    case K_RETAIN: {
      const topic = r.str16();
      const qos = r.u8();
      const expiryAt = r.f64();
      const props = r.u8() === 1 ? r.bytes() : null;
      return { o: 'retain', msg: { topic, payload: r.bytes(), qos, retain: true, props, expiryAt } };
    }
    default: throw new Error(`store request: unknown op kind ${kind} at byte ${r.pos - 1}`);
  }
}

/** Reused by one producer: a request is written into it, then copied out in chunks. */
export class RequestWriter {
  private readonly out = new Out();

  encode(req: number, ops: StoreOp[]): Buffer {
    const o = this.out;
    o.pos = 0;
    o.u32(req);
    o.u32(ops.length);
    for (const op of ops) writeOp(o, op);
    return o.buf.subarray(0, o.pos);
  }
}

export function decodeRequest(buf: Buffer): { req: number; ops: StoreOp[] } {
  const r = new In(buf);
  const req = r.u32();
  const n = r.u32();
  const ops: StoreOp[] = new Array(n);
  for (let i = 0; i < n; i++) ops[i] = readOp(r);
  if (r.pos !== buf.length) throw new Error(`store request ${req}: ${buf.length - r.pos} bytes after ${n} ops`);
  return { req, ops };
}
