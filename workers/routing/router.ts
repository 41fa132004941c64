// The publish path inside a worker (DESIGN.md §2, steps 3-6), as a few named steps:
// collect a batch of PUBLISHes, match them with ONE native call, deliver to local sessions
// (merging overlapping subscriptions), and pack one record per other interested worker.
import type { Hub } from '../hub';
import { Message, NO_ORIGIN } from '../protocol/message';
import { HeldPublish, toStoreMessage } from '../persist/held-publish';
import { AckWait } from '../persist/ack-wait';
import { RemoteWaits } from '../persist/remote-waits';
import type { Session } from '../session/session';
import { topicIndex, subscriberWorker, subscriberSlot, OPT_QOS_MASK, OPT_NO_LOCAL, OPT_RETAIN_AS_PUBLISHED, OPT_SHARED, OPT_PERSISTENT } from '../../src/shared/topic-index';
import { RingProducer, RingConsumer } from '../../src/shared/ring';
import {
  recordSize, writeRecord, writeSettle, RECORD_HEADER, TRIPLE, KIND_PUBLISH, KIND_SETTLE, SETTLE_SIZE,
  FLAG_STORED, FLAG_SLAB, FLAG_HELD, FLAG_SETTLE,
} from './peer-record';
import { SlabLink } from './slab-link';
import type { Connection } from '../net/connection';
import { encodeAck } from '../protocol/publish-codec';
import { PUBREC } from '../protocol/constants';
import type { PersistTarget } from '../../src/shared/messages';
import { C_RING_SPILLED, C_STORE_HELD_REMOTE } from '../../src/shared/counters';


/** Publishes matched per native call; also bounds the scratch buffers. */
const BATCH = 256;

/** A PUBLISH waiting to be matched, with the acknowledgement its publisher gets after routing. */
export interface Pending {
  msg: Message;
  conn: Connection | null;
  /** PUBACK / PUBREC packet type, or 0. */
  ack: number;
  pid: number;
  /** The retained update was already handed to the coordinator (durable retain, below). */
  retained?: boolean;
}

/**
 * Where the store put a message for each persistent subscriber (DESIGN.md §4); `held` while
 * its store request waits in this worker (write-behind: the HeldPublish is its own Stored).
 */
export interface Stored {
  readonly msgId: number;
  /** The subscriber's queue slot, 0 if the message is not stored for it. */
  seqOf(sub: number): number;
  readonly held: HeldPublish | null;
}

/** Ids the coordinator gave (store-first) or a peer's record carried. */
class StoredIds implements Stored {
  readonly seqBySub = new Map<number, number>();
  readonly held = null;
  constructor(readonly msgId: number) {}
  seqOf(sub: number): number { return this.seqBySub.get(sub) ?? 0; }
}

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

/** PUBLISHes of one connection waiting for one store round trip, routed in order after it. */
export interface Group { conn: Connection | null; entries: GroupEntry[]; pending: number; failed: boolean }
interface GroupEntry { item: Pending; triples: Uint32Array; count: number; stored: Stored | null }

