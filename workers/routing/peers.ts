// Messages to and from the other workers of this process (workers/README.md, "Cross-worker
// records"): one record per target worker per message, holding the body once (or a slab handle)
// and that worker's matching subscribers, so the target never matches again. The body is placed
// once per batch for all targets (one native call), and each ring's tail is published once per
// turn. Records that find a ring full spill to its overflow queue, counted.
import { Message, NO_ORIGIN } from '../protocol/message';
import { subscriberWorker } from '../../src/shared/topic-index';
import { RingProducer, RingConsumer } from '../../src/shared/ring';
import {
  recordSize, writeRecord, writeSettle, RECORD_HEADER, TRIPLE, KIND_PUBLISH, KIND_SETTLE, SETTLE_SIZE,
  FLAG_STORED, FLAG_SLAB, FLAG_HELD, FLAG_SETTLE,
} from './peer-record';
import { SlabLink } from './slab-link';
import { StoredIds, type Stored, type Durability } from './pending';
import type { LocalDelivery } from './local-delivery';
import { C_RING_SPILLED } from '../../src/shared/counters';

/**
 * Messages of one batch bound for other workers: msgs[i] goes to the targets listed from
 * first[i] in `targets`, as (worker, triple offset, triple count) entries over `triples`.
 */
class RemoteQueue {
  readonly msgs: Message[] = [];
  readonly stored: (Stored | null)[] = [];
  /** Per message: 0, or FLAG_HELD (| FLAG_SETTLE) with the message id in `heldIds`. */
  readonly held: number[] = [];
  readonly heldIds: number[] = [];
  readonly first: number[] = [];
  readonly targets: number[] = [];
  triples = new Uint32Array(3 * 1024);
  private used = 0;

  reserveTriples(n: number): number {
    if (this.used + n * 3 > this.triples.length) {
      const next = new Uint32Array(Math.max(this.triples.length * 2, this.used + n * 3));
      next.set(this.triples.subarray(0, this.used));
      this.triples = next;
    }
    const at = this.used;
    this.used += n * 3;
    return at;
  }

  clear(): void {
    this.msgs.length = 0;
    this.stored.length = 0;
    this.held.length = 0;
    this.heldIds.length = 0;
    this.first.length = 0;
    this.targets.length = 0;
    this.used = 0;
  }
}

export interface PeerWiring {
  index: number;
  outbound: (SharedArrayBuffer | null)[];
  inbound: (SharedArrayBuffer | null)[];
  bells: SharedArrayBuffer[];
  slab: SharedArrayBuffer | null;
  slabHolders: SharedArrayBuffer;
}

export class PeerLinks {
  readonly producers: (RingProducer | null)[];
  readonly consumers: (RingConsumer | null)[];
  /** Per target worker: offsets (in the match output) of its triples for the message being routed. */
  private readonly remote: number[][];
  private readonly slab: SlabLink | null;
  /** What this batch sends to other workers, in reused flat arrays (no objects per message). */
  private readonly rq = new RemoteQueue();
  /** The peer whose ring is being drained (a settle record names no sender). */
  private draining = -1;
  private readonly tripleView = new Uint32Array(3 * 4096);
  private durability: Durability | null = null;

  constructor(w: PeerWiring, private readonly local: LocalDelivery,
    private readonly count: (counter: number, n: number) => void, private readonly ringDirty: () => void) {
    this.producers = w.outbound.map((sab, j) => (sab ? new RingProducer(sab, w.bells[j]) : null));
    this.consumers = w.inbound.map((sab) => (sab ? new RingConsumer(sab) : null));
    this.remote = w.outbound.map(() => []);
    this.slab = w.slab && w.outbound.length > 1 ? new SlabLink(w.slab, w.slabHolders, w.index) : null;
  }

  /** Held and settle records go to persistence (set once at start). */
  bind(d: Durability): void { this.durability = d; }

  /** There is a ring to worker `w` (it is alive). */
  connected(w: number): boolean { return this.producers[w] !== null && this.producers[w] !== undefined; }

  /** Worker `index` was replaced: new rings. */
  reset(index: number, inbound: SharedArrayBuffer, outbound: SharedArrayBuffer, bell: SharedArrayBuffer): void {
    this.consumers[index] = new RingConsumer(inbound);
    this.producers[index] = new RingProducer(outbound, bell);
  }

