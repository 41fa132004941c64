// The publish path inside a worker (workers/README.md, "The path of a PUBLISH"), as a few
// named steps: batch the PUBLISHes of a loop turn (every connection that read in it), match
// them with ONE native call, then for
// each: let persistence take what must be durable first (Durability), else retain, deliver to
// this worker's sessions (LocalDelivery), note what other workers get (PeerLinks) and
// acknowledge (in the publisher's order, ack-order.ts).
import type { Message } from '../protocol/message';
import type { Connection } from '../net/connection';
import { topicIndex } from '../../src/shared/topic-index';
import type { Pending, Stored, Durability, RouteSink } from './pending';
import type { LocalDelivery } from './local-delivery';
import type { PeerLinks } from './peers';
import { acknowledge } from './ack-order';
import type { Forwarder } from '../cluster/forwarder';
import { C_ROUTE_PASSES, C_ROUTED_EARLY } from '../../src/shared/counters';

/** Publishes matched per native call; also bounds the scratch buffers. */
const BATCH = 256;
/**
 * Bytes of read chunks a batch may keep alive (its messages' topics and payloads are views of
 * them, so a batch spanning many connections' reads pins all of those): past it the batch is
 * routed early, whatever the turn still reads.
 */
const MAX_PINNED = 4 * 1024 * 1024;

export interface RouterDeps {
  readonly index: number;
  readonly trieId: number;
  readonly local: LocalDelivery;
  readonly peers: PeerLinks;
  /** The retained index and the store learn of a retained PUBLISH. */
  retain(msg: Message): void;
  /** Cross-node forwarding (a cluster member only). */
  readonly forwarder?: Forwarder | null;
  /** Asks for this turn's end (turn.ts), where what is batched gets routed. */
  schedule?(): void;
  /** Shared counters (routing passes, early ones). */
  count?(counter: number, n: number): void;
}

export class Router implements RouteSink {
  private readonly batch: Pending[] = [];
  private scratch = Buffer.allocUnsafe(64 * 1024);
  private scratchUsed = 0;
  private spans = new Uint32Array(BATCH * 2);
  /** Set while a batch is being routed: a PUBLISH made meanwhile (a will) waits for the next round. */
  private flushing = false;
  private out = new Uint32Array(64 * 1024);
  private durability: Durability | null = null;
  /** Bytes of the read chunks the batch holds views into (MAX_PINNED). */
  private pinned = 0;
  private readonly local: LocalDelivery;
  private readonly peers: PeerLinks;
  private readonly forwarder: Forwarder | null;

  constructor(private readonly deps: RouterDeps) {
    this.local = deps.local;
    this.peers = deps.peers;
    this.forwarder = deps.forwarder ?? null;
  }

  /** Persistence takes what must be durable first (set once at start). */
  bind(d: Durability): void { this.durability = d; }

  /**
   * Step 1: queue a PUBLISH; matching waits for the end of the loop turn (or a full batch), so
   * many connections that each sent a few messages share one native match. Order still holds
   * per publisher: the batch is one FIFO and every reply a connection gets (any non-PUBLISH
   * packet routes the batch first, handlers/dispatch.ts) comes after what it published before.
   * While an earlier PUBLISH of the same connection waits for the store, later ones queue
   * behind it so routing and acknowledgements keep the connection's order [MQTT-4.6.0-2].
   */
  publish(msg: Message, conn: Connection | null = null, ack = 0, pid = 0): void {
    const tlen = msg.topic.length;
    // A full batch is matched first; it may start a store write for this connection, and then
    // this message must queue behind it like the ones after it (it was once added to the next
    // batch instead and overtook them: out of order per topic [MQTT-4.6.0-6]).
    if (this.batch.length === BATCH || this.scratchUsed + tlen > this.scratch.length) this.routeEarly();
    const item: Pending = { msg, conn, ack, pid };
    if (conn !== null && conn.storeWait !== null && this.durability!.queueBehind(item)) return;
    if (this.scratchUsed + tlen > this.scratch.length) this.growScratch(tlen);
    const i = this.batch.length;
    if (i * 2 + 2 > this.spans.length) { const s = new Uint32Array(this.spans.length * 2); s.set(this.spans); this.spans = s; }
    this.spans[i * 2] = this.scratchUsed;
    this.spans[i * 2 + 1] = tlen;
    this.scratchUsed += msg.topic.copy(this.scratch, this.scratchUsed);
    this.batch.push(item);
    if (i === 0) this.deps.schedule?.();
  }

