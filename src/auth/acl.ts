// Authorization with a Mosquitto acl_file: parse it, and decide per client whether a topic may
// be read (delivered to it) or written (published by it), and whether a subscription filter
// may read anything at all. Pure: no I/O but readAclFile, no worker state; the worker's
// cached checker is workers/auth/acl-gate.ts.
//
// The file, as Mosquitto reads it (mosquitto.conf(5), "acl_file"):
//   # comment, blank lines ignored
//   topic [read|write|readwrite|deny] <topic>   no access word = readwrite; the topic is the
//                                               rest of the line and may hold + and #
//   user <username>                             the topic lines after it apply to that user
//   pattern [read|write|readwrite|deny] <topic> every client, with %c = client id, %u = username
// topic lines before the first `user` line apply to anonymous clients (no username).
//
// Precedence, as Mosquitto's default check decides it (src/security_default.c):
//   1. the client's own list (its `user` section, or the anonymous section): a matching
//      `deny` refuses; else a matching rule that grants the access allows;
//   2. otherwise, patterns: a client id or username holding + or # is refused (it could widen
//      a %c / %u pattern); a matching `deny` pattern refuses; a matching pattern that grants
//      the access allows (a pattern with %u is skipped for anonymous clients);
//   3. otherwise refused. So a `deny` wins within its tier, and a user's own allow is decided
//      before any pattern is looked at.
// A topic starting with $ matches only rules starting with $ (as subscriptions, [MQTT-4.7.2-1]).
import { readTextFile } from '../shared/operator-files';

export const READ = 1;
export const WRITE = 2;
/** A `deny` rule (Mosquitto's MOSQ_ACL_NONE). */
export const DENY = 4;

export interface AclRule { topic: string; access: number; line: number }

/** A parsed file, as plain data (posted to workers by structured clone). */
export interface AclRules {
  /** Topic lines before any `user` line; null when there are none. */
  anonymous: AclRule[] | null;
  users: Array<[string, AclRule[]]>;
  patterns: AclRule[];
}

export class AclFileError extends Error {}

/** A topic filter Mosquitto accepts in an ACL (mosquitto_sub_topic_check). */
export function validAclTopic(t: string): string | null {
  if (t === '') return 'the topic is empty';
  if (t.includes('\0')) return 'the topic holds a NUL character';
  if (Buffer.byteLength(t) > 65535) return 'the topic is longer than MQTT allows';
  const levels = t.split('/');
  for (let i = 0; i < levels.length; i++) {
    const l = levels[i];
    if (l.includes('#') && (l !== '#' || i !== levels.length - 1)) return '# must be a whole level and the last one';
    if (l.includes('+') && l !== '+') return '+ must be a whole level';
  }
  return null;
}

const ACCESS: Record<string, number> = { read: READ, write: WRITE, readwrite: READ | WRITE, deny: DENY };

/** The rules of an ACL file's text. Throws AclFileError naming `name` and the line. */
export function parseAclFile(text: string, name: string): AclRules {
  const rules: AclRules = { anonymous: null, users: [], patterns: [] };
  const byUser = new Map<string, AclRule[]>();
  let user: string | null = null;
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const fail = (why: string): never => { throw new AclFileError(`${name}: line ${i + 1}: ${why}`); };
    const line = lines[i].replace(/\s+$/, '').replace(/^[ \t]+/, '');
    if (line === '' || line.startsWith('#')) continue;
    const m = /^(\S+)(?:[ \t]+(.*))?$/.exec(line)!;
    const keyword = m[1];
    const rest = m[2] ?? '';
    if (keyword === 'user') {
      if (rest === '') fail('`user` needs a username');
      user = rest;
      continue;
    }
    if (keyword !== 'topic' && keyword !== 'pattern') fail(`expected "topic", "pattern" or "user", got ${JSON.stringify(keyword.slice(0, 40))}`);
    if (rest === '') fail(`\`${keyword}\` needs a topic`);
    // As Mosquitto: one word after the keyword is the topic (readwrite); two or more are the
    // access and then the topic (the rest of the line, spaces included).
    const am = /^(\S+)[ \t]+(.+)$/.exec(rest);
    let access = READ | WRITE;
    let topic = rest;
    if (am) {
      const a = ACCESS[am[1]];
      if (a === undefined) fail(`access must be read, write, readwrite or deny, got ${JSON.stringify(am[1].slice(0, 40))}`);
      access = a;
      topic = am[2];
    }
    const bad = validAclTopic(topic);
    if (bad) fail(`invalid topic ${JSON.stringify(topic.slice(0, 80))}: ${bad}`);
    const rule: AclRule = { topic, access, line: i + 1 };
    if (keyword === 'pattern') { rules.patterns.push(rule); continue; }
    if (user === null) { (rules.anonymous ??= []).push(rule); continue; }
    let list = byUser.get(user);
    if (!list) { list = []; byUser.set(user, list); rules.users.push([user, list]); }
    list.push(rule);
  }
  return rules;
}

