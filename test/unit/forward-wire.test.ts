// The byte layout of a forwarded message (src/cluster/forward-wire.ts): what one node's worker
// writes, the other node's worker reads back unchanged (remaining expiry re-based on its clock),
// and bytes that do not form an entry are refused, never read past.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { wireSize, writeWire, readWire, wireQos, WIRE_HEADER } from '../../src/cluster/forward-wire';

const msg = {
  topic: Buffer.from('a/b/ü'),
  payload: Buffer.from([0, 1, 2, 250]),
  props: Buffer.from([0x03, 0x00, 0x01, 0x78]),
  qos: 2,
  retain: true,
  expiryAt: 10_000,
};

test('a wire entry reads back what was written, with the publisher client id and the remaining expiry', () => {
  const origin = 'client-ü-1';
  const ob = Buffer.byteLength(origin);
  const buf = Buffer.alloc(wireSize(msg, ob) + 8, 0xaa);
  const end = writeWire(buf, 4, msg, 4_000, origin, ob);
  assert.equal(end, 4 + wireSize(msg, ob));
  assert.equal(wireQos(buf, 4), 2);
  const r = readWire(buf, 4, end, 100_000)!;
  assert.ok(r);
  assert.deepEqual([r.topic, r.payload, r.props], [msg.topic, msg.payload, msg.props]);
  assert.equal(r.origin, origin);
  assert.equal(r.qos, 2);
  assert.equal(r.retain, true);
  assert.equal(r.expiryAt, 100_000 + 6_000, 'remaining 6 s, counted from the reader\'s clock');
  assert.equal(r.size, end - 4);
});

test('no origin, no properties, no expiry', () => {
  const m = { ...msg, props: null, expiryAt: 0, qos: 0, retain: false };
  const buf = Buffer.alloc(wireSize(m));
  writeWire(buf, 0, m, 1);
  const r = readWire(buf, 0, buf.length, 5)!;
  assert.equal(r.origin, null);
  assert.equal(r.props, null);
  assert.equal(r.expiryAt, 0);
  assert.equal(r.retain, false);
});

test('bytes that are not a whole entry are refused', () => {
  const buf = Buffer.alloc(wireSize(msg));
  writeWire(buf, 0, msg, 0);
  assert.equal(readWire(buf, 0, buf.length - 1, 0), null, 'truncated');
  assert.equal(readWire(buf, 0, WIRE_HEADER - 1, 0), null, 'shorter than a header');
  const bad = Buffer.from(buf);
  bad[0] = 3;
  assert.equal(readWire(bad, 0, bad.length, 0), null, 'QoS 3');
  const huge = Buffer.from(buf);
  huge.writeUInt32LE(0xffffffff, 8);
  assert.equal(readWire(huge, 0, huge.length, 0), null, 'a length past the end');
});
