// The shared case table against the native trie (cache on and off) and the reference matcher.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { MATCH_CASES } from './topic-cases';
import { referenceMatches } from './reference-matcher';
import { Trie, SHARED_PICK_FLAG } from '../../src/trie';

test('reference matcher agrees with the case table', () => {
  for (const [filter, topic, expected] of MATCH_CASES) {
    assert.equal(referenceMatches(filter, topic), expected, `${filter} vs ${topic}`);
  }
});

for (const cache of [true, false]) {
  test(`native trie agrees with the case table (cache ${cache ? 'on' : 'off'})`, () => {
    const trie = Trie.create();
    try {
      trie.setCache(cache);
      MATCH_CASES.forEach(([filter], i) => assert.equal(trie.subscribe(filter, i, 1, i + 100), 1, filter));
      const topics = [...new Set(MATCH_CASES.map((c) => c[1]))];
      // Twice: the second round is served from the cache when it is on.
      for (let round = 0; round < 2; round++) {
        const results = trie.match(topics);
        MATCH_CASES.forEach(([filter, topic, expected], i) => {
          const got = results[topics.indexOf(topic)]!.filter((m) => m.subscriber === i);
          assert.equal(got.length, expected ? 1 : 0, `${filter} vs ${topic} (round ${round})`);
          if (expected) {
            const shared = filter.startsWith('$share/');
            assert.equal(got[0]!.options, shared ? 1 | SHARED_PICK_FLAG : 1);
            assert.equal(got[0]!.subscriptionId, i + 100);
          }
        });
      }
    } finally {
      trie.destroy();
    }
  });
}

test('subscribe replaces options and subscription id of an existing subscription', () => {
  const trie = Trie.create();
  try {
    assert.equal(trie.subscribe('a/+', 7, 1, 11), 1);
    const g = trie.generation;
    assert.equal(trie.subscribe('a/+', 7, 2, 22), 0);
    assert.ok(trie.generation > g, 'generation moves on replace');
    assert.deepEqual(trie.match(['a/b'])[0], [{ subscriber: 7, options: 2, subscriptionId: 22 }]);
    assert.deepEqual(trie.stats(), { subscriptions: 1, filters: 1, sharedGroups: 0 });
  } finally {
    trie.destroy();
  }
});

test('a subscriber with several matching filters appears once per filter', () => {
  const trie = Trie.create();
  try {
    trie.subscribe('a/#', 5);
    trie.subscribe('a/+', 5);
    trie.subscribe('a/b', 5);
    trie.subscribe('a/c', 5);
    assert.equal(trie.match(['a/b'])[0]!.length, 3);
  } finally {
    trie.destroy();
  }
});

test('unsubscribe removes exactly one subscription and prunes the path', () => {
  const trie = Trie.create();
  try {
    trie.subscribe('x/y/z', 1);
    trie.subscribe('x/y/z', 2);
    trie.subscribe('$share/g/x/y/z', 3);
    assert.equal(trie.unsubscribe('x/y/z', 9), false);
    assert.equal(trie.unsubscribe('x/y', 1), false);
    assert.equal(trie.unsubscribe('x/y/z', 1), true);
    assert.equal(trie.unsubscribe('x/y/z', 1), false);
    assert.deepEqual(trie.match(['x/y/z'])[0]!.map((m) => m.subscriber).sort(), [2, 3]);
    assert.equal(trie.unsubscribe('$share/h/x/y/z', 3), false, 'other group');
    assert.equal(trie.unsubscribe('$share/g/x/y/z', 3), true);
    assert.deepEqual(trie.stats(), { subscriptions: 1, filters: 1, sharedGroups: 0 });
    assert.equal(trie.unsubscribe('x/y/z', 2), true);
    assert.deepEqual(trie.stats(), { subscriptions: 0, filters: 0, sharedGroups: 0 });
    assert.deepEqual(trie.match(['x/y/z']), [[]]);
  } finally {
    trie.destroy();
  }
});

test('invalid filters are refused with -code, topics with bad spans throw RangeError', () => {
  const trie = Trie.create();
  try {
    assert.equal(trie.subscribe('a/#/b', 1), -5);
    assert.equal(trie.subscribe('$share//a', 1), -7);
    assert.equal(trie.unsubscribe('a/#/b', 1), false);
    const out = new Uint32Array(8);
    assert.throws(() => require('../../src/native').native.trieMatch(trie.id, Buffer.from('ab'), new Uint32Array([1, 5]), 1, out), RangeError);
    assert.throws(() => require('../../src/native').native.trieMatch(trie.id, Buffer.from('ab'), new Uint32Array([0, 1]), 2, out), RangeError);
  } finally {
    trie.destroy();
  }
});

