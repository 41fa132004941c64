// Forwarding between nodes, the coordinator's part (README.md here, "Forwarding"): workers
// encode each forwarded message once (forward-wire.ts) and post a batch per routed batch; this
// module slices the batches into one bounded queue per peer node and sends them as framed
// batches of raw bytes on one Forward/Stream call per peer (no protobuf per message). The
// receiving node's coordinator hands them to one of its workers, which routes them locally.
//
// Guarantees and bounds:
// - Per peer, queued + unacknowledged bytes are bounded by `queueBytes`: QoS 0 beyond it is
//   dropped (counted, C_CLUSTER_FWD_DROPPED); QoS >= 1 is taken up to twice the bound (its
//   publisher's acknowledgement waits meanwhile, which is the backpressure), beyond that it is
//   refused: the publisher gets no PUBACK / PUBREC and is disconnected (C_CLUSTER_FWD_FAILED).
// - QoS >= 1 is at-least-once between nodes: every entry has a sequence number per
//   (sender incarnation -> receiver incarnation); the receiver acknowledges a seq once its worker
//   has routed the message; unacknowledged entries are resent in order on a new call after a
//   stream reset, and the receiver routes only seqs above the highest it has seen (a resend is
//   acknowledged, not routed again). The publisher's acknowledgement waits for every target node.
// - A peer that leaves the view (or restarts) takes its queue with it: what waited for it is
//   settled as done (its subscribers are gone with it).
// - Order per publisher: a publisher's messages leave from one worker, travel one call in
//   order and are handed to one worker on the receiving node (sender worker mod workers).
import type * as grpc from '@grpc/grpc-js';
import { bytesMethod } from './peer-server';
import type { PeerLink, PeerLinks } from './peer-links';
import type { NodeIndex } from './node-tokens';
import {
  BATCH_HEADER, FRAME_HEADER, FRAME_ENTRY_HEADER, KIND_HELLO, KIND_DATA, KIND_ACKS, WIRE_HEADER, wireQos,
} from './forward-wire';
import type { ClusterForwardMsg } from '../shared/messages';
import * as K from '../shared/counters';

export const FORWARD_STREAM = bytesMethod('Forward', 'Stream', 'bidi');
/** Entries and bytes per DATA frame. */
const FRAME_ENTRIES = 1024;
const FRAME_BYTES = 1024 * 1024;
const RETRY_MIN_MS = 100;
const RETRY_MAX_MS = 2000;

interface Entry {
  wire: Buffer;
  qos: number;
  /** Sender worker (its acks go back there; the receiver picks its worker from it). */
  worker: number;
  fwdId: number;
  /** 0 until first sent; kept for resends. */
  seq: number;
}

interface PeerOut {
  link: PeerLink;
  call: grpc.ClientDuplexStream<Buffer, Buffer> | null;
  queue: Entry[];
  head: number;
  inflight: Map<number, Entry>;
  bytes: number;
  nextSeq: number;
  waitingDrain: boolean;
  retryMs: number;
  timer: NodeJS.Timeout | null;
  scheduled: boolean;
}

/** What arrives from one sender node: the highest seq routed, per sender incarnation. */
interface PeerIn { incarnation: string; highest: number }

export interface ForwardingDeps {
  selfId: string;
  incarnation(): string | null;
  nodes: NodeIndex;
  links: PeerLinks;
  workers: number;
  /** Posts to worker `w` (false: no such worker alive now). */
  post(w: number, m: ClusterForwardMsg, transfer?: ArrayBuffer[]): boolean;
  queueBytes: number;
  gauges: Float64Array | null;
}

export class Forwarding {
  private readonly out = new Map<string, PeerOut>();
  private readonly inState = new Map<string, PeerIn>();
  /** Per sender worker: what to tell it at the end of this turn. */
  private readonly replies: { taken: number; ok: number[]; failed: number[]; dropped: number }[];
  private replyScheduled = false;
  private nextBatch = 1;
  /** Batches handed to local workers, acknowledged to their sender when routed. */
  private readonly batches = new Map<number, { call: grpc.ServerDuplexStream<Buffer, Buffer>; seqs: number[]; worker: number }>();
  private closed = false;

  constructor(private readonly d: ForwardingDeps) {
    this.replies = Array.from({ length: d.workers }, () => ({ taken: 0, ok: [], failed: [], dropped: 0 }));
  }

  service(): [grpc.ServiceDefinition, grpc.UntypedServiceImplementation] {
    return [{ Stream: FORWARD_STREAM } as grpc.ServiceDefinition, { Stream: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => this.serve(call) }];
  }

  // ---- sending ----------------------------------------------------------------------------

