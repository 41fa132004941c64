// Session state that outlives a connection (workers/README.md, "Sessions"): subscriptions,
// outbound in-flight QoS 1/2, the bounded queue, the retained feed, inbound QoS 2 state,
// expiry and the delayed will. What one delivery is and how it is encoded: outgoing.ts. A little
// past 300 lines: the queue, the window and the feed meet in pump() and stay in one class.
import type { Connection } from '../net/connection';
import type { BrokerConfig } from '../../src/config';
import type { StoreOp, WireSession, WireInflight, WireQueued } from '../../src/shared/messages';
import type { Will } from './will';
import type { HeldPublish } from '../persist/held-publish';
import { Outgoing, writePublish } from './outgoing';
import { RetainedFeed, type RetainedSource } from './retained-feed';
import { SessionQueue } from './queue';
import { Deadline, type DeadlineHeap } from './deadline-heap';
import { Message, NO_ORIGIN } from '../protocol/message';
import { encodeAck } from '../protocol/publish-codec';
import { PUBREL, RC } from '../protocol/constants';
import { C_DROPPED_EXPIRED, C_DROPPED_QUEUE_FULL } from '../../src/shared/counters';
import { limitedLog } from '../../src/log/thread';
import { handoverKey } from './handover';

type Inflight = Outgoing;

export interface Subscription {
  opts: number;
  subId: number;
  retainHandling: number;
}

export const NEVER_EXPIRES = 0xffffffff;

/** What a session needs of the worker around it. */
export interface SessionEnv {
  readonly config: BrokerConfig;
  count(counter: number, n: number): void;
  /** This worker's store operations, in order (persist/persister.ts). */
  readonly store: { op(o: StoreOp): void };
  /** The coordinator's retained cursors. */
  readonly retained: RetainedSource;
  /** This worker's one timer for every session's expiry and will delay. */
  readonly deadlines: DeadlineHeap;
}

export class Session {
  conn: Connection | null = null;
  readonly subs = new Map<string, Subscription>();
  private readonly inflight = new Map<number, Inflight>();
  /** Deliveries waiting for room, stored compactly (queue.ts); made on first use. */
  private queue: SessionQueue | null = null;
  readonly inboundQos2 = new Set<number>();
  private nextPid = 1;
  expiryInterval = 0;
  /** Offline expiry and will delay in the worker's heap (made on first use, then reused). */
  private expiryDeadline: Deadline | null = null;
  private willDeadline: Deadline | null = null;
  private onExpire: (() => void) | null = null;
  private onWill: ((w: Will) => void) | null = null;
  pendingWill: Will | null = null;
  /** Kept in the store (durability on and a session that outlives its connection). */
  persistent = false;

  /**
   * SUBSCRIBEs whose retained messages are not being fed yet (their SUBACK waits for the store),
   * then the feed itself: live messages queue behind both, so a retained message is never
   * overtaken by a newer one on its topic [MQTT-4.6.0-6].
   */
  private feedsPending = 0;
  private feed: RetainedFeed | null = null;
  /** Packet ids in flight still to be resent (DUP) on this connection, in order [MQTT-4.4.0-1]. */
  private resends: number[] | null = null;
  private ended = false;

  /** From this SUBSCRIBE on, live messages wait for its retained messages. */
  holdLive(): void { this.feedsPending++; }

  /** The SUBACK is out: stream the retained messages of `list` to this session, in order. */
  feedRetained(list: { filter: string; qos: number }[], subId: number): void {
    this.feedsPending--;
    if (this.ended) return;
    const f = (this.feed ??= new RetainedFeed(this.env.retained, () => this.pump()));
    const subIds = subId ? [subId] : null;
    for (const x of list) f.add({ filter: x.filter, qos: x.qos, subIds });
    this.pump();
  }

  private get liveWaits(): boolean { return this.feedsPending > 0 || this.feed !== null; }