export function readAclFile(file: string): AclRules {
  return parseAclFile(readTextFile(file, AclFileError), file);
}

export function ruleCount(r: AclRules): number {
  let n = (r.anonymous?.length ?? 0) + r.patterns.length;
  for (const [, list] of r.users) n += list.length;
  return n;
}

interface Node {
  lit: Map<string, Node> | null;
  /** The literal children again, as arrays, when there are few: looked up without making the level's string. */
  keys: string[] | null;
  kids: Node[] | null;
  plus: Node | null;
  hash: Node | null;
  flags: number;
  rules: Compiled[] | null;
}
const node = (): Node => ({ lit: null, keys: null, kids: null, plus: null, hash: null, flags: 0, rules: null });
/**
 * Up to this many literal children are compared in place (length first, then the characters);
 * more are looked up in the Map, which costs a substring. 32 measured ~25% cheaper than 8 for a
 * level with 32 literals (the bench file's bench/wc).
 */
const FEW = 32;

function finish(n: Node): void {
  if (n.lit) {
    if (n.lit.size <= FEW) { n.keys = [...n.lit.keys()]; n.kids = [...n.lit.values()]; }
    for (const c of n.lit.values()) finish(c);
  }
  if (n.plus) finish(n.plus);
  if (n.hash) finish(n.hash);
}

/**
 * Rules as a trie of their levels, so a decision costs a walk of the topic's levels, not a
 * scan of every rule (a 1,000-rule user section stays cheap). `match` ORs the access bits of
 * every rule whose filter matches the topic.
 */
class RuleTrie {
  private readonly root = node();

  constructor(rules: readonly Compiled[]) {
    for (const r of rules) {
      let n = this.root;
      for (const l of r.levels) {
        if (l === '#') n = (n.hash ??= node());
        else if (l === '+') n = (n.plus ??= node());
        else { const lit = (n.lit ??= new Map()); let c = lit.get(l); if (!c) { c = node(); lit.set(l, c); } n = c; }
      }
      n.flags |= r.access === DENY ? DENY : r.access;
      (n.rules ??= []).push(r);
    }
    finish(this.root);
  }

  /**
   * The access bits (OR) of every rule matching topic name `t`, without splitting it: no array,
   * a substring at most at a level with many literal children.
   */
  matchTopic(t: string): number { return walkTopic(this.root, t, 0, t.charCodeAt(0) === 0x24); }

  /** Adds to `out` every rule whose filter meets `filter` (some topic matches both), as `intersect` decides. */
  meeting(filter: readonly string[], out: Set<Compiled>): void { meet(this.root, filter, 0, out); }
}

const isDollar = (l: string): boolean => l.charCodeAt(0) === 0x24;

function meet(n: Node, f: readonly string[], i: number, out: Set<Compiled>): void {
  // At the first level, a $ literal meets only itself, and wildcards on either side never meet
  // a $ literal [MQTT-4.7.2-1].
  const dollarTop = i === 0 && isDollar(f[0]);
  const x = f[i];
  if (x === '#') { all(n, i === 0, out); return; } // 'a/#' meets every rule below a, and a itself
  if (!dollarTop && n.hash?.rules) for (const r of n.hash.rules) out.add(r); // rule 'p/#' meets everything below p
  if (x === undefined) { if (n.rules) for (const r of n.rules) out.add(r); return; }
  if (x === '+') {
    if (n.lit) for (const [l, c] of n.lit) if (i > 0 || !isDollar(l)) meet(c, f, i + 1, out);
  } else {
    const c = n.lit?.get(x);
    if (c) meet(c, f, i + 1, out);
  }
  if (!dollarTop && n.plus) meet(n.plus, f, i + 1, out);
}