  /** A worker's batch (forward-wire.ts, "Worker -> coordinator batch"). */
  fromWorker(worker: number, bytes: Uint8Array): void {
    const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const reply = this.replies[worker];
    if (!reply) return;
    reply.taken += buf.length;
    let p = 0;
    while (p + BATCH_HEADER <= buf.length) {
      const n = buf.readUInt16LE(p);
      const wlen = buf.readUInt32LE(p + 4);
      const fwdId = buf.readDoubleLE(p + 8);
      const wireAt = p + BATCH_HEADER + n * 4;
      if (wireAt + wlen > buf.length || wlen < WIRE_HEADER) break;
      const wire = buf.subarray(wireAt, wireAt + wlen);
      const qos = wireQos(buf, wireAt);
      for (let i = 0; i < n; i++) {
        const nodeId = this.d.nodes.id(buf.readUInt32LE(p + BATCH_HEADER + i * 4));
        const peer = nodeId === undefined ? undefined : this.out.get(nodeId);
        if (!peer) { if (fwdId) reply.ok.push(fwdId); continue; } // that node is gone: nothing to wait for
        const limit = qos === 0 ? this.d.queueBytes : 2 * this.d.queueBytes;
        if (peer.bytes + wlen > limit) {
          if (qos === 0) reply.dropped++;
          else if (fwdId) reply.failed.push(fwdId);
          continue;
        }
        peer.queue.push({ wire, qos, worker, fwdId, seq: 0 });
        peer.bytes += wlen;
        this.schedule(peer);
      }
      p = wireAt + wlen;
    }
    this.scheduleReplies();
  }

  private schedule(peer: PeerOut): void {
    if (peer.scheduled) return;
    peer.scheduled = true;
    setImmediate(() => { peer.scheduled = false; this.pump(peer); });
  }

  /** Writes what is queued as DATA frames until the call pushes back. */
  private pump(peer: PeerOut): void {
    const call = peer.call;
    if (call === null || peer.waitingDrain || this.out.get(peer.link.nodeId) !== peer) return;
    while (peer.head < peer.queue.length) {
      const end = Math.min(peer.queue.length, peer.head + FRAME_ENTRIES);
      let size = FRAME_HEADER;
      let last = peer.head;
      for (; last < end; last++) {
        const s = FRAME_ENTRY_HEADER + peer.queue[last].wire.length;
        if (last > peer.head && size + s > FRAME_BYTES) break;
        size += s;
      }
      const frame = Buffer.allocUnsafe(size);
      frame.writeUInt32LE(KIND_DATA, 0);
      frame.writeUInt32LE(last - peer.head, 4);
      let p = FRAME_HEADER;
      for (let i = peer.head; i < last; i++) {
        const e = peer.queue[i];
        if (e.seq === 0) e.seq = peer.nextSeq++;
        frame.writeUInt32LE(e.seq, p);
        frame.writeUInt16LE(e.worker, p + 4);
        frame.writeUInt16LE(0, p + 6);
        frame.writeUInt32LE(e.wire.length, p + 8);
        p += FRAME_ENTRY_HEADER;
        p += e.wire.copy(frame, p);
        if (e.qos > 0) peer.inflight.set(e.seq, e);
        else peer.bytes -= e.wire.length;
      }
      peer.head = last;
      const more = call.write(frame);
      if (!more) { peer.waitingDrain = true; call.once('drain', () => { peer.waitingDrain = false; this.pump(peer); }); break; }
    }
    if (peer.head === peer.queue.length) { peer.queue = []; peer.head = 0; }
    else if (peer.head > 4096) { peer.queue = peer.queue.slice(peer.head); peer.head = 0; }
  }

  linkUp(link: PeerLink): void {
    if (this.closed) return;
    const peer: PeerOut = {
      link, call: null, queue: [], head: 0, inflight: new Map(), bytes: 0, nextSeq: 1,
      waitingDrain: false, retryMs: RETRY_MIN_MS, timer: null, scheduled: false,
    };
    this.out.set(link.nodeId, peer);
    this.open(peer);
  }

  linkDown(link: PeerLink): void {
    const peer = this.out.get(link.nodeId);
    if (peer && peer.link === link) {
      this.out.delete(link.nodeId);
      if (peer.timer) clearTimeout(peer.timer);
      peer.call?.cancel();
      peer.call = null;
      // Its subscribers are gone with it: whoever waited for it need not wait any more.
      for (const e of peer.inflight.values()) this.settle(e, true);
      for (let i = peer.head; i < peer.queue.length; i++) if (peer.queue[i].fwdId) this.settle(peer.queue[i], true);
      peer.inflight.clear();
      peer.queue = [];
      this.gauges();
    }
    const st = this.inState.get(link.nodeId);
    if (st && st.incarnation === link.incarnation) this.inState.delete(link.nodeId);
  }

