// The worker's side of authorization (--acl-file): the rules this worker decides with, and one
// checker per connection that remembers its decisions. The rules come from the main thread
// (src/auth/auth-service.ts): in this worker's wiring at start, then posted on every SIGHUP
// reload. Decisions are made here, never by a round trip: a PUBLISH or a delivery costs one
// Map lookup once a topic has been seen, and nothing at all without --acl-file (callers branch
// on `Connection.acl`, null then).
//
// Most deliveries are not checked at all: a connection whose subscriptions each let it read every
// topic they can match (WholeReads below) skips the check; only a connection holding a filter
// it may read just part of pays it, per delivery.
//
// Invalidation: every cached decision is tagged with the generation of the rules it came from,
// and a checker whose tag differs from the gate's starts afresh. The generation is the one of
// the rules this worker holds, not a counter shared with the main thread: a shared counter is
// bumped before the new rules reach the worker, and a decision made meanwhile with the old
// rules would be cached under the new generation and outlive the reload.
import type { MessagePort } from 'node:worker_threads';
import { Acl, READ, WRITE, type AclRules, type ClientAcl } from '../../src/auth/acl';
import type { AclUpdate, AclApplied } from '../../src/auth/messages';
import { C_ACL_CACHE_EVICTED } from '../../src/shared/counters';
import type { Message } from '../protocol/message';
import { parseSharedFilter } from '../protocol/validate';

/**
 * What a connection's checker answers (Connection.acl): the ACL file's ConnAcl, or a ClientAcl
 * (auth/client-acl.ts) with the rules its authentication came with in front of it.
 */
export interface ConnAuthz {
  topicOf(bytes: Buffer): string;
  mayReceive(msg: Message): boolean;
  mayRead(topic: string): boolean;
  mayWrite(topic: string): boolean;
  maySubscribe(filter: string): boolean;
  /** The rules' generation the decisions follow (bumped by a reload of the ACL file). */
  readonly source: { readonly generation: number };
  /** Every topic `filter` can match may be read (a sufficient test: false = check each delivery). */
  readsWhole(filter: string): boolean;
  /** The session now sends on this connection (after its resume): deliveries may skip the check from now on. */
  attach(session: SessionView): void;
  /** A SUBSCRIBE granted `key` (the session's key: a shared filter with its $share prefix). */
  subscribed(key: string): void;
  /** An UNSUBSCRIBE removed `key`. */
  unsubscribed(key: string): void;
}

/** What the delivery skip needs to know of a session (workers/session/session.ts). */
export interface SessionView {
  readonly subs: ReadonlyMap<string, unknown>;
  /** Messages wait to be written: queued, DUP resends, a retained feed. */
  readonly backlogged: boolean;
}

/**
 * Sessions that removed a subscription they could read only part of: a message matched through
 * it may still be on its way from another thread, so their deliveries are checked for as long
 * as the session lives in this worker. Weak: it never keeps a session alive.
 */
const removedPartial = new WeakSet<SessionView>();

const filterOf = (key: string): string => {
  const sh = parseSharedFilter(key);
  return sh !== null && sh !== 'invalid' ? sh.filter : key;
};

/** Decides reads for topics that match the session's subscriptions (src/auth/acl.ts, NarrowReads). */
export interface TopicReads { reads(topic: string): boolean }

/** At most this many rules in a connection's narrow checker; more, and the cached full decision serves. */
export const NARROW_MAX_RULES = 32;

/**
 * How a connection's deliveries are checked, cheapest first:
 *   - not at all (`skipGen` equals the rules' generation, one compare): every subscription of the
 *     session reads whole (a verdict per filter, made again for all after a rules reload);
 *   - by a narrow checker when some do not: only the few rules that meet the session's filters,
 *     matched against the topic string (no split, no cache);
 *   - by the full, cached decision otherwise.
 * The first two hold only for messages that came through the session's current subscriptions,
 * so neither is used while anything else may wait to be sent:
 *   - at attach, a backlog (queued or in flight from earlier connections, perhaps through
 *     subscriptions since removed, or restored from the store) is checked in full until it has
 *     drained; an UNSUBSCRIBE of a filter that reads whole does the same (its queued messages
 *     may meet a later reload);
 *   - an UNSUBSCRIBE of a filter that does not: a message matched through it may still be on its
 *     way from another thread, so the session is checked in full for its life here (removedPartial).
 */
