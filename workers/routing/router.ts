// The publish path inside a worker (DESIGN.md §2, steps 3-6), as a few named steps:
// collect a batch of PUBLISHes, match them with ONE native call, deliver to local sessions
// (merging overlapping subscriptions), and pack one record per other interested worker.
import type { Hub } from '../hub';
import { Message, NO_ORIGIN } from '../protocol/message';
import type { Session } from '../session/session';
import { topicIndex, subscriberWorker, subscriberSlot, OPT_QOS_MASK, OPT_NO_LOCAL, OPT_RETAIN_AS_PUBLISHED, OPT_SHARED } from '../../src/shared/topic-index';
import { RingProducer, RingConsumer } from '../../src/shared/ring';
import { recordSize, writeRecord, RECORD_HEADER, TRIPLE, KIND_PUBLISH } from './peer-record';
import { C_RING_SPILLED } from '../../src/shared/counters';


/** Publishes matched per native call; also bounds the scratch buffers. */
const BATCH = 256;

export class Router {
  private readonly batch: Message[] = [];
  private scratch = Buffer.allocUnsafe(64 * 1024);
  private scratchUsed = 0;
  private readonly spans = new Uint32Array(BATCH * 2);
  private out = new Uint32Array(64 * 1024);
  /** Per target worker: offsets (in `out`) of its triples for the message being routed. */
  private readonly remote: number[][];
  private readonly touched: Session[] = [];
  private stamp = 0;
  readonly producers: (RingProducer | null)[];
  readonly consumers: (RingConsumer | null)[];

  constructor(private readonly hub: Hub, outbound: (SharedArrayBuffer | null)[], inbound: (SharedArrayBuffer | null)[], bells: SharedArrayBuffer[]) {
    this.producers = outbound.map((sab, j) => (sab ? new RingProducer(sab, bells[j]) : null));
    this.consumers = inbound.map((sab) => (sab ? new RingConsumer(sab) : null));
    this.remote = outbound.map(() => []);
  }

  resetPeer(index: number, inbound: SharedArrayBuffer, outbound: SharedArrayBuffer, bell: SharedArrayBuffer): void {
    this.consumers[index] = new RingConsumer(inbound);
    this.producers[index] = new RingProducer(outbound, bell);
  }

  /** Step 1: queue a PUBLISH; matching waits for the end of the read chunk (or a full batch). */
  publish(msg: Message): void {
    const tlen = msg.topic.length;
    if (this.batch.length === BATCH || this.scratchUsed + tlen > this.scratch.length) this.flushBatch();
    if (tlen > this.scratch.length) this.scratch = Buffer.allocUnsafe(tlen * 2);
    const i = this.batch.length;
    this.spans[i * 2] = this.scratchUsed;
    this.spans[i * 2 + 1] = tlen;
    this.scratchUsed += msg.topic.copy(this.scratch, this.scratchUsed);
    this.batch.push(msg);
  }

  /** Steps 3-6 for everything queued: one native match call per batch. */
  flushBatch(): void {
    const n = this.batch.length;
    if (n === 0) return;
    let words = topicIndex.match(this.hub.trieId, this.scratch, this.spans, n, this.out);
    if (words < 0) {
      this.out = new Uint32Array(Math.max(-words, this.out.length * 2));
      words = topicIndex.match(this.hub.trieId, this.scratch, this.spans, n, this.out);
    }
    let p = 0;
    for (let i = 0; i < n; i++) {
      const count = this.out[p++];
      this.route(this.batch[i], this.out, p, count);
      p += count * 3;
      if (this.batch[i].retain) this.hub.coord.retain(this.batch[i]);
    }
    this.batch.length = 0;
    this.scratchUsed = 0;
  }

  private route(msg: Message, out: Uint32Array, from: number, count: number): void {
    const me = this.hub.index;
    let remoteAny = false;
    for (let k = 0; k < count; k++) {
      const at = from + k * 3;
      const w = subscriberWorker(out[at]);
      if (w === me) continue;
      this.remote[w]?.push(at);
      remoteAny = true;
    }
    this.deliverLocal(msg, out, from, count, true);
    if (remoteAny) this.sendRemote(msg, out);
  }