/** Every rule at or below `n` (from the root: none starting with a $ literal). */
function all(n: Node, top: boolean, out: Set<Compiled>): void {
  if (n.rules) for (const r of n.rules) out.add(r);
  if (n.hash) all(n.hash, false, out);
  if (n.plus) all(n.plus, false, out);
  if (n.lit) for (const [l, c] of n.lit) if (!top || !isDollar(l)) all(c, false, out);
}

/** Whether topic name `t` matches `levels` (a rule's filter), without splitting `t` [MQTT-4.7.1-2, MQTT-4.7.2-1]. */
export function matchesTopic(levels: readonly string[], t: string): boolean {
  const n = t.length;
  if (isDollar(t) && (levels[0] === '+' || levels[0] === '#')) return false;
  let pos = 0;
  for (let i = 0; i < levels.length; i++) {
    const l = levels[i];
    if (l === '#') return true; // also the parent level: 'a/#' matches 'a'
    if (pos > n) return false;
    if (l === '+') {
      while (pos < n && t.charCodeAt(pos) !== 0x2f) pos++;
      pos++;
      continue;
    }
    const k = l.length;
    if (pos + k > n) return false;
    for (let j = 0; j < k; j++) if (t.charCodeAt(pos + j) !== l.charCodeAt(j)) return false;
    pos += k;
    if (pos < n && t.charCodeAt(pos) !== 0x2f) return false;
    pos++;
  }
  return pos > n;
}

/**
 * One rule's filter made quick to match against topic strings: a rule of literal levels, maybe
 * ending in #, is one prefix compare (most rules are); others match level by level.
 */
export class TopicMatcher {
  /** The literal levels joined, when the rule has no + and a # at most at the end; else null. */
  private readonly prefix: string | null;
  private readonly hash: boolean;
  readonly access: number;

  constructor(private readonly levels: readonly string[], access: number) {
    this.access = access;
    const last = levels.length - 1;
    this.hash = levels[last] === '#';
    const lits = this.hash ? levels.slice(0, last) : levels;
    this.prefix = lits.length > 0 && !lits.includes('+') ? lits.join('/') : null;
  }

  matches(t: string): boolean {
    const p = this.prefix;
    if (p === null) return matchesTopic(this.levels, t);
    if (!t.startsWith(p)) return false;
    const k = p.length;
    return t.length === k || (this.hash && t.charCodeAt(k) === 0x2f);
  }
}

function walkTopic(n: Node, t: string, pos: number, dollarTop: boolean): number {
  const wild = pos > 0 || !dollarTop; // [MQTT-4.7.2-1]
  let f = wild && n.hash ? n.hash.flags : 0; // 'a/#' matches 'a' too [MQTT-4.7.1-2]
  const len = t.length;
  if (pos > len) return f | n.flags; // every level consumed
  let end = t.indexOf('/', pos);
  if (end < 0) end = len;
  const c = literal(n, t, pos, end);
  if (c) f |= walkTopic(c, t, end + 1, dollarTop);
  if (wild && n.plus) f |= walkTopic(n.plus, t, end + 1, dollarTop);
  return f;
}

/** The literal child of `n` named by t[pos, end). */
function literal(n: Node, t: string, pos: number, end: number): Node | null | undefined {
  const keys = n.keys;
  if (keys !== null) {
    const k = end - pos;
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i];
      if (key.length === k && t.startsWith(key, pos)) return n.kids![i];
    }
    return null;
  }
  return n.lit?.get(t.slice(pos, end));
}

/** a ∩ b of two filters (as level arrays): the filter of the topics both match, or null. */
export function intersect(a: readonly string[], b: readonly string[]): string[] | null {
  // A first level starting with $ is a literal that wildcards never match [MQTT-4.7.2-1]: it
  // meets only a filter starting with a $ level too (compared below).
  if (dollar(a) !== dollar(b)) return null;
  const out: string[] = [];
  for (let i = 0; ; i++) {
    const x = a[i];
    const y = b[i];
    if (x === '#') return out.concat(b.slice(i));
    if (y === '#') return out.concat(a.slice(i));
    if (x === undefined || y === undefined) return x === y ? out : null;
    if (x === '+') out.push(y);
    else if (y === '+' || x === y) out.push(x);
    else return null;
  }
}

