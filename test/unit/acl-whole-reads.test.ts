// The analysis that lets deliveries skip the ACL check (src/auth/acl.ts readsWhole / narrow,
// workers/auth/client-acl.ts readsWhole, workers/auth/acl-gate.ts WholeReads), checked against
// brute force: random rule sets (seeded, so a failure repeats) × every filter of a small
// vocabulary × the decisions `allows` makes for every topic of a generated universe.
//   - sound: a filter said to read whole matches no topic the client may not read;
//   - the narrow checker decides every topic a filter matches as the full decision does;
//   - the trie's `meeting` finds exactly the rules `intersect` says meet a filter;
//   - the connection's skip follows SUBSCRIBE, UNSUBSCRIBE, a backlog and a reload.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MessageChannel } from 'node:worker_threads';
import { Acl, parseAclFile, covers, intersect, matchesTopic, READ, DENY, type AclRules } from '../../src/auth/acl';
import { parseClientRules } from '../../src/auth/client-rules';
import { AclGate, type SessionView } from '../../workers/auth/acl-gate';
import { ClientAcl } from '../../workers/auth/client-acl';
import { Message } from '../../workers/protocol/message';
import { onceEvent } from '../helpers/wait';

/** mulberry32: a small seeded generator, so a failing case can be replayed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// Literal levels rules and filters use; 'z' appears only in topics (a level no rule names) and
// '' is an empty level. '$s' starts a $-topic at the first level, a plain literal deeper.
const WORDS = ['a', 'b', '$s', ''];
const TOPIC_WORDS = [...WORDS, 'z'];

function universe(depth: number): string[] {
  const out: string[] = [];
  const grow = (prefix: string[]): void => {
    if (prefix.length > 0 && !(prefix.length === 1 && prefix[0] === '')) out.push(prefix.join('/'));
    if (prefix.length === depth) return;
    for (const w of TOPIC_WORDS) grow([...prefix, w]);
  };
  grow([]);
  return out;
}

function allFilters(depth: number): string[] {
  const out: string[] = [];
  const grow = (prefix: string[]): void => {
    if (prefix.length > 0) out.push(prefix.join('/'));
    if (prefix.length === depth || prefix[prefix.length - 1] === '#') return;
    for (const w of [...WORDS, '+', '#']) grow([...prefix, w]);
  };
  grow([]);
  return out;
}

const TOPICS = universe(4);
const FILTERS = allFilters(3);
const MATCHED = new Map(FILTERS.map((f) => [f, TOPICS.filter((t) => matchesTopic(f.split('/'), t))]));

function randomFilter(r: () => number, withPlaceholders: boolean): string {
  const n = 1 + Math.floor(r() * 3);
  const levels: string[] = [];
  for (let i = 0; i < n; i++) {
    const x = r();
    if (i === n - 1 && x < 0.2) levels.push('#');
    else if (x < 0.4) levels.push('+');
    else if (withPlaceholders && x < 0.5) levels.push(r() < 0.5 ? '%c' : '%u');
    else levels.push(WORDS[Math.floor(r() * WORDS.length)]);
  }
  const f = levels.join('/');
  return f === '' ? 'a' : f;
}

const ACCESS = ['read', 'write', 'readwrite', 'deny', 'deny', 'read'];

function randomFile(r: () => number): string {
  const lines: string[] = [];
  const section = (): void => { for (let i = Math.floor(r() * 5); i > 0; i--) lines.push(`topic ${ACCESS[Math.floor(r() * ACCESS.length)]} ${randomFilter(r, false)}`); };
  section(); // anonymous clients
  for (const u of ['a', 'u#']) { lines.push(`user ${u}`); section(); }
  for (let i = Math.floor(r() * 4); i > 0; i--) lines.push(`pattern ${ACCESS[Math.floor(r() * ACCESS.length)]} ${randomFilter(r, true)}`);
  return lines.join('\n') + '\n';
}

/**
 * The decision as Mosquitto's precedence states it (src/auth/acl.ts, top), written plainly from
 * the parsed file: the oracle the fast paths are compared with.
 */