export class Router {
  private readonly batch: Pending[] = [];
  private scratch = Buffer.allocUnsafe(64 * 1024);
  private scratchUsed = 0;
  private spans = new Uint32Array(BATCH * 2);
  /** Set while a batch is being routed: a PUBLISH made meanwhile (a will) waits for the next round. */
  private flushing = false;
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
    this.waits = new RemoteWaits(outbound.length);
    const w = hub.wiring;
    this.slab = w.slab && outbound.length > 1 ? new SlabLink(w.slab, w.slabHolders, w.index) : null;
  }

  private readonly slab: SlabLink | null;
  /** PUBACKs waiting for parts other workers hold (write-behind across workers). */
  private readonly waits: RemoteWaits;
  /** Scratch for writeBehind: the other workers holding the message being routed. */
  private readonly holders: number[] = [];
  /** The peer whose ring is being drained (a settle record names no sender). */
  private draining = -1;

  /** Worker `index` was replaced: new rings, and what it held for this worker's publishers is lost. */
  resetPeer(index: number, inbound: SharedArrayBuffer, outbound: SharedArrayBuffer, bell: SharedArrayBuffer): void {
    this.consumers[index] = new RingConsumer(inbound);
    this.producers[index] = new RingProducer(outbound, bell);
    this.waits.failWorker(index);
  }

  /**
   * Step 1: queue a PUBLISH; matching waits for the end of the read chunk (or a full batch).
   * While an earlier PUBLISH of the same connection waits for the store, later ones queue
   * behind it so routing and acknowledgements keep the connection's order [MQTT-4.6.0-2].
   */
  publish(msg: Message, conn: Connection | null = null, ack = 0, pid = 0): void {
    const tlen = msg.topic.length;
    // A full batch is matched first; it may start a store write for this connection, and then
    // this message must queue behind it like the ones after it (it was once added to the next
    // batch instead and overtook them: out of order per topic [MQTT-4.6.0-6]).
    if (this.batch.length === BATCH || this.scratchUsed + tlen > this.scratch.length) this.flushBatch();
    if (conn && conn.persisting > 0) { conn.heldPublishes.push({ msg, conn, ack, pid }); return; }
    if (this.scratchUsed + tlen > this.scratch.length) this.growScratch(tlen);
    const i = this.batch.length;
    if (i * 2 + 2 > this.spans.length) { const s = new Uint32Array(this.spans.length * 2); s.set(this.spans); this.spans = s; }
    this.spans[i * 2] = this.scratchUsed;
    this.spans[i * 2 + 1] = tlen;
    this.scratchUsed += msg.topic.copy(this.scratch, this.scratchUsed);
    this.batch.push({ msg, conn, ack, pid });
  }

  /** Steps 3-6 for everything queued: one native match call per batch. */
  flushBatch(): void {
    // Routing can close a connection and publish its will: that must not re-enter and reuse
    // `out` while the outer loop still reads it.
    if (this.flushing) return;
    this.flushing = true;
    try {
      while (this.batch.length > 0) this.flushOnce();
    } finally {
      this.flushing = false;
    }
  }

  private flushOnce(): void {
    const n = this.batch.length;
    let words = topicIndex.match(this.hub.trieId, this.scratch, this.spans, n, this.out);
    if (words < 0) {
      this.out = new Uint32Array(Math.max(-words, this.out.length * 2));
      words = topicIndex.match(this.hub.trieId, this.scratch, this.spans, n, this.out);
    }
    const batch = this.batch.splice(0);
    this.scratchUsed = 0;
    let p = 0;
    const opened: Group[] = [];
    for (let i = 0; i < n; i++) {
      const item = batch[i];
      const count = this.out[p++];
      const c = item.conn;
      if (c && c.storeGroup) this.join(c.storeGroup, item, this.out, p, count); // behind one of this batch
      else if (c && c.persisting > 0) c.heldPublishes.push(item); // behind an earlier round trip
      else if (this.needsStore(item, this.out, p, count)) {
        if (this.writeBehind(item, this.out, p, count)) { p += count * 3; continue; }
        const g = this.openGroup(c);
        opened.push(g);
        this.join(g, item, this.out, p, count);
      } else this.complete(item, this.out, p, count, null);
      p += count * 3;
    }
    this.sendPendingRemote();
    // One store request per connection per batch; what the connection sends later waits for it.
    for (const g of opened) if (g.conn) g.conn.storeGroup = null;
  }

  /** Only while flushing (nothing can be matched now): keep what is batched, make room. */
  private growScratch(tlen: number): void {
    const next = Buffer.allocUnsafe(Math.max(this.scratch.length * 2, this.scratchUsed + tlen));
    this.scratch.copy(next, 0, 0, this.scratchUsed);
    this.scratch = next;
  }

  /** Steps 4-8 once the message may go: retain, deliver, fan out, acknowledge. */
  private complete(item: Pending, out: Uint32Array, from: number, count: number, stored: Stored | null): void {
    const msg = item.msg;
    if (msg.retain && !item.retained) this.retainUpdate(msg);
    this.route(msg, out, from, count, stored);
    const c = item.conn;
    if (item.ack === 0 || !c) return;
    if (c.acks.length > 0) c.acks.push((item.ack << 16) | item.pid); // behind one waiting for the store
    else c.write(encodeAck(item.ack, item.pid, 0, c.v5));
  }

  /**
   * QoS 1 to persistent sessions (DESIGN.md §4): the worker takes the message id itself and
   * routes at once. Each worker holds the store request for its own persistent sessions for the
   * linger (held-publish.ts): this one for its own, another under the same id when the record
   * says so (onHeld). Only the PUBACK waits, for every holder's commit or for every delivery to
   * have ended. Not for QoS 2 (the PUBREC promises the inbound state is stored), retained
   * updates (their write and the message's go in one store-first request) or a session on a
   * worker without a ring (the store queues it for the session). A crash before the commit
   * loses nothing acknowledged: the publisher resends, and an online subscriber may see a
   * duplicate, which QoS 1 allows.
   */
  private writeBehind(item: Pending, out: Uint32Array, from: number, count: number): boolean {
    const msg = item.msg;
    if (msg.qos !== 1 || msg.retain) return false;
    const targets = persistTargets(msg, out, from, count);
    // Only persistent subscriptions the message skips (No Local): nothing to store.
    if (targets.length === 0) { this.complete(item, out, from, count, null); return true; }
    // Held state is per session; a session that gets this message twice (a shared subscription
    // besides its own) would be settled by its first acknowledgement: store first instead.
    if (hasSplitDelivery(out, from, count)) return false;
    const me = this.hub.index;
    // Other workers holding it go to `holders`; this worker's targets are compacted to the front
    // of `targets` (a fresh array) and kept there as `local`.
    const holders = this.holders;
    holders.length = 0;
    let local = 0;
    for (let i = 0; i < targets.length; i++) {
      const w = subscriberWorker(targets[i].sub);
      if (w === me) { targets[local++] = targets[i]; continue; }
      if (!this.producers[w] || this.waits.full) return false;
      if (!holders.includes(w)) holders.push(w);
    }
    targets.length = local;
    const remote = holders.length;
    const ids = this.hub.storeIds;
    const msgId = ids.next();
    let held: HeldPublish | null = null;
    if (local > 0) {
      for (let i = 0; i < local; i++) targets[i].seq = ids.next();
      held = this.hub.persister.hold(msg, msgId, targets);
    }
    const c = item.conn;
    const acked = item.ack !== 0 && c !== null;
    if (acked) {
      const wait = held ?? new AckWait(0);
      wait.expect(remote);
      wait.conn = c;
      wait.ackType = item.ack;
      wait.ackPid = item.pid;
      wait.notify = this.ackReady;
      for (let i = 0; i < remote; i++) this.waits.add(holders[i], msgId, wait);
      c.acks.push(wait);
    }
    if (remote > 0) this.hub.count(C_STORE_HELD_REMOTE, 1);
    this.route(msg, out, from, count, held, remote > 0 ? FLAG_HELD | (acked ? FLAG_SETTLE : 0) : 0, msgId);
    return true;
  }

  /** The coordinator's retained index now; the store in this worker's order of operations. */
  private retainUpdate(msg: Message): void {
    const w = msg.toWire();
    this.hub.coord.retain(w);
    this.hub.persister.retain(w);
  }

  private readonly ackReady = (a: AckWait): void => { this.writeAcks(a.conn!); };

  /** Writes the connection's acknowledgements that are ready, in order, up to the first still waiting. */
  private writeAcks(c: Connection): void {
    const q = c.acks;
    let i = c.acksHead;
    for (; i < q.length; i++) {
      const e = q[i];
      if (typeof e === 'number') { c.write(encodeAck(e >>> 16, e & 0xffff, 0, c.v5)); continue; }
      if (e.settled === 0) break;
      // Not durable: no acknowledgement; the publisher resends after reconnecting.
      if (e.settled === 2) { q.length = 0; c.acksHead = 0; c.protocolClose(0x80); return; }
      c.write(encodeAck(e.ackType, e.ackPid, 0, c.v5));
    }
    if (i === q.length) { q.length = 0; c.acksHead = 0; return; }
    c.acksHead = i;
    if (i > 1024) { c.acks = q.slice(i); c.acksHead = 0; }
  }

  /**
   * Durability (DESIGN.md §4, §2.8): a QoS >= 1 message for persistent sessions is in the
   * store before it is delivered and acknowledged, and so is the inbound QoS 2 state of a
   * persistent publisher before PUBREC, and an acknowledged QoS >= 1 retained update.
   */
  private needsStore(item: Pending, out: Uint32Array, from: number, count: number): boolean {
    if (!this.hub.persister.enabled || item.msg.qos === 0) return false;
    if (item.msg.retain || (item.ack === PUBREC && item.conn?.session?.persistent === true)) return true;
    return hasPersistentTarget(out, from, count);
  }

  /**
   * A connection's PUBLISHes from the first that needs the store to the end of the batch go
   * in one store request and are routed, in order, when it has landed: one round trip per
   * batch, not per message. The connection reads nothing more meanwhile.
   */
  private openGroup(c: Connection | null): Group {
    const g: Group = { conn: c, entries: [], pending: 0, failed: false };
    if (c) { c.storeGroup = g; c.persisting++; c.socket.pause(); }
    return g;
  }

  private join(g: Group, item: Pending, out: Uint32Array, from: number, count: number): void {
    const entry: GroupEntry = { item, triples: out.slice(from, from + count * 3), count, stored: null };
    g.entries.push(entry);
    if (!this.needsStore(item, out, from, count)) return;
    const persister = this.hub.persister;
    const targets = persistTargets(item.msg, out, from, count);
    const publisher = item.conn?.session;
    if (item.ack === PUBREC && publisher?.persistent) persister.op({ o: 'inbound', clientId: publisher.clientId, packetId: item.pid });
    // The retained write goes in the same store request, before the message: the answer means
    // both are durable.
    if (item.msg.retain) { this.retainUpdate(item.msg); item.retained = true; }
    g.pending++;
    persister.publish(toStoreMessage(item.msg), targets, (r) => {
      if (!r && targets.length > 0) g.failed = true;
      else if (r) {
        const stored = new StoredIds(r.msgId);
        targets.forEach((t, k) => { if (r.seqs[k]) stored.seqBySub.set(t.sub, r.seqs[k]); });
        entry.stored = stored;
      }
      if (--g.pending === 0) this.finishGroup(g);
    });
  }

  private finishGroup(g: Group): void {
    const c = g.conn;
    if (g.failed) {
      // Not durable: no acknowledgement; the publisher resends after reconnecting.
      if (c) { c.persisting--; c.protocolClose(0x80); }
      return;
    }
    for (const e of g.entries) this.complete(e.item, e.triples, 0, e.count, e.stored);
    this.sendPendingRemote();
    if (c) this.release(c);
    this.flushBatch();
    this.hub.markRingDirty();
  }

  /** The connection's store write landed: what queued behind it goes on, in order. */
  private release(c: Connection): void {
    if (--c.persisting > 0) return;
    const held = c.heldPublishes.splice(0);
    for (const h of held) this.publish(h.msg, h.conn, h.ack, h.pid);
    if (c.persisting === 0) c.socket.resume();
  }

  /** `held`/`heldId`: other workers hold the message for their sessions (writeBehind). */
  private route(msg: Message, out: Uint32Array, from: number, count: number, stored: Stored | null, held = 0, heldId = 0): void {
    const me = this.hub.index;
    let remoteAny = false;
    for (let k = 0; k < count; k++) {
      const at = from + k * 3;
      const w = subscriberWorker(out[at]);
      if (w === me) continue;
      this.remote[w]?.push(at);
      remoteAny = true;
    }
    this.deliverLocal(msg, out, from, count, true, stored);
    if (remoteAny) this.sendRemote(msg, out, held ? null : stored, held, heldId);
  }

  /**
   * Step 5: delivers to this worker's sessions. Overlapping subscriptions of one session
   * yield one copy at the highest QoS carrying every subscription id [MQTT-3.3.4-2, 3.3.4-3].
   */
  deliverLocal(msg: Message, out: Uint32Array, from: number, count: number, filterOwn: boolean, stored: Stored | null): void {
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
        const seq = stored ? stored.seqOf(sub) : 0;
        s.deliver(msg, Math.min(msg.qos, opts & OPT_QOS_MASK), false, subId ? [subId] : null, seq ? stored!.msgId : 0, seq, seq ? stored!.held : null);
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
      const seq = stored ? stored.seqOf(s.subscriber) : 0;
      s.deliver(msg, Math.min(msg.qos, s.accQos), s.accRap && msg.retain, s.accIds, seq ? stored!.msgId : 0, seq, seq ? stored!.held : null);
    }
    touched.length = 0;
  }

  /**
   * Step 6, part 1: note what goes to each other worker with interest (its subscriber triples);
   * the payload is placed once per batch in `sendPendingRemote`.
   */
  private sendRemote(msg: Message, out: Uint32Array, stored: Stored | null, held: number, heldId: number): void {
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

  /** What this batch sends to other workers, in reused flat arrays (no objects per message). */
  private readonly rq = new RemoteQueue();

  /**
   * Step 6, part 2, once per batch: one slab slot per message shared by all its target workers
   * (one native call for the whole batch), then one small record per target worker's ring.
   * Messages that get no slot carry their body inline.
   */
  private sendPendingRemote(): void {
    const r = this.rq;
    const n = r.msgs.length;
    if (n === 0) return;
    const placed = this.slab ? this.slab.place(r.msgs, r.first, r.targets) : 0;
    for (let i = 0; i < n; i++) {
      const handle = i < placed ? this.slab!.out[2 * i] : 0;
      const offset = i < placed ? this.slab!.out[2 * i + 1] : 0;
      const end = i + 1 < n ? r.first[i + 1] : r.targets.length;
      for (let t = r.first[i]; t < end; t += 3) {
        this.writeRemote(r.targets[t], r.msgs[i], r.targets[t + 1], r.targets[t + 2], r.stored[i], r.held[i], r.heldIds[i], handle, offset);
      }
    }
    r.clear();
    this.hub.markRingDirty();
  }

  private writeRemote(w: number, msg: Message, from: number, n: number, stored: Stored | null, held: number, heldId: number,
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
      this.hub.count(C_RING_SPILLED, 1);
    } else {
      writeRecord(ring.bytes, ring.dataView, at, msg, triples, from, n, ids, msgId, seqOf, handle, offset);
    }
  }

  /** This worker's part of a message a publisher on worker `h.settleTo` waits for is settled. */
  private readonly sendSettle = (a: AckWait): void => {
    const h = a as HeldPublish;
    const ring = this.producers[h.settleTo];
    if (!ring) return; // that worker is gone, and its publisher's connection with it
    const at = ring.reserve(SETTLE_SIZE);
    if (at < 0) {
      const rec = Buffer.alloc(SETTLE_SIZE);
      writeSettle(new DataView(rec.buffer, rec.byteOffset, SETTLE_SIZE), 0, h.id, h.settled === 1);
      ring.push(rec);
      this.hub.count(C_RING_SPILLED, 1);
    } else {
      writeSettle(ring.dataView, at, h.id, h.settled === 1);
    }
    this.hub.markRingDirty();
  };

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
    if (kind === KIND_SETTLE && len >= SETTLE_SIZE) { this.waits.settle(this.draining, view.getFloat64(off + 8, true), view.getUint8(off + 1) === 1); return; }
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
      stored = this.onHeld(msg, view.getFloat64(storedAt, true), t, nSubs, (flags & FLAG_SETTLE) !== 0);
    }
    this.deliverLocal(msg, t, 0, nSubs, false, stored);
  }

  /**
   * A publisher on the draining worker took id `msgId` and left this worker's persistent
   * sessions to it: held here like one of this worker's own (writeBehind), and, if that
   * publisher waits, its part is sent back once settled.
   */
  private onHeld(msg: Message, msgId: number, t: Uint32Array, nSubs: number, settle: boolean): HeldPublish | null {
    const targets = persistTargets(msg, t, 0, nSubs);
    if (targets.length === 0) return null;
    const ids = this.hub.storeIds;
    for (let i = 0; i < targets.length; i++) targets[i].seq = ids.next();
    const held = this.hub.persister.hold(msg, msgId, targets);
    if (settle) {
      held.settleTo = this.draining;
      held.notify = this.sendSettle;
    }
    return held;
  }
}