  /** Messages wait for room on the socket or in the window (what a flush or an ack should move). */
  get backlogged(): boolean { return this.feed !== null || this.queueLength > 0 || this.resends !== null; }

  /** The session is gone: nothing more is fed. */
  end(): void {
    this.ended = true;
    this.feed?.close();
    this.feed = null;
  }

  /** Scratch used by the router to merge overlapping subscriptions per message. */
  stamp = 0;
  accQos = -1;
  accRap = false;
  accIds: number[] | null = null;
  accSeq = 0;

  constructor(
    private readonly env: SessionEnv,
    readonly clientId: string,
    readonly slot: number,
    readonly subscriber: number,
    public protocolVersion: number,
  ) {}

  get online(): boolean { return this.conn !== null; }

  /** The client's window: its Receive Maximum, capped by --max-inflight. */
  private get window(): number {
    const c = this.conn;
    return Math.min(c ? c.clientReceiveMax : 65535, this.env.config.maxInflight);
  }

  /**
   * Delivers one message at `qos` (already min(published, granted)). `msgId`/`seq` name its
   * store slot when the publisher persisted it for this session (workers/README.md, "Persistence and write-behind").
   */
  deliver(msg: Message, qos: number, retain: boolean, subIds: number[] | null, msgId = 0, seq = 0, held: HeldPublish | null = null): void {
    if (msg.expiryAt !== 0 && msg.expiryAt <= Date.now()) { this.env.count(C_DROPPED_EXPIRED, 1); this.unstoreSlot(seq, held); return; }
    const c = this.conn;
    if (this.liveWaits) {
      // Behind retained messages still being fed: queued, within the queue's bounds, QoS 0 too.
      if (qos > 0 || c) this.enqueue(msg, qos, retain, subIds, msgId, seq, held);
      return;
    }
    if (qos === 0) {
      // QoS 0 is never queued: offline sessions miss it; slow consumers drop it, counted.
      if (!c) return;
      if (c.congested) { c.dropSlow(); return; }
      writePublish(this.env, c, msg, 0, retain, 0, false, subIds);
      return;
    }
    if (c && this.queueLength === 0 && this.resends === null && this.inflight.size < this.window && !c.congested) this.sendNew(c, new Outgoing(msg, qos, retain, subIds, msgId, seq, held));
    else this.enqueue(msg, qos, retain, subIds, msgId, seq, held);
  }

  private get queueLength(): number { return this.queue === null ? 0 : this.queue.length; }
  /** For the once-a-second gauges (src/shared/worker-gauges.ts) and the admin API. */
  get queuedCount(): number { return this.queueLength; }
  get inflightCount(): number { return this.inflight.size; }

  /** An empty queue gives its storage back (called every few seconds, not per message: queue.ts). */
  trimQueue(): void { if (this.queue !== null && this.queue.length === 0) this.queue = null; }

  private enqueue(msg: Message, qos: number, retain: boolean, subIds: number[] | null, msgId: number, seq: number, held: HeldPublish | null, dup = false): void {
    const cfg = this.env.config;
    const q = (this.queue ??= new SessionQueue());
    const size = msg.size;
    while (q.length >= cfg.maxQueuedMessages || (q.bytes + size > cfg.maxQueuedBytes && q.length > 0)) {
      limitedLog().warn('dropped-queue-full', 'message dropped: session queue full (--max-queued-messages, --queue-policy)', () => ({ clientId: this.conn?.clientId ?? null, policy: cfg.queuePolicy }));
      if (cfg.queuePolicy === 'drop-new' || cfg.maxQueuedMessages === 0) { this.env.count(C_DROPPED_QUEUE_FULL, 1); this.unstoreSlot(seq, held); return; }
      if (cfg.queuePolicy === 'disconnect' && this.conn) {
        this.env.count(C_DROPPED_QUEUE_FULL, 1);
        this.unstoreSlot(seq, held);
        this.conn.protocolClose(RC.QUOTA_EXCEEDED);
        return;
      }
      this.unstoreSlot(q.headSeq, q.headHeld);
      q.drop();
      this.env.count(C_DROPPED_QUEUE_FULL, 1);
    }
    // Queued: no acknowledgement soon, so the store request should not wait for one.
    if (held !== null && !held.posted) held.force();
    if (!q.push(msg, qos, retain, subIds, msgId, seq, held, dup)) { this.env.count(C_DROPPED_QUEUE_FULL, 1); this.unstoreSlot(seq, held); }
  }