  /**
   * Step 5: delivers to this worker's sessions. Overlapping subscriptions of one session
   * yield one copy at the highest QoS carrying every subscription id [MQTT-3.3.4-2, 3.3.4-3].
   */
  deliverLocal(msg: Message, out: Uint32Array, from: number, count: number, filterOwn: boolean): void {
    const me = this.hub.index;
    const stamp = ++this.stamp;
    const touched = this.touched;
    for (let k = 0; k < count; k++) {
      const at = from + k * 3;
      const sub = out[at];
      if (filterOwn && subscriberWorker(sub) !== me) continue;
      const s = this.hub.sessions.get(subscriberSlot(sub));
      if (!s || s.subscriber !== sub) continue;
      const opts = out[at + 1];
      const subId = out[at + 2];
      if (opts & OPT_SHARED) {
        // A shared subscription is its own delivery; No Local does not apply [MQTT-3.8.3-4].
        s.deliver(msg, Math.min(msg.qos, opts & OPT_QOS_MASK), false, subId ? [subId] : null);
        continue;
      }
      if ((opts & OPT_NO_LOCAL) && sub === msg.origin) continue; // [MQTT-3.8.3-3]
      if (s.stamp !== stamp) { s.stamp = stamp; s.accQos = -1; s.accRap = false; s.accIds = null; touched.push(s); }
      const q = opts & OPT_QOS_MASK;
      if (q > s.accQos) s.accQos = q;
      if (opts & OPT_RETAIN_AS_PUBLISHED) s.accRap = true;
      if (subId) (s.accIds ??= []).push(subId);
    }
    for (let i = 0; i < touched.length; i++) {
      const s = touched[i];
      // Retain As Published keeps the flag; otherwise live messages go out with RETAIN 0 [MQTT-3.3.1-12, 3.3.1-13].
      s.deliver(msg, Math.min(msg.qos, s.accQos), s.accRap && msg.retain, s.accIds);
    }
    touched.length = 0;
  }

  /** Step 6: one record per other worker with interest; payload copied once per worker. */
  private sendRemote(msg: Message, out: Uint32Array): void {
    for (let w = 0; w < this.remote.length; w++) {
      const list = this.remote[w];
      if (list.length === 0) continue;
      const ring = this.producers[w];
      if (!ring) { list.length = 0; continue; }
      const size = recordSize(msg, list.length);
      const at = ring.reserve(size);
      if (at < 0) {
        const rec = Buffer.allocUnsafe(size);
        this.writeGathered(rec, new DataView(rec.buffer, rec.byteOffset, size), 0, msg, out, list);
        ring.push(rec);
        this.hub.count(C_RING_SPILLED, 1);
      } else {
        this.writeGathered(ring.bytes, ring.dataView, at, msg, out, list);
      }
      list.length = 0;
      this.hub.markRingDirty();
    }
  }

  private readonly gather = new Uint32Array(3 * 4096);

  private writeGathered(data: Buffer, view: DataView, at: number, msg: Message, out: Uint32Array, list: number[]): void {
    let g = this.gather;
    if (list.length * 3 > g.length) g = new Uint32Array(list.length * 3);
    for (let i = 0; i < list.length; i++) {
      g[i * 3] = out[list[i]];
      g[i * 3 + 1] = out[list[i] + 1];
      g[i * 3 + 2] = out[list[i] + 2];
    }
    writeRecord(data, view, at, msg, g, 0, list.length);
  }

  /** Commits every ring written this turn (one tail publish + at most one wake per ring). */
  commitRings(): void {
    for (const p of this.producers) if (p) p.commit();
  }

  hasInbound(): boolean {
    for (const c of this.consumers) if (c && !c.isEmpty()) return true;
    return this.hasOverflow();
  }

  hasOverflow(): boolean {
    for (const p of this.producers) if (p && p.overflowLength > 0) return true;
    return false;
  }

  private readonly tripleView = new Uint32Array(3 * 4096);

  /** Drains peer rings: each record is a message plus this worker's subscribers for it. */
  drainPeers(max: number): number {
    let total = 0;
    for (const c of this.consumers) {
      if (!c) continue;
      total += c.drain((data, view, off, len) => this.onRecord(data, view, off, len), max);
    }
    return total;
  }

  private onRecord(data: Buffer, view: DataView, off: number, len: number): void {
    if (len < RECORD_HEADER || view.getUint8(off) !== KIND_PUBLISH) return;
    const flags = view.getUint8(off + 1);
    const nSubs = view.getUint16(off + 2, true);
    const origin = view.getUint32(off + 4, true);
    const tlen = view.getUint32(off + 8, true);
    const plen = view.getUint32(off + 12, true);
    const dlen = view.getUint32(off + 16, true);
    const expiryAt = view.getFloat64(off + 20, true);
    const subsAt = off + RECORD_HEADER;
    const bodyAt = subsAt + nSubs * TRIPLE;
    // Ring memory is reused once drained: the message body is copied out once per worker.
    const body = Buffer.allocUnsafe(tlen + plen + dlen);
    data.copy(body, 0, bodyAt, bodyAt + tlen + plen + dlen);
    const msg = new Message(body.subarray(0, tlen), body.subarray(tlen + plen), flags & 3, (flags & 4) !== 0,
      flags & 8 ? body.subarray(tlen, tlen + plen) : null, expiryAt, origin === NO_ORIGIN ? NO_ORIGIN : origin);
    let t = this.tripleView;
    if (nSubs * 3 > t.length) t = new Uint32Array(nSubs * 3);
    for (let i = 0; i < nSubs * 3; i++) t[i] = view.getUint32(subsAt + i * 4, true);
    this.deliverLocal(msg, t, 0, nSubs, false);
  }
}
