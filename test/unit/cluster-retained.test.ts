// The pure parts of retained replication between nodes: the hybrid logical clock
// (src/cluster/hlc.ts), the stamp inside the coordinator's encoded retained message
// (src/coordinator/retained-value.ts) and the replication frame (src/cluster/retained-wire.ts).
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { HybridClock, MAX_DRIFT_MS, nodeHash } from '../../src/cluster/hlc';
import {
  compareStamps, decodePage, encodeRetained, expiryOf, payloadOffset, stampOf, withSeq, withStamp, seqOf,
} from '../../src/coordinator/retained-value';
import { RetainedStore } from '../../src/coordinator/retained';
import { decodeFrame, encodeFrame, FRAME_END, RetainedWireError } from '../../src/cluster/retained-wire';
import type { WireMessage } from '../../src/shared/messages';

const msg = (topic: string, payload: string, extra: Partial<WireMessage> = {}): WireMessage =>
  ({ topic, payload: Buffer.from(payload), qos: 1, retain: true, props: null, expiryAt: 0, ...extra });

describe('HybridClock', () => {
  test('stamps grow while the wall clock stands still or goes back, and follow it when it moves on', () => {
    let wall = 1000;
    const c = new HybridClock('n1', () => wall);
    const a = c.now();
    const b = c.now();
    wall = 900; // a step back
    const d = c.now();
    wall = 2000;
    const e = c.now();
    assert.ok(compareStamps(b, a) > 0 && compareStamps(d, b) > 0 && compareStamps(e, d) > 0);
    assert.equal(a.t, 1000);
    assert.equal(d.t, 1000, 'never behind a stamp it made');
    assert.equal(e.t, 2000);
    assert.equal(a.c % 2 ** 32, nodeHash('n1'), 'the node hash breaks ties');
  });

  test('after observing a peer\'s stamp ahead of its wall clock, every stamp is above it', () => {
    const c1 = new HybridClock('n1', () => 5000);
    const c2 = new HybridClock('n2', () => 1000); // 4 s behind
    const s1 = c1.now();
    c2.observe(s1);
    assert.ok(compareStamps(c2.now(), s1) > 0);
  });

  test('a peer stamp further ahead than MAX_DRIFT_MS does not drag the clock', () => {
    const c = new HybridClock('n1', () => 1000);
    c.observe({ t: 1000 + MAX_DRIFT_MS + 1, c: 0 });
    assert.equal(c.now().t, 1000);
  });

  test('two nodes stamping at the same ms never produce equal stamps', () => {
    const a = new HybridClock('a', () => 7).now();
    const b = new HybridClock('b', () => 7).now();
    assert.notEqual(compareStamps(a, b), 0);
  });
});

describe('stamped retained values', () => {
  test('a stamp travels in the value without disturbing expiry, properties and payload', () => {
    const m = msg('a/b', 'payload', { expiryAt: 1_800_000_000_000, props: new Uint8Array([1, 2, 3]), qos: 2 });
    const stamp = { t: 1_700_000_000_123, c: 9 * 2 ** 32 + 77 };
    const v = encodeRetained(m, 42, stamp);
    assert.deepEqual(stampOf(v), stamp);
    assert.equal(seqOf(v), 42);
    assert.equal(expiryOf(v), m.expiryAt);
    const [d] = decodePage(['a/b'], [v]);
    assert.equal(Buffer.from(d.payload).toString(), 'payload');
    assert.deepEqual([...d.props!], [1, 2, 3]);
    assert.equal(d.qos, 2);
    assert.equal(d.expiryAt, m.expiryAt);
    assert.equal(payloadOffset(v) + 'payload'.length, v.length);
  });

  test('an unstamped value (a single node, an old data dir) has no stamp; withStamp adds or replaces one; withSeq renumbers', () => {
    const v = encodeRetained(msg('x', 'p', { expiryAt: 123 }), 5);
    assert.equal(stampOf(v), null);
    const s = withStamp(v, { t: 10, c: 20 });
    assert.deepEqual(stampOf(s), { t: 10, c: 20 });
    assert.equal(expiryOf(s), 123);
    assert.deepEqual(stampOf(withStamp(s, { t: 11, c: 0 })), { t: 11, c: 0 });
    assert.equal(seqOf(withSeq(s, 2 ** 40 + 3)), 2 ** 40 + 3);
    assert.deepEqual(stampOf(withSeq(s, 9)), { t: 10, c: 20 });
  });

  test('the store keeps stamps through set, restamp and putEncoded', () => {
    const st = new RetainedStore();
    st.set(msg('a/b', 'one'), { t: 5, c: 6 });
    assert.deepEqual(stampOf(st.valueOf('a/b')!), { t: 5, c: 6 });
    st.set(msg('a/c', 'two'));
    st.restamp('a/c', { t: 7, c: 8 });
    assert.deepEqual(stampOf(st.valueOf('a/c')!), { t: 7, c: 8 });
    st.putEncoded('z', st.valueOf('a/b')!);
    assert.equal(Buffer.from(st.get('z', Date.now())!.payload).toString(), 'one');
    assert.equal(st.valueOf('nope'), null);
    assert.equal(st.valueOf('a'), null, 'a node without its own message');
  });
});

describe('replication frames', () => {
  test('round trip: sets, tombstones, flags and the incarnations', () => {
    const body = encodeRetained(msg('t/1', 'héllo'), 1, { t: 1, c: 2 }).slice(6);
    const f = {
      flags: FRAME_END, from: 'n1', fromIncarnation: 'inc-1', toIncarnation: 'inc-2',
      entries: [{ topic: 't/ü', body }, { topic: 'gone', stamp: { t: 2 ** 47, c: 2 ** 48 - 1 } }],
    };
    assert.deepEqual(decodeFrame(encodeFrame(f)), f);
  });

  test('malformed frames throw RetainedWireError, never anything else', () => {
    const good = encodeFrame({ flags: 0, from: 'a', fromIncarnation: 'b', toIncarnation: 'c', entries: [{ topic: 'x', stamp: { t: 1, c: 1 } }] });
    for (let n = 0; n < good.length; n++) {
      // Every proper prefix but the header-only one is truncated somewhere.
      if (n === good.length - (3 + 1 + 12)) continue;
      assert.throws(() => decodeFrame(good.subarray(0, n)), RetainedWireError, `prefix ${n}`);
    }
    assert.throws(() => decodeFrame(Buffer.from([9, 0, 0, 0, 0, 0, 0, 0])), RetainedWireError);
    const bad = Buffer.from(good);
    bad[bad.length - 16] = 7; // entry kind
    assert.throws(() => decodeFrame(bad), RetainedWireError);
  });
});