  private allocPid(): number {
    for (let i = 0; i < 65535; i++) {
      const pid = this.nextPid;
      this.nextPid = pid === 65535 ? 1 : pid + 1;
      if (!this.inflight.has(pid)) return pid;
    }
    return 0;
  }

  private sendNew(c: Connection, o: Outgoing): void {
    const pid = this.allocPid();
    if (pid === 0) { this.enqueue(o.msg!, o.qos, o.retain, o.subIds, o.msgId, o.seq, o.held, o.dup); return; }
    if (!writePublish(this.env, c, o.msg!, o.qos, o.retain, pid, o.dup, o.subIds)) { this.unstoreSlot(o.seq, o.held); return; }
    o.state = 'publish';
    o.stored = o.seq !== 0;
    this.inflight.set(pid, o);
    if (o.stored) {
      // Queue slot → in-flight entry with its packet id, so a restart redelivers the same PUBLISH.
      if (o.inHeld) { o.held!.inflight(this.subscriber, pid); return; }
      this.unstoreSlot(o.seq, null);
      this.storeInflight(pid, o.msgId, o.qos, 'publish', o.retain, o.subIds);
    }
  }

  /** Removes a queue slot from the store: from the held request if it is still here. */
  private unstoreSlot(seq: number, held: HeldPublish | null): void {
    if (seq === 0) return;
    if (held && !held.posted) held.done(this.subscriber);
    else this.env.store.op({ o: 'dequeue', clientId: this.clientId, seq });
  }

  /** An in-flight delivery ended: acknowledged, or refused with PUBREC >= 0x80. */
  private unstoreInflight(f: Outgoing, pid: number): void {
    if (f.inHeld) f.held!.done(this.subscriber);
    else this.env.store.op({ o: 'delInflight', clientId: this.clientId, packetId: pid });
  }

  private storeInflight(pid: number, msgId: number, qos: number, state: 'publish' | 'pubrel', retain: boolean, subIds: number[] | null): void {
    this.env.store.op({ o: 'inflight', clientId: this.clientId, entry: {
      packetId: pid, messageId: state === 'publish' ? BigInt(msgId) : null, qos: qos as 1 | 2, state, dup: false, retain,
      subscriptionIdentifiers: subIds ?? [],
    } });
  }

  /**
   * Sends what waits, as far as the socket's high-water mark and the in-flight window allow:
   * first the retained feed, then the queue. Called whenever either may have room again (an
   * ack, a 'drain', a flush that left the socket under its mark, a resume, a fed page), so a
   * queued message never waits for an event that will not come.
   */
  pump(): void {
    const c = this.conn;
    if (!c) return;
    if (this.resends !== null && !this.resend(c, this.resends)) return;
    if (this.feed !== null && !this.pumpFeed(c, this.feed)) return;
    if (this.feedsPending > 0) return;
    const q = this.queue;
    while (q !== null && q.length > 0 && !c.congested) {
      if (q.headQos > 0 && this.inflight.size >= this.window) break;
      const exp = q.headExpiryAt;
      if (exp !== 0 && exp <= Date.now()) { this.env.count(C_DROPPED_EXPIRED, 1); this.unstoreSlot(q.headSeq, q.headHeld); q.drop(); continue; }
      const o = q.take();
      if (o.qos === 0) writePublish(this.env, c, o.msg!, 0, o.retain, 0, false, o.subIds);
      else this.sendNew(c, o);
    }
  }

