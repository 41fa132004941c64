// Real worker_threads on one trie id: matchers must always see the stable subscriptions while a
// churner (un)subscribes overlapping filters; terminate() mid-match must not crash or leak.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import * as path from 'node:path';
import { native } from '../../src/native';
import { Trie } from '../../src/trie';

const SCRIPT = path.join(__dirname, 'trie-worker.js');
const STABLE = 16;

function run<T>(data: object): Promise<T> {
  return new Promise((resolve, reject) => {
    const w = new Worker(SCRIPT, { workerData: data });
    w.once('message', resolve);
    w.once('error', reject);
    w.once('exit', (code) => reject(new Error(`worker exited ${code} before answering`)));
  });
}

for (const cache of [true, false]) {
  test(`concurrent match + churn keeps stable subscriptions visible (cache ${cache ? 'on' : 'off'})`, async () => {
    const trie = Trie.create();
    trie.setCache(cache);
    try {
      for (let k = 0; k < STABLE; k++) trie.subscribe(`stable/${k}/#`, 1_000_000 + k, 1, k);
      const before = trie.stats();
      const g0 = trie.generation;
      const [m1, m2, c1, c2] = await Promise.all([
        run<{ errors: string[]; matched: number }>({ mode: 'match', trieId: trie.id, calls: 3000, stable: STABLE }),
        run<{ errors: string[]; matched: number }>({ mode: 'match', trieId: trie.id, calls: 3000, stable: STABLE }),
        run<{ ops: number }>({ mode: 'churn', trieId: trie.id, calls: 20000, seed: 1 }),
        run<{ ops: number }>({ mode: 'churn', trieId: trie.id, calls: 20000, seed: 2 }),
      ]);
      assert.deepEqual(m1.errors, []);
      assert.deepEqual(m2.errors, []);
      assert.equal(m1.matched, 3000 * 64);
      assert.ok(c1.ops > 20000 && c2.ops > 20000);
      assert.ok(trie.generation > g0);
      assert.deepEqual(trie.stats(), before, 'churners removed everything they added');
      assert.equal(native.epochPending(), 0, 'all retired memory reclaimed once readers are gone');
    } finally {
      trie.destroy();
    }
  });
}

test('worker.terminate() in the middle of matching: no crash, trie still consistent', async () => {
  const trie = Trie.create();
  try {
    for (let s = 0; s < 200; s++) trie.subscribe(`spin/${s % 7}/#`, s);
    trie.subscribe('spin/#', 999);
    for (let round = 0; round < 5; round++) {
      const workers = [0, 1].map(() => new Worker(SCRIPT, { workerData: { mode: 'spin', trieId: trie.id, topic: 'spin/3/z' } }));
      await Promise.all(workers.map((w) => new Promise((resolve) => w.once('message', resolve))));
      // Churn while they spin, then kill them mid-call.
      for (let i = 0; i < 200; i++) {
        trie.subscribe(`spin/${i}/q`, 5000 + i);
        trie.unsubscribe(`spin/${i}/q`, 5000 + i);
      }
      const codes = await Promise.all(workers.map((w) => w.terminate()));
      assert.deepEqual(codes, [1, 1]);
    }
    const res = trie.match(['spin/3/z'])[0]!;
    const expected = Array.from({ length: 200 }, (_, s) => s).filter((s) => s % 7 === 3).length + 1;
    assert.equal(res.length, expected);
    assert.equal(native.epochPending(), 0);
  } finally {
    trie.destroy();
  }
});

test('a trie destroyed while other threads still match it: they get an error, not a crash', async () => {
  const trie = Trie.create();
  trie.subscribe('d/#', 1);
  const w = new Worker(SCRIPT, { workerData: { mode: 'spin', trieId: trie.id, topic: 'd/x' } });
  await new Promise((resolve) => w.once('message', resolve));
  const exited = new Promise<Error>((resolve) => w.once('error', resolve));
  trie.destroy();
  const err = await exited;
  assert.match(err.message, /unknown trie id/);
});
