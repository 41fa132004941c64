// Retained updates packed worker → coordinator (src/shared/retained-batch.ts): what goes in
// comes out, in order — topics in UTF-8, properties, expiry, QoS, empty payloads (clears) —
// and the buffer grows past its first size.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RetainedBatchWriter, readRetainedBatch } from '../../src/shared/retained-batch';
import type { WireMessage } from '../../src/shared/messages';

test('a packed batch reads back message for message', () => {
  const w = new RetainedBatchWriter();
  const msgs: WireMessage[] = [
    { topic: 'a/ünï/€', payload: new Uint8Array([1, 2, 3]), qos: 2, retain: true, props: new Uint8Array([0x03, 0, 1, 0x41]), expiryAt: 4_102_444_800_000 },
    { topic: 'cleared', payload: new Uint8Array(0), qos: 0, retain: true, props: null, expiryAt: 0 },
    { topic: 'big', payload: new Uint8Array(100_000).fill(7), qos: 1, retain: true, props: null, expiryAt: 0 },
  ];
  for (let i = 0; i < 1000; i++) msgs.push({ topic: `n/${i}`, payload: Buffer.from(String(i)), qos: i % 3, retain: true, props: null, expiryAt: 0 });
  for (const m of msgs) w.add(m);
  assert.equal(w.count, msgs.length);
  const got: WireMessage[] = [];
  readRetainedBatch(w.take(), (m) => got.push(m));
  assert.equal(got.length, msgs.length);
  for (let i = 0; i < msgs.length; i++) {
    const a = msgs[i], b = got[i];
    assert.equal(b.topic, a.topic);
    assert.deepEqual([...b.payload], [...a.payload], `payload of ${a.topic}`);
    assert.equal(b.qos, a.qos);
    assert.equal(b.expiryAt, a.expiryAt);
    assert.deepEqual(b.props ? [...b.props] : null, a.props ? [...a.props] : null);
  }
});

test('a truncated batch is an error, not a crash or a wrong message', () => {
  const w = new RetainedBatchWriter();
  w.add({ topic: 't', payload: new Uint8Array(10), qos: 0, retain: true, props: null, expiryAt: 0 });
  const bytes = w.take();
  assert.throws(() => readRetainedBatch(bytes.subarray(0, bytes.length - 3), () => undefined), /truncated/);
});