export class WholeReads {
  skipGen = -1;
  private session: SessionView | null = null;
  /** Session key → reads whole, under `analysedGen`; as many as the session has subscriptions. */
  private readonly verdicts = new Map<string, boolean>();
  private analysedGen = -1;
  private dirty = true;
  private narrow: TopicReads | null = null;
  /** How many subscriptions do not read whole (under `analysedGen`). */
  private partial = 0;
  private backlog = false;
  private sticky = false;

  constructor(readonly rules: { readonly generation: number }, private readonly readsWhole: (filter: string) => boolean,
    private readonly narrowFor: ((filters: string[]) => TopicReads | null) | null) {}

  attach(s: SessionView): void {
    this.session = s;
    this.backlog = s.backlogged;
    this.sticky = removedPartial.has(s);
    this.dirty = true;
    this.plan();
  }

  subscribed(key: string): void {
    this.verdicts.delete(key);
    this.changed();
  }

  unsubscribed(key: string): void {
    const s = this.session;
    const v = this.analysedGen === this.rules.generation ? this.verdicts.get(key) : undefined;
    this.verdicts.delete(key);
    this.changed();
    if (s === null) return;
    if (v === false || (v === undefined && !this.readsWhole(filterOf(key)))) { removedPartial.add(s); this.sticky = true; }
    else this.backlog = true;
  }

  private changed(): void {
    this.dirty = true;
    this.skipGen = -1;
    this.narrow = null;
  }

  /**
   * A delivery missed the skip: catch up (a reload, a SUBSCRIBE, a drained backlog) and say how
   * to check this one: the narrow checker, or null for the full decision.
   */
  plan(): TopicReads | null {
    const s = this.session;
    if (s === null) return null;
    const gen = this.rules.generation;
    if (this.backlog && !s.backlogged) this.backlog = false;
    if (this.dirty || this.analysedGen !== gen) this.analyse(gen);
    const clean = !this.backlog && !this.sticky;
    this.skipGen = clean && this.partial === 0 ? gen : -1;
    return clean ? this.narrow : null;
  }

  /** Verdicts for every subscription (new ones only, unless the rules changed). */
  private analyse(gen: number): void {
    if (this.analysedGen !== gen) this.verdicts.clear();
    this.analysedGen = gen;
    this.dirty = false;
    let partial = 0;
    const keys = this.session!.subs.keys();
    for (const key of keys) {
      let v = this.verdicts.get(key);
      if (v === undefined) { v = this.readsWhole(filterOf(key)); this.verdicts.set(key, v); }
      if (!v) partial++;
    }
    this.partial = partial;
    this.narrow = partial > 0 && this.narrowFor !== null ? this.narrowFor([...this.session!.subs.keys()].map(filterOf)) : null;
  }
}

/** Per cache: decisions not kept since it filled up. */
const overflow = new WeakMap<Map<string, number>, number>();

/**
 * Whether a full decision cache may take a new entry. When full, a new decision is not kept
 * (counted): dropping the oldest instead would make a connection cycling through more topics
 * than the cache holds (a wildcard publisher) miss every time and pay the eviction on top.
 * After 4 × `entries` decisions not kept, the cache starts afresh (its entries counted as
 * dropped), so a connection whose topics changed gets them cached again.
 */
export function roomFor(cache: Map<string, number>, entries: number, count: (counter: number, n: number) => void): boolean {
  if (cache.size < entries) return true;
  const n = (overflow.get(cache) ?? 0) + 1;
  count(C_ACL_CACHE_EVICTED, 1);
  if (n < 4 * entries) { overflow.set(cache, n); return false; }
  count(C_ACL_CACHE_EVICTED, cache.size);
  cache.clear();
  overflow.delete(cache);
  return true;
}

/** Cached decision bits: which access was decided, and which was allowed. */
const KNOWN_READ = 1;
const KNOWN_WRITE = 2;
const ALLOW_READ = 4;
const ALLOW_WRITE = 8;

export class AclGate {
  acl: Acl;
  generation: number;

  constructor(initial: { rules: AclRules; generation: number }, port: MessagePort,
    readonly cacheEntries: number, readonly count: (counter: number, n: number) => void) {
    this.acl = new Acl(initial.rules);
    this.generation = initial.generation;
    port.on('message', (m: AclUpdate | { t: string }) => {
      if (m.t !== 'acl') return;
      const u = m as AclUpdate;
      this.acl = new Acl(u.rules);
      this.generation = u.generation;
      const ack: AclApplied = { t: 'acl-applied', generation: u.generation };
      port.postMessage(ack);
    });
  }

