// The worker's side of authorization (--acl-file): the rules this worker decides with, and one
// checker per connection that remembers its decisions. The rules come from the main thread
// (src/auth/auth-service.ts): in this worker's wiring at start, then posted on every SIGHUP
// reload. Decisions are made here, never by a round trip: a PUBLISH or a delivery costs one
// Map lookup once a topic has been seen, and nothing at all without --acl-file (callers branch
// on `Connection.acl`, null then).
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
 * --acl-cache-entries of them: when full, the oldest goes (counted in acl/cache/evicted).
 */
export class ConnAcl implements ConnAuthz {
  private client: ClientAcl;
  private generation: number;
  private cache: Map<string, number> | null = null;
  /** The last topic string this connection decided on: a repeat is recognised without making a new one. */
  private lastTopic: string | null = null;

  constructor(private readonly gate: AclGate, readonly clientId: string, readonly username: string | null) {
    this.client = gate.acl.forClient(clientId, username);
    this.generation = gate.generation;
  }

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
    let t = msg.topicStringIfMade;
    if (t === null) { t = this.topicOf(msg.topic); msg.knownTopic(t); }
    return this.mayRead(t);
  }

  /** May a message on `topic` be delivered to this client? */
  mayRead(topic: string): boolean { return this.decide(topic, READ, KNOWN_READ, ALLOW_READ); }

  /** May this client publish on `topic`? */
  mayWrite(topic: string): boolean { return this.decide(topic, WRITE, KNOWN_WRITE, ALLOW_WRITE); }

  /** May this client subscribe to `filter` (can it read anything it matches)? Not cached: SUBSCRIBE is rare. */
  maySubscribe(filter: string): boolean { return this.current().maySubscribe(filter); }

  private decide(topic: string, access: number, known: number, allow: number): boolean {
    const client = this.current();
    let cache = this.cache;
    const bits = cache === null ? undefined : cache.get(topic);
    if (bits !== undefined && (bits & known) !== 0) return (bits & allow) !== 0;
    const ok = client.allows(topic, access);
    const next = (bits ?? 0) | known | (ok ? allow : 0);
    if (cache === null) cache = this.cache = new Map();
    if (bits === undefined && cache.size >= this.gate.cacheEntries) {
      cache.delete(cache.keys().next().value!);
      this.gate.count(C_ACL_CACHE_EVICTED, 1);
    }
    cache.set(topic, next);
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
