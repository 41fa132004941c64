// The session queue's compact storage (workers/session/queue.ts) against a plain array of the
// same deliveries: random pushes, drops and takes (with wrap-around, growth and emptying), every
// taken delivery byte-equal to what went in, in order; and the deadline heap
// (workers/session/deadline-heap.ts): every deadline once, in due order, never early.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SessionQueue } from '../../workers/session/queue';
import { Message } from '../../workers/protocol/message';
import { Deadline, DeadlineHeap } from '../../workers/session/deadline-heap';

function rnd(seed: number): () => number {
  let x = seed >>> 0;
  return () => { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; return x / 0x100000000; };
}

test('SessionQueue: random push / drop / take match a reference array, across wrap-around, growth and emptying', () => {
  const r = rnd(7);
  const q = new SessionQueue();
  const ref: { msg: Message; qos: number; retain: boolean; subIds: number[] | null; msgId: number; seq: number }[] = [];
  let made = 0;
  for (let step = 0; step < 200_000; step++) {
    const p = r();
    if (p < 0.5 || ref.length === 0) {
      const n = made++;
      const big = r() < 0.02;
      const payload = Buffer.alloc(big ? 3000 + Math.floor(r() * 5000) : Math.floor(r() * 200), n & 0xff);
      const props = r() < 0.3 ? Buffer.from([0x01, n & 1]) : null;
      const msg = new Message(Buffer.from(`t/${n}`), payload, Math.floor(r() * 3), r() < 0.5, props, r() < 0.1 ? 1e12 + n : 0, n);
      const e = { msg, qos: Math.floor(r() * 3), retain: r() < 0.5, subIds: r() < 0.1 ? [n, n + 1] : null, msgId: r() < 0.5 ? n + 1 : 0, seq: n + 1 };
      assert.ok(q.push(e.msg, e.qos, e.retain, e.subIds, e.msgId, e.seq, null));
      ref.push(e);
    } else if (p < 0.6) {
      const e = ref.shift()!;
      assert.equal(q.headSeq, e.seq);
      q.drop();
    } else {
      const e = ref.shift()!;
      assert.equal(q.headQos, e.qos);
      assert.equal(q.headExpiryAt, e.msg.expiryAt);
      const o = q.take();
      assert.deepEqual(o.msg!.topic, e.msg.topic);
      assert.deepEqual(o.msg!.payload, e.msg.payload);
      assert.deepEqual(o.msg!.props, e.msg.props);
      assert.equal(o.msg!.qos, e.msg.qos);
      assert.equal(o.msg!.retain, e.msg.retain);
      assert.equal(o.msg!.origin, e.msg.origin);
      assert.equal(o.qos, e.qos);
      assert.equal(o.retain, e.retain);
      assert.deepEqual(o.subIds, e.subIds);
      assert.equal(o.msgId, e.msgId);
      assert.equal(o.seq, e.seq);
    }
    assert.equal(q.length, ref.length);
    assert.equal(q.bytes, ref.reduce((a, e) => a + e.msg.size, 0) || 0);
    if (step % 50_000 === 0) while (ref.length) { ref.shift(); q.drop(); }
  }
});

test('DeadlineHeap: fires each deadline once, in order, never before it is due; cancel and move work', async () => {
  const fired: number[] = [];
  const firedAt: number[] = [];
  let size = 0;
  const heap = new DeadlineHeap((d) => { size += d; });
  const r = rnd(3);
  const ds: Deadline[] = [];
  const due = new Map<number, number>();
  const N = 5000;
  for (let i = 0; i < N; i++) {
    const d = new Deadline(() => {
      const now = Date.now();
      assert.ok(due.get(i)! <= now && ds[i].at <= now, `deadline ${i} fired at ${now}, due ${ds[i].at}`);
      fired.push(i);
      firedAt.push(ds[i].at);
    });
    ds.push(d);
    const ms = Math.floor(r() * 300);
    due.set(i, Date.now() + ms);
    heap.schedule(d, ms);
  }
  for (let i = 0; i < N; i += 7) { heap.cancel(ds[i]); due.delete(i); }
  for (let i = 3; i < N; i += 11) { if (!due.has(i)) continue; due.set(i, Date.now() + 400); heap.schedule(ds[i], 400); }
  assert.equal(heap.size, due.size);
  assert.equal(size, due.size);
  const deadline = Date.now() + 10_000;
  while (fired.length < due.size && Date.now() < deadline) await new Promise((res) => setTimeout(res, 20));
  heap.close();
  assert.equal(fired.length, due.size, 'every deadline fired');
  assert.equal(new Set(fired).size, fired.length, 'each once');
  // In order of the times the heap holds (the test's own clock reading before each schedule may
  // be earlier than the heap's by however long this thread was descheduled in between).
  for (let k = 1; k < firedAt.length; k++) assert.ok(firedAt[k - 1] <= firedAt[k], `in order of their due times: ${firedAt[k - 1]} then ${firedAt[k]}`);
  assert.equal(size, 0);
  assert.equal(heap.size, 0);
});
