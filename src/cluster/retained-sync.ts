// Retained messages replicated to every member: last writer wins by hybrid logical clock
// (hlc.ts), clears kept as tombstones for --retained-tombstone-ttl so an older set (a stale node
// coming back with its data dir) cannot bring a cleared message back, and a node that joins or
// rejoins catches up with every peer before it serves.
//
// - A set or clear received here (a worker's PUBLISH with RETAIN, the admin API's delete) is
//   stamped by this node's clock and applied at once; it goes to each peer in a batched frame
//   (retained-wire.ts) on that peer's feed.
// - A peer's entry is applied only if its stamp is above what this node holds for the topic
//   (the message's stamp, or its tombstone's); applying is idempotent and order-free, so frames
//   may be resent, reordered or repeated by a snapshot. A message without a stamp (written by a
//   single node, or by an older version) counts as stamp 0.
// - Feeds: one per peer link, holding the *topics* changed since the last frame (not the
//   messages: what is sent is the topic's state when the frame is built), bounded by
//   DIRTY_MAX topics; past that the set is dropped and a full snapshot restarts (counted as a
//   resync): nothing is lost, it costs a snapshot. One call in flight per peer; a failed call
//   is retried every RETRY_MS until the link closes (a view change makes a new link).
// - Snapshot: when a link comes up (a peer joins, restarts or rejoins, or this node does), the
//   feed sends every message (a cursor over `#`, paged) and every tombstone, then marks the last
//   frame END. A node counts itself caught up once every peer in its view at (re)join sent END,
//   or the peer left, or the time ran out (logged).
// - `$` topics ($SYS) are each node's own and are never replicated.
// - Tombstones: one Map entry per cleared topic, dropped at stamp time + TTL (every node
//   computes the same expiry) or, past --retained-tombstones-max, oldest first (counted).
//   Persisted beside the message (`h` keys, src/store/codec.ts) so a restart keeps them.
import * as grpc from '@grpc/grpc-js';
import { bytesMethod, MAX_MESSAGE_BYTES } from './peer-server';
import type { LinkDownReason, PeerLink, PeerLinks } from './peer-links';
import { HybridClock } from './hlc';
import {
  ANSWER_OK, ANSWER_RETRY, FRAME_END, decodeFrame, encodeFrame, entryBytes,
  type RetainedEntry, type RetainedFrame,
} from './retained-wire';
import type { RetainedCursor, RetainedStore } from '../coordinator/retained';
import {
  ZERO_STAMP, compareStamps, payloadOffset, stampOf, withSeq, withStamp, type Stamp,
} from '../coordinator/retained-value';
import type { RetainedWrite } from '../coordinator/persistence';
import type { WireMessage } from '../shared/messages';
import type { RetainedStamp } from '../store/types';
import * as K from '../shared/counters';

const PUSH = bytesMethod('Retained', 'Push', 'unary');
/** A frame stops growing past this many bytes or entries. */
const FRAME_BYTES = 1024 * 1024;
const FRAME_ENTRIES = 4096;
/** Changed topics a feed remembers before it falls back to a snapshot. */
export const DIRTY_MAX = 65_536;
/** Changes within this long go in one frame. */
const BATCH_MS = 5;
const RETRY_MS = 500;
const CALL_DEADLINE_MS = 10_000;
const SWEEP_MS = 10_000;
/** A frame never grows past this (the peer server's message limit, less room for the header). */
const FRAME_LIMIT = MAX_MESSAGE_BYTES - 64 * 1024;
/** A message larger than a frame can hold is not replicated (counted, logged). */
const ENTRY_MAX = FRAME_LIMIT - 1024;

export interface RetainedSyncOptions {
  selfId: string;
  incarnation(): string | null;
  links: PeerLinks;
  store: RetainedStore;
  /** Stores stamps, tombstones and peers' messages (Persistence.writeRetained). */
  persist(writes: RetainedWrite[]): void;
  tombstoneTtlMs: number;
  maxTombstones: number;
  /** Row 0 of the counters (src/shared/counters.ts), or null. */
  gauges: Float64Array | null;
  log(line: string): void;
  now?: () => number;
}

