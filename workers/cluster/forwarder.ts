// A worker's side of cross-node forwarding (src/cluster/README.md, "Forwarding"):
// - out: while routing, the node tokens among a message's matches name the peer nodes that
//   want it; the message is encoded ONCE (wire entry, src/cluster/forward-wire.ts) with the
//   list of target nodes into this batch's buffer, and the buffer is posted to the coordinator
//   once per routed batch (not per message). A QoS >= 1 message gets a forward id; its
//   publisher's PUBACK / PUBREC waits (AckWait, in the connection's ack order) until every
//   target node acknowledged it.
// - in: the coordinator hands over what peers forwarded; each message is routed here as if a
//   local client had published it, marked `fromPeer` so it never goes back out to the cluster
//   and never updates the retained store, then the coordinator is told the batch is routed
//   (that is when the receiving node acknowledges it to the sender).
// Bounded: QoS 0 is dropped (counted) while more than OUTSTANDING_MAX bytes posted to the
// coordinator are not yet taken; QoS >= 1 is bounded by each publisher's inflight window, since
// its acknowledgement waits.
import type { MessagePort } from 'node:worker_threads';
import { Message, NO_ORIGIN } from '../protocol/message';
import type { Connection } from '../net/connection';
import { AckWait } from '../persist/ack-wait';
import { AckOrder } from '../routing/ack-order';
import { NODE_WORKER } from '../../src/cluster/node-tokens';
import { SLOT_MASK } from '../../src/shared/topic-index';
import { BATCH_HEADER, wireSize, writeWire, readWire } from '../../src/cluster/forward-wire';
import { C_CLUSTER_FWD_OUT, C_CLUSTER_FWD_IN, C_CLUSTER_FWD_DROPPED, C_CLUSTER_FWD_FAILED } from '../../src/shared/counters';
import type { ClusterForwardMsg } from '../../src/shared/messages';

/** Bytes posted to the coordinator and not yet taken, beyond which QoS 0 is dropped. */
const OUTSTANDING_MAX = 32 * 1024 * 1024;

export interface ForwarderDeps {
  readonly index: number;
  readonly port: MessagePort;
  count(counter: number, n: number): void;
  /** Routes a message that came from a peer node (Router.publish). */
  publish(msg: Message): void;
  /** Routes what is batched (Router.flushBatch). */
  flush(): void;
  /** The client id of the session with subscriber id `sub` here, or '' (No Local across nodes). */
  clientIdOf(sub: number): string;
}

export class Forwarder {
  private buf = Buffer.allocUnsafe(256 * 1024);
  private used = 0;
  /** Distinct node indexes of the message being collected. */
  private readonly nodes: number[] = [];
  private nextFwdId = 1;
  /** After collect(): the forward id given (0: none) and how many nodes it went to. */
  lastFwdId = 0;
  lastTargets = 0;
  private readonly waits = new Map<number, AckWait>();
  private outstanding = 0;

  constructor(private readonly deps: ForwarderDeps) {}

  /**
   * Called by Router.route for every routed message: forwards it to the peer nodes among its
   * matches. Cheap when there are none (one shift and compare per match).
   */
  collect(msg: Message, out: Uint32Array, from: number, count: number): void {
    this.lastFwdId = 0;
    this.lastTargets = 0;
    if (msg.fromPeer) return; // forwarded here: delivered to local subscribers only
    const nodes = this.nodes;
    for (let k = 0; k < count; k++) {
      const sub = out[from + k * 3];
      if ((sub >>> 22) !== NODE_WORKER) continue;
      const n = sub & SLOT_MASK;
      if (!nodes.includes(n)) nodes.push(n);
    }
    if (nodes.length === 0) return;
    if (msg.qos === 0 && this.outstanding > OUTSTANDING_MAX) {
      this.deps.count(C_CLUSTER_FWD_DROPPED, nodes.length);
      nodes.length = 0;
      return;
    }
    const origin = msg.origin === NO_ORIGIN ? '' : this.deps.clientIdOf(msg.origin);
    const originBytes = origin.length === 0 ? 0 : Buffer.byteLength(origin, 'utf8');
    const size = BATCH_HEADER + nodes.length * 4 + wireSize(msg, originBytes);
    if (this.used + size > this.buf.length) this.grow(size);
    const b = this.buf;
    let p = this.used;
    const fwdId = msg.qos > 0 ? this.nextFwdId++ : 0;
    b.writeUInt16LE(nodes.length, p);
    b.writeUInt16LE(0, p + 2);
    b.writeUInt32LE(size - BATCH_HEADER - nodes.length * 4, p + 4);
    b.writeDoubleLE(fwdId, p + 8);
    p += BATCH_HEADER;
    for (let i = 0; i < nodes.length; i++, p += 4) b.writeUInt32LE(nodes[i], p);
    this.used = writeWire(b, p, msg, Date.now(), origin, originBytes);
    this.deps.count(C_CLUSTER_FWD_OUT, nodes.length);
    this.lastFwdId = fwdId;
    this.lastTargets = nodes.length;
    nodes.length = 0;
  }

