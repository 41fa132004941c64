// Write-behind in the RocksDB sink: only the last operation per key reaches a write, and a put
// deleted before any write took it is dropped with its delete, except where an older copy of
// the key may be on disk (in-flight packet ids, sessions, subscriptions are reused keys).
import { describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { RocksSink } from '../../src/store/rocks-sink';
import * as codec from '../../src/store/codec';
import type { InflightEntry, QueueEntry } from '../../src/store/types';
import { message, session } from './helpers';

const q = (seq: bigint): QueueEntry => ({ seq, messageId: 1n, qos: 1, retain: false, subscriptionIdentifiers: [] });
const inflight = (packetId: number): InflightEntry => ({ packetId, messageId: 1n, qos: 1, state: 'publish', dup: false, retain: false, subscriptionIdentifiers: [] });
const shape = (ops: ReturnType<RocksSink['take']>) => ops.map((o) => `${o.type} ${o.key.toString('hex')}`);

describe('store: RocksSink write-behind', () => {
  test('a message body and queue slot deleted before the write never reach it', () => {
    const s = new RocksSink();
    s.putMessage({ ...message('t', 'p'), id: 7n });
    s.putQueue('c', q(9n));
    s.delQueue('c', 9n);
    s.delMessage(7n);
    assert.deepEqual(s.take(), []);
    assert.equal(s.stats.cancelled, 2);
  });

  test('a delete of a key already written is kept', () => {
    const s = new RocksSink();
    s.putQueue('c', q(9n));
    assert.equal(s.take().length, 1);
    s.delQueue('c', 9n);
    assert.deepEqual(shape(s.take()), [`del ${codec.queueKey('c', 9n).toString('hex')}`]);
  });

  test('an in-flight entry put and deleted between writes is dropped unless its packet id was written before', () => {
    const s = new RocksSink();
    s.putInflight('c', inflight(3));
    s.delInflight('c', 3);
    assert.deepEqual(s.take(), [], 'never written: nothing to delete');
    s.putInflight('c', inflight(3));
    assert.equal(s.take().length, 1);
    // The packet id is reused: the new put is dropped, but the delete must cover the old copy.
    s.putInflight('c', inflight(3));
    s.delInflight('c', 3);
    assert.deepEqual(shape(s.take()), [`del ${codec.inflightKey('c', 3).toString('hex')}`]);
    // Deleted on disk now: the next put-then-delete writes nothing again.
    s.putInflight('c', inflight(3));
    s.delInflight('c', 3);
    assert.deepEqual(s.take(), []);
  });

  test('the last operation per key wins, and reused keys keep their deletes', () => {
    const s = new RocksSink();
    s.putSession(session('c'));
    s.delSession('c');
    s.putSession(session('c'));
    const ops = s.take();
    assert.equal(ops.length, 1);
    assert.equal(ops[0].type, 'put');
    s.putSession(session('c'));
    s.delSession('c');
    assert.deepEqual(shape(s.take()), [`del ${codec.sessionKey('c').toString('hex')}`], 'a session key may exist on disk: the delete stays');
  });
});