  private settle(e: Entry, ok: boolean): void {
    if (!e.fwdId) return;
    const r = this.replies[e.worker];
    if (!r) return;
    (ok ? r.ok : r.failed).push(e.fwdId);
    this.scheduleReplies();
  }

  private open(peer: PeerOut): void {
    peer.timer = null;
    const inc = this.d.incarnation();
    if (this.closed || this.out.get(peer.link.nodeId) !== peer || inc === null) return;
    const call = peer.link.client.makeBidiStreamRequest(FORWARD_STREAM.path, FORWARD_STREAM.requestSerialize, FORWARD_STREAM.responseDeserialize);
    peer.call = call;
    const hello = Buffer.from(JSON.stringify({ from: this.d.selfId, incarnation: inc, to: peer.link.nodeId, toIncarnation: peer.link.incarnation }));
    call.write(Buffer.concat([Buffer.from([KIND_HELLO]), hello]));
    this.gauges();
    const failed = () => {
      if (peer.call !== call) return;
      peer.call = null;
      peer.waitingDrain = false;
      call.cancel();
      this.gauges();
      if (this.out.get(peer.link.nodeId) !== peer || this.closed) return;
      // What was sent and not acknowledged goes first on the next call, in seq order.
      const resend = [...peer.inflight.values()].sort((a, b) => a.seq - b.seq);
      peer.inflight.clear();
      if (resend.length > 0 && this.d.gauges) this.d.gauges[K.C_CLUSTER_FWD_RESENT] += resend.length;
      peer.queue = [...resend, ...peer.queue.slice(peer.head)];
      peer.head = 0;
      peer.timer = setTimeout(() => this.open(peer), peer.retryMs);
      peer.retryMs = Math.min(RETRY_MAX_MS, peer.retryMs * 2);
    };
    call.on('data', (b: Buffer) => {
      if (peer.call !== call) return;
      peer.retryMs = RETRY_MIN_MS;
      if (b.length < FRAME_HEADER || b[0] !== KIND_ACKS) return;
      const n = Math.min(b.readUInt32LE(4), (b.length - FRAME_HEADER) >>> 2);
      for (let i = 0; i < n; i++) {
        const seq = b.readUInt32LE(FRAME_HEADER + i * 4);
        const e = peer.inflight.get(seq);
        if (!e) continue;
        peer.inflight.delete(seq);
        peer.bytes -= e.wire.length;
        this.settle(e, true);
      }
    });
    call.on('error', failed);
    call.on('end', failed);
    this.pump(peer);
  }

  private scheduleReplies(): void {
    if (this.replyScheduled) return;
    this.replyScheduled = true;
    setImmediate(() => {
      this.replyScheduled = false;
      for (let w = 0; w < this.replies.length; w++) {
        const r = this.replies[w];
        if (r.taken === 0 && r.ok.length === 0 && r.failed.length === 0 && r.dropped === 0) continue;
        this.d.post(w, { t: 'cluster-fwd-acks', taken: r.taken, ok: r.ok, failed: r.failed, dropped: r.dropped });
        this.replies[w] = { taken: 0, ok: [], failed: [], dropped: 0 };
      }
    });
  }

  // ---- receiving --------------------------------------------------------------------------

  private serve(call: grpc.ServerDuplexStream<Buffer, Buffer>): void {
    let from: string | null = null;
    let st: PeerIn | null = null;
    call.on('error', () => { /* the sender resends on a new call */ });
    call.on('data', (b: Buffer) => {
      if (b.length === 0) return;
      if (from === null) {
        if (b[0] !== KIND_HELLO) { call.emit('error', { code: 9, details: 'hello first' }); return; }
        let h: { from?: unknown; incarnation?: unknown; to?: unknown; toIncarnation?: unknown };
        try { h = JSON.parse(b.subarray(1).toString('utf8')); } catch { call.emit('error', { code: 3, details: 'bad hello' }); return; }
        const link = typeof h.from === 'string' ? this.d.links.link(h.from) : null;
        if (this.closed || !link || link.incarnation !== h.incarnation || h.to !== this.d.selfId || h.toIncarnation !== this.d.incarnation()) {
          call.emit('error', { code: 9, details: 'not a current peer' });
          return;
        }
        from = link.nodeId;
        st = this.inState.get(from) ?? null;
        if (!st || st.incarnation !== link.incarnation) { st = { incarnation: link.incarnation, highest: 0 }; this.inState.set(from, st); }
        this.ack(call, []); // accepted: the sender's reconnect backoff starts over
        return;
      }
      if (b[0] === KIND_DATA && st) this.receive(call, st, b);
    });
  }

