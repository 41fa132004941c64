// The retained-message trie (src/coordinator/retained.ts) against a reference: a plain Map and
// a linear scan with topicMatches (src/shared/topic-match.ts). Randomized; FLEETMQ_SEED=N
// replays a run (the seed is printed). Topics include `$` topics, empty levels (`a//b`, `/a`,
// `a/`), deep topics; filters `#`, `+`, `sport/#` (matches `sport`) and literal `$` filters.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { RetainedStore, RetainedCursors, PAGE_MESSAGES, PAGE_BYTES } from '../../src/coordinator/retained';
import { topicMatches } from '../../src/shared/topic-match';
import type { WireMessage } from '../../src/shared/messages';
import { Rng, seedFromEnv } from '../helpers/rng';
import * as v8 from 'node:v8';
import * as vm from 'node:vm';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

const SEED = seedFromEnv();
const LEVELS = ['a', 'b', 'c', '', '$x', 'sport', 'tennis', 'ünï', 'a-very-long-level-name-0001'];

function msg(topic: string, payload: Uint8Array, extra: Partial<WireMessage> = {}): WireMessage {
  return { topic, payload, qos: 1, retain: true, props: null, expiryAt: 0, ...extra };
}

function randomTopic(r: Rng): string {
  const n = r.chance(0.1) ? r.range(6, 12) : r.range(1, 4);
  const lv: string[] = [];
  for (let i = 0; i < n; i++) lv.push(r.pick(LEVELS));
  if (r.chance(0.1)) lv[0] = '$SYS';
  const t = lv.join('/');
  return t === '' ? 'a' : t; // a topic is at least one character
}

function randomFilter(r: Rng): string {
  const n = r.range(1, 5);
  const lv: string[] = [];
  for (let i = 0; i < n; i++) lv.push(r.chance(0.35) ? '+' : r.chance(0.1) ? '$SYS' : r.pick(LEVELS));
  if (r.chance(0.4)) lv.push('#');
  if (r.chance(0.05)) return '#';
  return lv.join('/');
}

/** Reads every page of `filter`; checks the page bounds on the way. */
function drain(cursors: RetainedCursors, filter: string, now = 1, between?: () => void): WireMessage[] {
  const all: WireMessage[] = [];
  let page = cursors.first(0, filter, now);
  for (;;) {
    assert.ok(page.msgs.length <= PAGE_MESSAGES, `page of ${page.msgs.length} messages`);
    const bytes = page.msgs.reduce((s, m) => s + m.payload.byteLength, 0);
    const last = page.msgs.at(-1)?.payload.byteLength ?? 0;
    assert.ok(bytes - last < PAGE_BYTES, `page of ${bytes} payload bytes goes past PAGE_BYTES before its last message`);
    all.push(...page.msgs);
    if (page.cursor === 0) return all;
    between?.();
    page = cursors.next(0, page.cursor, now);
  }
}

const hex = (u: Uint8Array) => Buffer.from(u.buffer, u.byteOffset, u.byteLength).toString('hex');