  /** Notes the subscribers of other workers among `out[from..]`; true if there is one. */
  collect(out: Uint32Array, from: number, count: number, me: number): boolean {
    let any = false;
    for (let k = 0; k < count; k++) {
      const at = from + k * 3;
      const w = subscriberWorker(out[at]);
      if (w === me) continue;
      this.remote[w]?.push(at);
      any = true;
    }
    return any;
  }

  /**
   * What the message owes each worker noted by `collect` (its subscriber triples); the body is
   * placed once per batch in `flush`.
   */
  add(msg: Message, out: Uint32Array, stored: Stored | null, held: number, heldId: number): void {
    const r = this.rq;
    const first = r.targets.length;
    for (let w = 0; w < this.remote.length; w++) {
      const list = this.remote[w];
      if (list.length === 0) continue;
      if (this.producers[w]) {
        const at = r.reserveTriples(list.length);
        const t = r.triples;
        for (let i = 0; i < list.length; i++) { const o = list[i], d = at + i * 3; t[d] = out[o]; t[d + 1] = out[o + 1]; t[d + 2] = out[o + 2]; }
        r.targets.push(w, at, list.length);
      }
      list.length = 0;
    }
    if (r.targets.length > first) { r.msgs.push(msg); r.stored.push(stored); r.held.push(held); r.heldIds.push(heldId); r.first.push(first); }
  }

  /**
   * Once per batch: one slab slot per message shared by all its target workers (one native call
   * for the whole batch), then one small record per target worker's ring. Messages that get no
   * slot carry their body inline.
   */
  flush(): void {
    const r = this.rq;
    const n = r.msgs.length;
    if (n === 0) return;
    const placed = this.slab ? this.slab.place(r.msgs, r.first, r.targets) : 0;
    for (let i = 0; i < n; i++) {
      const handle = i < placed ? this.slab!.out[2 * i] : 0;
      const offset = i < placed ? this.slab!.out[2 * i + 1] : 0;
      const end = i + 1 < n ? r.first[i + 1] : r.targets.length;
      for (let t = r.first[i]; t < end; t += 3) {
        this.writeRecord(r.targets[t], r.msgs[i], r.targets[t + 1], r.targets[t + 2], r.stored[i], r.held[i], r.heldIds[i], handle, offset);
      }
    }
    r.clear();
    this.ringDirty();
  }

  private writeRecord(w: number, msg: Message, from: number, n: number, stored: Stored | null, held: number, heldId: number,
    handle: number, offset: number): void {
    const ring = this.producers[w]!;
    const triples = this.rq.triples;
    const ids = held !== 0 ? held : stored ? FLAG_STORED : 0;
    const msgId = held !== 0 ? heldId : stored ? stored.msgId : -1;
    const size = recordSize(msg, n, ids, handle !== 0);
    const seqOf = stored ? (sub: number) => stored.seqOf(sub) : null;
    const at = ring.reserve(size);
    if (at < 0) {
      const rec = Buffer.allocUnsafe(size);
      writeRecord(rec, new DataView(rec.buffer, rec.byteOffset, size), 0, msg, triples, from, n, ids, msgId, seqOf, handle, offset);
      ring.push(rec);
      this.count(C_RING_SPILLED, 1);
    } else {
      writeRecord(ring.bytes, ring.dataView, at, msg, triples, from, n, ids, msgId, seqOf, handle, offset);
    }
  }

  /** Tells worker `to` that this worker's part of message `msgId` is durable (`ok`) or failed. */
  sendSettle(to: number, msgId: number, ok: boolean): void {
    const ring = this.producers[to];
    if (!ring) return; // that worker is gone, and its publisher's connection with it
    const at = ring.reserve(SETTLE_SIZE);
    if (at < 0) {
      const rec = Buffer.alloc(SETTLE_SIZE);
      writeSettle(new DataView(rec.buffer, rec.byteOffset, SETTLE_SIZE), 0, msgId, ok);
      ring.push(rec);
      this.count(C_RING_SPILLED, 1);
    } else {
      writeSettle(ring.dataView, at, msgId, ok);
    }
    this.ringDirty();
  }