  /** The checker of a connection (or a will) of `clientId` with `username` (null: anonymous). */
  forClient(clientId: string, username: string | null): ConnAcl {
    return new ConnAcl(this, clientId, username);
  }
}

/**
 * One connection's authorization, with its decisions cached (topic → bits), at most
 * --acl-cache-entries of them: when full, new ones are not kept, then it starts afresh (roomFor; counted in acl/cache/evicted).
 */
export class ConnAcl implements ConnAuthz {
  private client: ClientAcl;
  private generation: number;
  private cache: Map<string, number> | null = null;
  /** The last topic string this connection decided on: a repeat is recognised without making a new one. */
  private lastTopic: string | null = null;
  private readonly whole: WholeReads;
  private lastWrite: string | null = null;
  private lastWriteGen = -1;
  private lastWriteOk = false;

  constructor(private readonly gate: AclGate, readonly clientId: string, readonly username: string | null) {
    this.client = gate.acl.forClient(clientId, username);
    this.generation = gate.generation;
    this.whole = new WholeReads(gate, (f) => this.readsWhole(f), (fs) => this.current().narrow(fs, NARROW_MAX_RULES));
  }

  /** The generation of the rules this checker follows (a client-acl in front of it follows it too). */
  get source(): { readonly generation: number } { return this.gate; }

  /** The rules were reloaded since the last decision: decide afresh. */
  private current(): ClientAcl {
    if (this.generation !== this.gate.generation) {
      this.client = this.gate.acl.forClient(this.clientId, this.username);
      this.generation = this.gate.generation;
      this.cache = null;
    }
    return this.client;
  }

  /**
   * `bytes` as a string: the last topic again when it is a repeat (a publisher on one topic, a
   * subscriber of one topic), so the check allocates nothing then.
   */
  topicOf(bytes: Buffer): string {
    const last = this.lastTopic;
    if (last !== null && sameAscii(bytes, last)) return last;
    return (this.lastTopic = bytes.toString('utf8'));
  }

  /** May `msg` be delivered to this client? Leaves the topic string on the message for the next subscriber. */
  mayReceive(msg: Message): boolean {
    const w = this.whole;
    if (w.skipGen === this.gate.generation) return true;
    const narrow = w.plan();
    let t = msg.topicStringIfMade;
    if (t === null) { t = this.topicOf(msg.topic); msg.knownTopic(t); }
    return narrow !== null ? narrow.reads(t) : this.mayRead(t);
  }

  /** May a message on `topic` be delivered to this client? */
  mayRead(topic: string): boolean { return this.decide(topic, READ, KNOWN_READ, ALLOW_READ); }

  /** May this client publish on `topic`? */
  mayWrite(topic: string): boolean {
    // A publisher on one topic (topicOf hands back the same string): the last answer, no Map lookup.
    if (topic === this.lastWrite && this.lastWriteGen === this.gate.generation) return this.lastWriteOk;
    const ok = this.decide(topic, WRITE, KNOWN_WRITE, ALLOW_WRITE);
    this.lastWrite = topic;
    this.lastWriteGen = this.gate.generation;
    this.lastWriteOk = ok;
    return ok;
  }

  /** May this client subscribe to `filter` (can it read anything it matches)? Not cached: SUBSCRIBE is rare. */
  maySubscribe(filter: string): boolean { return this.current().maySubscribe(filter); }

  readsWhole(filter: string): boolean { return this.current().readsWhole(filter); }

  attach(session: SessionView): void { this.whole.attach(session); }
  subscribed(key: string): void { this.whole.subscribed(key); }
  unsubscribed(key: string): void { this.whole.unsubscribed(key); }

  private decide(topic: string, access: number, known: number, allow: number): boolean {
    const client = this.current();
    let cache = this.cache;
    const bits = cache === null ? undefined : cache.get(topic);
    if (bits !== undefined && (bits & known) !== 0) return (bits & allow) !== 0;
    const ok = client.allows(topic, access);
    const next = (bits ?? 0) | known | (ok ? allow : 0);
    if (cache === null) cache = this.cache = new Map();
    if (bits !== undefined || roomFor(cache, this.gate.cacheEntries, this.gate.count)) cache.set(topic, next);
    return ok;
  }
}

/** Whether `b` holds exactly the ASCII string `s` (any byte >= 0x80 counts as a difference). */
function sameAscii(b: Buffer, s: string): boolean {
  const n = b.length;
  if (n !== s.length) return false;
  for (let i = 0; i < n; i++) {
    const x = b[i];
    if (x >= 0x80 || x !== s.charCodeAt(i)) return false;
  }
  return true;
}
