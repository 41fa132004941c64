// The SPSC ring: order, wrap-around, overflow spill and wake-ups, across real threads.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { createRingBuffer, createBell, RingProducer, RingConsumer, BellWaiter } from '../../src/shared/ring';

test('records come out in order, across many wrap-arounds, with sizes that never align to the end', () => {
  const sab = createRingBuffer(1024);
  const p = new RingProducer(sab, createBell());
  const c = new RingConsumer(sab);
  let next = 0;
  let expect = 0;
  for (let round = 0; round < 2000; round++) {
    const n = 1 + (round % 7);
    for (let i = 0; i < n; i++) {
      const len = 4 + ((next * 37) % 90);
      const rec = Buffer.alloc(len, next & 0xff);
      rec.writeUInt32LE(next, 0);
      p.push(rec);
      next++;
      if (p.overflowLength > 0) break; // full: the spilled record goes first next round
    }
    p.commit();
    c.drain((data, _v, off, len) => {
      assert.equal(len, 4 + ((expect * 37) % 90), `record ${expect} length`);
      assert.equal(data.readUInt32LE(off), expect);
      expect++;
    });
  }
  assert.equal(expect, next);
  assert.ok(next > 5000);
});

test('a full ring spills to the overflow queue and delivers it later, in order', () => {
  const sab = createRingBuffer(256);
  const p = new RingProducer(sab, createBell());
  const c = new RingConsumer(sab);
  for (let i = 0; i < 50; i++) { const b = Buffer.alloc(16); b.writeUInt32LE(i, 0); p.push(b); }
  assert.ok(p.overflowLength > 0, 'some records must have spilled');
  p.commit();
  const seen: number[] = [];
  for (let k = 0; k < 50 && seen.length < 50; k++) {
    c.drain((d, _v, off) => seen.push(d.readUInt32LE(off)));
    p.commit();
  }
  assert.deepEqual(seen, Array.from({ length: 50 }, (_, i) => i));
  assert.ok(c.spilled > 0);
});

test('a producer thread and a parked consumer: every record arrives, no lost wake-up', async () => {
  const sab = createRingBuffer(4096);
  const bell = createBell();
  const c = new RingConsumer(sab);
  const waiter = new BellWaiter(bell);
  const TOTAL = 200_000;
  const src = `
    const { workerData } = require('node:worker_threads');
    const { RingProducer } = require(${JSON.stringify(require.resolve('../../src/shared/ring'))});
    const p = new RingProducer(workerData.sab, workerData.bell);
    const rec = Buffer.alloc(8);
    let i = 0;
    (function burst() {
      const end = Math.min(workerData.total, i + 1 + (i % 97));
      for (; i < end; i++) { rec.writeUInt32LE(i, 0); p.push(rec); }
      p.commit();
      if (i < workerData.total || p.overflowLength > 0) setImmediate(burst);
    })();`;
  const w = new Worker(src, { eval: true, workerData: { sab, bell, total: TOTAL } });
  let expect = 0;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`stalled at ${expect} of ${TOTAL}`)), 60_000);
    const pump = () => {
      c.drain((d, _v, off) => {
        const got = d.readUInt32LE(off);
        if (got !== expect) reject(new Error(`expected ${expect}, got ${got}`));
        expect++;
      });
      if (expect === TOTAL) { clearTimeout(timer); resolve(); return; }
      waiter.park(() => !c.isEmpty(), pump);
    };
    pump();
  });
  await w.terminate();
  assert.equal(expect, TOTAL);
});
