// Persistence on the publish path (workers/README.md, "Persistence and write-behind"): which
// matched PUBLISHes must be durable before their deliveries or acknowledgement, and how.
//
// - Write-behind (QoS 1 to persistent sessions): the worker takes the message id and routes at
//   once; each worker holds the store request for its own persistent sessions for the linger
//   (held-publish.ts): this one for its own, another under the same id when the record says so
//   (holdForPeer). Only the PUBACK waits, for every holder's commit or for every delivery to have
//   ended (ack-wait.ts, remote-waits.ts).
// - Store first (QoS 2 with persistent subscribers or a persistent publisher, retained updates,
//   cases write-behind cannot take): a connection's PUBLISHes from the first that needs the
//   store to the end of the batch go in one store request and are routed, in order, when it has
//   landed. The connection reads nothing more meanwhile.
//
// `--durability` semantics: an acknowledged QoS >= 1 message for a persistent session is
// durable before its PUBACK/PUBREC; so is the inbound QoS 2 state of a persistent publisher
// before PUBREC, and an acknowledged QoS >= 1 retained update.
import type { Message } from '../protocol/message';
import type { Connection } from '../net/connection';
import type { Persister } from './persister';
import type { StoreIds } from '../../src/shared/store-ids';
import type { PersistTarget } from '../../src/shared/messages';
import { HeldPublish, toStoreMessage } from './held-publish';
import { AckWait } from './ack-wait';
import { RemoteWaits } from './remote-waits';
import { AckOrder } from '../routing/ack-order';
import { StoredIds, type Durability, type Pending, type RouteSink, type Stored } from '../routing/pending';
import { FLAG_HELD, FLAG_SETTLE } from '../routing/peer-record';
import { subscriberWorker, OPT_QOS_MASK, OPT_NO_LOCAL, OPT_RETAIN_AS_PUBLISHED, OPT_SHARED, OPT_PERSISTENT } from '../../src/shared/topic-index';
import { PUBREC } from '../protocol/constants';
import { C_STORE_HELD_REMOTE } from '../../src/shared/counters';
import { hasNodeTarget } from '../../src/cluster/node-tokens';

/** A connection's PUBLISHes that wait for its store requests (created on its first one). */
export class StoreWait {
  /** Store requests in flight; reading is paused while any is. */
  persisting = 0;
  /** PUBLISHes that arrived behind a store request, in order. */
  readonly held: Pending[] = [];
  /** The store request this connection's PUBLISHes join while one batch is being routed. */
  group: Group | null = null;
}

/** PUBLISHes of one connection waiting for one store round trip, routed in order after it. */
interface Group { conn: Connection | null; entries: GroupEntry[]; pending: number; failed: boolean }
interface GroupEntry { item: Pending; triples: Uint32Array; count: number; stored: Stored | null }

/** What persistence needs of the worker around it. */
export interface DurableDeps {
  readonly index: number;
  readonly persister: Persister;
  readonly storeIds: StoreIds;
  readonly workers: number;
  count(counter: number, n: number): void;
  /** Worker `w` is alive (there is a ring to it). */
  connected(w: number): boolean;
  /** Sends worker `to` this worker's settled part of message `msgId`. */
  sendSettle(to: number, msgId: number, ok: boolean): void;
}

export class DurableRouting implements Durability {
  /** PUBACKs waiting for parts other workers hold (write-behind across workers). */
  private readonly waits: RemoteWaits;
  /** Scratch for writeBehind: the other workers holding the message being routed. */
  private readonly holders: number[] = [];
  /** Groups opened by the batch being routed. */
  private readonly opened: Group[] = [];

  constructor(private readonly deps: DurableDeps, private readonly sink: RouteSink) {
    this.waits = new RemoteWaits(deps.workers);
  }

  take(item: Pending, out: Uint32Array, from: number, count: number): boolean {
    const w = item.conn?.storeWait;
    if (w) {
      if (w.group) { this.join(w.group, item, out, from, count); return true; } // behind one of this batch
      if (w.persisting > 0) { w.held.push(item); return true; } // behind an earlier round trip
    }
    if (!this.needsStore(item, out, from, count)) return false;
    if (this.writeBehind(item, out, from, count)) return true;
    const g = this.openGroup(item.conn);
    this.opened.push(g);
    this.join(g, item, out, from, count);
    return true;
  }

  queueBehind(item: Pending): boolean {
    const w = item.conn!.storeWait!;
    if (w.persisting === 0) return false;
    w.held.push(item);
    return true;
  }

  /** One store request per connection per batch; what the connection sends later waits for it. */
  endBatch(): void {
    const o = this.opened;
    for (let i = 0; i < o.length; i++) { const c = o[i].conn; if (c) c.storeWait!.group = null; }
    o.length = 0;
  }

  private needsStore(item: Pending, out: Uint32Array, from: number, count: number): boolean {
    // A PUBLISH the ACL refused is never stored: it only waits in line for its acknowledgement.
    if (!this.deps.persister.enabled || item.msg.qos === 0 || item.msg.denied) return false;
    if (item.msg.retain || (item.ack === PUBREC && item.conn?.session?.persistent === true)) return true;
    return hasPersistentTarget(out, from, count);
  }