  /** Retained messages for new subscriptions, RETAIN 1 [MQTT-3.3.1-9]; true once the feed is done. */
  private pumpFeed(c: Connection, f: RetainedFeed): boolean {
    for (let w = f.peek(); w !== null; w = f.peek()) {
      const qos = Math.min(w.qos, f.want!.qos);
      if (c.congested || (qos > 0 && this.inflight.size >= this.window)) return false;
      f.take();
      if (w.expiryAt !== 0 && w.expiryAt <= Date.now()) { this.env.count(C_DROPPED_EXPIRED, 1); continue; }
      const msg = Message.fromWire(w, NO_ORIGIN);
      if (qos === 0) writePublish(this.env, c, msg, 0, true, 0, false, f.want!.subIds);
      else this.sendNew(c, new Outgoing(msg, qos, true, f.want!.subIds, 0, 0, null));
    }
    if (!f.finished) return false;
    this.feed = null;
    return true;
  }

  onDrain(): void { this.pump(); }

  /** PUBACK (QoS 1) or PUBCOMP (QoS 2) completes a delivery. */
  complete(pid: number, expectQos: number, expectState: 'publish' | 'pubrel'): void {
    const f = this.inflight.get(pid);
    if (!f || f.qos !== expectQos || f.state !== expectState) return;
    this.inflight.delete(pid);
    if (f.stored) this.unstoreInflight(f, pid);
    this.pump();
  }

  /** PUBREC: the message is stored at the client; from now on only PUBREL/PUBCOMP remain. */
  received(pid: number, reason: number): boolean {
    const f = this.inflight.get(pid);
    if (!f || f.qos !== 2) return false;
    if (reason >= 0x80) {
      this.inflight.delete(pid);
      if (f.stored) this.unstoreInflight(f, pid);
      this.pump();
      return true;
    }
    f.state = 'pubrel';
    f.msg = null;
    if (f.stored) this.storeInflight(pid, 0, 2, 'pubrel', f.retain, f.subIds); // QoS 2 is never held
    return true;
  }

  /** After (re)connect: resend unacknowledged PUBLISHes with DUP [MQTT-4.4.0-1], PUBRELs, then the queue. */
  resume(c: Connection): void {
    this.conn = c;
    this.protocolVersion = c.version;
    this.cancelTimers();
    this.resends = this.inflight.size > 0 ? [...this.inflight.keys()] : null;
    this.pump();
  }

  /**
   * The DUP resends after a reconnect, in order, as far as the socket's mark allows (a full
   * window of large messages at once would pass any bound); true once all are out.
   */
  private resend(c: Connection, q: number[]): boolean {
    let i = 0;
    for (; i < q.length && !c.congested; i++) {
      const pid = q[i];
      const f = this.inflight.get(pid);
      if (!f) continue;
      if (f.state === 'pubrel') c.write(encodeAck(PUBREL, pid, 0, c.v5));
      else if (!writePublish(this.env, c, f.msg!, f.qos, f.retain, pid, true, f.subIds)) this.inflight.delete(pid);
    }
    q.splice(0, i);
    if (q.length > 0) return false;
    this.resends = null;
    return true;
  }

  /** The connection went away; the session lives on until its expiry [MQTT-3.1.2-23]. */
  detach(onExpire: () => void, elapsedMs = 0): void {
    this.conn = null;
    if (this.expiryInterval !== NEVER_EXPIRES) {
      this.onExpire = onExpire;
      this.expiryDeadline ??= new Deadline(() => this.onExpire?.());
      this.env.deadlines.schedule(this.expiryDeadline, this.expiryInterval * 1000 - elapsedMs);
    }
  }