  /**
   * The publisher's acknowledgement of message `fwdId` (collected to `targets` nodes) waits for them
   * (at-least-once across nodes), in the connection's acknowledgement order [MQTT-4.6.0-2].
   */
  waitAck(fwdId: number, targets: number, c: Connection, type: number, pid: number): void {
    const w = new AckWait(targets);
    w.conn = c;
    w.ackType = type;
    w.ackPid = pid;
    w.notify = this.ackReady;
    this.waits.set(fwdId, w);
    (c.ackOrder ??= new AckOrder()).wait(w);
  }

  private readonly ackReady = (a: AckWait): void => { a.conn!.ackOrder!.write(a.conn!); };

  /** Once per routed batch: what was collected goes to the coordinator in one message. */
  flush(): void {
    if (this.used === 0) return;
    const copy = new Uint8Array(this.used);
    copy.set(this.buf.subarray(0, this.used));
    this.outstanding += this.used;
    this.used = 0;
    this.deps.port.postMessage({ t: 'cluster-fwd', buf: copy }, [copy.buffer]);
  }

  private grow(size: number): void {
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.used + size));
    this.buf.copy(next, 0, 0, this.used);
    this.buf = next;
  }

  /** What the coordinator says about forwarding: acknowledgements, or messages from peers. */
  onMessage(m: ClusterForwardMsg): void {
    if (m.t === 'cluster-fwd-acks') {
      this.outstanding = Math.max(0, this.outstanding - m.taken);
      if (m.dropped > 0) this.deps.count(C_CLUSTER_FWD_DROPPED, m.dropped);
      for (const id of m.ok) this.settle(id, true);
      for (const id of m.failed) { this.settle(id, false); this.deps.count(C_CLUSTER_FWD_FAILED, 1); }
      return;
    }
    if (m.t === 'cluster-fwd-in') this.receive(m.batch, Buffer.from(m.buf.buffer, m.buf.byteOffset, m.buf.byteLength));
  }

  private settle(id: number, ok: boolean): void {
    const w = this.waits.get(id);
    if (!w) return;
    w.part(ok);
    if (w.settled !== 0) this.waits.delete(id);
  }

  /** Messages peers forwarded: routed here as if published here, never forwarded again. */
  private receive(batch: number, buf: Buffer): void {
    const now = Date.now();
    let p = 0;
    let n = 0;
    while (p + 4 <= buf.length) {
      const len = buf.readUInt32LE(p);
      const w = readWire(buf, p + 4, Math.min(buf.length, p + 4 + len), now);
      p += 4 + len;
      if (!w) continue;
      const msg = new Message(w.topic, w.payload, w.qos, w.retain, w.props, w.expiryAt, NO_ORIGIN);
      msg.fromPeer = true;
      msg.originId = w.origin;
      this.deps.publish(msg);
      n++;
    }
    this.deps.flush();
    this.deps.count(C_CLUSTER_FWD_IN, n);
    this.deps.port.postMessage({ t: 'cluster-fwd-done', batch });
  }
}