  private receive(call: grpc.ServerDuplexStream<Buffer, Buffer>, st: PeerIn, b: Buffer): void {
    const n = b.readUInt32LE(4);
    const perWorker = new Map<number, { parts: Buffer[]; seqs: number[] }>();
    const dupAcks: number[] = [];
    let p = FRAME_HEADER;
    for (let i = 0; i < n && p + FRAME_ENTRY_HEADER <= b.length; i++) {
      const seq = b.readUInt32LE(p);
      const srcWorker = b.readUInt16LE(p + 4);
      const len = b.readUInt32LE(p + 8);
      const at = p + FRAME_ENTRY_HEADER;
      p = at + len;
      if (p > b.length || len < WIRE_HEADER) break;
      const qos = wireQos(b, at);
      if (seq <= st.highest) {
        // A resend of what was routed already: acknowledge, do not route again.
        if (this.d.gauges) this.d.gauges[K.C_CLUSTER_FWD_DUPLICATES]++;
        if (qos > 0) dupAcks.push(seq);
        continue;
      }
      st.highest = seq;
      const w = srcWorker % this.d.workers;
      let g = perWorker.get(w);
      if (!g) perWorker.set(w, (g = { parts: [], seqs: [] }));
      const lenBuf = Buffer.allocUnsafe(4);
      lenBuf.writeUInt32LE(len, 0);
      g.parts.push(lenBuf, b.subarray(at, at + len));
      if (qos > 0) g.seqs.push(seq);
    }
    if (dupAcks.length > 0) this.ack(call, dupAcks);
    for (const [w, g] of perWorker) {
      const batch = this.nextBatch++;
      const buf = new Uint8Array(Buffer.concat(g.parts));
      let target = w;
      // The worker picked is being replaced: any live one keeps the batch routed (order across a
      // worker's death is not kept anyway).
      let posted = false;
      for (let k = 0; k < this.d.workers && !posted; k++) {
        posted = this.d.post(target, { t: 'cluster-fwd-in', batch, buf }, [buf.buffer as ArrayBuffer]);
        if (!posted) target = (target + 1) % this.d.workers;
      }
      if (g.seqs.length > 0) this.batches.set(batch, { call, seqs: g.seqs, worker: target });
    }
  }

  /** Worker routed batch `batch`: acknowledge its QoS >= 1 entries to their sender. */
  workerDone(batch: number): void {
    const b = this.batches.get(batch);
    if (!b) return;
    this.batches.delete(batch);
    this.ack(b.call, b.seqs);
  }

  /**
   * Worker `index` died: the batches it was routing are lost with it (like its own clients'
   * in-flight messages); they are acknowledged so their publishers do not wait for good.
   */
  workerDied(index: number): void {
    // Its replacement numbers its forward ids from 1 again: acknowledgements of what the dead
    // worker sent must not settle the new one's (the messages still go to the peers).
    for (const p of this.out.values()) {
      for (const e of p.inflight.values()) if (e.worker === index) e.fwdId = 0;
      for (let i = p.head; i < p.queue.length; i++) if (p.queue[i].worker === index) p.queue[i].fwdId = 0;
    }
    const r = this.replies[index];
    if (r) { r.ok = []; r.failed = []; r.taken = 0; r.dropped = 0; }
    for (const [id, b] of this.batches) {
      if (b.worker !== index) continue;
      this.batches.delete(id);
      this.ack(b.call, b.seqs);
    }
  }

  private ack(call: grpc.ServerDuplexStream<Buffer, Buffer>, seqs: number[]): void {
    if (call.cancelled || call.writableEnded || call.destroyed) return;
    const frame = Buffer.allocUnsafe(FRAME_HEADER + seqs.length * 4);
    frame.writeUInt32LE(KIND_ACKS, 0);
    frame.writeUInt32LE(seqs.length, 4);
    for (let i = 0; i < seqs.length; i++) frame.writeUInt32LE(seqs[i], FRAME_HEADER + i * 4);
    call.write(frame);
  }

  private gauges(): void {
    if (!this.d.gauges) return;
    let n = 0;
    for (const p of this.out.values()) if (p.call !== null) n++;
    this.d.gauges[K.C_CLUSTER_PEERS_CONNECTED] = n;
  }

  close(): void {
    this.closed = true;
    for (const p of this.out.values()) { if (p.timer) clearTimeout(p.timer); p.call?.cancel(); }
    this.out.clear();
  }
}