/** Whether every topic `f` matches is matched by `d` (filters as level arrays). */
export function covers(d: readonly string[], f: readonly string[]): boolean {
  if (dollar(f) && !dollar(d)) return false;
  for (let i = 0; ; i++) {
    const x = d[i];
    const y = f[i];
    if (x === '#') return true;
    if (x === undefined || y === undefined) return x === y;
    if (y === '#') return false;
    if (x === '+') continue;
    if (y === '+' || x !== y) return false;
  }
}

const dollar = (l: readonly string[]): boolean => l[0].charCodeAt(0) === 0x24;

export interface Compiled { levels: string[]; access: number }
const compile = (rules: readonly { topic: string; access: number }[]): Compiled[] => rules.map((r) => ({ levels: r.topic.split('/'), access: r.access }));

/** One section's rules, compiled once per ACL and shared by every client it applies to. */
class Section {
  readonly trie: RuleTrie;
  readonly allows: Compiled[];
  readonly denies: Compiled[];
  constructor(readonly rules: Compiled[]) {
    this.trie = new RuleTrie(rules);
    this.allows = rules.filter((r) => r.access !== DENY);
    this.denies = rules.filter((r) => r.access === DENY);
  }

  /** The rules that meet filter `f`. */
  meet(f: readonly string[]): Set<Compiled> {
    const met = new Set<Compiled>();
    this.trie.meeting(f, met);
    return met;
  }
}

/** The rules of one ACL file, ready to answer for any client. */
export class Acl {
  private readonly anonymous: Section | null;
  private readonly users = new Map<string, Section>();
  private readonly patterns: readonly AclRule[];
  private readonly patternsFixed: Section | null;

  constructor(readonly rules: AclRules) {
    this.anonymous = rules.anonymous ? new Section(compile(rules.anonymous)) : null;
    for (const [u, list] of rules.users) this.users.set(u, new Section(compile(list)));
    this.patterns = rules.patterns;
    // Patterns without %c / %u are the same for everyone: compiled once.
    this.patternsFixed = rules.patterns.length > 0 && rules.patterns.every((p) => !/%[cu]/.test(p.topic)) ? new Section(compile(rules.patterns)) : null;
  }

  /** The decisions for one client: its own section and the patterns with %c / %u filled in. */
  forClient(clientId: string, username: string | null): ClientAcl {
    const own = username === null ? this.anonymous : this.users.get(username) ?? null;
    // A client id or username with + or # could widen a pattern: patterns refuse it (Mosquitto).
    const dangerous = /[+#]/.test(clientId) || (username !== null && /[+#]/.test(username));
    let patterns: Section | null = null;
    if (!dangerous && this.patterns.length > 0) {
      patterns = this.patternsFixed ?? new Section(compile(this.patterns
        .filter((p) => username !== null || !p.topic.includes('%u'))
        .map((p) => ({ topic: p.topic.replace(/%[cu]/g, (s) => (s === '%c' ? clientId : username!)), access: p.access }))));
    }
    return new ClientAcl(own, patterns);
  }
}

/** One client's authorization: what it may read, write and subscribe to. */
export class ClientAcl {
  constructor(private readonly own: Section | null, private readonly patterns: Section | null) {}

  /** `access` is READ or WRITE; `topic` a topic name (no wildcards). */
  allows(topic: string, access: number): boolean {
    if (this.own) {
      const f = this.own.trie.matchTopic(topic);
      if (f & DENY) return false;
      if (f & access) return true;
    }
    if (this.patterns) {
      const f = this.patterns.trie.matchTopic(topic);
      if (f & DENY) return false;
      if (f & access) return true;
    }
    return false;
  }

  /**
   * Whether a subscription to `filter` could deliver anything: some topic it matches may be
   * read. A filter only partly readable is granted (delivery checks each topic); one no rule
   * lets it read, or that a `deny` covers whole, is refused. Exact but for a filter covered by
   * several `deny` rules together and by none alone: granted, and delivery withholds all.
   */
  maySubscribe(filter: string): boolean {
    const f = filter.split('/');
    const own = this.own;
    if (own) {
      for (const r of own.allows) {
        if (!(r.access & READ)) continue;
        const i = intersect(f, r.levels);
        if (i && !own.denies.some((d) => covers(d.levels, i))) return true;
      }
    }
    const p = this.patterns;
    if (p) {
      for (const r of p.allows) {
        if (!(r.access & READ)) continue;
        const i = intersect(f, r.levels);
        if (i && !(own && own.denies.some((d) => covers(d.levels, i))) && !p.denies.some((d) => covers(d.levels, i))) return true;
      }
    }
    return false;
  }