  scheduleWill(will: Will, publish: (w: Will) => void, elapsedMs = 0): void {
    this.pendingWill = will;
    this.onWill = publish;
    const delay = Math.min(will.delay, this.expiryInterval) * 1000 - elapsedMs;
    this.willDeadline ??= new Deadline(() => {
      const w = this.pendingWill;
      const fn = this.onWill;
      this.pendingWill = null;
      this.onWill = null;
      if (w && fn) fn(w);
    });
    this.env.deadlines.schedule(this.willDeadline, delay);
  }

  cancelTimers(): void {
    const d = this.env.deadlines;
    if (this.expiryDeadline) d.cancel(this.expiryDeadline);
    if (this.willDeadline) d.cancel(this.willDeadline);
    this.onExpire = null;
    this.onWill = null;
    this.pendingWill = null;
  }

  /** Restores a session read back from the store at start (workers/README.md, "Persistence and write-behind"). */
  restore(w: WireSession): void {
    for (const f of w.inflight) {
      const o = new Outgoing(f.msg ? Message.fromWire(f.msg) : null, f.qos, f.msg?.retain ?? false, f.subIds, f.msgId, 0, null);
      o.state = f.state;
      o.stored = f.msgId !== 0 || (f.state === 'pubrel' && this.persistent);
      this.inflight.set(f.packetId, o);
      if (f.packetId >= this.nextPid) this.nextPid = f.packetId === 65535 ? 1 : f.packetId + 1;
    }
    for (const q of w.queue) this.enqueue(Message.fromWire(q.msg), q.msg.qos, q.msg.retain, q.subIds, q.msgId, q.seq, null);
    for (const pid of w.inboundQos2) this.inboundQos2.add(pid);
  }

  // ---- cross-node handover (workers/session/handover.ts) ----

  /** In-flight deliveries as they go to another node (no store ids: that store is not theirs). */
  exportInflight(): WireInflight[] {
    const out: WireInflight[] = [];
    for (const [packetId, f] of this.inflight) {
      const msg = f.msg ? { ...f.msg.toWire(), qos: f.qos, retain: f.retain } : null;
      out.push({ packetId, qos: f.qos, state: f.state === 'pubrel' ? 'pubrel' : 'publish', msg, subIds: f.subIds, msgId: 0 });
    }
    return out;
  }

  /**
   * The queue, in order, as it goes to another node (QoS and retain of the delivery). Empties
   * it: the session ends here right after.
   */
  exportQueue(): WireQueued[] {
    const out: WireQueued[] = [];
    const q = this.queue;
    while (q !== null && q.length > 0) {
      const o = q.take();
      out.push({ msg: { ...o.msg!.toWire(), qos: o.qos, retain: o.retain }, subIds: o.subIds, msgId: 0, seq: 0 });
    }
    return out;
  }

  private handoverHeld = false;

  /** Handed in from another node: what arrives here waits until that node's queue is in. */
  holdForHandover(): void { this.handoverHeld = true; this.feedsPending++; }

  /**
   * The old node's queue: it goes first, then what arrived here meanwhile. A message both nodes
   * got (routes overlap while they move) goes again with DUP set (QoS 0: not again).
   */
  handoverRest(queue: WireQueued[] | null): void {
    if (!this.handoverHeld) return;
    this.handoverHeld = false;
    const here: Outgoing[] = [];
    const q = this.queue;
    while (q !== null && q.length > 0) here.push(q.take());
    const seen = new Set<string>();
    for (const f of this.inflight.values()) if (f.msg) seen.add(handoverKey(f.msg));
    for (const w of queue ?? []) {
      const msg = Message.fromWire(w.msg);
      seen.add(handoverKey(msg));
      this.enqueue(msg, w.msg.qos, w.msg.retain, w.subIds, 0, 0, null);
    }
    for (const o of here) {
      let dup = o.dup;
      if (seen.has(handoverKey(o.msg!))) { if (o.qos === 0) continue; dup = true; }
      this.enqueue(o.msg!, o.qos, o.retain, o.subIds, o.msgId, o.seq, o.held, dup);
    }
    this.feedsPending--;
    this.pump();
  }
}