  /**
   * QoS 1 to persistent sessions: take the message id here and route at once. Not for QoS 2
   * (the PUBREC promises the inbound state is stored), retained updates (their write and the
   * message's go in one store-first request) or a session on a worker without a ring (the store
   * queues it for the session). A crash before the commit loses nothing acknowledged: the
   * publisher resends, and an online subscriber may see a duplicate, which QoS 1 allows.
   */
  private writeBehind(item: Pending, out: Uint32Array, from: number, count: number): boolean {
    const msg = item.msg;
    if (msg.qos !== 1 || msg.retain) return false;
    // Peer nodes want it too: store first, so one acknowledgement path (Router.complete) waits
    // for the store and for the peer nodes.
    if (hasNodeTarget(out, from, count)) return false;
    const targets = persistTargets(msg, out, from, count);
    // Only persistent subscriptions the message skips (No Local): nothing to store.
    if (targets.length === 0) { this.sink.complete(item, out, from, count, null); return true; }
    // Held state is per session; a session that gets this message twice (a shared subscription
    // besides its own) would be settled by its first acknowledgement: store first instead.
    if (hasSplitDelivery(out, from, count)) return false;
    const me = this.deps.index;
    // Other workers holding it go to `holders`; this worker's targets are compacted to the front
    // of `targets` (a fresh array) and kept there as `local`.
    const holders = this.holders;
    holders.length = 0;
    let local = 0;
    for (let i = 0; i < targets.length; i++) {
      const w = subscriberWorker(targets[i].sub);
      if (w === me) { targets[local++] = targets[i]; continue; }
      if (!this.deps.connected(w) || this.waits.full) return false;
      if (!holders.includes(w)) holders.push(w);
    }
    targets.length = local;
    const remote = holders.length;
    const ids = this.deps.storeIds;
    const msgId = ids.next();
    let held: HeldPublish | null = null;
    if (local > 0) {
      for (let i = 0; i < local; i++) targets[i].seq = ids.next();
      held = this.deps.persister.hold(msg, msgId, targets);
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
      (c.ackOrder ??= new AckOrder()).wait(wait);
    }
    if (remote > 0) this.deps.count(C_STORE_HELD_REMOTE, 1);
    this.sink.route(msg, out, from, count, held, remote > 0 ? FLAG_HELD | (acked ? FLAG_SETTLE : 0) : 0, msgId);
    return true;
  }

  private readonly ackReady = (a: AckWait): void => { a.conn!.ackOrder!.write(a.conn!); };

  private openGroup(c: Connection | null): Group {
    const g: Group = { conn: c, entries: [], pending: 0, failed: false };
    if (c) {
      const w = (c.storeWait ??= new StoreWait());
      w.group = g;
      w.persisting++;
      c.socket.pause();
    }
    return g;
  }

  private join(g: Group, item: Pending, out: Uint32Array, from: number, count: number): void {
    const entry: GroupEntry = { item, triples: out.slice(from, from + count * 3), count, stored: null };
    g.entries.push(entry);
    if (!this.needsStore(item, out, from, count)) return;
    const persister = this.deps.persister;
    const targets = persistTargets(item.msg, out, from, count);
    const publisher = item.conn?.session;
    if (item.ack === PUBREC && publisher?.persistent) persister.op({ o: 'inbound', clientId: publisher.clientId, packetId: item.pid });
    // The retained write goes in the same store request, before the message: the answer means
    // both are durable.
    if (item.msg.retain) { this.sink.retain(item.msg); item.retained = true; }
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
      if (c) { c.storeWait!.persisting--; c.protocolClose(0x80); }
      return;
    }
    for (const e of g.entries) this.sink.complete(e.item, e.triples, 0, e.count, e.stored);
    if (c) this.release(c);
    this.sink.afterStore();
  }

  /** The connection's store write landed: what queued behind it goes on, in order. */
  private release(c: Connection): void {
    const w = c.storeWait!;
    if (--w.persisting > 0) return;
    const held = w.held.splice(0);
    for (const h of held) this.sink.publish(h.msg, h.conn, h.ack, h.pid);
    if (w.persisting === 0) c.socket.resume();
  }

  /**
   * A publisher on worker `settleTo` (or none, -1) took id `msgId` and left this worker's
   * persistent sessions to it: held here like one of this worker's own, and, if that publisher
   * waits, its part is sent back once settled.
   */
  holdForPeer(msg: Message, msgId: number, t: Uint32Array, nSubs: number, settleTo: number): Stored | null {
    const targets = persistTargets(msg, t, 0, nSubs);
    if (targets.length === 0) return null;
    const ids = this.deps.storeIds;
    for (let i = 0; i < targets.length; i++) targets[i].seq = ids.next();
    const held = this.deps.persister.hold(msg, msgId, targets);
    if (settleTo >= 0) {
      held.settleTo = settleTo;
      held.notify = this.settleBack;
    }
    return held;
  }

  private readonly settleBack = (a: AckWait): void => {
    const h = a as HeldPublish;
    this.deps.sendSettle(h.settleTo, h.id, h.settled === 1);
  };

  settle(worker: number, msgId: number, ok: boolean): void { this.waits.settle(worker, msgId, ok); }

  peerReset(worker: number): void { this.waits.failWorker(worker); }
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
 * subscriptions of a session merge into one; each shared subscription is its own (local-delivery.ts).
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
