// Shared subscriptions: exactly one member per matching group per topic, round-robin across
// calls and across threads (one atomic cursor per group).
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import * as path from 'node:path';
import { Trie, SHARED_PICK_FLAG } from '../../src/trie';

function picks(trie: Trie, topic: string, calls: number): Map<number, number> {
  const counts = new Map<number, number>();
  for (let i = 0; i < calls; i++) {
    const res = trie.match([topic])[0]!.filter((m) => m.options & SHARED_PICK_FLAG);
    assert.equal(res.length, 1);
    counts.set(res[0]!.subscriber, (counts.get(res[0]!.subscriber) ?? 0) + 1);
  }
  return counts;
}

test('round-robin across calls: each member picked equally', () => {
  const trie = Trie.create();
  try {
    for (const s of [10, 11, 12]) trie.subscribe('$share/g/job/+', s, 1);
    trie.subscribe('job/x', 99);
    const counts = picks(trie, 'job/x', 300);
    assert.deepEqual([...counts.entries()].sort(), [[10, 100], [11, 100], [12, 100]]);
  } finally {
    trie.destroy();
  }
});

test('two groups on one filter and one group on two filters are distinct groups', () => {
  const trie = Trie.create();
  try {
    trie.subscribe('$share/a/t/#', 1);
    trie.subscribe('$share/a/t/#', 2);
    trie.subscribe('$share/b/t/#', 3);
    trie.subscribe('$share/a/t/+', 4);
    assert.equal(trie.stats().sharedGroups, 3);
    const res = trie.match(['t/x'])[0]!;
    assert.equal(res.length, 3);
    assert.ok(res.every((m) => m.options & SHARED_PICK_FLAG));
    const subs = res.map((m) => m.subscriber).sort();
    assert.ok(subs.includes(3) && subs.includes(4) && (subs.includes(1) || subs.includes(2)));
  } finally {
    trie.destroy();
  }
});

test('membership changes keep the distribution within the group', () => {
  const trie = Trie.create();
  try {
    trie.subscribe('$share/g/q', 1);
    trie.subscribe('$share/g/q', 2);
    picks(trie, 'q', 7);
    trie.unsubscribe('$share/g/q', 1);
    assert.deepEqual([...picks(trie, 'q', 5).keys()], [2]);
    trie.subscribe('$share/g/q', 3);
    const c = picks(trie, 'q', 10);
    assert.equal(c.get(2), 5);
    assert.equal(c.get(3), 5);
  } finally {
    trie.destroy();
  }
});

test('round-robin across worker threads sharing one trie id', async () => {
  const trie = Trie.create();
  try {
    for (const s of [1, 2, 3, 4]) trie.subscribe('$share/w/load', s);
    const script = path.join(__dirname, 'trie-worker.js');
    const run = () =>
      new Promise<Record<string, number>>((resolve, reject) => {
        const w = new Worker(script, { workerData: { mode: 'picks', trieId: trie.id, topic: 'load', calls: 1000 } });
        w.once('message', resolve);
        w.once('error', reject);
      });
    const results = await Promise.all([run(), run()]);
    const total = new Map<number, number>();
    for (const r of results) for (const [k, v] of Object.entries(r)) total.set(Number(k), (total.get(Number(k)) ?? 0) + v);
    // 2000 picks from one atomic cursor over 4 members: exactly 500 each, whatever the interleaving.
    assert.deepEqual([...total.entries()].sort(), [[1, 500], [2, 500], [3, 500], [4, 500]]);
  } finally {
    trie.destroy();
  }
});