test('too small output returns -needed, the retry succeeds, and matches from a SharedArrayBuffer', () => {
  const { native } = require('../../src/native') as typeof import('../../src/native');
  const trie = Trie.create();
  try {
    for (let s = 0; s < 10; s++) trie.subscribe('t/#', s);
    const sab = new SharedArrayBuffer(64);
    const buf = Buffer.from(sab, 8, 32);
    buf.write('t/1t/2');
    const spans = new Uint32Array([0, 3, 3, 3]);
    const small = new Uint32Array(4);
    const needed = native.trieMatch(trie.id, buf, spans, 2, small);
    assert.equal(needed, -(2 * (1 + 30)));
    const out = new Uint32Array(-needed);
    assert.equal(native.trieMatch(trie.id, buf, spans, 2, out), -needed);
    assert.equal(out[0], 10);
    assert.equal(out[31], 10);
  } finally {
    trie.destroy();
  }
});

test('trie ids are independent and never reused; destroyed ids throw', () => {
  const a = Trie.create();
  const b = Trie.create();
  a.subscribe('x', 1);
  assert.deepEqual(b.match(['x']), [[]]);
  assert.equal(a.destroy(), true);
  assert.equal(a.destroy(), false);
  const c = Trie.create();
  assert.notEqual(c.id, a.id);
  assert.throws(() => a.match(['x']), /unknown trie id/);
  b.destroy();
  c.destroy();
});

test('generation moves on every change and retired memory is reclaimed', () => {
  const { native } = require('../../src/native') as typeof import('../../src/native');
  const trie = Trie.create();
  try {
    let g = trie.generation;
    for (let i = 0; i < 2000; i++) {
      trie.subscribe(`r/${i % 50}/+/${i}`, i);
      assert.ok(trie.generation > g);
      g = trie.generation;
      trie.match([`r/${i % 50}/q/${i}`]);
      trie.unsubscribe(`r/${i % 50}/+/${i}`, i);
    }
    // No reader is pinned now, so one pass frees everything retired.
    assert.equal(native.epochPending(), 0);
  } finally {
    trie.destroy();
  }
});

test('a zero-length topic span (even over an empty buffer) is matched, not rejected', () => {
  const { native } = require('../../src/native') as typeof import('../../src/native');
  const trie = Trie.create();
  try {
    trie.subscribe('+', 1);
    const out = new Uint32Array(8);
    // One empty level: '+' matches it; the caller validates names before matching.
    assert.equal(native.trieMatch(trie.id, Buffer.alloc(0), new Uint32Array([0, 0]), 1, out), 4);
    assert.deepEqual([...out.slice(0, 4)], [1, 1, 0, 0]);
  } finally {
    trie.destroy();
  }
});

for (const cache of [true, false]) {
  test(`results stay exact across a few changes, relevant or not (cache ${cache ? 'on' : 'off'})`, () => {
    const trie = Trie.create();
    try {
      trie.setCache(cache);
      trie.subscribe('a/b', 1);
      const subsOf = () => trie.match(['a/b', 'x/y'])[0]!.map((m) => `${m.subscriber}:${m.options}`).sort();
      assert.deepEqual(subsOf(), ['1:0']);
      trie.subscribe('x/+', 2); // cannot match a/b
      assert.deepEqual(subsOf(), ['1:0']);
      trie.subscribe('a/+', 3);
      assert.deepEqual(subsOf(), ['1:0', '3:0']);
      trie.subscribe('x/y', 4);
      trie.subscribe('a/b', 1, 2); // options replaced
      assert.deepEqual(subsOf(), ['1:2', '3:0']);
      trie.subscribe('#', 5);
      trie.unsubscribe('a/+', 3);
      assert.deepEqual(subsOf(), ['1:2', '5:0']);
      trie.subscribe('$share/g/a/#', 6);
      assert.deepEqual(subsOf(), ['1:2', '5:0', `6:${SHARED_PICK_FLAG}`]);
      trie.unsubscribe('$share/g/a/#', 6);
      assert.deepEqual(subsOf(), ['1:2', '5:0']);
      for (let i = 0; i < 40; i++) trie.subscribe(`z/${i}`, 9); // more changes than the log check covers
      trie.unsubscribe('#', 5);
      assert.deepEqual(subsOf(), ['1:2']);
    } finally {
      trie.destroy();
    }
  });
}