  /**
   * A connection has processed a read chunk of `bytes`: while anything is batched the chunk may
   * be referenced by it (MAX_PINNED).
   */
  noteRead(bytes: number): void {
    if (this.batch.length === 0) return;
    this.pinned += bytes;
    if (this.pinned > MAX_PINNED) this.routeEarly();
  }

  /** The batch is full before its turn ends: routed now (counted). */
  private routeEarly(): void {
    if (!this.flushing) this.deps.count?.(C_ROUTED_EARLY, 1);
    this.flushBatch();
  }

  /** Steps 3-6 for everything queued: one native match call per batch. */
  flushBatch(): void {
    // Routing can close a connection and publish its will: that must not re-enter and reuse
    // `out` while the outer loop still reads it.
    if (this.flushing) return;
    this.flushing = true;
    this.pinned = 0;
    try {
      while (this.batch.length > 0) this.flushOnce();
    } finally {
      this.flushing = false;
    }
  }

  private flushOnce(): void {
    const n = this.batch.length;
    this.deps.count?.(C_ROUTE_PASSES, 1);
    let words = topicIndex.match(this.deps.trieId, this.scratch, this.spans, n, this.out);
    if (words < 0) {
      this.out = new Uint32Array(Math.max(-words, this.out.length * 2));
      words = topicIndex.match(this.deps.trieId, this.scratch, this.spans, n, this.out);
    }
    const batch = this.batch.splice(0);
    this.scratchUsed = 0;
    const d = this.durability!;
    let p = 0;
    for (let i = 0; i < n; i++) {
      const item = batch[i];
      const count = this.out[p++];
      if (!d.take(item, this.out, p, count)) this.complete(item, this.out, p, count, null);
      p += count * 3;
    }
    this.peers.flush();
    this.forwarder?.flush();
    d.endBatch();
  }

  /** Only while flushing (nothing can be matched now): keep what is batched, make room. */
  private growScratch(tlen: number): void {
    const next = Buffer.allocUnsafe(Math.max(this.scratch.length * 2, this.scratchUsed + tlen));
    this.scratch.copy(next, 0, 0, this.scratchUsed);
    this.scratch = next;
  }

  /** Steps 4-8 once the message may go: retain, deliver, fan out, acknowledge. */
  complete(item: Pending, out: Uint32Array, from: number, count: number, stored: Stored | null): void {
    const msg = item.msg;
    if (msg.denied) {
      // Refused by the ACL or --max-payload-size (handlers/publish.ts): acknowledged in its place among the client's
      // PUBLISHes (behind any that wait for the store, like any other), never routed or retained.
      const c = item.conn!;
      acknowledge(c, item.ack, item.pid, c.v5 ? msg.refusal : 0);
      return;
    }
    if (msg.retain && !item.retained && !msg.fromPeer) this.deps.retain(msg);
    // Peer nodes first, into locals: delivering below can close a connection and publish its
    // will, which routes (and forwards) another message before this one is acknowledged.
    const f = this.forwarder;
    let fwdId = 0;
    let targets = 0;
    if (f !== null) { f.collect(msg, out, from, count); fwdId = f.lastFwdId; targets = f.lastTargets; }
    this.deliver(msg, out, from, count, stored, 0, 0);
    const c = item.conn;
    if (item.ack !== 0 && c !== null) {
      // QoS >= 1 sent to peer nodes: acknowledged once every one of them has it.
      if (fwdId !== 0) f!.waitAck(fwdId, targets, c, item.ack, item.pid);
      else acknowledge(c, item.ack, item.pid);
    }
  }

  /** `held`/`heldId`: other workers hold the message for their sessions (write-behind). */
  route(msg: Message, out: Uint32Array, from: number, count: number, stored: Stored | null, held: number, heldId: number): void {
    this.forwarder?.collect(msg, out, from, count);
    this.deliver(msg, out, from, count, stored, held, heldId);
  }

  /** This worker's sessions and the other workers'. */
  private deliver(msg: Message, out: Uint32Array, from: number, count: number, stored: Stored | null, held: number, heldId: number): void {
    const remote = this.peers.collect(out, from, count, this.deps.index);
    this.local.deliver(msg, out, from, count, true, stored);
    if (remote) this.peers.add(msg, out, held ? null : stored, held, heldId);
  }

  afterStore(): void {
    this.peers.flush();
    this.forwarder?.flush();
    this.flushBatch();
  }

  retain(msg: Message): void { this.deps.retain(msg); }
}