function oracle(rules: AclRules, id: string, user: string | null, t: string): boolean {
  const tl = t.split('/');
  const tier = (list: Array<{ topic: string; access: number }>): number => {
    let f = 0;
    for (const r of list) if (covers(r.topic.split('/'), tl)) f |= r.access;
    return f;
  };
  const own = user === null ? rules.anonymous ?? [] : rules.users.find(([u]) => u === user)?.[1] ?? [];
  const o = tier(own);
  if (o & DENY) return false;
  if (o & READ) return true;
  if (/[+#]/.test(id) || (user !== null && /[+#]/.test(user))) return false;
  const p = tier(rules.patterns.filter((x) => user !== null || !x.topic.includes('%u'))
    .map((x) => ({ topic: x.topic.replace(/%[cu]/g, (m) => (m === '%c' ? id : user!)), access: x.access })));
  return (p & DENY) === 0 && (p & READ) !== 0;
}

// Client ids and usernames: plain, one with a wildcard (patterns refuse it), one with a slash
// (a pattern's %c then spans two levels), anonymous.
const CLIENTS: Array<[string, string | null]> = [['a', null], ['b', 'a'], ['x+', 'a'], ['a/b', null], ['b', 'u#']];

test('file ACL: allows decides as the precedence says, readsWhole is sound, narrow decides as allows does, meeting finds what intersect finds (random rule sets)', () => {
  const r = rng(20261203);
  let whole = 0;
  let wholeTruly = 0;
  let narrowChecked = 0;
  for (let round = 0; round < 120; round++) {
    const text = randomFile(r);
    const rules = parseAclFile(text, 'f');
    const acl = new Acl(rules);
    for (const [id, user] of CLIENTS) {
      const c = acl.forClient(id, user);
      const readable = new Set(TOPICS.filter((t) => oracle(rules, id, user, t)));
      for (const t of TOPICS) assert.equal(c.allows(t, READ), readable.has(t), `${JSON.stringify(text)} client ${id}/${user}: allows(${t})`);
      for (const f of FILTERS) {
        const topics = MATCHED.get(f)!;
        const truly = topics.every((t) => readable.has(t));
        const said = c.readsWhole(f);
        if (said) assert.ok(truly, `${JSON.stringify(text)} client ${id}/${user}: ${f} said to read whole, but ${topics.find((t) => !readable.has(t))} is refused`);
        if (truly) wholeTruly++;
        if (said) whole++;
      }
      // The narrow checker for a few filters at once decides each topic they match as allows does.
      for (let k = 0; k < 6; k++) {
        const fs = [FILTERS[Math.floor(r() * FILTERS.length)], FILTERS[Math.floor(r() * FILTERS.length)]];
        const n = c.narrow(fs, 1000)!;
        for (const f of fs) for (const t of MATCHED.get(f)!) {
          assert.equal(n.reads(t), readable.has(t), `${JSON.stringify(text)} client ${id}/${user}: narrow(${fs}) on ${t}`);
          narrowChecked++;
        }
      }
    }
  }
  // Not vacuous: many filters read whole and were recognised (a single covering rule is the usual case).
  assert.ok(whole > 1000, `only ${whole} filters recognised as reading whole (of ${wholeTruly} that do)`);
  assert.ok(narrowChecked > 10000);
});

test('rule trie: meeting() finds exactly the rules intersect() says meet a filter', () => {
  const r = rng(7);
  for (let round = 0; round < 60; round++) {
    const rules: string[] = [];
    for (let i = 0; i < 12; i++) rules.push(`topic ${ACCESS[Math.floor(r() * ACCESS.length)]} ${randomFilter(r, false)}`);
    const acl = new Acl(parseAclFile(rules.join('\n') + '\n', 'f'));
    const c = acl.forClient('c', null);
    const levels = rules.map((l) => l.split(' ')[2].split('/'));
    for (const f of FILTERS) {
      const n = c.narrow([f], 1000)!;
      const want = levels.filter((l) => intersect(f.split('/'), l) !== null).length;
      assert.equal(n.met, want, `${rules.join('; ')}: rules meeting ${f}`);
    }
  }
});

test('matchesTopic agrees with covers over the universe ([MQTT-4.7.1-2] parent level, [MQTT-4.7.2-1] $)', () => {
  for (const f of FILTERS) for (const t of TOPICS.slice(0, 200)) assert.equal(matchesTopic(f.split('/'), t), covers(f.split('/'), t.split('/')), `${f} ~ ${t}`);
  assert.equal(matchesTopic(['a', '#'], 'a'), true);
  assert.equal(matchesTopic(['#'], '$SYS/x'), false);
  assert.equal(matchesTopic(['+', 'x'], '$SYS/x'), false);
  assert.equal(matchesTopic(['$SYS', '#'], '$SYS/x'), true);
  assert.equal(matchesTopic(['a', '+'], 'a/'), true);
  assert.equal(matchesTopic(['a'], 'a/'), false);
});

test('the usual cases: a covering allow reads whole, a deny inside, %c patterns, $ topics, dangerous ids', () => {
  const acl = new Acl(parseAclFile([
    'topic read public/#', 'topic deny public/secret/#', 'topic read $SYS/#',
    'user u', 'topic readwrite u/#', 'topic read other/+',
    'pattern read clients/%c/#', 'pattern deny clients/%c/locked',
  ].join('\n') + '\n', 'f'));
  const anon = acl.forClient('c1', null);
  assert.equal(anon.readsWhole('public/news/+'), true);
  assert.equal(anon.readsWhole('public/#'), false, 'a deny in the middle');
  assert.equal(anon.readsWhole('public/+'), false, 'public/secret matches public/secret/# (its parent level)');
  assert.equal(anon.readsWhole('$SYS/broker/#'), true);
  assert.equal(anon.readsWhole('#'), false);
  assert.equal(anon.readsWhole('clients/c1/x'), true, 'a pattern covers it, no deny meets it');
  assert.equal(anon.readsWhole('clients/c1/#'), false);
  assert.equal(anon.readsWhole('clients/c2/x'), false);
  const u = acl.forClient('c1', 'u');
  assert.equal(u.readsWhole('u/#'), true);
  assert.equal(u.readsWhole('other/+'), true);
  assert.equal(u.readsWhole('public/x'), false, 'the user section is not the anonymous one');
  assert.equal(acl.forClient('c+', null).readsWhole('clients/c+/x'), false, 'an id with + gets no patterns');
});

test('client rules (JWT / HTTP): readsWhole is sound against their decisions, with and without an ACL file behind', async () => {
  const r = rng(99);
  const noCount = (): void => {};
  let whole = 0;
  for (let round = 0; round < 80; round++) {
    const { port1, port2 } = new MessageChannel();
    try {
      const gate = new AclGate({ rules: parseAclFile(randomFile(r), 'f'), generation: 1 }, port2, 10_000, noCount);
      const list: unknown[] = [];
      for (let i = Math.floor(r() * 5); i > 0; i--) {
        const eq = r() < 0.15 ? 'eq ' : '';
        list.push({ permission: r() < 0.6 ? 'allow' : 'deny', action: ['publish', 'subscribe', 'all'][Math.floor(r() * 3)], topic: eq + randomFilter(r, false) });
      }
      const old = { sub: [randomFilter(r, false)], all: [randomFilter(r, false)] };
      for (const given of [list, old]) {
        for (const fallback of [gate.forClient('b', 'a'), null]) {
          const c = new ClientAcl(parseClientRules(given), 'b', 'a', fallback, 10_000, noCount);
          const readable = new Set(TOPICS.filter((t) => c.mayRead(t)));
          for (const f of FILTERS) {
            if (!c.readsWhole(f)) continue;
            whole++;
            const bad = MATCHED.get(f)!.find((t) => !readable.has(t));
            assert.equal(bad, undefined, `${JSON.stringify(given)} (file: ${fallback !== null}): ${f} said to read whole, ${bad} refused`);
          }
        }
      }
    } finally { port1.close(); port2.close(); }
  }
  assert.ok(whole > 500, `only ${whole} filters recognised`);
});

/** A session as the skip sees it: its subscriptions and whether anything waits to be sent. */
class FakeSession implements SessionView {
  readonly subs = new Map<string, unknown>();
  backlogged = false;
}

const msgOn = (t: string): Message => new Message(Buffer.from(t), Buffer.alloc(0), 0, false, null, 0, 0);

test('a connection skips the check only while every subscription reads whole; SUBSCRIBE, UNSUBSCRIBE, backlog, reload', async () => {
  const { port1, port2 } = new MessageChannel();
  try {
    const gate = new AclGate({ rules: parseAclFile('topic read a/#\ntopic deny a/secret\ntopic read b/#\ntopic read $share-like/#\n', 'f'), generation: 1 }, port2, 16, () => {});
    const conn = gate.forClient('c', null);
    const s = new FakeSession();
    s.subs.set('b/+', {});
    s.subs.set('$share/g/b/#', {});
    conn.attach(s);
    // Everything reads whole: even a topic the rules refuse is not checked (it cannot come through these filters).
    assert.equal(conn.mayReceive(msgOn('zzz')), true, 'skipped');
    s.subs.set('a/#', {});
    conn.subscribed('a/#');
    assert.equal(conn.mayReceive(msgOn('a/secret')), false, 'a partial filter: checked (narrow)');
    assert.equal(conn.mayReceive(msgOn('a/x')), true);
    assert.equal(conn.mayReceive(msgOn('b/x')), true);
    // Removing the partial filter: the session is checked for its life in this worker.
    s.subs.delete('a/#');
    conn.unsubscribed('a/#');
    assert.equal(conn.mayReceive(msgOn('a/secret')), false, 'a late message through the removed filter is still refused');
    assert.equal(conn.mayReceive(msgOn('zzz')), false);
    const again = gate.forClient('c', null);
    again.attach(s);
    assert.equal(again.mayReceive(msgOn('a/secret')), false, 'a new connection of the same session too');

    // A fresh session with a backlog at attach: checked in full until it drains.
    const s2 = new FakeSession();
    s2.subs.set('b/#', {});
    s2.backlogged = true;
    const c2 = gate.forClient('c2', null);
    c2.attach(s2);
    assert.equal(c2.mayReceive(msgOn('a/secret')), false, 'queued from before: checked');
    s2.backlogged = false;
    assert.equal(c2.mayReceive(msgOn('b/1')), true);
    assert.equal(c2.mayReceive(msgOn('zzz')), true, 'drained: skipped');
    // Unsubscribing a whole filter: checked until the backlog drains again (it already has).
    s2.subs.set('b/1', {});
    c2.subscribed('b/1');
    s2.backlogged = true;
    s2.subs.delete('b/1');
    c2.unsubscribed('b/1');
    assert.equal(c2.mayReceive(msgOn('zzz')), false);
    s2.backlogged = false;
    assert.equal(c2.mayReceive(msgOn('b/2')), true);
    assert.equal(c2.mayReceive(msgOn('zzz')), true);

    // A reload that makes b/# partial: the next delivery is checked with the new rules.
    const ack = onceEvent(port1 as unknown as NodeJS.EventEmitter, 'message', 'the reload acknowledged');
    port1.postMessage({ t: 'acl', rules: parseAclFile('topic read b/#\ntopic deny b/hidden\n', 'f'), generation: 2 });
    await ack;
    assert.equal(c2.mayReceive(msgOn('b/hidden')), false, 'partial after the reload: checked');
    assert.equal(c2.mayReceive(msgOn('b/open')), true);
  } finally { port1.close(); port2.close(); }
});

test('client rules in front: the skip follows them and the file behind them', async () => {
  const { port1, port2 } = new MessageChannel();
  try {
    const gate = new AclGate({ rules: parseAclFile('topic read f/#\n', 'f'), generation: 1 }, port2, 16, () => {});
    const c = new ClientAcl(parseClientRules([{ permission: 'deny', action: 'subscribe', topic: 'n/private' }, { permission: 'allow', action: 'subscribe', topic: 'n/#' }]),
      'c', null, gate.forClient('c', null), 16, () => {});
    const s = new FakeSession();
    s.subs.set('f/+', {});
    c.attach(s);
    assert.equal(c.mayReceive(msgOn('zzz')), true, 'f/+ reads whole through the file: skipped');
    s.subs.set('n/+', {});
    c.subscribed('n/+');
    assert.equal(c.mayReceive(msgOn('n/private')), false, 'the client rules deny it');
    assert.equal(c.mayReceive(msgOn('n/public')), true);
    s.subs.delete('n/+');
    c.unsubscribed('n/+');
    const ack = onceEvent(port1 as unknown as NodeJS.EventEmitter, 'message', 'the reload acknowledged');
    port1.postMessage({ t: 'acl', rules: parseAclFile('topic read f/#\ntopic deny f/x\n', 'f'), generation: 2 });
    await ack;
    const fresh = new ClientAcl(parseClientRules([{ permission: 'allow', action: 'publish', topic: 'p' }]), 'd', null, gate.forClient('d', null), 16, () => {});
    const s2 = new FakeSession();
    s2.subs.set('f/+', {});
    fresh.attach(s2);
    assert.equal(fresh.mayReceive(msgOn('f/x')), false, 'the reloaded file makes f/+ partial');
    assert.equal(fresh.mayReceive(msgOn('f/y')), true);
  } finally { port1.close(); port2.close(); }
});
