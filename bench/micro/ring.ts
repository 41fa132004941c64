// SPSC ring push/pop across two threads (src/shared/ring.ts): records per second for 64-byte
// records with the tail published once per batch (src/README.md, "Measured": 3-6M/s per record and
// 7-10M/s per 64), and the same in one thread (no cache-line traffic) as the ceiling.
//
//   npm run bench:micro            (all micro-benchmarks)
//   node dist/bench/micro/ring.js  (this file alone)
import { Worker } from 'node:worker_threads';
import { createRingBuffer, createBell, RingProducer, RingConsumer } from '../../src/shared/ring';

const RECORD = 64;
const TOTAL = 2_000_000;

function sameThread(batch: number): number {
  const sab = createRingBuffer(1 << 20);
  const p = new RingProducer(sab, createBell());
  const c = new RingConsumer(sab);
  const rec = Buffer.alloc(RECORD, 1);
  const start = process.hrtime.bigint();
  let got = 0;
  for (let i = 0; i < TOTAL; i += batch) {
    for (let k = 0; k < batch; k++) p.push(rec);
    p.commit();
    got += c.drain(() => undefined);
  }
  const s = Number(process.hrtime.bigint() - start) / 1e9;
  return got / s;
}

function crossThread(batch: number): Promise<number> {
  const sab = createRingBuffer(1 << 20);
  const bell = createBell();
  const c = new RingConsumer(sab);
  const src = `
    const { workerData, parentPort } = require('node:worker_threads');
    const { RingProducer } = require(${JSON.stringify(require.resolve('../../src/shared/ring'))});
    const p = new RingProducer(workerData.sab, workerData.bell);
    const rec = Buffer.alloc(${RECORD}, 1);
    let i = 0;
    parentPort.once('message', () => {
      while (i < ${TOTAL}) {
        for (let k = 0; k < workerData.batch; k++, i++) { const at = p.reserve(${RECORD}); if (at < 0) { i--; k--; p.commit(); continue; } rec.copy(p.bytes, at); }
        p.commit();
      }
    });`;
  const w = new Worker(src, { eval: true, workerData: { sab, bell, batch } });
  return new Promise((resolve) => {
    w.once('online', () => {
      let got = 0;
      const start = process.hrtime.bigint();
      w.postMessage('go');
      while (got < TOTAL) got += c.drain(() => undefined);
      const s = Number(process.hrtime.bigint() - start) / 1e9;
      void w.terminate().then(() => resolve(got / s));
    });
  });
}

async function main(): Promise<void> {
  const rows: Array<[string, number]> = [];
  for (const batch of [1, 64]) rows.push([`same thread, commit per ${batch}`, sameThread(batch)]);
  for (const batch of [1, 64]) rows.push([`producer thread → consumer thread, commit per ${batch}`, await crossThread(batch)]);
  console.log(`ring push/pop, ${RECORD}-byte records, ${TOTAL / 1e6}M each (the consumer spins: an upper bound)`);
  for (const [name, rate] of rows) console.log(`  ${name.padEnd(56)} ${(rate / 1e6).toFixed(2)} M records/s`);
}

void main();