interface Snapshot {
  cursor: RetainedCursor;
  /** The tombstones' topics, taken once the messages are sent. */
  tombs: string[] | null;
  at: number;
  /** Entries of a page read that did not fit in the last frame. */
  carry: RetainedEntry[];
}

/** What this node sends one peer. */
class PeerFeed {
  readonly dirty = new Set<string>();
  snap: Snapshot | null = null;
  /** The frame in flight or waiting for a retry, and whether it ends a snapshot. */
  pending: { buf: Buffer; end: Snapshot | null } | null = null;
  timer: NodeJS.Timeout | null = null;
  inFlight = false;
  closed = false;
  constructor(readonly link: PeerLink) {}
}

export class RetainedSync {
  readonly clock: HybridClock;
  private readonly tombs = new Map<string, Stamp>();
  private readonly feeds = new Map<string, PeerFeed>();
  /** `node@incarnation` of every peer whose snapshot ended here. */
  private readonly caughtUpWith = new Set<string>();
  private waiter: { need: Set<string>; done: () => void } | null = null;
  private readonly sweeper: NodeJS.Timeout;
  private readonly now: () => number;

  constructor(private readonly o: RetainedSyncOptions) {
    this.now = o.now ?? Date.now;
    this.clock = new HybridClock(o.selfId, this.now);
    this.sweeper = setInterval(() => this.sweep(), SWEEP_MS);
    this.sweeper.unref();
  }

