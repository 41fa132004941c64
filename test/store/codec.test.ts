// Key layout and value codecs of the RocksDB store: ranges must sort and isolate correctly,
// values must round-trip, and every damaged value must fail loudly rather than decode wrong.
import { describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as codec from '../../src/store/codec';
import type { InflightEntry, StoredSession } from '../../src/store/types';
import { fullProps, message, session, sub } from './helpers';

const cmp = (a: Buffer, b: Buffer) => Buffer.compare(a, b);

function inRange(key: Buffer, prefix: Buffer): boolean {
  return cmp(key, prefix) >= 0 && cmp(key, codec.prefixEnd(prefix)) < 0;
}

describe('store codec: keys', () => {
  test('queue keys sort by sequence number across byte boundaries', () => {
    const seqs = [1n, 255n, 256n, 65535n, 65536n, 2n ** 40n, 2n ** 64n - 1n];
    const keys = seqs.map((s) => codec.queueKey('c', s));
    assert.deepEqual([...keys].sort(cmp), keys);
    for (const k of keys) assert.equal(codec.parseSeq(codec.parseClientKey(k).rest), seqs[keys.indexOf(k)]);
  });

  test('one client\'s range never contains another client\'s keys, whatever the ids', () => {
    const ids = ['a', 'ab', 'a/b', '', 'ü', 'a\u0000b', 'x'.repeat(300)];
    for (const a of ids) {
      const prefix = codec.clientPrefix(codec.T_QUEUE, a);
      for (const b of ids) {
        const key = codec.queueKey(b, 7n);
        assert.equal(inRange(key, prefix), a === b, `${JSON.stringify(a)} vs ${JSON.stringify(b)}`);
        assert.equal(codec.parseClientKey(key).clientId, b);
      }
    }
  });

  test('subscription keys keep the filter verbatim', () => {
    const key = codec.subscriptionKey('c', '$share/g/+/#');
    const { clientId, rest } = codec.parseClientKey(key);
    assert.equal(clientId, 'c');
    assert.equal(rest.toString(), '$share/g/+/#');
  });

  test('each type is its own range', () => {
    const keys = [
      codec.sessionKey('c'), codec.subscriptionKey('c', 'f'), codec.queueKey('c', 1n), codec.inflightKey('c', 1),
      codec.inboundKey('c', 1), codec.messageKey(1n), codec.retainedKey('t'), codec.versionKey(),
    ];
    assert.equal(new Set(keys.map((k) => k[0])).size, keys.length);
  });
});

describe('store codec: values', () => {
  const will = { topic: 'w', payload: Buffer.from('bye'), qos: 1 as const, retain: true, properties: fullProps, delayInterval: 5 };
  const sessions: StoredSession[] = [
    session('c'), session('c', { protocolVersion: 3, sessionExpiryInterval: 0xffffffff, disconnectedAt: 2 ** 47 }),
    session('c', { will, disconnectedAt: 1 }),
  ];
  const inflight: InflightEntry[] = [
    { packetId: 1, messageId: 2n ** 63n, qos: 1, state: 'publish', dup: true, retain: true, subscriptionIdentifiers: [1, 268435455] },
    { packetId: 65535, messageId: null, qos: 2, state: 'pubrel', dup: false, retain: false, subscriptionIdentifiers: [] },
  ];
  const subs = [sub('c', 'f'), sub('c', 'f', { qos: 2, noLocal: true, retainAsPublished: true, retainHandling: 2, subscriptionIdentifier: 9 })];
  const messages = [message('t', ''), message('a/b', 'x'.repeat(1000), { qos: 2, retain: true, properties: fullProps })];
  const queue = { messageId: 42n, qos: 2 as const, retain: true, subscriptionIdentifiers: [3, 4] };

  /** Every encoded sample with its decoder. */
  const samples: Array<[string, Buffer, (b: Buffer) => unknown, unknown]> = [
    ...sessions.map((s): [string, Buffer, (b: Buffer) => unknown, unknown] => ['session', codec.encodeSession(s), (b) => codec.decodeSession('c', b), s]),
    ...inflight.map((e): [string, Buffer, (b: Buffer) => unknown, unknown] => ['inflight', codec.encodeInflight(e), (b) => codec.decodeInflight(e.packetId, b), e]),
    ...subs.map((s): [string, Buffer, (b: Buffer) => unknown, unknown] => ['sub', codec.encodeSubscription(s), (b) => codec.decodeSubscription('c', s.filter, b), s]),
    ...messages.map((m): [string, Buffer, (b: Buffer) => unknown, unknown] => ['message', codec.encodeMessage(m), codec.decodeMessage, m]),
    ['queue', codec.encodeQueueEntry(queue), codec.decodeQueueEntry, queue],
    ['version', codec.encodeVersion(1), codec.decodeVersion, 1],
  ];

  test('every value round-trips', () => {
    for (const [name, bytes, decode, value] of samples) assert.deepEqual(decode(bytes), value, name);
  });

  test('a QoS 1 message with a short topic and no properties costs 9 bytes over topic + payload', () => {
    const m = message('sensors/1/temp', 'x'.repeat(64));
    assert.equal(codec.encodeMessage(m).length, 1 + 6 + 2 + 14 + 1 + 64);
    assert.equal(codec.encodeQueueEntry({ messageId: 1n, qos: 1, retain: false, subscriptionIdentifiers: [] }).length, 11);
  });

  test('every truncation of a fixed-length value fails to decode', () => {
    for (const [name, bytes, decode] of samples) {
      if (name === 'message') continue; // the payload is "the rest": only header truncations fail
      for (let n = 0; n < bytes.length; n++) {
        assert.throws(() => decode(bytes.subarray(0, n)), codec.DecodeError, `${name} cut to ${n} bytes`);
      }
    }
    assert.throws(() => codec.decodeMessage(Buffer.from([1, 0, 0])), codec.DecodeError);
  });

  test('trailing bytes and impossible flags fail to decode', () => {
    for (const [name, bytes, decode] of samples) {
      if (name === 'message') continue;
      assert.throws(() => decode(Buffer.concat([bytes, Buffer.from([0])])), codec.DecodeError, name);
    }
    assert.throws(() => codec.decodeSession('c', Buffer.from([9, 0, 0, 0, 0, 0])), /protocol version 9/);
    assert.throws(() => codec.decodeSubscription('c', 'f', Buffer.from([3, 0, 0, 0, 0])), /QoS 3/);
    assert.throws(() => codec.decodeInflight(1, Buffer.from([0, 0, 0])), /in-flight flags/);
    assert.throws(() => codec.decodeMessage(Buffer.from([0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0])), /message flags/);
  });

  test('strings over the MQTT limit are refused when encoding', () => {
    assert.throws(() => codec.encodeMessage(message('t'.repeat(65536), '')), RangeError);
  });
});