  /**
   * Whether every topic `filter` can match may be read, so a delivery through a subscription to
   * it needs no check. Sufficient, not exact (false means "check each delivery"): one
   * read-granting rule covers the whole filter, and no `deny` rule a tier decides it by meets it:
   *   - an own rule covers it and no own `deny` meets it: the own tier allows every topic;
   *   - else a pattern covers it and no `deny` of either tier meets it: every topic either has
   *     an own allow or reaches the patterns, which allow it.
   * A deny rule is any rule with the DENY bit, read or not: Mosquitto's deny refuses both.
   * $-topics follow [MQTT-4.7.2-1] in `covers` / `intersect`; %c / %u are filled in and a
   * dangerous id has no patterns here (forClient), so the analysis sees what `allows` sees.
   */
  readsWhole(filter: string): boolean {
    const f = filter.split('/');
    const own = this.own?.meet(f) ?? NONE;
    if (hasDeny(own)) return false;
    if (coveredByRead(own, f)) return true;
    const p = this.patterns?.meet(f);
    return p !== undefined && !hasDeny(p) && coveredByRead(p, f);
  }

  /**
   * A checker for the topics that `filters` match, deciding as `allows(topic, READ)` does but
   * with only the rules that meet one of the filters (no other rule can match such a topic), so
   * a delivery costs a few string compares, no split, no cache. When an own read rule covers
   * each filter, the own tier decides every such topic and only its deny rules are kept. Null
   * when more than `max` rules would be: the caller keeps the cached full decision.
   */
  narrow(filters: Iterable<string>, max: number): NarrowReads | null {
    const own = new Set<Compiled>();
    const pat = new Set<Compiled>();
    let ownDecides = true;
    for (const filter of filters) {
      const f = filter.split('/');
      const o = this.own?.meet(f) ?? NONE;
      if (ownDecides && !coveredByRead(o, f)) ownDecides = false;
      for (const r of o) own.add(r);
      if (this.patterns) for (const r of this.patterns.meet(f)) pat.add(r);
    }
    const met = own.size + pat.size;
    const keep = ownDecides ? [...own].filter((r) => r.access === DENY) : [...own, ...pat];
    if (keep.length > max) return null;
    const m = (rs: Iterable<Compiled>): TopicMatcher[] => [...rs].map((r) => new TopicMatcher(r.levels, r.access));
    return ownDecides ? new NarrowReads(m(keep), [], false, true, met) : new NarrowReads(m(own), m(pat), this.patterns !== null, false, met);
  }
}

const NONE: ReadonlySet<Compiled> = new Set();
const hasDeny = (rs: ReadonlySet<Compiled>): boolean => { for (const r of rs) if (r.access === DENY) return true; return false; };
const coveredByRead = (rs: ReadonlySet<Compiled>, f: readonly string[]): boolean => {
  for (const r of rs) if ((r.access & READ) !== 0 && r.access !== DENY && covers(r.levels, f)) return true;
  return false;
};

/** `ClientAcl.allows(topic, READ)` over a few rules, for topics that match the filters it was made for. */
export class NarrowReads {
  constructor(private readonly own: readonly TopicMatcher[], private readonly pat: readonly TopicMatcher[],
    private readonly hasPatterns: boolean, private readonly ownDecides: boolean, readonly met: number) {}

  /** The rules it matches against. */
  get size(): number { return this.own.length + this.pat.length; }

  reads(t: string): boolean {
    const own = tierFlags(this.own, t);
    if (own & DENY) return false;
    if (this.ownDecides || (own & READ) !== 0) return true;
    if (!this.hasPatterns) return false;
    const p = tierFlags(this.pat, t);
    return (p & DENY) === 0 && (p & READ) !== 0;
  }
}

function tierFlags(rules: readonly TopicMatcher[], t: string): number {
  let f = 0;
  for (let i = 0; i < rules.length; i++) {
    const r = rules[i];
    if (r.matches(t)) {
      if (r.access === DENY) return DENY;
      f |= r.access;
    }
  }
  return f;
}