function hasPersistentTarget(out: Uint32Array, from: number, count: number): boolean {
  for (let k = 0; k < count; k++) {
    const opts = out[from + k * 3 + 1];
    if ((opts & OPT_PERSISTENT) && (opts & OPT_QOS_MASK) !== 0) return true;
  }
  return false;
}

/**
 * Does some persistent session get this message as more than one delivery? Normal
 * subscriptions of a session merge into one; each shared subscription is its own (deliverLocal).
 */
function hasSplitDelivery(out: Uint32Array, from: number, count: number): boolean {
  let shared = false;
  for (let k = 0; k < count; k++) if (out[from + k * 3 + 1] & OPT_SHARED) { shared = true; break; }
  if (!shared) return false;
  const seen = new Map<number, boolean>(); // sub → has a normal delivery already
  for (let k = 0; k < count; k++) {
    const at = from + k * 3;
    const sub = out[at], opts = out[at + 1];
    if (!(opts & OPT_PERSISTENT) || (opts & OPT_QOS_MASK) === 0) continue;
    const isShared = (opts & OPT_SHARED) !== 0;
    const prior = seen.get(sub);
    if (prior !== undefined && (isShared || !prior)) return true;
    seen.set(sub, (prior ?? false) || !isShared);
  }
  return false;
}

