// A session's queue of deliveries waiting for room (socket under its mark, a free slot in the
// in-flight window, or the client's return), stored compactly: the message bytes (topic,
// properties, payload) copied into one byte ring per session and a few numbers per entry in
// typed arrays. No object stays alive per queued message.
//
// Why a copy and not a reference to the routed Message: a queued Message kept its views of the
// socket chunk it was read from (external memory V8 frees only in a full GC), and it outlived
// the young generation, so a stalled subscriber's queue turned every message that passed it into
// old-generation garbage: 480K QoS 1 messages past one grew the broker by ~60 MiB with a
// 10,000-message queue. A copy of ~100 bytes costs less than the objects it replaces; what it
// holds is bounded by --max-queued-bytes per session, as before.
//
//   bytes ring:  ... free ... | head entry's bytes | ... | tail entry's bytes | ... free ...
//                             ^ off[head]                                    ^ wr
// An entry that does not fit between `wr` and the end goes to the start (the end's gap is
// skipped) if the head has moved on far enough; otherwise the ring grows (doubling, entries
// copied in order). When the queue empties a large ring and large arrays are released at once;
// small ones stay for the next refill until the worker's periodic trim drops the empty queue.
import { Message } from '../protocol/message';
import { Outgoing } from './outgoing';
import type { HeldPublish } from '../persist/held-publish';

const F_QOS = 3;          // delivery QoS
const F_RETAIN = 4;       // delivery RETAIN flag
const F_MSG_QOS_SHIFT = 3; // published QoS (bits 3-4)
const F_MSG_RETAIN = 32;
const F_PROPS = 64;
const F_SIDE = 128;

/** Kept beside an entry only when it has them (rare): subscription ids, a held store request, DUP after a cross-node handover. */
interface Side { subIds: number[] | null; held: HeldPublish | null; dup: boolean }

// Shared empties: a session that never queued holds no arrays of its own (never written: cap 0).
const EMPTY = Buffer.alloc(0);
const NO_U32 = new Uint32Array(0);
const NO_U8 = new Uint8Array(0);
const NO_F64 = new Float64Array(0);
/** Largest ring: Buffer offsets are 32-bit here; a queue past it drops per policy. */
const MAX_RING = 0x7fffffff;
/** Below this a drained ring is kept for reuse rather than freed. */
const KEEP_RING = 4096;

export class SessionQueue {
  private ring: Buffer = EMPTY;
  private wr = 0;
  private cap = 0; // entry capacity (power of two)
  private head = 0; // absolute entry numbers: entry k lives at index k & (cap - 1)
  private tail = 0;
  private off = NO_U32;
  private tlen = NO_U32;
  private plen = NO_U32;
  private prlen = NO_U32;
  private flags = NO_U8;
  private origin = NO_U32;
  /** expiryAt, msgId, seq per entry. */
  private nums = NO_F64;
  private side: Map<number, Side> | null = null;
  /** Sum of Message.size over the entries (what --max-queued-bytes bounds). */
  bytes = 0;

  get length(): number { return this.tail - this.head; }

  /** Copies the delivery in; false if the ring cannot hold it (past MAX_RING). */
  push(msg: Message, qos: number, retain: boolean, subIds: number[] | null, msgId: number, seq: number, held: HeldPublish | null, dup = false): boolean {
    const t = msg.topic.length, pl = msg.payload.length, pr = msg.props ? msg.props.length : 0;
    const n = t + pr + pl;
    const at = this.room(n);
    if (at < 0) return false;
    if (this.length === this.cap) this.growEntries();
    const i = this.tail & (this.cap - 1);
    msg.topic.copy(this.ring, at);
    if (pr) msg.props!.copy(this.ring, at + t);
    msg.payload.copy(this.ring, at + t + pr);
    this.wr = at + n;
    this.off[i] = at;
    this.tlen[i] = t;
    this.plen[i] = pl;
    this.prlen[i] = pr;
    this.origin[i] = msg.origin;
    this.nums[3 * i] = msg.expiryAt;
    this.nums[3 * i + 1] = msgId;
    this.nums[3 * i + 2] = seq;
    let f = qos | (retain ? F_RETAIN : 0) | (msg.qos << F_MSG_QOS_SHIFT) | (msg.retain ? F_MSG_RETAIN : 0) | (msg.props ? F_PROPS : 0);
    if (subIds !== null || held !== null || dup) {
      f |= F_SIDE;
      (this.side ??= new Map()).set(this.tail, { subIds, held, dup });
    }
    this.flags[i] = f;
    this.tail++;
    this.bytes += n;
    return true;
  }

  private idx(): number { return this.head & (this.cap - 1); }

