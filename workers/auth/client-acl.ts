// A connection's authorization when its authentication (HTTP callout answer or JWT claim) came
// with ACL rules (src/auth/client-rules.ts): those rules are asked first, in order, and the first
// that matches decides; when none does, the new format falls through to the ACL file's checker
// (--acl-file; allowed without one) and the old format ({pub, sub, all}) refuses. Same surface as
// the ACL file's ConnAcl, so SUBSCRIBE, PUBLISH and every delivery ask it the same way; decisions
// are cached per topic like there (one Map lookup for a topic seen before).
import { READ, WRITE, covers, intersect } from '../../src/auth/acl';
import { fillIn, type ClientRules } from '../../src/auth/client-rules';
import type { Message } from '../protocol/message';
import { WholeReads, roomFor, type ConnAuthz, type SessionView } from './acl-gate';

interface Compiled { allow: boolean; access: number; filter: string; levels: string[]; eq: boolean }

const KNOWN_READ = 1;
const KNOWN_WRITE = 2;
const ALLOW_READ = 4;
const ALLOW_WRITE = 8;
// KNOWN_x << 4 (16, 32): no rule matched, the ACL file's checker decides.

export class ClientAcl implements ConnAuthz {
  private readonly rules: Compiled[];
  private readonly cache = new Map<string, number>();
  private lastTopic: string | null = null;
  /** The delivery skip (acl-gate.ts): these rules never change, the file's checker behind them may. */
  private readonly whole: WholeReads;

  constructor(given: ClientRules, clientId: string, username: string | null,
    private readonly fallback: ConnAuthz | null, private readonly cacheEntries: number,
    private readonly count: (counter: number, n: number) => void, private readonly denyNoMatch = given.noMatch === 'deny') {
    this.rules = [];
    for (const r of given.rules) {
      const filter = fillIn(r, clientId, username);
      if (filter !== null) this.rules.push({ allow: r.allow, access: r.access, filter, levels: filter.split('/'), eq: r.eq });
    }
    this.whole = new WholeReads(fallback ? fallback.source : FIXED, (f) => this.readsWhole(f), null);
  }

  topicOf(bytes: Buffer): string {
    if (this.fallback) return this.fallback.topicOf(bytes);
    const last = this.lastTopic;
    if (last !== null && sameAscii(bytes, last)) return last;
    return (this.lastTopic = bytes.toString('utf8'));
  }

  mayReceive(msg: Message): boolean {
    const w = this.whole;
    if (w.skipGen === w.rules.generation) return true;
    w.plan(); // no narrow checker for these rules: the cached decision below
    let t = msg.topicStringIfMade;
    if (t === null) { t = this.topicOf(msg.topic); msg.knownTopic(t); }
    return this.mayRead(t);
  }

  mayRead(topic: string): boolean { return this.decide(topic, READ, KNOWN_READ, ALLOW_READ); }

  mayWrite(topic: string): boolean { return this.decide(topic, WRITE, KNOWN_WRITE, ALLOW_WRITE); }

  /**
   * A rule covering the whole filter decides; an allow rule covering part of it grants it
   * (each delivery is checked); a deny covering part of it leaves the rest to later rules.
   */
  maySubscribe(filter: string): boolean {
    const f = filter.split('/');
    for (const r of this.rules) {
      if (!(r.access & READ)) continue;
      if (r.eq) { if (r.filter === filter) return r.allow; continue; }
      if (covers(r.levels, f)) return r.allow;
      if (r.allow && intersect(f, r.levels) !== null) return true;
    }
    if (this.denyNoMatch) return false;
    return this.fallback ? this.fallback.maySubscribe(filter) : true;
  }

  /**
   * Sufficient, like the file's: the first rule covering the filter allows, and no deny rule
   * before it meets the filter; reaching the end, what no rule matches must be allowed whole:
   * by the file's checker, or by the absence of one (never under the old format, which denies).
   */
  readsWhole(filter: string): boolean {
    const f = filter.split('/');
    for (const r of this.rules) {
      if (!(r.access & READ)) continue;
      // An "eq" rule matches one topic at most: an allow grants it, a deny that might meet the filter stops the test.
      if (r.eq) { if (!r.allow && intersect(f, r.levels) !== null) return false; continue; }
      if (covers(r.levels, f)) return r.allow;
      if (!r.allow && intersect(f, r.levels) !== null) return false;
    }
    if (this.denyNoMatch) return false;
    return this.fallback ? this.fallback.readsWhole(filter) : true;
  }

  get source(): { readonly generation: number } { return this.whole.rules; }

  attach(session: SessionView): void { this.whole.attach(session); }
  subscribed(key: string): void { this.whole.subscribed(key); }
  unsubscribed(key: string): void { this.whole.unsubscribed(key); }

  /**
   * What the rules decide is cached; a topic no rule matches is cached as "ask the file's
   * checker", never with the file's answer, so an ACL file reload (which that checker follows)
   * is never hidden behind this cache.
   */
  private decide(topic: string, access: number, known: number, allow: number): boolean {
    const fall = known << 4;
    let bits = this.cache.get(topic);
    if (bits === undefined || (bits & known) === 0) {
      const r = this.first(topic, access);
      const had = bits !== undefined;
      bits = (bits ?? 0) | known | (r === 1 ? allow : r === -1 ? fall : 0);
      if (had || roomFor(this.cache, this.cacheEntries, this.count)) this.cache.set(topic, bits);
    }
    if ((bits & fall) === 0) return (bits & allow) !== 0;
    return access === READ ? this.fallback!.mayRead(topic) : this.fallback!.mayWrite(topic);
  }

  /** 1 allowed, 0 refused by the rules (or by no match when that refuses / nothing else decides), -1 the file's checker decides. */
  private first(topic: string, access: number): number {
    const levels = topic.split('/');
    for (const r of this.rules) {
      if (!(r.access & access)) continue;
      // An "eq" rule names a filter literally: no topic name is that filter unless it has no wildcard.
      if (r.eq ? r.filter === topic : covers(r.levels, levels)) return r.allow ? 1 : 0;
    }
    if (this.denyNoMatch) return 0;
    return this.fallback ? -1 : 1;
  }
}

/** Without an ACL file behind them, the client's rules are all there is: one generation forever. */
const FIXED = { generation: 0 } as const;

function sameAscii(b: Buffer, s: string): boolean {
  const n = b.length;
  if (n !== s.length) return false;
  for (let i = 0; i < n; i++) if (b[i] >= 0x80 || b[i] !== s.charCodeAt(i)) return false;
  return true;
}