  /**
   * Commits every ring written this turn (one tail publish + at most one wake per ring). Records
   * spilled from a full ring are retried at each commit; while some remain, a retry comes within
   * a millisecond even if this worker has nothing else to do (waiting for its next turn once
   * left them stuck for good when the publisher's worker went idle).
   */
  commit(): void {
    let spilled = false;
    for (const p of this.producers) {
      if (!p) continue;
      p.commit();
      if (p.overflowLength > 0) spilled = true;
    }
    if (spilled && this.retry === null) this.retry = setTimeout(this.retryNow, 1);
  }

  private retry: NodeJS.Timeout | null = null;
  private readonly retryNow = (): void => { this.retry = null; this.ringDirty(); };

  hasInbound(): boolean {
    for (const c of this.consumers) if (c && !c.isEmpty()) return true;
    return this.hasOverflow();
  }

  hasOverflow(): boolean {
    for (const p of this.producers) if (p && p.overflowLength > 0) return true;
    return false;
  }

  /** Drains peer rings: each record is a message plus this worker's subscribers for it. */
  drain(max: number): number {
    let total = 0;
    for (let w = 0; w < this.consumers.length; w++) {
      const c = this.consumers[w];
      if (!c) continue;
      this.draining = w;
      total += c.drain(this.onRecordBound, max);
    }
    this.slab?.flushReleases();
    return total;
  }

  private readonly onRecordBound = (data: Buffer, view: DataView, off: number, len: number): void => this.onRecord(data, view, off, len);

  private onRecord(data: Buffer, view: DataView, off: number, len: number): void {
    const kind = view.getUint8(off);
    if (kind === KIND_SETTLE && len >= SETTLE_SIZE) { this.durability!.settle(this.draining, view.getFloat64(off + 8, true), view.getUint8(off + 1) === 1); return; }
    if (len < RECORD_HEADER || kind !== KIND_PUBLISH) return;
    const flags = view.getUint8(off + 1);
    const nSubs = view.getUint16(off + 2, true);
    const origin = view.getUint32(off + 4, true);
    const tlen = view.getUint32(off + 8, true);
    const plen = view.getUint32(off + 12, true);
    const dlen = view.getUint32(off + 16, true);
    const expiryAt = view.getFloat64(off + 20, true);
    const subsAt = off + RECORD_HEADER;
    const storedAt = subsAt + nSubs * TRIPLE;
    const bodyAt = storedAt + (flags & FLAG_STORED ? 8 + nSubs * 8 : flags & FLAG_HELD ? 8 : 0);
    // Ring (and slab) memory is reused once released: the body is copied out once per worker.
    const body = Buffer.allocUnsafe(tlen + plen + dlen);
    if (flags & FLAG_SLAB) {
      const handle = view.getUint32(bodyAt, true);
      const at = view.getUint32(bodyAt + 4, true);
      this.slab!.bytes.copy(body, 0, at, at + tlen + plen + dlen);
      this.slab!.release(handle);
    } else {
      data.copy(body, 0, bodyAt, bodyAt + tlen + plen + dlen);
    }
    const msg = new Message(body.subarray(0, tlen), body.subarray(tlen + plen), flags & 3, (flags & 4) !== 0,
      flags & 8 ? body.subarray(tlen, tlen + plen) : null, expiryAt, origin === NO_ORIGIN ? NO_ORIGIN : origin);
    let t = this.tripleView;
    if (nSubs * 3 > t.length) t = new Uint32Array(nSubs * 3);
    for (let i = 0; i < nSubs * 3; i++) t[i] = view.getUint32(subsAt + i * 4, true);
    let stored: Stored | null = null;
    if (flags & FLAG_STORED) {
      const ids = new StoredIds(view.getFloat64(storedAt, true));
      for (let i = 0; i < nSubs; i++) {
        const seq = view.getFloat64(storedAt + 8 + i * 8, true);
        if (seq) ids.seqBySub.set(t[i * 3], seq);
      }
      stored = ids;
    } else if (flags & FLAG_HELD) {
      stored = this.durability!.holdForPeer(msg, view.getFloat64(storedAt, true), t, nSubs, flags & FLAG_SETTLE ? this.draining : -1);
    }
    this.local.deliver(msg, t, 0, nSubs, false, stored);
  }
}