  /** Delivery QoS of the head entry (length > 0). */
  get headQos(): number { return this.flags[this.idx()] & F_QOS; }
  /** Absolute expiry (ms) of the head entry's message, 0 = never. */
  get headExpiryAt(): number { return this.nums[3 * this.idx()]; }
  /** Store queue slot of the head entry (0 = not stored). */
  get headSeq(): number { return this.nums[3 * this.idx() + 2]; }
  get headHeld(): HeldPublish | null {
    return this.flags[this.idx()] & F_SIDE ? this.side!.get(this.head)!.held : null;
  }

  /** Removes the head entry without making anything of it (dropped or expired). */
  drop(): void {
    const i = this.idx();
    this.bytes -= this.tlen[i] + this.plen[i] + this.prlen[i];
    if (this.flags[i] & F_SIDE) this.side!.delete(this.head);
    this.head++;
    if (this.head === this.tail) this.emptied();
  }

  /** Removes the head entry as a delivery of its own (its bytes copied out of the ring). */
  take(): Outgoing {
    const i = this.idx();
    const f = this.flags[i];
    const t = this.tlen[i], pr = this.prlen[i], pl = this.plen[i];
    const at = this.off[i];
    // One allocation for the three parts; it outlives the ring's reuse of these bytes.
    const own = Buffer.allocUnsafe(t + pr + pl);
    this.ring.copy(own, 0, at, at + t + pr + pl);
    const msg = new Message(own.subarray(0, t), own.subarray(t + pr), (f >> F_MSG_QOS_SHIFT) & 3, (f & F_MSG_RETAIN) !== 0,
      f & F_PROPS ? own.subarray(t, t + pr) : null, this.nums[3 * i], this.origin[i]);
    const s = f & F_SIDE ? this.side!.get(this.head)! : null;
    const o = new Outgoing(msg, f & F_QOS, (f & F_RETAIN) !== 0, s ? s.subIds : null, this.nums[3 * i + 1], this.nums[3 * i + 2], s ? s.held : null);
    // A message a session handed over from another node may already have sent [MQTT-3.3.1-1].
    if (s !== null && s.dup) o.dup = true;
    this.drop();
    return o;
  }

  /** Where `n` bytes can go, growing the ring if needed; -1 if it would pass MAX_RING. */
  private room(n: number): number {
    if (this.length === 0) {
      this.wr = 0;
      if (n > this.ring.length && !this.growRing(n)) return -1;
      return 0;
    }
    const rd = this.off[this.idx()];
    if (this.wr > rd || (this.wr === rd && this.length === 0)) {
      if (this.ring.length - this.wr >= n) return this.wr;
      if (rd >= n) return 0;
    } else if (rd - this.wr >= n) {
      return this.wr;
    }
    return this.growRing(this.bytes + n) ? this.wr : -1;
  }

  /** A ring of at least `need` bytes, the entries copied to its start in order. */
  private growRing(need: number): boolean {
    let size = Math.max(256, this.ring.length * 2);
    while (size < need) size *= 2;
    if (size > MAX_RING) { if (need > MAX_RING) return false; size = MAX_RING; }
    const next = Buffer.allocUnsafeSlow(size);
    let w = 0;
    for (let k = this.head; k < this.tail; k++) {
      const i = k & (this.cap - 1);
      const len = this.tlen[i] + this.prlen[i] + this.plen[i];
      this.ring.copy(next, w, this.off[i], this.off[i] + len);
      this.off[i] = w;
      w += len;
    }
    this.ring = next;
    this.wr = w;
    return true;
  }

  private growEntries(): void {
    const cap = Math.max(16, this.cap * 2);
    const old = { off: this.off, tlen: this.tlen, plen: this.plen, prlen: this.prlen, flags: this.flags, origin: this.origin, nums: this.nums };
    this.off = new Uint32Array(cap);
    this.tlen = new Uint32Array(cap);
    this.plen = new Uint32Array(cap);
    this.prlen = new Uint32Array(cap);
    this.flags = new Uint8Array(cap);
    this.origin = new Uint32Array(cap);
    this.nums = new Float64Array(3 * cap);
    for (let k = this.head; k < this.tail; k++) {
      const a = k & (this.cap - 1), b = k & (cap - 1);
      this.off[b] = old.off[a]; this.tlen[b] = old.tlen[a]; this.plen[b] = old.plen[a]; this.prlen[b] = old.prlen[a];
      this.flags[b] = old.flags[a]; this.origin[b] = old.origin[a];
      this.nums[3 * b] = old.nums[3 * a]; this.nums[3 * b + 1] = old.nums[3 * a + 1]; this.nums[3 * b + 2] = old.nums[3 * a + 2];
    }
    this.cap = cap;
  }

  /** Empty again: a large ring and the entry arrays go back, so a quiet session holds nothing. */
  private emptied(): void {
    this.head = this.tail = 0;
    this.wr = 0;
    this.side = null;
    if (this.ring.length > KEEP_RING) this.ring = EMPTY;
    if (this.cap > 64) {
      this.cap = 0;
      this.off = this.tlen = this.plen = this.prlen = this.origin = NO_U32;
      this.flags = NO_U8;
      this.nums = NO_F64;
    }
  }
}