describe(`retained index (FLEETMQ_SEED=${SEED})`, () => {
  test('random sets and clears: every filter returns exactly what a linear scan matches', () => {
    const r = new Rng(SEED);
    const store = new RetainedStore();
    const ref = new Map<string, string>();
    const cursors = new RetainedCursors(store);
    for (let round = 0; round < 40; round++) {
      for (let i = 0; i < 300; i++) {
        const topic = randomTopic(r);
        if (r.chance(0.3)) { store.set(msg(topic, new Uint8Array(0))); ref.delete(topic); continue; }
        const p = r.bytes(r.range(1, 40));
        store.set(msg(topic, p));
        ref.set(topic, p.toString('hex'));
      }
      assert.equal(store.size, ref.size, `size after round ${round}`);
      for (let k = 0; k < 25; k++) {
        const f = randomFilter(r);
        const got = drain(cursors, f);
        const expected = [...ref.keys()].filter((t) => topicMatches(f, t)).sort();
        const topics = got.map((m) => m.topic);
        assert.deepEqual([...topics].sort(), expected, `filter '${f}' (seed ${SEED})`);
        for (const m of got) assert.equal(hex(m.payload), ref.get(m.topic), `payload of ${m.topic}`);
      }
    }
    assert.equal(cursors.size, 0, 'every exhausted cursor is closed');
  });

  test('MQTT rules: $ topics and leading wildcards, sport/# matches sport, empty levels', () => {
    const store = new RetainedStore();
    const p = new Uint8Array([1]);
    for (const t of ['sport', 'sport/tennis', 'sport/tennis/player1', '$SYS/x', '$SYS', 'a//b', '/a', 'a/', 'x']) store.set(msg(t, p));
    const cursors = new RetainedCursors(store);
    const q = (f: string) => drain(cursors, f).map((m) => m.topic).sort();
    assert.deepEqual(q('#'), ['/a', 'a/', 'a//b', 'sport', 'sport/tennis', 'sport/tennis/player1', 'x'], '`#` skips $ topics [MQTT-4.7.2-1]');
    assert.deepEqual(q('+/#'), ['/a', 'a/', 'a//b', 'sport', 'sport/tennis', 'sport/tennis/player1', 'x']);
    assert.deepEqual(q('+'), ['x', 'sport'].sort(), '`+` skips $ topics [MQTT-4.7.2-1]');
    assert.deepEqual(q('$SYS/#'), ['$SYS', '$SYS/x'], 'a literal $ level matches');
    assert.deepEqual(q('sport/#'), ['sport', 'sport/tennis', 'sport/tennis/player1'], 'sport/# matches sport [MQTT-4.7.1-2]');
    assert.deepEqual(q('sport/+'), ['sport/tennis'], '+ does not match the parent level');
    assert.deepEqual(q('a/+/b'), ['a//b'], '+ matches an empty level');
    assert.deepEqual(q('+/a'), ['/a']);
    assert.deepEqual(q('a/+'), ['a/']);
    assert.deepEqual(q('a/#'), ['a/', 'a//b']);
    assert.deepEqual(q('sport/tennis/player1'), ['sport/tennis/player1']);
    assert.deepEqual(q('sport/tennis/player2'), []);
  });

  test('a cursor skips what is set, set again or cleared after it opened; the rest arrives once, as it was', () => {
    const r = new Rng(SEED ^ 0x5a5a);
    const store = new RetainedStore();
    const before = new Map<string, string>();
    for (let i = 0; i < 3000; i++) {
      const t = `${r.pick(['s', 't', '$s'])}/${r.int(30)}/${r.int(30)}${r.chance(0.2) ? '/deep/' + r.int(5) : ''}`;
      const p = r.bytes(r.range(1, 3000));
      store.set(msg(t, p));
      before.set(t, p.toString('hex'));
    }
    for (const f of ['#', 's/#', '+/+/+', 's/+/3', '+/3/#', 's/1/1']) {
      const cursors = new RetainedCursors(store);
      const touched = new Set<string>();
      const all = [...before.keys()];
      const got = drain(cursors, f, 1, () => {
        // Between pages: new topics, topics set again, topics cleared, subtrees grown and emptied.
        for (let i = 0; i < 40; i++) {
          const t = r.chance(0.5) ? r.pick(all) : `s/${r.int(40)}/${r.int(40)}/new/${r.int(3)}`;
          touched.add(t);
          if (r.chance(0.4)) { store.set(msg(t, new Uint8Array(0))); before.delete(t); }
          else { store.set(msg(t, Buffer.from(`new:${f}`))); before.delete(t); }
        }
      });
      const seen = new Set<string>();
      for (const m of got) {
        assert.ok(!seen.has(m.topic), `'${f}': ${m.topic} twice (seed ${SEED})`);
        seen.add(m.topic);
        assert.ok(topicMatches(f, m.topic), `'${f}': ${m.topic} does not match`);
        assert.notEqual(Buffer.from(m.payload).toString(), `new:${f}`, `'${f}': ${m.topic} was set after the cursor opened`);
      }
      for (const [t] of before) if (topicMatches(f, t) && !touched.has(t)) assert.ok(seen.has(t), `'${f}': ${t} untouched but missing (seed ${SEED})`);
      assert.equal(cursors.size, 0);
      // The reference for the next filter: what the store now holds.
      before.clear();
      for (const m of drain(new RetainedCursors(store), '#')) before.set(m.topic, hex(m.payload));
      for (const m of drain(new RetainedCursors(store), '$s/#')) before.set(m.topic, hex(m.payload));
    }
  });

  test('pages stop at PAGE_MESSAGES messages or past PAGE_BYTES payload bytes, and resume where they stopped', () => {
    const store = new RetainedStore();
    for (let i = 0; i < 2000; i++) store.set(msg(`m/${i}`, new Uint8Array(8)));
    for (let i = 0; i < 100; i++) store.set(msg(`big/${i}`, new Uint8Array(100 * 1024)));
    const cursors = new RetainedCursors(store);
    let page = cursors.first(0, 'm/+', 1);
    assert.equal(page.msgs.length, PAGE_MESSAGES);
    let n = page.msgs.length;
    while (page.cursor !== 0) { page = cursors.next(0, page.cursor, 1); n += page.msgs.length; }
    assert.equal(n, 2000);
    page = cursors.first(0, 'big/#', 1);
    assert.equal(page.msgs.length, 3, 'three 100 KiB payloads take a page past 256 KiB');
    const rest = drain(cursors, 'big/#');
    assert.equal(rest.length, 100);
    cursors.close(0, page.cursor);
  });

  test('a cursor left unread while its level churns does not pin the Map\'s old tables, and still yields the untouched rest once', () => {
    const store = new RetainedStore();
    const N = 100_000;
    const p = new Uint8Array(8);
    for (let i = 0; i < N; i++) store.set(msg(`c/${i}`, p));
    const cursors = new RetainedCursors(store);
    const first = cursors.first(0, 'c/+', 1);
    const seen = new Set(first.msgs.map((m) => m.topic));
    gc();
    const before = process.memoryUsage().heapUsed;
    // Churn the same level a million times: each key cleared and a new one set.
    let next = N;
    for (let i = 0; i < 1_000_000; i++) {
      store.set(msg(`c/${next - N}`, new Uint8Array(0)));
      store.set(msg(`c/${next}`, p));
      next++;
    }
    gc();
    const grew = process.memoryUsage().heapUsed - before;
    assert.ok(grew < 40 * 1048576, `heap grew ${(grew / 1048576).toFixed(1)} MiB under an unread cursor (V8 keeps every rehashed table for it unless the cursor moves on)`);
    // Every original key was cleared and every new one set after the cursor opened: nothing more.
    for (let page = cursors.next(0, first.cursor, 1); ; page = cursors.next(0, first.cursor, 1)) {
      for (const m of page.msgs) { assert.ok(!seen.has(m.topic), `${m.topic} twice`); seen.add(m.topic); }
      if (page.cursor === 0) break;
    }
    assert.equal(seen.size, first.msgs.length, 'nothing set after the cursor opened, nothing cleared before the walk got there');
    assert.equal(store.openCursors, 0, 'the cursor left the store\'s list at its end');
  });

  test('properties and expiry survive the encoding; an expired message is dropped and leaves the store', () => {
    const store = new RetainedStore();
    const props = new Uint8Array([0x03, 0x00, 0x04, 0x74, 0x65, 0x78, 0x74]); // content type "text"
    store.set(msg('p/1', Buffer.from('hello'), { props, qos: 2, expiryAt: 5_000_000_000_000 }));
    store.set(msg('p/2', Buffer.from('gone'), { expiryAt: 100 }));
    store.set(msg('p/3', Buffer.from('plain'), { qos: 0 }));
    const got = drain(new RetainedCursors(store), 'p/#', 200).sort((a, b) => a.topic.localeCompare(b.topic));
    assert.equal(got.length, 2);
    assert.deepEqual([...got[0].props!], [...props]);
    assert.equal(got[0].qos, 2);
    assert.equal(got[0].expiryAt, 5_000_000_000_000);
    assert.equal(Buffer.from(got[0].payload).toString(), 'hello');
    assert.equal(got[1].props, null);
    assert.equal(got[1].qos, 0);
    assert.equal(Buffer.from(got[1].payload).toString(), 'plain');
    assert.equal(store.size, 2, 'the expired message left the store');
  });

  test('a wildcard matching 1% of 200,000 walks the matches, not the store', () => {
    const store = new RetainedStore();
    const p = new Uint8Array(32);
    for (let i = 0; i < 200_000; i++) store.set(msg(`r/${i % 100}/${i}`, p));
    const cursors = new RetainedCursors(store);
    const steps0 = store.steps;
    let page = cursors.first(0, 'r/7/+', 1);
    let pages = 1;
    let n = page.msgs.length;
    while (page.cursor !== 0) { page = cursors.next(0, page.cursor, 1); pages++; n += page.msgs.length; }
    assert.equal(n, 2000);
    assert.equal(pages, Math.ceil(2000 / PAGE_MESSAGES), 'every page but the last is full');
    assert.equal(store.steps - steps0, 2000, 'one trie step per match: r/ and 7/ are looked up, not scanned');
    assert.deepEqual(drain(cursors, 'r/100/+'), [], 'a filter that matches nothing');
    for (let i = 0; i < 200_000; i++) store.set(msg(`r/${i % 100}/${i}`, new Uint8Array(0)));
    assert.equal(store.size, 0);
    assert.deepEqual(drain(cursors, '#'), []);
  });
});
