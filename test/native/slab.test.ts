// Payload slab: layout mirror, alloc/release, stale handles, JS Atomics release, and real
// worker_threads holding handles across terminate().
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import * as path from 'node:path';
import { native } from '../../src/native';
import * as L from '../../src/slab-layout';

const SCRIPT = path.join(__dirname, 'slab-worker.js');
// Small classes so "full" is reachable; one slab per process (this file is its own process).
const sab = L.createSlabBuffer([
  { size: 64, count: 40 },
  { size: 512, count: 8 },
]);
const words = new Int32Array(sab);
const bytes = Buffer.from(sab);
const me = native.slabAttach(new Uint8Array(sab));

const maskOf = (holders: number[]): [number, number] => {
  let lo = 0;
  let hi = 0;
  for (const h of holders) {
    if (h < 32) lo |= 1 << h;
    else hi |= 1 << (h - 32);
  }
  return [lo >>> 0, hi >>> 0];
};

function alloc(n: number, size: number, holders: number[]): { handles: number[]; offsets: number[] } {
  const req = new Uint32Array(3 * n);
  for (let i = 0; i < n; i++) req.set([size, ...maskOf(holders)], 3 * i);
  const out = new Uint32Array(2 * n);
  const got = native.slabAlloc(req, n, out);
  const handles: number[] = [];
  const offsets: number[] = [];
  for (let i = 0; i < got; i++) {
    handles.push(out[2 * i]!);
    offsets.push(out[2 * i + 1]!);
  }
  return { handles, offsets };
}

const release = (handles: number[]) => native.slabRelease(Uint32Array.from(handles), handles.length);
const inUse = () => native.slabStats().inUse.reduce((a, b) => a + b, 0);

function spawn(): Promise<{ w: Worker; holder: number }> {
  const w = new Worker(SCRIPT, { workerData: { sab } });
  return new Promise((resolve, reject) => {
    w.once('message', (m: { holder: number }) => resolve({ w, holder: m.holder }));
    w.once('error', reject);
  });
}

const ask = <T>(w: Worker, msg: object): Promise<T> =>
  new Promise((resolve) => {
    w.once('message', resolve);
    w.postMessage(msg);
  });

test('native layout constants mirror src/slab-layout.ts', () => {
  for (const [k, v] of Object.entries(native.slabLayout)) {
    assert.equal((L as unknown as Record<string, number>)[k], v, k);
  }
  assert.ok(Object.keys(native.slabLayout).length > 20);
});

test('alloc, write through a zero-copy view, release; the slot comes back', () => {
  assert.equal(native.slabHolder(), me);
  const { handles, offsets } = alloc(3, 60, [me]);
  assert.equal(handles.length, 3);
  assert.equal(new Set(offsets).size, 3);
  handles.forEach((h, i) => bytes.writeUInt32LE(h, offsets[i]!));
  assert.equal(inUse(), 3);
  assert.equal(release(handles), 3);
  assert.equal(inUse(), 0);
});

test('a stale handle is refused and does not touch the slot that reuses its memory', () => {
  const first = alloc(40, 64, [me]);
  assert.equal(release(first.handles), 40);
  const second = alloc(40, 64, [me]);
  // Same slots, new generations.
  assert.deepEqual([...second.offsets].sort(), [...first.offsets].sort());
  assert.equal(release(first.handles), 0, 'stale handles');
  assert.equal(release(first.handles.map(() => 0)), 0, 'handle 0 is never valid');
  assert.equal(inUse(), 40);
  assert.equal(release(second.handles), 40);
  assert.equal(release(second.handles), 0, 'double release');
  assert.equal(inUse(), 0);
});

test('a full class spills into the next one, then allocation stops', () => {
  const a = alloc(60, 10, [me]);
  assert.equal(a.handles.length, 48, '40 small + 8 spilled into 512');
  assert.equal(alloc(1, 600, [me]).handles.length, 0, 'larger than any class');
  assert.equal(release(a.handles), 48);
  assert.equal(inUse(), 0);
});

test('alloc refuses an unregistered holder or an empty holder set', () => {
  const other = me === 63 ? 62 : 63;
  assert.equal(alloc(1, 8, [other]).handles.length, 0);
  assert.equal(alloc(1, 8, []).handles.length, 0);
  assert.equal(inUse(), 0);
});

test('JS Atomics release is equivalent to slabRelease', () => {
  const { handles } = alloc(5, 8, [me]);
  for (const h of handles) assert.equal(L.releaseWithAtomics(words, h, me), true);
  for (const h of handles) assert.equal(L.releaseWithAtomics(words, h, me), false, 'stale');
  assert.equal(inUse(), 0);
  const again = alloc(2, 8, [me]);
  assert.equal(L.slotDataOffset(words, L.handleSlot(again.handles[0]!)), again.offsets[0]);
  assert.equal(release(again.handles), 2);
});

test('fan-out to workers: zero-copy reads, each releases its own ref, the last frees', async () => {
  const a = await spawn();
  const b = await spawn();
  try {
    assert.equal(native.slabStats().holders, 3);
    const { handles, offsets } = alloc(10, 64, [a.holder, b.holder]);
    handles.forEach((h, i) => {
      bytes.writeUInt32LE(h, offsets[i]!);
      bytes[offsets[i]! + 63] = 0xab;
    });
    assert.deepEqual(await ask(a.w, { cmd: 'check', handles, offsets, len: 64 }), { ok: true });
    assert.equal(release(handles), 0, 'main is not a holder');
    assert.deepEqual(await ask(a.w, { cmd: 'release', handles }), { released: 10 });
    assert.equal(inUse(), 10);
    assert.deepEqual(await ask(b.w, { cmd: 'release', handles }), { released: 10 });
    assert.equal(inUse(), 0);
  } finally {
    await a.w.terminate();
    await b.w.terminate();
  }
  assert.equal(native.slabStats().holders, 1);
});

test('worker.terminate() while holding handles: its cleanup hook releases them', async () => {
  const a = await spawn();
  const { handles } = alloc(20, 64, [me, a.holder]);
  assert.equal(release(handles), 20);
  assert.equal(inUse(), 20, 'the worker still holds them');
  await a.w.terminate();
  assert.equal(inUse(), 0);
  assert.equal(native.slabStats().holders, 1);
});

test('worker.terminate() in the middle of alloc/release loops: no crash, nothing leaks', async () => {
  for (let round = 0; round < 5; round++) {
    const ws = await Promise.all([spawn(), spawn()]);
    await Promise.all(ws.map((x) => ask(x.w, { cmd: 'churn' })));
    await Promise.all(ws.map((x) => x.w.terminate()));
    assert.equal(inUse(), 0, `round ${round}`);
    assert.equal(native.slabStats().holders, 1);
  }
});