  service(): [grpc.ServiceDefinition, grpc.UntypedServiceImplementation] {
    return [{ Push: PUSH }, {
      Push: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
        let f: RetainedFrame;
        try { f = decodeFrame(call.request); } catch (err) {
          cb({ code: grpc.status.INVALID_ARGUMENT, details: (err as Error).message });
          return;
        }
        if (f.toIncarnation !== this.o.incarnation()) { cb(null, Buffer.from([ANSWER_RETRY])); return; }
        this.applyFrame(f);
        cb(null, Buffer.from([ANSWER_OK]));
      },
    }];
  }

  // ------------------------------------------------------------------ local changes and restore

  /** A stamp or tombstone read back from the store at start (before any peer talks to us). */
  restored(topic: string, s: RetainedStamp): void {
    const stamp = { t: s.t, c: s.c };
    this.clock.observe(stamp);
    if (s.tombstone) {
      if (this.o.store.valueOf(topic) !== null) return; // a set written after it by a single-node run
      if (stamp.t + this.o.tombstoneTtlMs > this.now()) this.keepTomb(topic, stamp, false);
      else this.o.persist([{ topic, stamp: null }]);
    } else if (this.o.store.valueOf(topic) !== null) this.o.store.restamp(topic, stamp);
    else this.o.persist([{ topic, stamp: null }]); // its message was deleted by a single-node run
  }

  /** A retained set or clear received on this node: stamped here and sent to every peer. */
  local(msg: WireMessage): void {
    const topic = msg.topic;
    if (topic.startsWith('$')) { this.o.store.set(msg); return; }
    const stamp = this.clock.now();
    if (msg.payload.byteLength === 0) {
      this.o.store.clear(topic);
      this.keepTomb(topic, stamp, true);
    } else {
      this.o.store.set(msg, stamp);
      this.tombs.delete(topic);
      this.o.persist([{ topic, stamp: { ...stamp, tombstone: false } }]);
    }
    this.changed(topic, null);
    this.gauge();
  }

  private keepTomb(topic: string, stamp: Stamp, persist: boolean): void {
    this.tombs.delete(topic); // to the end of the Map: it is the newest
    this.tombs.set(topic, stamp);
    const writes: RetainedWrite[] = persist ? [{ topic, stamp: { ...stamp, tombstone: true } }] : [];
    while (this.tombs.size > this.o.maxTombstones) {
      const oldest = this.tombs.keys().next().value as string;
      this.tombs.delete(oldest);
      writes.push({ topic: oldest, stamp: null });
      this.count(K.C_CLUSTER_RETAINED_TOMBS_DROPPED, 1);
    }
    if (writes.length) this.o.persist(writes);
  }

  // ------------------------------------------------------------------ applying peers' entries

  /** What this node holds for `topic`: its stamp, or null when it holds nothing. */
  private held(topic: string): { stamp: Stamp; live: boolean } | null {
    const v = this.o.store.valueOf(topic);
    if (v !== null) return { stamp: stampOf(v) ?? ZERO_STAMP, live: true };
    const t = this.tombs.get(topic);
    return t ? { stamp: t, live: false } : null;
  }

  private applyFrame(f: RetainedFrame): void {
    const writes: RetainedWrite[] = [];
    let applied = 0, stale = 0;
    const now = this.now();
    for (const e of f.entries) {
      if (!validTopic(e.topic)) { stale++; continue; }
      const stamp = e.body !== undefined ? bodyStamp(e.body) : e.stamp;
      if (stamp === null) { stale++; continue; }
      const cur = this.held(e.topic);
      if (cur !== null && compareStamps(stamp, cur.stamp) <= 0) { stale++; continue; }
      this.clock.observe(stamp);
      applied++;
      if (e.body !== undefined) {
        const v = withSeq('\0\0\0\0\0\0' + e.body, 0);
        this.o.store.putEncoded(e.topic, v);
        this.tombs.delete(e.topic);
        writes.push({ topic: e.topic, msg: this.o.store.get(e.topic, 0)!, stamp: { ...stamp, tombstone: false } });
      } else {
        if (cur?.live) this.o.store.clear(e.topic);
        if (stamp.t + this.o.tombstoneTtlMs > now) {
          this.keepTomb(e.topic, stamp, false);
          writes.push({ topic: e.topic, msg: EMPTY(e.topic), stamp: { ...stamp, tombstone: true } });
        } else {
          this.tombs.delete(e.topic);
          writes.push({ topic: e.topic, msg: EMPTY(e.topic), stamp: null });
        }
      }
    }
    if (writes.length) this.o.persist(writes);
    this.count(K.C_CLUSTER_RETAINED_APPLIED, applied);
    this.count(K.C_CLUSTER_RETAINED_STALE, stale);
    this.gauge();
    if ((f.flags & FRAME_END) !== 0) {
      const key = `${f.from}@${f.fromIncarnation}`;
      this.caughtUpWith.add(key);
      this.count(K.C_CLUSTER_RETAINED_SNAPSHOTS, 1);
      this.settle(key);
    }
  }

  // ------------------------------------------------------------------ catching up

  /**
   * Resolves once every peer linked now has sent this node a whole snapshot (or left), or after
   * `timeoutMs`; says which peers it did not hear from in time.
   */
  catchUp(timeoutMs: number): Promise<{ missing: string[] }> {
    const need = new Set<string>();
    for (const l of this.o.links.all()) {
      const key = `${l.nodeId}@${l.incarnation}`;
      if (!this.caughtUpWith.has(key)) need.add(key);
    }
    if (need.size === 0) return Promise.resolve({ missing: [] });
    // A catch-up started again (a rejoin during one) ends the one before: it has nothing to wait for.
    this.waiter?.done();
    return new Promise((resolve) => {
      const w = {
        need,
        done: () => { clearTimeout(timer); if (this.waiter === w) this.waiter = null; resolve({ missing: [...need] }); },
      };
      const timer = setTimeout(() => w.done(), timeoutMs);
      this.waiter = w;
    });
  }

  private settle(key: string): void {
    const w = this.waiter;
    if (!w || !w.need.delete(key)) return;
    if (w.need.size === 0) w.done();
  }

  // ------------------------------------------------------------------ feeds

  linkUp(link: PeerLink): void {
    const feed = new PeerFeed(link);
    const old = this.feeds.get(link.nodeId);
    if (old) this.stopFeed(old);
    this.feeds.set(link.nodeId, feed);
    this.startSnapshot(feed);
    this.schedule(feed, 0);
  }

  /**
   * A peer left or restarted: what it sent to some peers before it went may not have reached
   * the others, and nobody relays a peer's entries; so every remaining feed sends a snapshot
   * again (entries the receiver already holds are ignored there, counted stale).
   */
  linkDown(link: PeerLink, reason: LinkDownReason): void {
    const feed = this.feeds.get(link.nodeId);
    if (feed?.link === link) { this.stopFeed(feed); this.feeds.delete(link.nodeId); }
    this.settle(`${link.nodeId}@${link.incarnation}`);
    if (reason === 'closed') return;
    for (const other of this.feeds.values()) { this.startSnapshot(other); this.schedule(other, BATCH_MS); }
  }

  private stopFeed(feed: PeerFeed): void {
    feed.closed = true;
    if (feed.timer) clearTimeout(feed.timer);
    if (feed.snap) this.o.store.release(feed.snap.cursor);
    feed.snap = null;
  }

  private startSnapshot(feed: PeerFeed): void {
    if (feed.snap) this.o.store.release(feed.snap.cursor);
    feed.snap = { cursor: this.o.store.open('#'), tombs: null, at: 0, carry: [] };
  }

  /** `topic` changed here: every feed but `except`'s sends it. */
  private changed(topic: string, except: string | null): void {
    for (const feed of this.feeds.values()) {
      if (feed.link.nodeId === except) continue;
      if (feed.dirty.size >= DIRTY_MAX) {
        feed.dirty.clear();
        this.startSnapshot(feed);
        this.count(K.C_CLUSTER_RETAINED_RESYNCS, 1);
      } else feed.dirty.add(topic);
      this.schedule(feed, BATCH_MS);
    }
  }

  private schedule(feed: PeerFeed, ms: number): void {
    if (feed.closed || feed.inFlight || feed.timer) return;
    feed.timer = setTimeout(() => { feed.timer = null; this.pump(feed); }, ms);
  }

  private pump(feed: PeerFeed): void {
    if (feed.closed || feed.inFlight) return;
    if (!feed.pending) feed.pending = this.build(feed);
    if (!feed.pending) return;
    const { buf, end } = feed.pending;
    feed.inFlight = true;
    feed.link.client.makeUnaryRequest(PUSH.path, ident, ident, buf, new grpc.Metadata(),
      { deadline: Date.now() + CALL_DEADLINE_MS }, (err, res) => {
        feed.inFlight = false;
        if (feed.closed) return;
        if (err || !res || res[0] !== ANSWER_OK) { this.schedule(feed, RETRY_MS); return; }
        feed.pending = null;
        if (end !== null && feed.snap === end) feed.snap = null; // not a snapshot restarted meanwhile
        if (feed.snap || feed.dirty.size > 0) this.schedule(feed, 0);
      });
  }

  /** The next frame for `feed`: its snapshot's next part, then changed topics. */
  private build(feed: PeerFeed): { buf: Buffer; end: Snapshot | null } | null {
    const to = feed.link.incarnation;
    const from = this.o.incarnation();
    if (from === null) return null;
    const entries: RetainedEntry[] = [];
    let bytes = 0;
    /** Adds `e` unless it would take the frame past gRPC's message limit (false: send it next time). */
    const add = (e: RetainedEntry | null): boolean => {
      if (!e) return true;
      const n = entryBytes(e);
      if (n > ENTRY_MAX) { this.count(K.C_CLUSTER_RETAINED_TOO_LARGE, 1); this.tooLarge(e.topic, n); return true; }
      if (entries.length > 0 && bytes + n > FRAME_LIMIT) return false;
      entries.push(e);
      bytes += n;
      return true;
    };
    const full = () => bytes >= FRAME_BYTES || entries.length >= FRAME_ENTRIES;
    let end = false;
    const snap = feed.snap;
    const now = this.now();
    if (snap) {
      while (!full() && snap.carry.length > 0 && add(snap.carry[0])) snap.carry.shift();
      while (!full() && snap.carry.length === 0 && !snap.cursor.done) {
        const page = this.o.store.encodedPage(snap.cursor, now);
        for (let i = 0; i < page.topics.length; i++) {
          const e = setEntry(page.topics[i], page.values[i]);
          if (snap.carry.length > 0 || !add(e)) snap.carry.push(e);
        }
      }
      if (snap.cursor.done && snap.carry.length === 0) {
        if (snap.tombs === null) snap.tombs = [...this.tombs.keys()];
        while (!full() && snap.at < snap.tombs.length) { add(this.entryOf(snap.tombs[snap.at])); snap.at++; }
        end = snap.at >= snap.tombs.length;
      }
    }
    for (const topic of feed.dirty) {
      if (full() || !add(this.entryOf(topic))) break;
      feed.dirty.delete(topic);
    }
    if (entries.length === 0 && !end) return null;
    this.count(K.C_CLUSTER_RETAINED_SENT, entries.length);
    return { buf: encodeFrame({ flags: end ? FRAME_END : 0, from: this.o.selfId, fromIncarnation: from, toIncarnation: to, entries }), end: end ? snap : null };
  }

  /** `topic`'s state here as an entry (null: nothing held, e.g. a tombstone gone since). */
  private entryOf(topic: string): RetainedEntry | null {
    const v = this.o.store.valueOf(topic);
    if (v !== null) return setEntry(topic, v);
    const t = this.tombs.get(topic);
    return t ? { topic, stamp: t } : null;
  }

  // ------------------------------------------------------------------ upkeep

  /** Drops tombstones past their TTL (here and in the store). */
  private sweep(): void {
    const now = this.now();
    const writes: RetainedWrite[] = [];
    for (const [topic, s] of this.tombs) {
      if (s.t + this.o.tombstoneTtlMs > now) continue;
      this.tombs.delete(topic);
      writes.push({ topic, stamp: null });
    }
    if (writes.length) { this.o.persist(writes); this.gauge(); }
  }

  get tombstones(): number { return this.tombs.size; }

  private tooLargeLoggedAt = -Infinity;
  private tooLarge(topic: string, bytes: number): void {
    const now = this.now();
    if (now - this.tooLargeLoggedAt < 10_000) return;
    this.tooLargeLoggedAt = now;
    this.o.log(`retained message on ${topic} (${bytes} bytes) is larger than a replication frame (${ENTRY_MAX} bytes): kept on this node only (fleetmq_cluster_retained_too_large_total)`);
  }

  private count(c: number, n: number): void { if (this.o.gauges && n) this.o.gauges[c] += n; }
  private gauge(): void { if (this.o.gauges) this.o.gauges[K.C_CLUSTER_RETAINED_TOMBSTONES] = this.tombs.size; }

  close(): void {
    clearInterval(this.sweeper);
    for (const feed of this.feeds.values()) this.stopFeed(feed);
    this.feeds.clear();
    this.waiter?.done();
  }
}

const ident = (b: Buffer): Buffer => b;

const EMPTY = (topic: string): WireMessage => ({ topic, payload: new Uint8Array(0), qos: 0, retain: true, props: null, expiryAt: 0 });

/** An entry for an encoded message; one without a stamp goes as stamp 0. */
function setEntry(topic: string, v: string): RetainedEntry {
  const stamped = stampOf(v) === null ? withStamp(v, ZERO_STAMP) : v;
  return { topic, body: stamped.slice(6) };
}

/** The stamp of a peer's encoded message, or null if it does not decode. */
function bodyStamp(body: string): Stamp | null {
  const v = '\0\0\0\0\0\0' + body;
  if ((body.charCodeAt(0) & 3) === 3) return null;
  const s = stampOf(v);
  if (s === null) return null;
  const o = payloadOffset(v);
  return o <= v.length ? s : null;
}

/** A topic a PUBLISH could have (no wildcard, no NUL, not empty) and not a `$` topic. */
function validTopic(t: string): boolean {
  return t.length > 0 && t.charCodeAt(0) !== 36 && !/[+#\u0000]/.test(t);
}