/** Shared by targets without subscription ids (never mutated: a target with ids gets its own). */
const NO_IDS: number[] = [];

/** Persistent subscribers with QoS >= 1 for this message, one entry per session. */
function persistTargets(msg: Message, out: Uint32Array, from: number, count: number): PersistTarget[] {
  const targets: PersistTarget[] = [];
  for (let k = 0; k < count; k++) {
    const at = from + k * 3;
    const sub = out[at], opts = out[at + 1], subId = out[at + 2];
    if (!(opts & OPT_PERSISTENT) || (opts & OPT_QOS_MASK) === 0) continue;
    if ((opts & OPT_NO_LOCAL) && !(opts & OPT_SHARED) && sub === msg.origin) continue;
    let t: PersistTarget | undefined;
    for (let i = 0; i < targets.length; i++) if (targets[i].sub === sub) { t = targets[i]; break; }
    if (!t) { t = { sub, qos: 0, retain: false, subIds: NO_IDS }; targets.push(t); }
    t.qos = Math.max(t.qos, Math.min(msg.qos, opts & OPT_QOS_MASK));
    if ((opts & OPT_RETAIN_AS_PUBLISHED) && msg.retain) t.retain = true;
    if (subId) t.subIds = t.subIds === NO_IDS ? [subId] : [...t.subIds, subId];
  }
  return targets;
}
