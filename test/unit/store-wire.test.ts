// Store requests over the worker → coordinator store ring: every op kind round-trips, and a
// request larger than a record, or than the whole ring, arrives whole and in order once the
// consumer drains (the producer's overflow queue holds what did not fit).
import { describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { createRingBuffer, createBell } from '../../src/shared/ring';
import { RequestWriter, decodeRequest, CHUNK_BYTES } from '../../src/shared/store-wire';
import { StoreLink } from '../../workers/persist/store-link';
import { StoreInbox } from '../../src/coordinator/store-inbox';
import type { StoreOp } from '../../src/shared/messages';

const message = (payload: Buffer, properties = {}) => ({ topic: 'a/b', payload, qos: 1 as const, retain: false, properties, publishedAt: 1_700_000_000_123 });

const ALL: StoreOp[] = [
  { o: 'publish', msg: message(Buffer.from('hello')), targets: [{ sub: 7, qos: 1, retain: false, subIds: [] }] },
  { o: 'publish', id: 42, msg: message(Buffer.from('x'), { expiresAt: 1_800_000_000_000 }),
    targets: [{ sub: 1, qos: 1, retain: true, subIds: [3, 4], seq: 43 }, { sub: 2, qos: 2, retain: false, subIds: [], seq: 44, pid: 9 }] },
  { o: 'publish', msg: message(Buffer.alloc(0), { contentType: 'text/plain', userProperties: [['k', 'v'], ['k', 'w']], correlationData: Buffer.from([1, 2]) }), targets: [] },
  { o: 'dequeue', clientId: 'ü-client', seq: 2 ** 40 },
  { o: 'inflight', clientId: 'c', entry: { packetId: 65535, messageId: 42n, qos: 1, state: 'publish', dup: false, retain: true, subscriptionIdentifiers: [5] } },
  { o: 'inflight', clientId: 'c', entry: { packetId: 1, messageId: null, qos: 2, state: 'pubrel', dup: true, retain: false, subscriptionIdentifiers: [] } },
  { o: 'delInflight', clientId: 'c', packetId: 1 },
  { o: 'session', session: { clientId: 'c', protocolVersion: 5, sessionExpiryInterval: 60, disconnectedAt: null, will: null } },
  { o: 'bind', clientId: 'c', sub: 7 },
  { o: 'retain', msg: { topic: 'r', payload: new Uint8Array([1]), qos: 1, retain: true, props: null, expiryAt: 0 } },
  { o: 'retain', msg: { topic: 'r/ünï', payload: new Uint8Array([1, 2, 3]), qos: 2, retain: true, props: new Uint8Array([0x03, 0, 1, 0x41]), expiryAt: 1_700_000_000_999 } },
  { o: 'retain', msg: { topic: 'cleared', payload: new Uint8Array(0), qos: 0, retain: true, props: null, expiryAt: 0 } },
];

/** Buffers decode as Buffers, Uint8Arrays as Uint8Arrays: compare bytes, not classes. */
const plain = (v: unknown): unknown => JSON.parse(JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? `${x}n` : x instanceof Uint8Array ? [...x] : x?.type === 'Buffer' ? x.data : x)));

describe('store wire', () => {
  test('every op kind round-trips', () => {
    const buf = new RequestWriter().encode(17, ALL);
    const { req, ops } = decodeRequest(Buffer.from(buf));
    assert.equal(req, 17);
    assert.deepEqual(plain(ops), plain(ALL));
  });

  test('a damaged request is refused, not misread', () => {
    const buf = Buffer.from(new RequestWriter().encode(1, ALL.slice(0, 2)));
    assert.throws(() => decodeRequest(buf.subarray(0, buf.length - 3)));
    assert.throws(() => decodeRequest(Buffer.concat([buf, Buffer.from([0])])), /bytes after/);
  });

  test('requests larger than a record and than the ring arrive whole and in order', async () => {
    const ring = createRingBuffer(256 * 1024);
    const link = new StoreLink(ring, createBell());
    const inbox = new StoreInbox(ring);
    const big = Buffer.alloc(3 * CHUNK_BYTES + 5, 0x5a);
    const sent: Array<{ req: number; ops: StoreOp[] }> = [];
    for (let req = 1; req <= 6; req++) {
      const ops: StoreOp[] = [{ o: 'publish', id: req, msg: message(req % 2 ? big : Buffer.from(`r${req}`)), targets: [] }, { o: 'dequeue', clientId: 'c', seq: req }];
      sent.push({ req, ops });
      link.send(req, ops);
    }
    const got: Array<{ req: number; ops: StoreOp[] }> = [];
    const deadline = Date.now() + 10_000;
    while (got.length < sent.length && Date.now() < deadline) {
      inbox.drain((req, ops, err) => { assert.equal(err, null); got.push({ req, ops: ops! }); });
      await new Promise((r) => setTimeout(r, 5)); // the producer retries its overflow on a timer
    }
    assert.deepEqual(got.map((g) => g.req), [1, 2, 3, 4, 5, 6]);
    assert.deepEqual(plain(got), plain(sent));
  });
});
