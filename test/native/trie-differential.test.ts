// Seeded randomized differential test: native trie vs the reference matcher. On failure the
// message carries the seed; replay with FLEETMQ_SEED=<seed>.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { Trie, SHARED_PICK_FLAG } from '../../src/trie';
import { referenceMatches, splitShare } from './reference-matcher';
import { Rng, seedFromEnv } from '../helpers/rng';

const WORDS = ['a', 'b', 'c', '', '$SYS', 'x y', '\u00e9', 'sport', 'ab'];

function randomTopic(r: () => number): string {
  const n = 1 + Math.floor(r() * 5);
  return Array.from({ length: n }, () => WORDS[Math.floor(r() * WORDS.length)]).join('/');
}

function randomFilter(r: () => number): string {
  const n = 1 + Math.floor(r() * 5);
  const levels: string[] = [];
  for (let i = 0; i < n; i++) {
    const x = r();
    if (i === n - 1 && x < 0.15) levels.push('#');
    else if (x < 0.3) levels.push('+');
    else levels.push(WORDS[Math.floor(r() * WORDS.length)]!);
  }
  const f = levels.join('/') || '/'; // an empty filter is invalid; '/' is two empty levels
  return r() < 0.1 ? `$share/g${Math.floor(r() * 3)}/${f}` : f;
}

interface Sub {
  filter: string;
  subscriber: number;
}

function check(trie: Trie, subs: Map<string, Sub>, topics: string[], seed: number, phase: string): void {
  const results = trie.match(topics);
  topics.forEach((topic, i) => {
    const got = results[i]!;
    const plain = got.filter((m) => (m.options & SHARED_PICK_FLAG) === 0).map((m) => m.subscriber).sort((a, b) => a - b);
    const picks = got.filter((m) => (m.options & SHARED_PICK_FLAG) !== 0).map((m) => m.subscriber);
    const expectPlain: number[] = [];
    const groups = new Map<string, Set<number>>();
    for (const s of subs.values()) {
      if (!referenceMatches(s.filter, topic)) continue;
      const { group, filter } = splitShare(s.filter);
      if (!group) expectPlain.push(s.subscriber);
      else {
        const key = `${group}\u0000${filter}`;
        if (!groups.has(key)) groups.set(key, new Set());
        groups.get(key)!.add(s.subscriber);
      }
    }
    expectPlain.sort((a, b) => a - b);
    const ctx = `seed=${seed} phase=${phase} topic=${JSON.stringify(topic)}`;
    assert.deepEqual(plain, expectPlain, ctx);
    assert.equal(picks.length, groups.size, `${ctx}: one pick per matching group`);
    const all = new Set([...groups.values()].flatMap((g) => [...g]));
    for (const p of picks) assert.ok(all.has(p), `${ctx}: pick ${p} not a member`);
  });
}

for (const cache of [true, false]) {
  test(`native trie matches the reference on random filters/topics (cache ${cache ? 'on' : 'off'})`, () => {
    const seed = seedFromEnv();
    const gen = new Rng(seed);
    const r = (): number => gen.next();
    const trie = Trie.create();
    trie.setCache(cache);
    try {
      const subs = new Map<string, Sub>();
      for (let i = 0; i < 2000; i++) {
        const s = { filter: randomFilter(r), subscriber: Math.floor(r() * 200) };
        const key = `${s.filter}\u0000${s.subscriber}`;
        assert.equal(trie.subscribe(s.filter, s.subscriber, 3, 0), subs.has(key) ? 0 : 1, `seed=${seed}`);
        subs.set(key, s);
      }
      const topics = Array.from({ length: 1000 }, () => randomTopic(r));
      check(trie, subs, topics, seed, 'after subscribe');
      check(trie, subs, topics, seed, 'again (cached)');
      const keys = [...subs.keys()];
      for (const key of keys) {
        if (r() < 0.5) continue;
        const s = subs.get(key)!;
        assert.equal(trie.unsubscribe(s.filter, s.subscriber), true, `seed=${seed}`);
        subs.delete(key);
      }
      check(trie, subs, topics, seed, 'after unsubscribe');
      // Few changes between matches: cached results are revalidated against the change log
      // instead of recomputed, so relevant and irrelevant changes must both be seen.
      const some = topics.slice(0, 32);
      check(trie, subs, some, seed, 'before small changes');
      for (let round = 0; round < 12; round++) {
        const changes = 1 + Math.floor(r() * 5);
        for (let c = 0; c < changes; c++) {
          const s = { filter: r() < 0.5 ? randomFilter(r) : randomTopic(r) || '/', subscriber: Math.floor(r() * 200) };
          const key = `${s.filter}\u0000${s.subscriber}`;
          if (subs.has(key)) {
            assert.equal(trie.unsubscribe(s.filter, s.subscriber), true, `seed=${seed}`);
            subs.delete(key);
          } else {
            assert.equal(trie.subscribe(s.filter, s.subscriber, round & 0x7f, 0), 1, `seed=${seed}`);
            subs.set(key, s);
          }
        }
        check(trie, subs, some, seed, `small changes round ${round}`);
      }
      const st = trie.stats();
      assert.equal(st.subscriptions, subs.size, `seed=${seed}`);
      for (const s of subs.values()) trie.unsubscribe(s.filter, s.subscriber);
      assert.deepEqual(trie.stats(), { subscriptions: 0, filters: 0, sharedGroups: 0 }, `seed=${seed}`);
    } finally {
      trie.destroy();
    }
  });
}
